//! `golf` web actions on Club Prophet (cps.golf) course sites: `search_tee_times`,
//! `book_tee_time`, `fetch_reservations`, `auto_book`.
//!
//! Payload `{action: "golf", course}`; arguments `{operation, date ("2026-12-05"),
//! window_start/window_end ("08:00"), players (1–4), holes (9|18), tee_sheet_id}`.
//! Credentials come from the secret store (`golf/<course id>`), never from the message.
//! Bookings are exactly-once: the booking key is the message id, so a redelivered or
//! retried message returns the recorded confirmation instead of booking again.

use std::sync::Arc;

use async_trait::async_trait;
use rez_core::booking::BookingKey;
use rez_core::notify::{NotifyPayload, Priority};
use rez_core::ports::{SecretStore, WebActionHandler};
use rez_core::web_action::{WebActionError, WebActionOutput, WebActionRequest};
use serde_json::json;

use super::args;
use crate::golf::summary::{booking_text, reservations_text, tee_times_text};
use crate::golf::{Booker, BookingError, Course, Courses, GolfCredentials, GolfError, Holes, SearchRequest};

pub struct GolfAction {
    booker: Booker,
    courses: Arc<Courses>,
    secrets: Arc<dyn SecretStore>,
}

impl GolfAction {
    pub fn new(booker: Booker, courses: Arc<Courses>, secrets: Arc<dyn SecretStore>) -> Self {
        Self { booker, courses, secrets }
    }

    /// The secret name holding a course's credentials.
    pub fn secret_name(course_id: &str) -> String {
        format!("golf/{course_id}")
    }

    async fn credentials(&self, course: &Course) -> Result<GolfCredentials, WebActionError> {
        let name = Self::secret_name(&course.id);
        let secret = self
            .secrets
            .get_secret(&name)
            .await
            .map_err(|e| WebActionError::transient(format!("reading the credentials of {}: {e}", course.id)))?
            .ok_or_else(|| {
                WebActionError::permanent(format!(
                    "no credentials for {}: store them with `rez secrets set-golf --course {}`",
                    course.name, course.id
                ))
            })?;
        let v: serde_json::Value = serde_json::from_str(secret.expose()).map_err(|_| {
            WebActionError::permanent(format!("the secret {name} is not JSON {{username, password, ...}}"))
        })?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(WebActionError::permanent(format!("the secret {name} needs username and password")));
        };
        let mut creds = GolfCredentials::new(username, password);
        creds.client_id = field("client_id");
        creds.client_secret = field("client_secret");
        Ok(creds)
    }
}

fn map_err(e: GolfError) -> WebActionError {
    if e.is_conflict() {
        WebActionError::conflict(e.to_string())
    } else if e.is_transient() {
        WebActionError::transient(e.to_string())
    } else {
        WebActionError::permanent(e.to_string())
    }
}

fn warning(title: String, text: String, course: &Course) -> NotifyPayload {
    NotifyPayload {
        priority: Some(Priority::try_from(4).unwrap_or(Priority::DEFAULT)),
        tags: vec!["warning".into(), "golf".into()],
        ..notify(title, text, course)
    }
}

/// A booking that did not happen says so on the phone: a conflict, a refusal, no tee
/// time in the window, a key on hold. One that is only not finished yet (a retry or a
/// lookup to come) stays quiet until it is.
fn map_booking_err(e: BookingError, course: &Course) -> WebActionError {
    let text = e.to_string();
    let mut err = if e.is_conflict() {
        WebActionError::conflict(text.clone())
    } else if let Some(after) = e.retry_after() {
        return WebActionError::later(text, after);
    } else if e.is_transient() {
        return WebActionError::transient(text);
    } else {
        WebActionError::permanent(text.clone())
    };
    let title = match e {
        BookingError::Held { .. } => format!("Booking on hold: {}", course.name),
        _ => format!("Not booked: {}", course.name),
    };
    err.notifications.push(warning(title, text, course));
    err
}

fn search_request(req: &WebActionRequest) -> Result<SearchRequest, WebActionError> {
    let a = &req.arguments;
    let date = args::date(a, "date", "arguments.date")?
        .ok_or_else(|| WebActionError::permanent("arguments.date is required"))?;
    let players = args::integer(a, "players", "arguments.players", 1..=4)?.unwrap_or(1) as u8;
    let mut s = SearchRequest::new(date, players);
    s.window_start = args::time(a, "window_start", "arguments.window_start")?;
    s.window_end = args::time(a, "window_end", "arguments.window_end")?;
    if let (Some(st), Some(en)) = (s.window_start, s.window_end)
        && en < st
    {
        return Err(WebActionError::permanent("arguments.window_end is before arguments.window_start"));
    }
    s.holes = holes(req)?;
    Ok(s)
}

fn holes(req: &WebActionRequest) -> Result<Holes, WebActionError> {
    match args::integer(&req.arguments, "holes", "arguments.holes", 9..=18)? {
        None | Some(18) => Ok(Holes::Eighteen),
        Some(9) => Ok(Holes::Nine),
        Some(_) => Err(WebActionError::permanent("arguments.holes must be 9 or 18")),
    }
}

fn notify(title: String, text: String, course: &Course) -> NotifyPayload {
    NotifyPayload {
        title: Some(title),
        tags: vec!["golf".into()],
        click: Some(course.link("/onlineresweb/my-reservation")).filter(|l| l.starts_with("http")),
        ..NotifyPayload::text(text)
    }
}

#[async_trait]
impl WebActionHandler for GolfAction {
    fn action(&self) -> &'static str {
        "golf"
    }

    fn operations(&self) -> &'static [&'static str] {
        &["search_tee_times", "book_tee_time", "fetch_reservations", "auto_book"]
    }

    async fn execute(&self, req: &WebActionRequest) -> Result<WebActionOutput, WebActionError> {
        let course_q = args::string(&req.payload, "course", "payload.course")?
            .ok_or_else(|| WebActionError::permanent("payload.course is required (a course id or name)"))?;
        let course = self.courses.find(course_q).map_err(|e| WebActionError::permanent(e.to_string()))?;
        let creds = self.credentials(course).await?;
        let client = self.booker.client();
        let key = || BookingKey::new(req.message_id.to_string()).map_err(|e| WebActionError::permanent(e.message));
        match req.operation.as_deref().unwrap_or("search_tee_times") {
            "search_tee_times" => {
                let s = search_request(req)?;
                let slots = client.search_tee_times(course, &creds, &s).await.map_err(map_err)?;
                let text = tee_times_text(course, &s, &slots, 12);
                Ok(WebActionOutput {
                    output: json!({"course": course.id, "search": s, "tee_times": slots}),
                    notifications: vec![notify(format!("Tee times: {}", course.name), text, course)],
                    response_code: Some(200),
                    response_body: None,
                })
            }
            "fetch_reservations" => {
                let r = client.fetch_reservations(course, &creds).await.map_err(map_err)?;
                let text = reservations_text(course, &r, 10);
                Ok(WebActionOutput {
                    output: json!({"course": course.id, "reservations": r}),
                    notifications: vec![notify(format!("Reservations: {}", course.name), text, course)],
                    response_code: Some(200),
                    response_body: None,
                })
            }
            "book_tee_time" => {
                let tee_sheet_id =
                    args::integer(&req.arguments, "tee_sheet_id", "arguments.tee_sheet_id", 1..=i64::MAX)?
                        .ok_or_else(|| WebActionError::permanent("arguments.tee_sheet_id is required"))?;
                let players = args::integer(&req.arguments, "players", "arguments.players", 1..=4)?.unwrap_or(1) as u8;
                let out = self
                    .booker
                    .book(&key()?, course, &creds, tee_sheet_id, players, holes(req)?)
                    .await
                    .map_err(|e| map_booking_err(e, course))?;
                let text = booking_text(course, &out);
                Ok(WebActionOutput {
                    output: json!({"course": course.id, "confirmation": out.confirmation, "path": out.path}),
                    notifications: vec![notify(format!("Booked: {}", course.name), text, course)],
                    response_code: Some(200),
                    response_body: None,
                })
            }
            "auto_book" => {
                let s = search_request(req)?;
                let out =
                    self.booker.auto_book(&key()?, course, &creds, &s).await.map_err(|e| map_booking_err(e, course))?;
                let text = booking_text(course, &out);
                Ok(WebActionOutput {
                    output: json!({"course": course.id, "search": s, "confirmation": out.confirmation, "path": out.path}),
                    notifications: vec![notify(format!("Booked: {}", course.name), text, course)],
                    response_code: Some(200),
                    response_body: None,
                })
            }
            other => Err(WebActionError::permanent(format!("unknown golf operation `{other}`"))),
        }
    }
}
