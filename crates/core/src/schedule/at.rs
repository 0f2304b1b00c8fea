//! `at(yyyy-mm-ddThh:mm:ss)` — a one-off schedule at a local wall-clock time.
//!
//! The time is read in the schedule's time zone; an offset or `Z` is refused (AWS refuses
//! them too), as are fractional seconds. The shape is checked character by character so
//! the error points at the first wrong one, and impossible dates (`2026-02-30`) are refused
//! with the reason.
//!
//! DST (see `timezone.rs`): a time inside a spring-forward gap fires just after the gap,
//! shifted forward by the gap's length (02:30 in New York on 2026-03-08 fires at 03:30
//! EDT); a time that happens twice fires at its first occurrence. Start and end dates do
//! not apply to one-off schedules (EventBridge Scheduler ignores them for `at`).

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use super::ScheduleKind;
use super::error::ExpressionError;
use super::syntax::call_body;
use super::timezone::Timezone;

/// A parsed `at(...)` expression: a local date and time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct At {
    local: NaiveDateTime,
}

const SHAPE: &[u8; 19] = b"dddd-dd-ddTdd:dd:dd";

impl At {
    /// A one-off at this local time; sub-second precision is dropped.
    pub fn new(local: NaiveDateTime) -> Self {
        Self { local: local.with_nanosecond(0).unwrap_or(local) }
    }

    /// Parses a full `at(...)` expression. Error positions are character offsets into
    /// `input`.
    pub fn parse(input: &str) -> Result<Self, ExpressionError> {
        Self::parse_bytes(input).map_err(|e| e.in_chars(input))
    }

    /// Same as [`At::parse`] with byte positions in the error.
    pub(super) fn parse_bytes(input: &str) -> Result<Self, ExpressionError> {
        let kind = Some(ScheduleKind::At);
        let (body, base) = call_body(input, "at", ScheduleKind::At)?;
        let expected = "expected `yyyy-mm-ddThh:mm:ss`, e.g. `at(2026-12-24T18:30:00)`";
        let shape_err = |i: usize, msg: String| ExpressionError::at(base + i, kind, Some("date-time"), msg);
        let bytes = body.as_bytes();
        for (i, want) in SHAPE.iter().enumerate() {
            let Some(got) = bytes.get(i) else {
                return Err(shape_err(i, format!("incomplete date-time: {expected}")));
            };
            let fine = if *want == b'd' { got.is_ascii_digit() } else { got == want };
            if !fine {
                let what = match *want {
                    b'd' => "a digit".to_owned(),
                    b'T' => "`T` between the date and the time".to_owned(),
                    other => format!("`{}`", other as char),
                };
                let shown = body[i..].chars().next().map(|c| format!("`{c}`")).unwrap_or_default();
                return Err(shape_err(i, format!("found {shown} where {what} was expected: {expected}")));
            }
        }
        if let Some(&next) = bytes.get(SHAPE.len()) {
            let msg = match next {
                b'Z' | b'z' | b'+' | b'-' => {
                    "a UTC offset or `Z` is not allowed: the time is local to the schedule's time zone".to_owned()
                }
                b'.' | b',' => "fractional seconds are not allowed".to_owned(),
                _ => format!("unexpected text after the seconds: {expected}"),
            };
            return Err(shape_err(SHAPE.len(), msg));
        }

        // The shape is all ASCII digits where numbers are, so these parse.
        let num = |from: usize, to: usize| body[from..to].parse::<u32>().unwrap_or(u32::MAX);
        let year = i32::try_from(num(0, 4)).unwrap_or(i32::MAX);
        let (month, day, hour, minute, second) = (num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19));
        let date_err = |i: usize, msg: String| ExpressionError::at(base + i, kind, Some("date"), msg);
        let time_err = |i: usize, msg: String| ExpressionError::at(base + i, kind, Some("time"), msg);
        if !(1..=12).contains(&month) {
            return Err(date_err(5, format!("month {month:02} is out of range 01-12")));
        }
        let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
            let first = NaiveDate::from_ymd_opt(year, month, 1).map(|d| d.format("%B %Y").to_string());
            return Err(date_err(
                8,
                match first {
                    Some(month_name) if day != 0 => format!("day {day:02} does not exist in {month_name}"),
                    _ => format!("day {day:02} is out of range"),
                },
            ));
        };
        if hour > 23 {
            return Err(time_err(11, format!("hour {hour:02} is out of range 00-23")));
        }
        if minute > 59 {
            return Err(time_err(14, format!("minute {minute:02} is out of range 00-59")));
        }
        if second > 59 {
            return Err(time_err(17, format!("second {second:02} is out of range 00-59")));
        }
        let Some(time) = NaiveTime::from_hms_opt(hour, minute, second) else {
            return Err(time_err(11, "invalid time".to_owned()));
        };
        Ok(Self { local: date.and_time(time) })
    }

    /// The local wall-clock time.
    pub fn local(self) -> NaiveDateTime {
        self.local
    }

    /// The instant this fires at in `tz`: the first occurrence of an ambiguous time, the
    /// time shifted past the gap for a missing one.
    pub fn instant(self, tz: Timezone) -> Option<DateTime<Utc>> {
        tz.instant_shifting_gaps(self.local)
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at({})", self.local.format("%Y-%m-%dT%H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> At {
        At::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> ExpressionError {
        match At::parse(s) {
            Ok(a) => panic!("{s} parsed as {a:?}"),
            Err(e) => e,
        }
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn valid() {
        assert_eq!(ok("at(2026-12-24T18:30:05)").local(), local(2026, 12, 24, 18, 30, 5));
        assert_eq!(ok("at(2028-02-29T00:00:00)").local(), local(2028, 2, 29, 0, 0, 0));
        assert_eq!(ok("at(2026-01-01T23:59:59)").local(), local(2026, 1, 1, 23, 59, 59));
        assert_eq!(ok("at(1970-01-01T00:00:00)").local(), local(1970, 1, 1, 0, 0, 0));
        for s in ["at(2026-12-24T18:30:05)", "at(0999-01-01T00:00:00)", "at(9999-12-31T23:59:59)"] {
            assert_eq!(ok(s).to_string(), s);
        }
    }

    #[test]
    fn offsets_and_fractions_are_refused() {
        for (s, pos) in [
            ("at(2026-12-24T18:30:00Z)", 22),
            ("at(2026-12-24T18:30:00+01:00)", 22),
            ("at(2026-12-24T18:30:00-05:00)", 22),
            ("at(2026-12-24T18:30:00z)", 22),
        ] {
            let e = bad(s);
            assert_eq!((e.field, e.position), (Some("date-time"), pos), "{s}");
            assert!(e.message.contains("UTC offset"), "{s}: {e}");
        }
        assert!(bad("at(2026-12-24T18:30:00.000)").message.contains("fractional seconds"));
        assert!(bad("at(2026-12-24T18:30:00 )").message.contains("unexpected text"));
    }

    #[test]
    fn impossible_dates_and_times() {
        let e = bad("at(2026-02-30T10:00:00)");
        assert_eq!((e.field, e.position), (Some("date"), 11));
        assert_eq!(e.to_string(), "at date field at column 12: day 30 does not exist in February 2026");
        assert!(bad("at(2027-02-29T10:00:00)").message.contains("day 29 does not exist in February 2027"));
        assert!(bad("at(2100-02-29T10:00:00)").message.contains("February 2100"));
        assert!(bad("at(2026-04-31T10:00:00)").message.contains("April 2026"));
        assert!(bad("at(2026-04-00T10:00:00)").message.contains("day 00 is out of range"));
        let e = bad("at(2026-13-01T10:00:00)");
        assert_eq!((e.field, e.position), (Some("date"), 8));
        assert!(bad("at(2026-00-01T10:00:00)").message.contains("month 00"));
        let e = bad("at(2026-01-01T24:00:00)");
        assert_eq!((e.field, e.position), (Some("time"), 14));
        assert_eq!(bad("at(2026-01-01T23:60:00)").position, 17);
        let e = bad("at(2026-01-01T23:59:60)");
        assert_eq!((e.field, e.position), (Some("time"), 20));
    }

    #[test]
    fn shape_errors_point_at_the_first_wrong_character() {
        for (s, pos) in [
            ("at(2026-1-01T10:00:00)", 9),
            ("at(2026/01/01T10:00:00)", 7),
            ("at(2026-01-01 10:00:00)", 13),
            ("at(2026-01-01t10:00:00)", 13),
            ("at(2026-01-01T10:00)", 19),
            ("at(2026-01-01)", 13),
            ("at()", 3),
            ("at(26-01-01T10:00:00)", 5),
            ("at(２026-01-01T10:00:00)", 3),
        ] {
            let e = bad(s);
            assert_eq!((e.field, e.position), (Some("date-time"), pos), "{s}: {e}");
        }
        assert!(bad("at(2026-01-01 10:00:00)").message.contains("`T` between the date and the time"));
        assert_eq!(bad("at(2026-01-01T10:00:00").message, "missing closing `)`");
        assert_eq!(bad("AT(2026-01-01T10:00:00)").position, 0);
    }

    #[test]
    fn instants_in_zones() {
        let ny = Timezone::parse("America/New_York").unwrap();
        assert_eq!(ok("at(2026-07-04T12:00:00)").instant(ny), Some(utc("2026-07-04T16:00:00Z")));
        assert_eq!(ok("at(2026-07-04T12:00:00)").instant(Timezone::UTC), Some(utc("2026-07-04T12:00:00Z")));
        // In the spring-forward gap: shifted forward by the gap's length (02:30 -> 03:30 EDT).
        assert_eq!(ok("at(2026-03-08T02:30:00)").instant(ny), Some(utc("2026-03-08T07:30:00Z")));
        // Repeated by the fall back: the first occurrence (EDT).
        assert_eq!(ok("at(2026-11-01T01:30:00)").instant(ny), Some(utc("2026-11-01T05:30:00Z")));
        let lh = Timezone::parse("Australia/Lord_Howe").unwrap();
        assert_eq!(ok("at(2026-10-04T02:10:00)").instant(lh), Some(utc("2026-10-03T15:40:00Z")));
    }

    #[test]
    fn constructor_drops_sub_seconds() {
        let t = local(2026, 1, 1, 0, 0, 0).with_nanosecond(5).unwrap();
        assert_eq!(At::new(t).local(), local(2026, 1, 1, 0, 0, 0));
    }
}
