//! `weather` web actions: the NOAA forecast for a course (by id or name) or for explicit
//! coordinates, as a readable multi-day summary (one notification, or one per day) plus
//! the structured forecast; optionally the hourly forecast around a tee time.
//!
//! Payload: `{action: "weather", course?, latitude?, longitude?, days? (1–7), per_day?,
//! tee_time? ("2026-12-05T08:30" course-local, or RFC 3339)}`; operations `forecast`
//! (default) and `hourly` (needs `tee_time`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use rez_core::notify::NotifyPayload;
use rez_core::ports::WebActionHandler;
use rez_core::web_action::{WebActionError, WebActionOutput, WebActionRequest};
use serde_json::json;

use super::args;
use crate::golf::Courses;
use crate::weather::{WeatherClient, WeatherError, summarize, summarize_per_day};

pub struct WeatherAction {
    client: WeatherClient,
    courses: Arc<Courses>,
}

impl WeatherAction {
    pub fn new(client: WeatherClient, courses: Arc<Courses>) -> Self {
        Self { client, courses }
    }
}

fn map_err(e: WeatherError) -> WebActionError {
    if e.is_transient() { WebActionError::transient(e.to_string()) } else { WebActionError::permanent(e.to_string()) }
}

struct Place {
    name: String,
    latitude: f64,
    longitude: f64,
    tz: chrono_tz::Tz,
}

impl WeatherAction {
    fn place(&self, req: &WebActionRequest) -> Result<Place, WebActionError> {
        let p = &req.payload;
        if let Some(course) = args::string(p, "course", "payload.course")? {
            let c = self.courses.find(course).map_err(|e| WebActionError::permanent(e.to_string()))?;
            let tz = c.tz().map_err(|e| WebActionError::permanent(e.to_string()))?;
            return Ok(Place { name: c.name.clone(), latitude: c.latitude, longitude: c.longitude, tz });
        }
        let lat = args::number(p, "latitude", "payload.latitude")?;
        let lon = args::number(p, "longitude", "payload.longitude")?;
        match (lat, lon) {
            (Some(la), Some(lo)) if (-90.0..=90.0).contains(&la) && (-180.0..=180.0).contains(&lo) => {
                Ok(Place { name: format!("{la:.4}, {lo:.4}"), latitude: la, longitude: lo, tz: chrono_tz::UTC })
            }
            (Some(_), Some(_)) => Err(WebActionError::permanent("payload.latitude/longitude are out of range")),
            _ => Err(WebActionError::permanent("give payload.course, or payload.latitude and payload.longitude")),
        }
    }

    fn tee_time(
        &self,
        req: &WebActionRequest,
        tz: chrono_tz::Tz,
    ) -> Result<Option<DateTime<FixedOffset>>, WebActionError> {
        let Some(raw) = args::string(&req.payload, "tee_time", "payload.tee_time")? else { return Ok(None) };
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Ok(Some(t));
        }
        let local = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| WebActionError::permanent("payload.tee_time must look like 2026-12-05T08:30"))?;
        let t = tz
            .from_local_datetime(&local)
            .earliest()
            .ok_or_else(|| WebActionError::permanent("payload.tee_time does not exist in the course's time zone"))?;
        Ok(Some(t.fixed_offset()))
    }
}

#[async_trait]
impl WebActionHandler for WeatherAction {
    fn action(&self) -> &'static str {
        "weather"
    }

    fn operations(&self) -> &'static [&'static str] {
        &["forecast", "hourly"]
    }

    async fn execute(&self, req: &WebActionRequest) -> Result<WebActionOutput, WebActionError> {
        let place = self.place(req)?;
        let days = args::integer(&req.payload, "days", "payload.days", 1..=7)?.map(|d| d as usize);
        let per_day = args::boolean(&req.payload, "per_day", "payload.per_day")?.unwrap_or(false);
        let tee_time = self.tee_time(req, place.tz)?;
        let title = format!("Weather: {}", place.name);
        let hourly = match tee_time {
            Some(t) => {
                Some(self.client.hourly_around(place.latitude, place.longitude, &t, 2, 3).await.map_err(map_err)?)
            }
            None => None,
        };
        let hourly_text = hourly.as_ref().map(|periods| {
            let mut s = String::from("Around the tee time:");
            for p in periods {
                let temp = p.temperature.map(|t| format!("{t}°{}", p.temperature_unit)).unwrap_or_default();
                s.push_str(&format!(
                    "\n{}  {temp}, {}, wind {} {}",
                    p.start_time.format("%-I %p"),
                    p.short_forecast,
                    p.wind_speed,
                    p.wind_direction
                ));
            }
            s
        });
        if req.operation.as_deref() == Some("hourly") {
            let text =
                hourly_text.ok_or_else(|| WebActionError::permanent("the hourly operation needs payload.tee_time"))?;
            return Ok(WebActionOutput {
                output: json!({"location": {"name": place.name, "latitude": place.latitude, "longitude": place.longitude}, "hourly": hourly}),
                notifications: vec![NotifyPayload {
                    title: Some(title),
                    tags: vec!["partly_sunny".into()],
                    ..NotifyPayload::text(text)
                }],
                response_code: Some(200),
                response_body: None,
            });
        }
        let forecast = self.client.forecast(place.latitude, place.longitude).await.map_err(map_err)?;
        let summary = summarize(&forecast, days);
        let mut notifications = Vec::new();
        if per_day {
            for (day, body) in summarize_per_day(&forecast, days) {
                notifications
                    .push(NotifyPayload { title: Some(format!("{title} — {day}")), ..NotifyPayload::text(body) });
            }
        } else {
            let mut text = summary.clone();
            if let Some(h) = &hourly_text {
                text.push_str("\n\n");
                text.push_str(h);
            }
            notifications.push(NotifyPayload {
                title: Some(title),
                tags: vec!["partly_sunny".into()],
                ..NotifyPayload::text(text)
            });
        }
        for n in &mut notifications {
            if n.message.len() > rez_core::notify::MAX_MESSAGE_BYTES {
                n.message = rez_core::web_action::cap_body(&n.message)
                    .chars()
                    .take(rez_core::notify::MAX_MESSAGE_BYTES / 4)
                    .collect();
            }
        }
        Ok(WebActionOutput {
            output: json!({
                "location": {"name": place.name, "latitude": place.latitude, "longitude": place.longitude},
                "forecast": forecast,
                "summary": summary,
                "hourly": hourly,
            }),
            notifications,
            response_code: Some(200),
            response_body: None,
        })
    }
}
