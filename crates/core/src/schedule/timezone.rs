//! The time zone a schedule is evaluated in, and the rules that map its wall clock to
//! instants.
//!
//! Cron and `at` expressions are written in local wall-clock time, but the engine fires at
//! UTC instants. Around daylight-saving transitions a wall-clock time can be missing (the
//! spring-forward gap) or happen twice (the fall-back overlap); the two mapping rules of
//! EventBridge Scheduler are implemented here once, so every caller agrees:
//!
//! * [`Timezone::first_instant`] — cron: a missing local time has no instant (the slot is
//!   skipped) and a repeated one maps to its first (earlier) occurrence;
//! * [`Timezone::instant_shifting_gaps`] — `at`: a missing local time is moved forward by
//!   the length of the gap (02:30 in a 02:00→03:00 gap fires at 03:30), a repeated one maps
//!   to its first occurrence.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ValidationError;

/// An IANA time zone (`Europe/London`, `America/New_York`, `UTC`, ...). Defaults to UTC.
/// Serialises as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timezone(Tz);

/// Why a time zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TimezoneError {
    /// What is wrong and what is expected.
    pub message: String,
}

impl From<TimezoneError> for ValidationError {
    fn from(e: TimezoneError) -> Self {
        ValidationError::new("invalid_timezone", "timezone", e.message)
    }
}

impl Default for Timezone {
    fn default() -> Self {
        Self::UTC
    }
}

impl From<Tz> for Timezone {
    fn from(tz: Tz) -> Self {
        Self(tz)
    }
}

impl Timezone {
    /// `UTC`, the default zone of a schedule.
    pub const UTC: Timezone = Timezone(Tz::UTC);

    /// Parses an IANA name exactly as written (names are case-sensitive, like on AWS). An
    /// unknown name that differs from a known one only by case gets a "did you mean".
    pub fn parse(name: &str) -> Result<Self, TimezoneError> {
        if name.is_empty() {
            return Err(TimezoneError {
                message: "time zone must not be empty: use an IANA name such as `UTC` or `Europe/London`".into(),
            });
        }
        if let Ok(tz) = Tz::from_str(name) {
            return Ok(Self(tz));
        }
        let shown: String = name.chars().take(64).collect();
        let suggestion = chrono_tz::TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(name));
        let message = match suggestion {
            Some(tz) => format!("unknown time zone `{shown}`: did you mean `{}`?", tz.name()),
            None => format!(
                "unknown time zone `{shown}`: expected an IANA name such as `UTC`, `Europe/London` or `America/New_York`"
            ),
        };
        Err(TimezoneError { message })
    }

    /// The IANA name, e.g. `Europe/London`.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The underlying `chrono_tz` zone.
    pub fn tz(self) -> Tz {
        self.0
    }

    /// The local wall-clock time of an instant. `None` only if the local time is outside
    /// chrono's representable range.
    pub fn local_time(self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        let utc = t.naive_utc();
        let offset = self.0.offset_from_utc_datetime(&utc).fix().local_minus_utc();
        utc.checked_add_signed(TimeDelta::seconds(i64::from(offset)))
    }

    /// Cron rule: the instant at which this local time happens, the *earlier* one if it
    /// happens twice (fall back), `None` if it does not exist (spring-forward gap).
    pub fn first_instant(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => None,
        }
    }

    /// `at` rule: like [`Timezone::first_instant`], except that a local time inside a
    /// spring-forward gap is read with the offset in force *before* the gap, which moves it
    /// forward by the length of the gap (02:30 in a 02:00→03:00 gap becomes 03:30 after the
    /// gap). A one-off schedule therefore always fires, just after the gap.
    pub fn instant_shifting_gaps(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        if let Some(t) = self.first_instant(local) {
            return Some(t);
        }
        // The transition instant T satisfies T > local - offset_after >= local - 14h, so
        // 15 hours before `local` (read as UTC) is before the transition: its offset is the
        // one in force before the gap (no zone has two transitions within a day).
        let probe = local.checked_sub_signed(TimeDelta::hours(15))?;
        let before = self.0.offset_from_utc_datetime(&probe).fix().local_minus_utc();
        let shifted = local.checked_sub_signed(TimeDelta::seconds(i64::from(before)))?.and_utc();
        match self.local_time(shifted) {
            Some(after_gap) if after_gap > local && self.first_instant(after_gap) == Some(shifted) => Some(shifted),
            // Unreachable with real zone data; fall back to the end of the gap.
            _ => (1..=48 * 60).find_map(|m| self.first_instant(local.checked_add_signed(TimeDelta::minutes(m))?)),
        }
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Timezone {
    type Err = TimezoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timezone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tz(name: &str) -> Timezone {
        Timezone::parse(name).unwrap()
    }

    #[test]
    fn parses_iana_names_and_defaults_to_utc() {
        assert_eq!(Timezone::default(), Timezone::UTC);
        assert_eq!(Timezone::default().name(), "UTC");
        for name in ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Etc/UTC"] {
            assert_eq!(tz(name).name(), name);
            assert_eq!(name.parse::<Timezone>().unwrap().to_string(), name);
        }
        assert_eq!(tz("Europe/London").tz(), Tz::Europe__London);
        assert_eq!(Timezone::from(Tz::Asia__Tokyo).name(), "Asia/Tokyo");
    }

    #[test]
    fn refuses_unknown_names_with_a_hint() {
        let e = Timezone::parse("").unwrap_err();
        assert!(e.message.contains("must not be empty"));
        let e = Timezone::parse("Mars/Olympus_Mons").unwrap_err();
        assert!(e.message.contains("unknown time zone `Mars/Olympus_Mons`"), "{e}");
        let e = Timezone::parse("america/new_york").unwrap_err();
        assert!(e.message.contains("did you mean `America/New_York`?"), "{e}");
        let e = Timezone::parse("utc").unwrap_err();
        assert!(e.message.contains("did you mean `UTC`?"), "{e}");
        assert!(Timezone::parse(" UTC").is_err());
        assert!(Timezone::parse("+01:00").is_err());
        let long = "x".repeat(10_000);
        assert!(Timezone::parse(&long).unwrap_err().message.len() < 300);
        let v: ValidationError = Timezone::parse("Nowhere").unwrap_err().into();
        assert_eq!((v.code, v.field.as_str()), ("invalid_timezone", "timezone"));
    }

    #[test]
    fn serde_as_the_name() {
        let json = serde_json::to_string(&tz("Europe/London")).unwrap();
        assert_eq!(json, "\"Europe/London\"");
        let back: Timezone = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tz("Europe/London"));
        assert!(serde_json::from_str::<Timezone>("\"Nowhere/Land\"").is_err());
        assert!(serde_json::from_str::<Timezone>("3").is_err());
    }

    #[test]
    fn local_time_of_an_instant() {
        let ny = tz("America/New_York");
        assert_eq!(ny.local_time(utc("2026-07-01T16:00:00Z")), Some(local(2026, 7, 1, 12, 0)));
        assert_eq!(ny.local_time(utc("2026-01-01T17:00:00Z")), Some(local(2026, 1, 1, 12, 0)));
        assert_eq!(tz("Asia/Kathmandu").local_time(utc("2026-01-01T00:00:00Z")), Some(local(2026, 1, 1, 5, 45)));
        // Extreme instants do not panic.
        let _ = tz("Pacific/Kiritimati").local_time(DateTime::<Utc>::MAX_UTC);
        let _ = tz("Pacific/Pago_Pago").local_time(DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn first_instant_new_york() {
        let ny = tz("America/New_York");
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist.
        assert_eq!(ny.first_instant(local(2026, 3, 8, 1, 59)), Some(utc("2026-03-08T06:59:00Z")));
        assert_eq!(ny.first_instant(local(2026, 3, 8, 2, 0)), None);
        assert_eq!(ny.first_instant(local(2026, 3, 8, 2, 30)), None);
        assert_eq!(ny.first_instant(local(2026, 3, 8, 3, 0)), Some(utc("2026-03-08T07:00:00Z")));
        // Fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice; the first wins.
        assert_eq!(ny.first_instant(local(2026, 11, 1, 1, 30)), Some(utc("2026-11-01T05:30:00Z")));
        assert_eq!(ny.first_instant(local(2026, 11, 1, 2, 0)), Some(utc("2026-11-01T07:00:00Z")));
    }

    #[test]
    fn gap_shift_for_at() {
        let ny = tz("America/New_York");
        assert_eq!(ny.instant_shifting_gaps(local(2026, 3, 8, 2, 30)), Some(utc("2026-03-08T07:30:00Z")));
        assert_eq!(ny.instant_shifting_gaps(local(2026, 3, 8, 2, 0)), Some(utc("2026-03-08T07:00:00Z")));
        assert_eq!(ny.instant_shifting_gaps(local(2026, 11, 1, 1, 30)), Some(utc("2026-11-01T05:30:00Z")));
        assert_eq!(ny.instant_shifting_gaps(local(2026, 7, 1, 12, 0)), Some(utc("2026-07-01T16:00:00Z")));
        // Lord Howe: a 30-minute gap, 02:00 -> 02:30 (+10:30 -> +11:00) on 2026-10-04.
        let lh = tz("Australia/Lord_Howe");
        assert_eq!(lh.first_instant(local(2026, 10, 4, 2, 15)), None);
        assert_eq!(lh.instant_shifting_gaps(local(2026, 10, 4, 2, 15)), Some(utc("2026-10-03T15:45:00Z")));
        assert_eq!(lh.local_time(utc("2026-10-03T15:45:00Z")), Some(local(2026, 10, 4, 2, 45)));
        // Samoa skipped 2011-12-30 entirely (-10 -> +14): a 24-hour gap.
        let apia = tz("Pacific/Apia");
        assert_eq!(apia.first_instant(local(2011, 12, 30, 12, 0)), None);
        let t = apia.instant_shifting_gaps(local(2011, 12, 30, 12, 0)).unwrap();
        assert_eq!(apia.local_time(t), Some(local(2011, 12, 31, 12, 0)));
    }
}
