//! `rate(value unit)` — a fixed interval in absolute time.
//!
//! A rate schedule fires at `anchor + k × interval` (k = 0, 1, 2, ...), where the anchor is
//! the schedule's start date or, without one, its creation time. The interval is measured
//! in UTC, so `rate(1 day)` is 24 hours even across a DST change (as on AWS).
//!
//! Grammar, as on AWS: `value` is a positive integer; `unit` is `minute`, `hour` or `day`
//! for a value of 1 and `minutes`, `hours` or `days` for any other value (`rate(1 minutes)`
//! and `rate(5 minute)` are refused). Units are lower-case. Values are capped at
//! `u32::MAX`, which keeps every interval far inside chrono's range.

use std::fmt;

use chrono::TimeDelta;

use super::ScheduleKind;
use super::error::ExpressionError;
use super::syntax::{call_body, tokens};

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

impl RateUnit {
    /// Length of one unit in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            RateUnit::Minutes => 60,
            RateUnit::Hours => 3_600,
            RateUnit::Days => 86_400,
        }
    }

    fn singular(self) -> &'static str {
        match self {
            RateUnit::Minutes => "minute",
            RateUnit::Hours => "hour",
            RateUnit::Days => "day",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            RateUnit::Minutes => "minutes",
            RateUnit::Hours => "hours",
            RateUnit::Days => "days",
        }
    }
}

/// A parsed `rate(...)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    value: u32,
    unit: RateUnit,
}

impl Rate {
    /// A rate of `value` units; `None` for a value of 0.
    pub fn new(value: u32, unit: RateUnit) -> Option<Self> {
        (value >= 1).then_some(Self { value, unit })
    }

    /// Parses a full `rate(...)` expression. Error positions are character offsets into
    /// `input`.
    pub fn parse(input: &str) -> Result<Self, ExpressionError> {
        Self::parse_bytes(input).map_err(|e| e.in_chars(input))
    }

    /// Same as [`Rate::parse`] with byte positions in the error.
    pub(super) fn parse_bytes(input: &str) -> Result<Self, ExpressionError> {
        let kind = Some(ScheduleKind::Rate);
        let (body, base) = call_body(input, "rate", ScheduleKind::Rate)?;
        let toks = tokens(body, base, ScheduleKind::Rate)?;
        let expected = "expected `rate(value unit)`, e.g. `rate(5 minutes)`";
        let (value_tok, unit_tok) = match toks.as_slice() {
            [v, u] => (*v, *u),
            [] => return Err(ExpressionError::at(base, kind, None, format!("empty rate expression: {expected}"))),
            [v] if !v.text.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(ExpressionError::at(
                    v.position,
                    kind,
                    Some("value"),
                    format!("`{}` is not a positive integer: {expected}", v.text),
                ));
            }
            [_] => {
                return Err(ExpressionError::at(
                    base + body.len(),
                    kind,
                    Some("unit"),
                    format!("missing unit: {expected}"),
                ));
            }
            [_, _, extra, ..] => {
                return Err(ExpressionError::at(extra.position, kind, None, format!("unexpected text: {expected}")));
            }
        };

        let value_err = |msg: String| ExpressionError::at(value_tok.position, kind, Some("value"), msg);
        let v = value_tok.text;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(value_err(format!("`{v}` is not a positive integer")));
        }
        let value = match v.parse::<u32>() {
            Ok(0) => return Err(value_err("value must be at least 1".to_owned())),
            Ok(n) => n,
            Err(_) => return Err(value_err(format!("value {v} is too large: at most {}", u32::MAX))),
        };

        let unit_err = |msg: String| ExpressionError::at(unit_tok.position, kind, Some("unit"), msg);
        let u = unit_tok.text;
        let (unit, plural) = match u {
            "minute" => (RateUnit::Minutes, false),
            "minutes" => (RateUnit::Minutes, true),
            "hour" => (RateUnit::Hours, false),
            "hours" => (RateUnit::Hours, true),
            "day" => (RateUnit::Days, false),
            "days" => (RateUnit::Days, true),
            _ => {
                let hint = if ["minute", "minutes", "hour", "hours", "day", "days"]
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(u))
                {
                    " (units are lower-case)"
                } else {
                    ""
                };
                return Err(unit_err(format!("unknown unit `{u}`: expected minute|minutes|hour|hours|day|days{hint}")));
            }
        };
        match (value, plural) {
            (1, true) => Err(unit_err(format!("a value of 1 takes the singular unit `{}`", unit.singular()))),
            (n, false) if n != 1 => Err(unit_err(format!("a value of {n} takes the plural unit `{}`", unit.plural()))),
            _ => Ok(Self { value, unit }),
        }
    }

    /// The number of units.
    pub fn value(self) -> u32 {
        self.value
    }

    /// The unit.
    pub fn unit(self) -> RateUnit {
        self.unit
    }

    /// The interval between two fires, in absolute time.
    pub fn interval(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.value) * self.unit.seconds())
    }

    /// The interval in nanoseconds, for exact arithmetic on instants.
    pub(super) fn interval_nanos(self) -> i128 {
        i128::from(self.value) * i128::from(self.unit.seconds()) * 1_000_000_000
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.value == 1 { self.unit.singular() } else { self.unit.plural() };
        write!(f, "rate({} {unit})", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Rate {
        Rate::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> ExpressionError {
        match Rate::parse(s) {
            Ok(r) => panic!("{s} parsed as {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn singular_and_plural_units() {
        for (s, value, unit, secs) in [
            ("rate(1 minute)", 1, RateUnit::Minutes, 60),
            ("rate(2 minutes)", 2, RateUnit::Minutes, 120),
            ("rate(1 hour)", 1, RateUnit::Hours, 3_600),
            ("rate(12 hours)", 12, RateUnit::Hours, 43_200),
            ("rate(1 day)", 1, RateUnit::Days, 86_400),
            ("rate(7 days)", 7, RateUnit::Days, 604_800),
            ("rate(15 minutes)", 15, RateUnit::Minutes, 900),
        ] {
            let r = ok(s);
            assert_eq!((r.value(), r.unit()), (value, unit), "{s}");
            assert_eq!(r.interval(), TimeDelta::seconds(secs), "{s}");
            assert_eq!(r.interval_nanos(), i128::from(secs) * 1_000_000_000);
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn value_one_needs_singular_and_more_needs_plural() {
        let e = bad("rate(1 minutes)");
        assert_eq!((e.field, e.position), (Some("unit"), 7));
        assert!(e.message.contains("singular unit `minute`"), "{e}");
        let e = bad("rate(5 minute)");
        assert_eq!((e.field, e.position), (Some("unit"), 7));
        assert!(e.message.contains("plural unit `minutes`"), "{e}");
        assert!(bad("rate(1 hours)").message.contains("`hour`"));
        assert!(bad("rate(2 hour)").message.contains("`hours`"));
        assert!(bad("rate(1 days)").message.contains("`day`"));
        assert!(bad("rate(3 day)").message.contains("`days`"));
        assert_eq!(
            bad("rate(5 minute)").to_string(),
            "rate unit field at column 8: a value of 5 takes the plural unit `minutes`"
        );
    }

    #[test]
    fn zero_negative_and_non_integer_values() {
        let e = bad("rate(0 minutes)");
        assert_eq!((e.field, e.position), (Some("value"), 5));
        assert!(e.message.contains("at least 1"));
        let e = bad("rate(0 minute)");
        assert_eq!(e.field, Some("value"));
        for s in ["rate(-5 minutes)", "rate(+5 minutes)", "rate(1.5 hours)", "rate(five minutes)", "rate(5m minutes)"] {
            let e = bad(s);
            assert_eq!((e.field, e.position), (Some("value"), 5), "{s}");
            assert!(e.message.contains("not a positive integer"), "{s}: {e}");
        }
    }

    #[test]
    fn huge_values() {
        let r = ok("rate(4294967295 days)");
        assert_eq!(r.value(), u32::MAX);
        assert_eq!(r.interval(), TimeDelta::days(i64::from(u32::MAX)));
        for s in ["rate(4294967296 days)", "rate(99999999999999999999999999 minutes)"] {
            let e = bad(s);
            assert_eq!(e.field, Some("value"), "{s}");
            assert!(e.message.contains("too large"), "{s}: {e}");
        }
        // Leading zeros are read as the number; Display gives the canonical form.
        assert_eq!(ok("rate(007 days)").to_string(), "rate(7 days)");
        assert_eq!(ok("rate(01 day)").to_string(), "rate(1 day)");
    }

    #[test]
    fn wrong_units() {
        for s in ["rate(5 weeks)", "rate(5 seconds)", "rate(1 second)", "rate(5 mins)", "rate(5 m)", "rate(1 month)"] {
            let e = bad(s);
            assert_eq!(e.field, Some("unit"), "{s}");
            assert!(e.message.contains("unknown unit"), "{s}: {e}");
        }
        let e = bad("rate(5 MINUTES)");
        assert!(e.message.contains("lower-case"), "{e}");
        assert!(bad("rate(1 Hour)").message.contains("lower-case"));
    }

    #[test]
    fn shape_errors() {
        let e = bad("rate()");
        assert_eq!((e.field, e.position), (None, 5));
        assert!(e.message.contains("empty rate expression"));
        let e = bad("rate(5)");
        assert_eq!((e.field, e.position), (Some("unit"), 6));
        let e = bad("rate(5 minutes now)");
        assert_eq!(e.position, 15);
        assert!(bad("rate(5minutes)").message.contains("not a positive integer"));
        assert_eq!(bad("rate( 5 minutes)").position, 5);
        assert_eq!(bad("rate(5 minutes ").position, 15);
        assert_eq!(bad("rate(5 minutes )").position, 14);
        assert_eq!(bad("Rate(5 minutes)").position, 0);
        assert_eq!(bad("cron(5 minutes)").position, 0);
        // Several spaces between value and unit are accepted, Display normalises them.
        assert_eq!(ok("rate(5   minutes)").to_string(), "rate(5 minutes)");
    }

    #[test]
    fn constructor() {
        assert_eq!(Rate::new(0, RateUnit::Days), None);
        assert_eq!(Rate::new(3, RateUnit::Hours).map(|r| r.to_string()).as_deref(), Some("rate(3 hours)"));
        assert_eq!(Rate::new(3, RateUnit::Hours), Some(ok("rate(3 hours)")));
    }
}
