//! Reading typed fields out of a message's `payload`/`arguments`, with errors that name
//! the field.

use chrono::{NaiveDate, NaiveTime};
use rez_core::web_action::WebActionError;
use serde_json::{Map, Value};

pub fn string<'a>(m: &'a Map<String, Value>, name: &str, field: &str) -> Result<Option<&'a str>, WebActionError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(WebActionError::permanent(format!("{field} must be a string"))),
    }
}

pub fn number(m: &Map<String, Value>, name: &str, field: &str) -> Result<Option<f64>, WebActionError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| WebActionError::permanent(format!("{field} must be a number"))),
    }
}

pub fn integer(
    m: &Map<String, Value>,
    name: &str,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, WebActionError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                WebActionError::permanent(format!(
                    "{field} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

pub fn boolean(m: &Map<String, Value>, name: &str, field: &str) -> Result<Option<bool>, WebActionError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(WebActionError::permanent(format!("{field} must be true or false"))),
    }
}

pub fn date(m: &Map<String, Value>, name: &str, field: &str) -> Result<Option<NaiveDate>, WebActionError> {
    string(m, name, field)?
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| WebActionError::permanent(format!("{field} must be a date like 2026-12-05")))
        })
        .transpose()
}

pub fn time(m: &Map<String, Value>, name: &str, field: &str) -> Result<Option<NaiveTime>, WebActionError> {
    string(m, name, field)?
        .map(|s| {
            NaiveTime::parse_from_str(s, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
                .map_err(|_| WebActionError::permanent(format!("{field} must be a time like 08:30")))
        })
        .transpose()
}
