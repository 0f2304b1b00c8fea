//! The NOAA weather client (SPEC §6.3): forecasts for a course's real location.
//!
//! The prior system hard-coded grid URLs (one of them in Kansas for a course in
//! Pennsylvania). This client does what NOAA documents instead: `GET /points/{lat},{lon}`
//! gives the forecast URLs of the grid cell, which are cached (they change only when NOAA
//! re-grids), then `GET` the forecast. Every call goes through `rez-http`, and the URLs
//! NOAA hands back must stay on the configured NOAA origin, so a tampered answer cannot
//! send us elsewhere.
//!
//! [`summarize`] renders a readable multi-day text grouping day and night periods per
//! calendar day and showing *every* period: a forecast starting with "Tonight" yields a
//! first day with only its night, and a trailing day period is never dropped (both were
//! bugs of the prior system).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use rez_http::header::{ACCEPT, HeaderValue, USER_AGENT};
use rez_http::{HttpClient, HttpError, OutboundRequest, Redactor, RetryPolicy, Url};
use serde::{Deserialize, Serialize};

/// NOAA's API.
pub const DEFAULT_BASE_URL: &str = "https://api.weather.gov";
/// How long a `/points` answer is reused.
pub const DEFAULT_POINTS_TTL: Duration = Duration::from_secs(24 * 3600);

/// Configuration of the weather client.
#[derive(Debug, Clone)]
pub struct WeatherConfig {
    /// NOAA's origin, `https://api.weather.gov` unless a test points it at a fake.
    pub base_url: String,
    /// NOAA requires a `User-Agent` identifying the application and a contact, e.g.
    /// `rez_agent (ops@example.com)`.
    pub user_agent: String,
    /// How long `/points` lookups are cached.
    pub points_ttl: Duration,
    /// Retries of the (idempotent) GETs on 5xx, 429 and connection errors.
    pub retry: RetryPolicy,
}

impl WeatherConfig {
    /// A configuration for the real NOAA API with `user_agent` (which must carry a contact).
    pub fn new(user_agent: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            user_agent: user_agent.into(),
            points_ttl: DEFAULT_POINTS_TTL,
            retry: RetryPolicy::default(),
        }
    }

    /// Point the client at another origin (a fake NOAA in tests).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}

/// Why a forecast could not be produced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WeatherError {
    #[error("invalid weather configuration: {0}")]
    Config(String),
    #[error("invalid coordinates {lat},{lon}: latitude must be within ±90 and longitude within ±180")]
    InvalidCoordinates { lat: f64, lon: f64 },
    #[error("NOAA request failed: {0}")]
    Http(#[from] HttpError),
    #[error("NOAA answered {status} for {what}: {detail}")]
    Status { status: u16, what: &'static str, detail: String },
    #[error("NOAA returned an unusable {what}: {message}")]
    Decode { what: &'static str, message: String },
    #[error("NOAA pointed to {url}, which is not on the configured NOAA origin {expected}")]
    ForeignUrl { url: String, expected: String },
}

impl WeatherError {
    /// Whether trying again later may succeed (NOAA down, throttling, network trouble).
    pub fn is_transient(&self) -> bool {
        match self {
            WeatherError::Http(e) => e.is_retryable(),
            WeatherError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The forecast URLs of a point, from `/points/{lat},{lon}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInfo {
    pub forecast: Url,
    pub forecast_hourly: Url,
    /// Forecast office (`PBZ`), grid x and y, and the point's IANA time zone, if given.
    pub grid_id: Option<String>,
    pub grid_x: Option<i64>,
    pub grid_y: Option<i64>,
    pub time_zone: Option<String>,
}

/// A forecast: NOAA's periods in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// When NOAA last updated the forecast, if it said.
    pub updated: Option<DateTime<FixedOffset>>,
    pub periods: Vec<Period>,
}

/// One forecast period ("Tonight", "Saturday", or one hour of the hourly forecast).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// "Today", "Tonight", "Saturday Night"… (empty for hourly periods).
    pub name: String,
    pub start_time: DateTime<FixedOffset>,
    pub end_time: DateTime<FixedOffset>,
    pub is_daytime: bool,
    pub temperature: Option<i32>,
    /// `F` or `C`.
    pub temperature_unit: String,
    /// "rising", "falling" or none.
    pub temperature_trend: Option<String>,
    /// "5 to 10 mph".
    pub wind_speed: String,
    /// "SW".
    pub wind_direction: String,
    pub short_forecast: String,
    pub detailed_forecast: String,
    /// Chance of precipitation in percent.
    pub probability_of_precipitation: Option<u8>,
}

/// Round to NOAA's 4 decimal places and drop trailing zeros (`40.3000` → `40.3`), the
/// form NOAA uses in its canonical point URLs (it redirects more precise ones).
fn coordinate(v: f64) -> String {
    let rounded = (v * 10_000.0).round() / 10_000.0;
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    let s = format!("{rounded:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// The cache key of a point: the coordinates rounded to 4 decimals, as integers.
fn point_key(lat: f64, lon: f64) -> (i64, i64) {
    ((lat * 10_000.0).round() as i64, (lon * 10_000.0).round() as i64)
}

struct CachedPoint {
    info: PointInfo,
    at: Instant,
}

/// Client of NOAA's forecast API.
pub struct WeatherClient {
    http: HttpClient,
    base: Url,
    user_agent: HeaderValue,
    points_ttl: Duration,
    retry: RetryPolicy,
    points: Mutex<HashMap<(i64, i64), CachedPoint>>,
}

impl fmt::Debug for WeatherClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherClient")
            .field("base", &self.base.as_str())
            .field("user_agent", &self.user_agent)
            .field("points_ttl", &self.points_ttl)
            .finish()
    }
}

// ---- NOAA wire shapes -------------------------------------------------------------------

#[derive(Deserialize)]
struct PointsDoc {
    properties: PointsProps,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PointsProps {
    forecast: Option<String>,
    forecast_hourly: Option<String>,
    grid_id: Option<String>,
    grid_x: Option<i64>,
    grid_y: Option<i64>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
struct ForecastDoc {
    properties: ForecastProps,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForecastProps {
    #[serde(default)]
    update_time: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    updated: Option<DateTime<FixedOffset>>,
    periods: Vec<WirePeriod>,
}

/// A number, or NOAA's QuantitativeValue `{"unitCode": "...", "value": n}` (used when the
/// API's `forecast_temperature_qv` / `forecast_wind_speed_qv` feature flags are on).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrQv {
    Number(f64),
    Qv { value: Option<f64> },
}

impl NumberOrQv {
    fn value(&self) -> Option<f64> {
        match self {
            NumberOrQv::Number(n) => Some(*n),
            NumberOrQv::Qv { value } => *value,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrQv {
    Text(String),
    Qv {
        value: Option<f64>,
        #[serde(rename = "unitCode")]
        unit_code: Option<String>,
    },
}

impl TextOrQv {
    fn text(self) -> String {
        match self {
            TextOrQv::Text(s) => s,
            TextOrQv::Qv { value: Some(v), unit_code } => {
                let unit = match unit_code.as_deref() {
                    Some("wmoUnit:km_h-1") => " km/h",
                    Some("wmoUnit:m_s-1") => " m/s",
                    _ => "",
                };
                format!("{}{unit}", v.round() as i64)
            }
            TextOrQv::Qv { value: None, .. } => String::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePeriod {
    #[serde(default)]
    name: String,
    start_time: DateTime<FixedOffset>,
    end_time: DateTime<FixedOffset>,
    is_daytime: bool,
    temperature: Option<NumberOrQv>,
    #[serde(default)]
    temperature_unit: Option<String>,
    #[serde(default)]
    temperature_trend: Option<String>,
    #[serde(default)]
    wind_speed: Option<TextOrQv>,
    #[serde(default)]
    wind_direction: Option<String>,
    #[serde(default)]
    short_forecast: String,
    #[serde(default)]
    detailed_forecast: String,
    #[serde(default)]
    probability_of_precipitation: Option<NumberOrQv>,
}

impl From<WirePeriod> for Period {
    fn from(w: WirePeriod) -> Self {
        Period {
            name: w.name,
            start_time: w.start_time,
            end_time: w.end_time,
            is_daytime: w.is_daytime,
            temperature: w.temperature.and_then(|t| t.value()).map(|v| v.round() as i32),
            temperature_unit: w.temperature_unit.unwrap_or_else(|| "F".to_owned()),
            temperature_trend: w.temperature_trend.filter(|t| !t.is_empty()),
            wind_speed: w.wind_speed.map(TextOrQv::text).unwrap_or_default(),
            wind_direction: w.wind_direction.unwrap_or_default(),
            short_forecast: w.short_forecast,
            detailed_forecast: w.detailed_forecast,
            probability_of_precipitation: w
                .probability_of_precipitation
                .and_then(|p| p.value())
                .map(|v| v.round().clamp(0.0, 100.0) as u8),
        }
    }
}

/// NOAA's problem document (`application/problem+json`).
#[derive(Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

impl WeatherClient {
    /// Build the client. Fails if the base URL is unusable or the outbound policy of
    /// `http` would refuse it, so a misconfiguration shows at startup.
    pub fn new(config: WeatherConfig, http: HttpClient) -> Result<Self, WeatherError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| WeatherError::Config(format!("invalid NOAA base URL {}: {e}", config.base_url)))?;
        if base.host_str().is_none() || base.query().is_some() || !base.username().is_empty() {
            return Err(WeatherError::Config(format!("NOAA base URL must be an origin like {DEFAULT_BASE_URL}")));
        }
        http.policy()
            .check_url(&base)
            .map_err(|v| WeatherError::Config(format!("NOAA origin refused by the outbound policy: {v}")))?;
        let ua = config.user_agent.trim();
        if ua.is_empty() {
            return Err(WeatherError::Config(
                "NOAA requires a User-Agent with a contact, e.g. \"rez_agent (you@example.com)\"".into(),
            ));
        }
        let user_agent = HeaderValue::from_str(ua)
            .map_err(|_| WeatherError::Config("the User-Agent contains characters not allowed in a header".into()))?;
        Ok(Self {
            http,
            base,
            user_agent,
            points_ttl: config.points_ttl,
            retry: config.retry,
            points: Mutex::new(HashMap::new()),
        })
    }

    fn request(&self, url: Url) -> OutboundRequest {
        OutboundRequest::from_url(rez_http::Method::GET, url)
            .header(ACCEPT, HeaderValue::from_static("application/geo+json"))
            .header(USER_AGENT, self.user_agent.clone())
    }

    /// URLs NOAA hands out must stay on NOAA's origin.
    fn check_same_origin(&self, raw: &str) -> Result<Url, WeatherError> {
        let url =
            Url::parse(raw).map_err(|e| WeatherError::Decode { what: "points answer", message: e.to_string() })?;
        if url.origin() != self.base.origin() {
            return Err(WeatherError::ForeignUrl {
                url: Redactor.url(&url),
                expected: self.base.origin().ascii_serialization(),
            });
        }
        Ok(url)
    }

    async fn get(&self, url: Url, what: &'static str) -> Result<rez_http::HttpResponse, WeatherError> {
        let resp = self.http.send_with_retry(self.request(url), &self.retry).await?;
        if resp.status.is_success() {
            return Ok(resp);
        }
        let detail = match resp.json::<Problem>() {
            Ok(p) => p.detail.or(p.title).unwrap_or_default(),
            Err(_) => resp.text(),
        };
        let mut detail = Redactor.text(detail.trim());
        if detail.len() > 200 {
            let cut = (0..=200).rev().find(|&i| detail.is_char_boundary(i)).unwrap_or(0);
            detail.truncate(cut);
        }
        tracing::warn!(status = resp.status.as_u16(), what, "NOAA request failed");
        Err(WeatherError::Status { status: resp.status.as_u16(), what, detail })
    }

    /// The forecast URLs of the grid cell containing `lat`, `lon` (cached).
    pub async fn point(&self, lat: f64, lon: f64) -> Result<PointInfo, WeatherError> {
        if !(lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
            return Err(WeatherError::InvalidCoordinates { lat, lon });
        }
        let key = point_key(lat, lon);
        {
            let cache = self.points.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&key)
                && c.at.elapsed() < self.points_ttl
            {
                return Ok(c.info.clone());
            }
        }
        let mut url = self.base.clone();
        url.set_path(&format!("/points/{},{}", coordinate(lat), coordinate(lon)));
        let resp = self.get(url, "points lookup").await?;
        let doc: PointsDoc =
            resp.json().map_err(|e| WeatherError::Decode { what: "points answer", message: e.to_string() })?;
        let p = doc.properties;
        let (Some(forecast), Some(hourly)) = (p.forecast, p.forecast_hourly) else {
            return Err(WeatherError::Decode {
                what: "points answer",
                message: "no forecast URLs for this point (is it outside NOAA's coverage?)".into(),
            });
        };
        let info = PointInfo {
            forecast: self.check_same_origin(&forecast)?,
            forecast_hourly: self.check_same_origin(&hourly)?,
            grid_id: p.grid_id,
            grid_x: p.grid_x,
            grid_y: p.grid_y,
            time_zone: p.time_zone,
        };
        tracing::debug!(lat, lon, grid = info.grid_id.as_deref().unwrap_or(""), "NOAA point resolved");
        self.points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, CachedPoint { info: info.clone(), at: Instant::now() });
        Ok(info)
    }

    async fn fetch_forecast(&self, url: Url, what: &'static str) -> Result<Forecast, WeatherError> {
        let resp = self.get(url, what).await?;
        let doc: ForecastDoc = resp.json().map_err(|e| WeatherError::Decode { what, message: e.to_string() })?;
        let props = doc.properties;
        Ok(Forecast {
            updated: props.update_time.or(props.updated),
            periods: props.periods.into_iter().map(Period::from).collect(),
        })
    }

    /// The twice-daily forecast (day and night periods, about 7 days).
    pub async fn forecast(&self, lat: f64, lon: f64) -> Result<Forecast, WeatherError> {
        let point = self.point(lat, lon).await?;
        self.fetch_forecast(point.forecast, "forecast").await
    }

    /// The hourly forecast (about 156 hours).
    pub async fn hourly_forecast(&self, lat: f64, lon: f64) -> Result<Forecast, WeatherError> {
        let point = self.point(lat, lon).await?;
        self.fetch_forecast(point.forecast_hourly, "hourly forecast").await
    }

    /// The hourly periods from `hours_before` before to `hours_after` after a tee time.
    pub async fn hourly_around<Tz: TimeZone>(
        &self,
        lat: f64,
        lon: f64,
        tee_time: &DateTime<Tz>,
        hours_before: u32,
        hours_after: u32,
    ) -> Result<Vec<Period>, WeatherError> {
        let hourly = self.hourly_forecast(lat, lon).await?;
        Ok(periods_around(&hourly, tee_time, hours_before, hours_after))
    }
}

/// The periods of `forecast` overlapping `[tee_time - hours_before, tee_time + hours_after]`
/// (a period starting exactly at the end is included).
pub fn periods_around<Tz: TimeZone>(
    forecast: &Forecast,
    tee_time: &DateTime<Tz>,
    hours_before: u32,
    hours_after: u32,
) -> Vec<Period> {
    let t = tee_time.with_timezone(&Utc);
    let lo = t - chrono::Duration::hours(i64::from(hours_before));
    let hi = t + chrono::Duration::hours(i64::from(hours_after));
    forecast.periods.iter().filter(|p| p.end_time > lo && p.start_time <= hi).cloned().collect()
}

/// Periods grouped by the calendar day (local to the forecast) they start on, in order.
fn group_by_day(forecast: &Forecast) -> Vec<(NaiveDate, Vec<&Period>)> {
    let mut days: Vec<(NaiveDate, Vec<&Period>)> = Vec::new();
    for p in &forecast.periods {
        let date = p.start_time.date_naive();
        match days.last_mut() {
            Some((d, ps)) if *d == date => ps.push(p),
            _ => days.push((date, vec![p])),
        }
    }
    days
}

fn temperature_icon(p: &Period) -> &'static str {
    let Some(t) = p.temperature else { return "🌡️" };
    let (cold, hot) = if p.temperature_unit.eq_ignore_ascii_case("C") { (0, 27) } else { (32, 80) };
    if t < cold {
        "❄️"
    } else if t > hot {
        "🔥"
    } else {
        "🌡️"
    }
}

/// One line per period: `Tonight: 🌡️ 58°F, wind 5 mph SW, Mostly Clear, 💧 20%`.
fn period_line(p: &Period) -> String {
    let name = if p.name.is_empty() { p.start_time.format("%-I %p").to_string() } else { p.name.clone() };
    let mut parts = Vec::new();
    if let Some(t) = p.temperature {
        let trend = match p.temperature_trend.as_deref() {
            Some("rising") => " ↗️",
            Some("falling") => " ↘️",
            _ => "",
        };
        parts.push(format!("{} {t}°{}{trend}", temperature_icon(p), p.temperature_unit));
    }
    let wind = format!("{} {}", p.wind_speed, p.wind_direction).trim().to_owned();
    if !wind.is_empty() {
        parts.push(format!("💨 {wind}"));
    }
    if !p.short_forecast.is_empty() {
        parts.push(p.short_forecast.clone());
    }
    if let Some(pop) = p.probability_of_precipitation.filter(|&v| v > 0) {
        parts.push(format!("💧 {pop}%"));
    }
    format!("{name}: {}", parts.join(", "))
}

fn day_title(date: NaiveDate) -> String {
    date.format("%A, %b %-d").to_string()
}

/// One `(title, body)` per calendar day, every period of the day in the body; at most
/// `days` days when given.
pub fn summarize_per_day(forecast: &Forecast, days: Option<usize>) -> Vec<(String, String)> {
    group_by_day(forecast)
        .into_iter()
        .take(days.unwrap_or(usize::MAX))
        .map(|(date, periods)| {
            let body = periods.iter().map(|p| period_line(p)).collect::<Vec<_>>().join("\n");
            (format!("Weather: {}", day_title(date)), body)
        })
        .collect()
}

/// A readable multi-day summary: a heading, then per calendar day its date and one line
/// per period (day and night), at most `days` days when given.
pub fn summarize(forecast: &Forecast, days: Option<usize>) -> String {
    let groups = group_by_day(forecast);
    if groups.is_empty() {
        return "🌤️ Weather forecast\n\nNo forecast periods available.".to_owned();
    }
    let mut out = String::from("🌤️ Weather forecast");
    for (date, periods) in groups.into_iter().take(days.unwrap_or(usize::MAX)) {
        out.push_str("\n\n📅 ");
        out.push_str(&day_title(date));
        for p in periods {
            out.push_str("\n  ");
            out.push_str(&period_line(p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_noaa_canonical() {
        assert_eq!(coordinate(40.357_810_7), "40.3578");
        assert_eq!(coordinate(-79.506_593_8), "-79.5066");
        assert_eq!(coordinate(40.3), "40.3");
        assert_eq!(coordinate(-80.0), "-80");
        assert_eq!(coordinate(-0.000_01), "0");
        assert_eq!(point_key(40.357_81, -79.506_59), (403_578, -795_066));
    }

    #[test]
    fn wire_period_variants() {
        let p: WirePeriod = serde_json::from_value(serde_json::json!({
            "number": 1, "name": "Today", "startTime": "2025-06-14T06:00:00-04:00",
            "endTime": "2025-06-14T18:00:00-04:00", "isDaytime": true,
            "temperature": {"unitCode": "wmoUnit:degF", "value": 74.6}, "temperatureUnit": "F",
            "windSpeed": {"unitCode": "wmoUnit:km_h-1", "value": 12.0}, "windDirection": "SW",
            "shortForecast": "Sunny", "detailedForecast": "Sunny.",
            "probabilityOfPrecipitation": {"unitCode": "wmoUnit:percent", "value": null}
        }))
        .expect("period");
        let p = Period::from(p);
        assert_eq!(p.temperature, Some(75));
        assert_eq!(p.wind_speed, "12 km/h");
        assert_eq!(p.probability_of_precipitation, None);
    }
}
