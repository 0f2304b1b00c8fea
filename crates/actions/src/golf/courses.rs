//! Golf course configuration: where each cps.golf course lives on the web and on the map.
//!
//! Every URL the golf client calls is built from this configuration, never from a user's
//! request (SPEC §6.4, §8). The two known courses are built in (`courses.yaml`, embedded at
//! compile time); a user YAML file of the same shape adds courses or replaces built-in ones
//! by `id`. A course is known by its `id` everywhere (requests, tools, secrets, the booking
//! ledger); `course_id` is only the number its site gives it (`courseIds`), so two sites
//! may both number their course 1. Loading validates everything once, so a bad file fails at startup: the origin
//! must be `https` on `*.cps.golf` (a user course may name another https host), the time
//! zone must be a real IANA zone, coordinates must be on Earth, and paths must be absolute.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use rez_http::{HostPattern, Url};
use serde::{Deserialize, Serialize};

/// The built-in course file.
const BUILTIN_YAML: &str = include_str!("../courses.yaml");

/// The host every built-in course must be under.
pub const CPS_GOLF_HOSTS: &str = "*.cps.golf";

/// A course configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CourseError {
    #[error("cannot read course file {path}: {message}")]
    Read { path: String, message: String },
    #[error("invalid course file {source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("course {id:?}: {message}")]
    Invalid { id: String, message: String },
    #[error("course id {0:?} is defined twice")]
    DuplicateId(String),
    #[error("course number {course_id} at {origin} is configured twice")]
    DuplicateCourse { origin: String, course_id: u32 },
    #[error("no course matches {0:?}")]
    NotFound(String),
    #[error("{query:?} matches several courses: {candidates}")]
    Ambiguous { query: String, candidates: String },
}

/// API paths under the course origin. Defaults are cps.golf's (prior-system §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoursePaths {
    pub token: String,
    pub jwks: String,
    pub tee_times: String,
    pub lock: String,
    pub price: String,
    pub reserve: String,
    pub reservations: String,
    /// Page linked from the reservation e-mail to cancel (sent in the reserve body).
    pub cancel_reservation_link: String,
    /// The web app's home page (sent in the reserve body).
    pub home_page_link: String,
    /// Sent as `referer` on the reservations request.
    pub reservations_page: String,
    /// Sent as `referer` on the booking requests.
    pub search_page: String,
}

impl Default for CoursePaths {
    fn default() -> Self {
        const API: &str = "/onlineres/onlineapi/api/v1/onlinereservation";
        Self {
            token: "/identityapi/connect/token".into(),
            jwks: "/identityapi/.well-known/openid-configuration/jwks".into(),
            tee_times: format!("{API}/TeeTimes"),
            lock: format!("{API}/LockTeeTimes"),
            price: format!("{API}/TeeTimePricesCalculation"),
            reserve: format!("{API}/ReserveTeeTimes"),
            reservations: format!("{API}/UpcomingReservation"),
            cancel_reservation_link: "/onlineresweb/auth/verify-email?returnUrl=cancel-booking".into(),
            home_page_link: "/onlineresweb".into(),
            reservations_page: "/onlineresweb/my-reservation".into(),
            search_page: "/onlineresweb/search-teetime".into(),
        }
    }
}

impl CoursePaths {
    fn all(&self) -> [(&'static str, &str); 11] {
        [
            ("token", &self.token),
            ("jwks", &self.jwks),
            ("tee_times", &self.tee_times),
            ("lock", &self.lock),
            ("price", &self.price),
            ("reserve", &self.reserve),
            ("reservations", &self.reservations),
            ("cancel_reservation_link", &self.cancel_reservation_link),
            ("home_page_link", &self.home_page_link),
            ("reservations_page", &self.reservations_page),
            ("search_page", &self.search_page),
        ]
    }
}

/// Identifiers the cps.golf web app sends as headers and in bodies. Defaults come from a
/// captured browser session of the prior system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CourseApiIds {
    pub component_id: u32,
    pub module_id: u32,
    pub product_id: u32,
    pub site_id: u32,
    pub terminal_id: u32,
    pub member_store_id: u32,
    /// Member class code (`R`).
    pub class_code: String,
    /// Online rate code (`N`).
    pub rate_code: String,
}

impl Default for CourseApiIds {
    fn default() -> Self {
        Self {
            component_id: 1,
            module_id: 7,
            product_id: 1,
            site_id: 3,
            terminal_id: 7,
            member_store_id: 1,
            class_code: "R".into(),
            rate_code: "N".into(),
        }
    }
}

/// One golf course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Course {
    /// Slug (`birdsfoot`).
    pub id: String,
    /// The number the course's site gives it (`courseIds` in searches). Unique per site
    /// only; never a lookup key.
    pub course_id: u32,
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub description: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone (`America/New_York`).
    pub time_zone: String,
    /// `https://birdsfoot.cps.golf`.
    pub origin: String,
    pub client_id: String,
    pub website_id: String,
    pub scope: String,
    #[serde(default)]
    pub paths: CoursePaths,
    #[serde(default)]
    pub api: CourseApiIds,
}

impl Course {
    /// The course's time zone.
    pub fn tz(&self) -> Result<Tz, CourseError> {
        self.time_zone.parse::<Tz>().map_err(|_| self.invalid(format!("unknown time zone {:?}", self.time_zone)))
    }

    fn invalid(&self, message: impl Into<String>) -> CourseError {
        CourseError::Invalid { id: self.id.clone(), message: message.into() }
    }

    /// The origin as a URL (scheme, host and port only).
    pub fn origin_url(&self) -> Result<Url, CourseError> {
        let url = Url::parse(self.origin.trim()).map_err(|e| self.invalid(format!("origin is not a URL: {e}")))?;
        if url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || !matches!(url.path(), "" | "/")
        {
            return Err(self.invalid("origin must be scheme://host[:port] without path, query or credentials"));
        }
        Ok(url)
    }

    /// `origin` + `path`.
    pub fn url(&self, path: &str) -> Result<Url, CourseError> {
        let mut url = self.origin_url()?;
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        url.set_path(p);
        if !q.is_empty() {
            url.set_query(Some(q));
        }
        Ok(url)
    }

    /// The site the course lives on (its origin, normalised), for telling sites apart.
    pub fn site(&self) -> String {
        self.origin_url()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| self.origin.trim().trim_end_matches('/').to_ascii_lowercase())
    }

    /// `origin` + `path` as a string (for the links cps.golf puts in e-mails and headers).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.origin.trim().trim_end_matches('/'))
    }

    /// The UTC offset in minutes *west* of UTC at `local` in the course's zone, the way
    /// JavaScript's `getTimezoneOffset()` reports it and cps.golf's `x-timezone-offset`
    /// expects it: 240 for EDT, 300 for EST.
    pub fn timezone_offset_minutes(&self, local: NaiveDateTime) -> Result<i32, CourseError> {
        let tz = self.tz()?;
        // A time skipped by DST (or repeated) is resolved to the offset in force just after.
        let offset = match tz.offset_from_local_datetime(&local) {
            chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o.fix(),
            chrono::LocalResult::None => tz.offset_from_utc_datetime(&local).fix(),
        };
        Ok(-offset.local_minus_utc() / 60)
    }

    /// [`Course::timezone_offset_minutes`] at noon of `date`.
    pub fn timezone_offset_on(&self, date: NaiveDate) -> Result<i32, CourseError> {
        self.timezone_offset_minutes(date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN)))
    }

    /// Today's date at the course.
    pub fn today<T: TimeZone>(&self, now: &DateTime<T>) -> Result<NaiveDate, CourseError> {
        Ok(now.with_timezone(&self.tz()?).date_naive())
    }

    /// Check the course. `allow_foreign_origin` admits an https origin outside
    /// `*.cps.golf` (user courses only).
    pub fn validate(&self, allow_foreign_origin: bool) -> Result<(), CourseError> {
        self.validate_with(allow_foreign_origin, false)
    }

    /// [`Course::validate`], optionally accepting a plain-http loopback origin: only for
    /// tests against a fake course on 127.0.0.1, switched on by the same explicit
    /// test-only setting that lets outbound calls reach loopback.
    pub fn validate_with(&self, allow_foreign_origin: bool, allow_loopback_http: bool) -> Result<(), CourseError> {
        let slug_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !slug_ok {
            return Err(self.invalid("id must be 1–64 characters of a–z, 0–9, - and _"));
        }
        if self.course_id == 0 {
            return Err(self.invalid("course_id must be a positive number"));
        }
        if self.name.trim().is_empty() {
            return Err(self.invalid("name is required"));
        }
        if !(self.latitude.is_finite() && (-90.0..=90.0).contains(&self.latitude)) {
            return Err(self.invalid("latitude must be within ±90"));
        }
        if !(self.longitude.is_finite() && (-180.0..=180.0).contains(&self.longitude)) {
            return Err(self.invalid("longitude must be within ±180"));
        }
        self.tz()?;
        let origin = self.origin_url()?;
        let loopback = matches!(origin.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if origin.scheme() != "https" && !(allow_loopback_http && loopback && origin.scheme() == "http") {
            return Err(self.invalid(format!("origin must use https, not {}", origin.scheme())));
        }
        let host = origin.host_str().unwrap_or_default();
        let on_cps = HostPattern::parse(CPS_GOLF_HOSTS).is_ok_and(|p| p.matches(host));
        if !on_cps && !allow_foreign_origin {
            return Err(self.invalid(format!("origin host {host} is not under {CPS_GOLF_HOSTS}")));
        }
        for (name, value) in [("client_id", &self.client_id), ("website_id", &self.website_id), ("scope", &self.scope)]
        {
            if value.trim().is_empty() || value.chars().any(|c| c.is_control()) {
                return Err(self.invalid(format!("{name} must be non-empty printable text")));
            }
        }
        for (name, path) in self.paths.all() {
            if !path.starts_with('/') || path.starts_with("//") || path.chars().any(|c| c.is_control() || c == ' ') {
                return Err(self.invalid(format!("paths.{name} must be an absolute path like /identityapi/...")));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseFile {
    courses: Vec<Course>,
}

/// The configured courses.
#[derive(Clone, PartialEq)]
pub struct Courses {
    courses: Vec<Course>,
}

impl fmt::Debug for Courses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.courses.iter().map(|c| &c.id)).finish()
    }
}

fn parse(yaml: &str, source_name: &str) -> Result<Vec<Course>, CourseError> {
    let file: CourseFile = serde_yaml_ng::from_str(yaml)
        .map_err(|e| CourseError::Parse { source_name: source_name.to_owned(), message: e.to_string() })?;
    Ok(file.courses)
}

impl Courses {
    /// The built-in courses (Birdsfoot and Totteridge).
    pub fn builtin() -> Result<Self, CourseError> {
        let courses = parse(BUILTIN_YAML, "built-in courses.yaml")?;
        for c in &courses {
            c.validate(false)?;
        }
        Self::checked(courses)
    }

    /// The built-in courses plus the user's YAML file, if any: a course with a built-in
    /// `id` replaces it, others are added.
    pub fn load_with_overrides(path: Option<&Path>) -> Result<Self, CourseError> {
        Self::load_with_overrides_opts(path, false)
    }

    /// [`Courses::load_with_overrides`]; `allow_loopback_http` is test-only (see
    /// [`Course::validate_with`]).
    pub fn load_with_overrides_opts(path: Option<&Path>, allow_loopback_http: bool) -> Result<Self, CourseError> {
        let mut courses = Self::builtin()?;
        if let Some(path) = path {
            let shown = path.display().to_string();
            let yaml = std::fs::read_to_string(path)
                .map_err(|e| CourseError::Read { path: shown.clone(), message: e.to_string() })?;
            courses = courses.with_overrides_yaml_opts(&yaml, &shown, allow_loopback_http)?;
        }
        Ok(courses)
    }

    /// Apply user YAML (see [`Courses::load_with_overrides`]).
    pub fn with_overrides_yaml(self, yaml: &str, source_name: &str) -> Result<Self, CourseError> {
        self.with_overrides_yaml_opts(yaml, source_name, false)
    }

    fn with_overrides_yaml_opts(
        self,
        yaml: &str,
        source_name: &str,
        allow_loopback_http: bool,
    ) -> Result<Self, CourseError> {
        let user = parse(yaml, source_name)?;
        let mut seen = std::collections::HashSet::new();
        let mut courses = self.courses;
        for c in user {
            c.validate_with(true, allow_loopback_http)?;
            if !seen.insert(c.id.clone()) {
                return Err(CourseError::DuplicateId(c.id));
            }
            match courses.iter_mut().find(|b| b.id == c.id) {
                Some(slot) => *slot = c,
                None => courses.push(c),
            }
        }
        Self::checked(courses)
    }

    fn checked(courses: Vec<Course>) -> Result<Self, CourseError> {
        for (i, c) in courses.iter().enumerate() {
            if courses[..i].iter().any(|o| o.id == c.id) {
                return Err(CourseError::DuplicateId(c.id.clone()));
            }
            if courses[..i].iter().any(|o| o.course_id == c.course_id && o.site() == c.site()) {
                return Err(CourseError::DuplicateCourse { origin: c.site(), course_id: c.course_id });
            }
        }
        Ok(Self { courses })
    }

    /// All courses, built-in first.
    pub fn list(&self) -> &[Course] {
        &self.courses
    }

    /// Find a course by id (`birdsfoot`) or name, case-insensitively; a name may be
    /// abbreviated when only one course contains the text (`totter`). The site's course
    /// number is no key: two sites may use the same one.
    pub fn find(&self, query: &str) -> Result<&Course, CourseError> {
        let q = query.trim();
        if q.is_empty() {
            return Err(CourseError::NotFound(query.to_owned()));
        }
        if let Some(c) = self.courses.iter().find(|c| c.id.eq_ignore_ascii_case(q)) {
            return Ok(c);
        }
        if let Some(c) = self.courses.iter().find(|c| c.name.trim().eq_ignore_ascii_case(q)) {
            return Ok(c);
        }
        let lower = q.to_lowercase();
        let partial: Vec<&Course> = self.courses.iter().filter(|c| c.name.to_lowercase().contains(&lower)).collect();
        match partial.as_slice() {
            [one] => Ok(one),
            [] => Err(CourseError::NotFound(query.to_owned())),
            many => Err(CourseError::Ambiguous {
                query: query.to_owned(),
                candidates: many.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// [`Courses::find`] as an option.
    pub fn get(&self, query: &str) -> Option<&Course> {
        self.find(query).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_courses_are_valid_and_in_pennsylvania() {
        let courses = Courses::builtin().expect("built-in");
        assert_eq!(courses.list().len(), 2);
        for c in courses.list() {
            assert!((39.7..42.3).contains(&c.latitude) && (-80.6..-74.6).contains(&c.longitude), "{} not in PA", c.id);
            assert_eq!(c.tz().expect("tz"), chrono_tz::America::New_York);
        }
        let b = courses.find("birdsfoot").expect("birdsfoot");
        assert_eq!(
            b.url(&b.paths.token).expect("url").as_str(),
            "https://birdsfoot.cps.golf/identityapi/connect/token"
        );
        assert!(matches!(courses.find("2"), Err(CourseError::NotFound(_))), "a site's course number is no key");
        assert_eq!(courses.find("BIRDSFOOT GOLF COURSE").expect("by name").id, "birdsfoot");
        assert_eq!(courses.find("totter").expect("partial").id, "totteridge");
        assert!(matches!(courses.find("pebble"), Err(CourseError::NotFound(_))));
    }

    #[test]
    fn timezone_offsets_follow_dst() {
        let courses = Courses::builtin().expect("built-in");
        let c = courses.find("totteridge").expect("course");
        let d = |m, d| NaiveDate::from_ymd_opt(2025, m, d).expect("date");
        assert_eq!(c.timezone_offset_on(d(1, 15)).expect("winter"), 300);
        assert_eq!(c.timezone_offset_on(d(7, 15)).expect("summer"), 240);
        // 2025-03-09 02:30 does not exist in New York; it resolves without error.
        let gap = d(3, 9).and_hms_opt(2, 30, 0).expect("time");
        assert!(matches!(c.timezone_offset_minutes(gap).expect("gap"), 240 | 300));
    }
}
