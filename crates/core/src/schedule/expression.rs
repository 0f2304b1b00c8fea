//! `ScheduleExpression`: the one type the rest of rez_agent stores and passes around.
//!
//! It dispatches on the expression's prefix (`cron(`, `rate(`, `at(`), gives back a
//! canonical text with `Display` (single spaces, upper-case cron names, no leading zeros
//! in rate values) and serialises as that text, so what is stored is exactly what AWS is
//! sent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::at::At;
use super::cron::CronExpr;
use super::error::ExpressionError;
use super::rate::Rate;
use super::syntax::MAX_EXPRESSION_LEN;

/// The three kinds of schedule expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Cron,
    Rate,
    At,
}

impl ScheduleKind {
    /// `cron`, `rate` or `at`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Cron => "cron",
            ScheduleKind::Rate => "rate",
            ScheduleKind::At => "at",
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed EventBridge Scheduler expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScheduleExpression {
    Cron(CronExpr),
    Rate(Rate),
    At(At),
}

impl ScheduleExpression {
    /// Parses `cron(...)`, `rate(...)` or `at(...)`. Error positions are character offsets
    /// into `input`.
    pub fn parse(input: &str) -> Result<Self, ExpressionError> {
        Self::parse_bytes(input).map_err(|e| e.in_chars(input))
    }

    fn parse_bytes(input: &str) -> Result<Self, ExpressionError> {
        if input.starts_with("cron(") {
            return CronExpr::parse_bytes(input).map(Self::Cron);
        }
        if input.starts_with("rate(") {
            return Rate::parse_bytes(input).map(Self::Rate);
        }
        if input.starts_with("at(") {
            return At::parse_bytes(input).map(Self::At);
        }
        let err = |pos: usize, msg: String| ExpressionError::at(pos, None, None, msg);
        let expected = "expected `cron(...)`, `rate(...)` or `at(...)`";
        if input.is_empty() {
            return Err(err(0, format!("empty schedule expression: {expected}")));
        }
        if let Some((byte, _)) = input.char_indices().nth(MAX_EXPRESSION_LEN) {
            return Err(err(byte, format!("the expression is longer than {MAX_EXPRESSION_LEN} characters")));
        }
        if input.starts_with(char::is_whitespace) {
            return Err(err(0, format!("unexpected leading whitespace: {expected}")));
        }
        let head = input.split('(').next().unwrap_or_default();
        if let Some(kind) = [ScheduleKind::Cron, ScheduleKind::Rate, ScheduleKind::At]
            .into_iter()
            .find(|k| head.trim_end().eq_ignore_ascii_case(k.as_str()))
        {
            return Err(err(0, format!("write `{kind}(` in lower case and without a space before `(`")));
        }
        Err(err(0, format!("unknown expression type: {expected}")))
    }

    /// Which kind of expression this is.
    pub fn kind(&self) -> ScheduleKind {
        match self {
            ScheduleExpression::Cron(_) => ScheduleKind::Cron,
            ScheduleExpression::Rate(_) => ScheduleKind::Rate,
            ScheduleExpression::At(_) => ScheduleKind::At,
        }
    }

    /// `true` for `cron` and `rate`, `false` for a one-off `at`.
    pub fn is_recurring(&self) -> bool {
        !matches!(self, ScheduleExpression::At(_))
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleExpression::Cron(c) => c.fmt(f),
            ScheduleExpression::Rate(r) => r.fmt(f),
            ScheduleExpression::At(a) => a.fmt(f),
        }
    }
}

impl FromStr for ScheduleExpression {
    type Err = ExpressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<CronExpr> for ScheduleExpression {
    fn from(c: CronExpr) -> Self {
        Self::Cron(c)
    }
}

impl From<Rate> for ScheduleExpression {
    fn from(r: Rate) -> Self {
        Self::Rate(r)
    }
}

impl From<At> for ScheduleExpression {
    fn from(a: At) -> Self {
        Self::At(a)
    }
}

impl Serialize for ScheduleExpression {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScheduleExpression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ScheduleExpression {
        ScheduleExpression::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> ExpressionError {
        match ScheduleExpression::parse(s) {
            Ok(x) => panic!("{s} parsed as {x:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn dispatches_on_the_prefix() {
        assert_eq!(ok("cron(0 12 * * ? *)").kind(), ScheduleKind::Cron);
        assert_eq!(ok("rate(5 minutes)").kind(), ScheduleKind::Rate);
        assert_eq!(ok("at(2026-12-24T18:30:00)").kind(), ScheduleKind::At);
        assert!(ok("cron(0 12 * * ? *)").is_recurring());
        assert!(ok("rate(5 minutes)").is_recurring());
        assert!(!ok("at(2026-12-24T18:30:00)").is_recurring());
        assert_eq!("rate(1 hour)".parse::<ScheduleExpression>().unwrap(), ok("rate(1 hour)"));
        assert_eq!(ScheduleExpression::from(Rate::parse("rate(1 hour)").unwrap()), ok("rate(1 hour)"));
        assert_eq!(ScheduleExpression::from(CronExpr::parse("cron(0 1 * * ? *)").unwrap()), ok("cron(0 1 * * ? *)"));
        assert_eq!(
            ScheduleExpression::from(At::parse("at(2026-01-01T00:00:00)").unwrap()),
            ok("at(2026-01-01T00:00:00)")
        );
    }

    #[test]
    fn display_is_canonical() {
        for (input, canonical) in [
            ("cron(0 12 * * ? *)", "cron(0 12 * * ? *)"),
            ("cron(0  12 ? jan-mar mon-fri *)", "cron(0 12 ? JAN-MAR MON-FRI *)"),
            ("cron(0/5 8-17 ? * 6l 2026)", "cron(0/5 8-17 ? * 6L 2026)"),
            ("cron(0 0 lw * ? *)", "cron(0 0 LW * ? *)"),
            ("rate(05 minutes)", "rate(5 minutes)"),
            ("rate(1   day)", "rate(1 day)"),
            ("at(2026-12-24T18:30:00)", "at(2026-12-24T18:30:00)"),
        ] {
            let e = ok(input);
            assert_eq!(e.to_string(), canonical, "{input}");
            assert_eq!(ok(canonical), e, "{input}");
        }
    }

    #[test]
    fn errors_for_unknown_types() {
        let e = bad("");
        assert_eq!((e.kind, e.field, e.position), (None, None, 0));
        assert!(e.message.contains("empty"));
        assert!(bad("every 5 minutes").message.contains("unknown expression type"));
        assert!(bad("CRON(0 12 * * ? *)").message.contains("`cron(` in lower case"));
        assert!(bad("Rate(5 minutes)").message.contains("`rate(` in lower case"));
        assert!(bad("at (2026-01-01T00:00:00)").message.contains("`at(` in lower case"));
        assert!(bad(" cron(0 12 * * ? *)").message.contains("leading whitespace"));
        assert!(bad("0 12 * * ? *").message.contains("unknown expression type"));
        assert!(bad(&"x".repeat(300)).message.contains("longer than 256"));
        // The position of an error after multi-byte characters counts characters.
        let e = bad("cron(é 12 * * ? *)");
        assert_eq!(e.position, 5);
        let e = bad("cron(0 12 * * ? *) é");
        assert_eq!(e.position, 18);
        let e = bad("at(2026-01-01T00:00:00)é");
        assert_eq!(e.position, 23);
    }

    #[test]
    fn error_display_has_kind_field_and_column() {
        let e = bad("cron(0 12 ? * 8 *)");
        assert_eq!(e.to_string(), "cron day-of-week field at column 15: value 8 is out of range 1-7 (SUN-SAT)");
        assert_eq!((e.kind, e.field, e.position), (Some(ScheduleKind::Cron), Some("day-of-week"), 14));
    }

    #[test]
    fn serde_as_the_canonical_string() {
        let e = ok("cron(0 9 ? * mon-fri *)");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"cron(0 9 ? * MON-FRI *)\"");
        assert_eq!(serde_json::from_str::<ScheduleExpression>(&json).unwrap(), e);
        assert_eq!(serde_json::to_string(&ok("rate(1 day)")).unwrap(), "\"rate(1 day)\"");
        let err = serde_json::from_str::<ScheduleExpression>("\"rate(1 days)\"").unwrap_err();
        assert!(err.to_string().contains("rate unit field at column 8"), "{err}");
        assert!(serde_json::from_str::<ScheduleExpression>("42").is_err());
        assert_eq!(serde_json::to_string(&ScheduleKind::Rate).unwrap(), "\"rate\"");
        assert_eq!(serde_json::from_str::<ScheduleKind>("\"at\"").unwrap(), ScheduleKind::At);
        assert_eq!(ScheduleKind::Cron.to_string(), "cron");
    }
}
