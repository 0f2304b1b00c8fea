//! The weather and golf tools: each builds a `web_action` message (SPEC §6) — never with a
//! URL; courses are named by id and resolved by the handler from configuration — submits
//! it through intake and waits for the web-action worker's result. Booking is exactly
//! once: the message carries an idempotency key derived from the booking's arguments, so
//! a repeated call returns the first message (and its booking) instead of a new one, and
//! the handler books at most once per message.

use chrono::{NaiveDate, NaiveTime};
use rez_core::message::{IdempotencyKey, Message, MessageType, NewMessage};
use rez_core::web_action::{ResultStatus, WebActionResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::schema::parse_args;
use super::wait::{Settled, pending_text};
use super::{ToolResult, Tools};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetWeatherForecast {
    /// A course id or name from list_courses, e.g. "birdsfoot". Give this, or latitude and longitude.
    #[serde(default)]
    course: Option<String>,
    /// Latitude in degrees (-90..90), with longitude, instead of a course.
    #[serde(default)]
    latitude: Option<f64>,
    /// Longitude in degrees (-180..180), with latitude, instead of a course.
    #[serde(default)]
    longitude: Option<f64>,
    /// How many days of forecast, 1–7 (default 2).
    #[serde(default)]
    #[schemars(range(min = 1, max = 7))]
    days: Option<u8>,
    /// Also forecast hour by hour around this tee time: course-local "2026-12-05T08:30", or RFC 3339.
    #[serde(default)]
    tee_time: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GolfSearchTeeTimes {
    /// A course id or name from list_courses.
    course: String,
    /// The day to play, YYYY-MM-DD (course-local).
    date: String,
    /// Earliest start, HH:MM in 24-hour course-local time (optional).
    #[serde(default)]
    window_start: Option<String>,
    /// Latest start, HH:MM in 24-hour course-local time (optional).
    #[serde(default)]
    window_end: Option<String>,
    /// Number of golfers, 1–4 (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 4))]
    players: Option<u8>,
    /// 9 or 18 holes (default 18).
    #[serde(default)]
    #[schemars(range(min = 9, max = 18))]
    holes: Option<u8>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GolfBookTeeTime {
    /// A course id or name from list_courses.
    course: String,
    /// The tee_sheet_id of a tee time from golf_search_tee_times.
    #[schemars(range(min = 1))]
    tee_sheet_id: i64,
    /// Number of golfers, 1–4.
    #[schemars(range(min = 1, max = 4))]
    players: u8,
    /// 9 or 18 holes (default 18).
    #[serde(default)]
    #[schemars(range(min = 9, max = 18))]
    holes: Option<u8>,
    /// Optional. A repeat of this call within 24 h returns the first booking; a new key books again.
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GolfGetReservations {
    /// A course id or name from list_courses.
    course: String,
}

/// The structured result of a weather or golf tool.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WebActionOutput {
    /// The `web_action` message recording this call.
    message_id: String,
    /// completed, or queued/processing/failed (retrying) if it was still running when the tool answered.
    status: String,
    /// Whether the action finished; when false, ask get_message_status later.
    done: bool,
    /// What the action produced (forecast, tee_times, reservations or confirmation); null while running.
    output: Value,
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Map<String, Value> {
    pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect()
}

fn check_course(course: &str) -> Result<(), ToolResult> {
    if course.trim().is_empty() || course.len() > 128 {
        return Err(ToolResult::error("course: give a course id or name from list_courses"));
    }
    Ok(())
}

fn check_date(date: &str) -> Result<(), ToolResult> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| ToolResult::error(format!("date: `{date}` is not a date like 2026-12-05 (YYYY-MM-DD)")))
}

fn check_time(field: &str, value: &Option<String>) -> Result<Option<NaiveTime>, ToolResult> {
    value
        .as_deref()
        .map(|t| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| ToolResult::error(format!("{field}: `{t}` is not a 24-hour time like 08:30 (HH:MM)")))
        })
        .transpose()
}

fn check_players(players: u8) -> Result<(), ToolResult> {
    if (1..=4).contains(&players) {
        Ok(())
    } else {
        Err(ToolResult::error(format!("players: must be 1–4 (got {players})")))
    }
}

fn check_holes(holes: Option<u8>) -> Result<(), ToolResult> {
    match holes {
        None | Some(9) | Some(18) => Ok(()),
        Some(h) => Err(ToolResult::error(format!("holes: must be 9 or 18 (got {h})"))),
    }
}

/// The idempotency key of a booking: a digest of everything that makes it this booking.
fn booking_key(input: &GolfBookTeeTime) -> Result<IdempotencyKey, ToolResult> {
    let canonical = json!({
        "course": input.course.trim().to_lowercase(),
        "tee_sheet_id": input.tee_sheet_id,
        "players": input.players,
        "holes": input.holes.unwrap_or(18),
        "key": input.idempotency_key,
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    IdempotencyKey::parse(&format!("mcp-book-{hex}")).map_err(|e| ToolResult::error(e.message))
}

impl Tools<'_> {
    fn web_action(&self, payload: Map<String, Value>, arguments: Map<String, Value>) -> NewMessage {
        NewMessage {
            message_type: MessageType::WebAction,
            stage: self.services.stage,
            payload,
            arguments,
            idempotency_key: None,
        }
    }

    pub(crate) async fn get_weather_forecast(&self, args: Map<String, Value>) -> ToolResult {
        let input: GetWeatherForecast = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let place: Vec<(&str, Option<Value>)> = match (&input.course, input.latitude, input.longitude) {
            (Some(c), None, None) => {
                if let Err(r) = check_course(c) {
                    return r;
                }
                vec![("course", Some(Value::String(c.clone())))]
            }
            (None, Some(la), Some(lo)) => {
                if !(-90.0..=90.0).contains(&la) || !(-180.0..=180.0).contains(&lo) {
                    return ToolResult::error("latitude must be -90..90 and longitude -180..180");
                }
                vec![("latitude", Some(json!(la))), ("longitude", Some(json!(lo)))]
            }
            (Some(_), _, _) => return ToolResult::error("give either course, or latitude and longitude, not both"),
            (None, _, _) => return ToolResult::error("give a course (see list_courses), or latitude and longitude"),
        };
        if let Some(d) = input.days
            && !(1..=7).contains(&d)
        {
            return ToolResult::error(format!("days: must be 1–7 (got {d})"));
        }
        let mut pairs = vec![("action", Some(Value::String("weather".into())))];
        pairs.extend(place);
        pairs.push(("days", input.days.map(|d| json!(d))));
        pairs.push(("tee_time", input.tee_time.map(Value::String)));
        let new = self.web_action(object(pairs), Map::new());
        self.run_web_action(new).await
    }

    pub(crate) async fn golf_search_tee_times(&self, args: Map<String, Value>) -> ToolResult {
        let input: GolfSearchTeeTimes = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let checks = || -> Result<(), ToolResult> {
            check_course(&input.course)?;
            check_date(&input.date)?;
            let start = check_time("window_start", &input.window_start)?;
            let end = check_time("window_end", &input.window_end)?;
            if let (Some(s), Some(e)) = (start, end)
                && e < s
            {
                return Err(ToolResult::error("window_end is before window_start"));
            }
            check_players(input.players.unwrap_or(1))?;
            check_holes(input.holes)
        };
        if let Err(r) = checks() {
            return r;
        }
        let payload = object(vec![
            ("action", Some(Value::String("golf".into()))),
            ("course", Some(Value::String(input.course.clone()))),
        ]);
        let arguments = object(vec![
            ("operation", Some(Value::String("search_tee_times".into()))),
            ("date", Some(Value::String(input.date.clone()))),
            ("window_start", input.window_start.clone().map(Value::String)),
            ("window_end", input.window_end.clone().map(Value::String)),
            ("players", Some(json!(input.players.unwrap_or(1)))),
            ("holes", input.holes.map(|h| json!(h))),
        ]);
        self.run_web_action(self.web_action(payload, arguments)).await
    }

    pub(crate) async fn golf_book_tee_time(&self, args: Map<String, Value>) -> ToolResult {
        let input: GolfBookTeeTime = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let checks = || -> Result<IdempotencyKey, ToolResult> {
            check_course(&input.course)?;
            if input.tee_sheet_id < 1 {
                return Err(ToolResult::error("tee_sheet_id: use a tee_sheet_id from golf_search_tee_times"));
            }
            check_players(input.players)?;
            check_holes(input.holes)?;
            if let Some(k) = &input.idempotency_key
                && (k.is_empty() || k.len() > 128)
            {
                return Err(ToolResult::error("idempotency_key: must be 1–128 characters"));
            }
            booking_key(&input)
        };
        let key = match checks() {
            Ok(k) => k,
            Err(r) => return r,
        };
        let payload = object(vec![
            ("action", Some(Value::String("golf".into()))),
            ("course", Some(Value::String(input.course.clone()))),
        ]);
        let arguments = object(vec![
            ("operation", Some(Value::String("book_tee_time".into()))),
            ("tee_sheet_id", Some(json!(input.tee_sheet_id))),
            ("players", Some(json!(input.players))),
            ("holes", input.holes.map(|h| json!(h))),
        ]);
        let mut new = self.web_action(payload, arguments);
        new.idempotency_key = Some(key);
        self.run_web_action(new).await
    }

    pub(crate) async fn golf_get_reservations(&self, args: Map<String, Value>) -> ToolResult {
        let input: GolfGetReservations = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        if let Err(r) = check_course(&input.course) {
            return r;
        }
        let payload =
            object(vec![("action", Some(Value::String("golf".into()))), ("course", Some(Value::String(input.course)))]);
        let arguments = object(vec![("operation", Some(Value::String("fetch_reservations".into())))]);
        self.run_web_action(self.web_action(payload, arguments)).await
    }

    async fn run_web_action(&self, new: NewMessage) -> ToolResult {
        let settled = match self.submit_and_wait(new, self.options.wait).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        match settled {
            Settled::Completed { message, results } => match final_result(&results) {
                Some(r) if r.status == ResultStatus::Success => {
                    let text = describe(r);
                    let out = WebActionOutput {
                        message_id: message.id.to_string(),
                        status: message.status.to_string(),
                        done: true,
                        output: r.output.clone(),
                    };
                    ToolResult::ok(out, text, Some(message.id))
                }
                Some(r) => {
                    let why = r.error_message.clone().unwrap_or_else(|| "refused".into());
                    ToolResult::error_for(message.id.clone(), format!("Not done (message {}): {why}", message.id))
                }
                None => ToolResult::error_for(
                    message.id.clone(),
                    format!("Message {} completed without a result; see get_message_status.", message.id),
                ),
            },
            Settled::Failed { message, results } => {
                let why = final_result(&results)
                    .and_then(|r| r.error_message.clone())
                    .or_else(|| message.error_message.clone())
                    .unwrap_or_else(|| "no reason recorded".into());
                ToolResult::error_for(message.id.clone(), format!("Failed (message {}): {why}", message.id))
            }
            Settled::Pending { message, picked_up } => pending(&message, picked_up),
        }
    }
}

fn pending(message: &Message, picked_up: bool) -> ToolResult {
    let out = WebActionOutput {
        message_id: message.id.to_string(),
        status: message.status.to_string(),
        done: false,
        output: Value::Null,
    };
    ToolResult::ok(out, pending_text(message, picked_up), Some(message.id.clone()))
}

/// The result that decided the message: a success or conflict if there is one, else the
/// latest attempt.
fn final_result(results: &[WebActionResult]) -> Option<&WebActionResult> {
    results
        .iter()
        .rev()
        .find(|r| matches!(r.status, ResultStatus::Success | ResultStatus::Conflict))
        .or_else(|| results.last())
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn money(v: &Value) -> Option<String> {
    v.as_f64().map(|p| format!("${p:.2}"))
}

/// Readable text of a successful web action, from its structured output.
fn describe(r: &WebActionResult) -> String {
    let o = &r.output;
    match (r.action.as_str(), r.operation.as_str()) {
        ("weather", _) => {
            let place = o.get("location").and_then(|l| str_of(l, "name")).unwrap_or("the location");
            let mut text = format!("Weather for {place}:\n");
            if let Some(s) = str_of(o, "summary") {
                text.push_str(s);
            }
            if let Some(hours) = o.get("hourly").and_then(Value::as_array) {
                text.push_str("\n\nAround the tee time:");
                for h in hours {
                    let temp = h.get("temperature").map(|t| t.to_string()).unwrap_or_default();
                    let unit = str_of(h, "temperature_unit").unwrap_or("");
                    text.push_str(&format!(
                        "\n{}  {temp}°{unit}, {}",
                        str_of(h, "start_time").unwrap_or("?"),
                        str_of(h, "short_forecast").unwrap_or("")
                    ));
                }
            }
            text
        }
        ("golf", "search_tee_times") => {
            let slots = o.get("tee_times").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if slots.is_empty() {
                return "No tee times are available in that window.".into();
            }
            let mut text = format!("{} tee time(s):", slots.len());
            for s in slots {
                let price = s.get("price").and_then(money).map(|p| format!(", {p}")).unwrap_or_default();
                text.push_str(&format!(
                    "\n- {} — tee_sheet_id {}, up to {} players{price}",
                    str_of(s, "start_time").unwrap_or("?"),
                    s.get("tee_sheet_id").map(Value::to_string).unwrap_or_default(),
                    s.get("max_players").map(Value::to_string).unwrap_or_else(|| "?".into()),
                ));
            }
            text
        }
        ("golf", "fetch_reservations") => {
            let items = o.get("reservations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                return "No upcoming reservations.".into();
            }
            let mut text = format!("{} upcoming reservation(s):", items.len());
            for r in items {
                let players = r.get("players").filter(|p| !p.is_null()).map(|p| format!(", {p} players"));
                let key = str_of(r, "confirmation_key").map(|k| format!(" (confirmation {k})"));
                text.push_str(&format!(
                    "\n- {} at {}{}{}",
                    str_of(r, "start_time").unwrap_or("?"),
                    str_of(r, "course_name").unwrap_or("?"),
                    players.unwrap_or_default(),
                    key.unwrap_or_default()
                ));
            }
            text
        }
        ("golf", _) => {
            let Some(c) = o.get("confirmation") else { return "Done.".into() };
            let total = c.get("total").and_then(money).map(|t| format!(" Total {t}.")).unwrap_or_default();
            format!(
                "Booked {} at {} for {} players, {} holes. Confirmation {}.{total}",
                str_of(c, "course_name").unwrap_or("the course"),
                str_of(c, "start_time").unwrap_or("?"),
                c.get("players").map(Value::to_string).unwrap_or_else(|| "?".into()),
                c.get("holes").map(Value::to_string).unwrap_or_else(|| "?".into()),
                str_of(c, "confirmation_key").unwrap_or("?"),
            )
        }
        _ => "Done.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(key: Option<&str>, players: u8) -> GolfBookTeeTime {
        GolfBookTeeTime {
            course: "Birdsfoot".into(),
            tee_sheet_id: 502,
            players,
            holes: None,
            idempotency_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn booking_keys_follow_the_arguments() {
        let k = |b: &GolfBookTeeTime| booking_key(b).map(|k| k.as_str().to_owned()).unwrap_or_default();
        assert_eq!(k(&book(None, 4)), k(&book(None, 4)), "a repeated call is the same booking");
        assert_eq!(k(&book(Some("a"), 4)), k(&book(Some("a"), 4)));
        assert_ne!(k(&book(None, 4)), k(&book(None, 3)), "other players: another booking");
        assert_ne!(k(&book(Some("a"), 4)), k(&book(Some("b"), 4)), "a new key books again");
        let mut upper = book(None, 4);
        upper.course = " birdsfoot ".into();
        let mut lower = book(None, 4);
        lower.course = "birdsfoot".into();
        assert_eq!(k(&upper), k(&lower));
        assert!(k(&book(None, 4)).starts_with("mcp-book-"));
    }
}
