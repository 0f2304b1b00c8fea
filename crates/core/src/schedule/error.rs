//! The one error type of the expression parsers.
//!
//! A refused schedule expression must tell the person who typed it *what* is wrong and
//! *where*: which expression type, which field and which column. The API turns it into a
//! `400` body as is, so the message is written for people, and the structured parts
//! (`position`, `field`) are there for tools that want to underline the culprit.

use std::fmt;

use super::ScheduleKind;
use crate::error::ValidationError;

/// Why a schedule expression was refused.
///
/// `position` is a 0-based offset, counted in characters (not bytes), into the whole
/// input string. The `Display` form shows it as a 1-based *column*
/// (`position + 1`), e.g. `cron day-of-week field at column 15: value 8 is out of range 1-7 (SUN-SAT)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExpressionError {
    /// 0-based character offset into the full input string.
    pub position: usize,
    /// Which expression type was being parsed, when that is known.
    pub kind: Option<ScheduleKind>,
    /// Which field of that expression is wrong, e.g. `day-of-week`, `unit`, `date`.
    pub field: Option<&'static str>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ExpressionError {
    /// An error at a *byte* offset; parsers build these and the public entry points
    /// convert the offset to characters with [`ExpressionError::in_chars`].
    pub(super) fn at(
        byte_position: usize,
        kind: Option<ScheduleKind>,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self { position: byte_position, kind, field, message: message.into() }
    }

    /// Converts `position` from a byte offset into `input` to a character offset.
    /// Counting the bytes that start a UTF-8 sequence is correct even if the byte offset
    /// were not on a character boundary, so this can never panic.
    pub(super) fn in_chars(mut self, input: &str) -> Self {
        self.position = input.bytes().take(self.position).filter(|b| (b & 0xC0) != 0x80).count();
        self
    }

    /// 1-based column, as shown by `Display`.
    pub fn column(&self) -> usize {
        self.position + 1
    }
}

impl fmt::Display for ExpressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = self.column();
        match (self.kind, self.field) {
            (Some(kind), Some(field)) => {
                write!(f, "{kind} {field} field at column {column}: {}", self.message)
            }
            (Some(kind), None) => write!(f, "{kind} expression at column {column}: {}", self.message),
            (None, _) => write!(f, "schedule expression at column {column}: {}", self.message),
        }
    }
}

impl From<ExpressionError> for ValidationError {
    fn from(e: ExpressionError) -> Self {
        ValidationError::new("invalid_schedule_expression", "schedule_expression", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_field_and_one_based_column() {
        let e = ExpressionError::at(
            14,
            Some(ScheduleKind::Cron),
            Some("day-of-week"),
            "value 8 is out of range 1-7 (SUN-SAT)",
        );
        assert_eq!(e.to_string(), "cron day-of-week field at column 15: value 8 is out of range 1-7 (SUN-SAT)");
        assert_eq!(e.column(), 15);
    }

    #[test]
    fn display_without_field_or_kind() {
        let e = ExpressionError::at(3, Some(ScheduleKind::Rate), None, "missing closing `)`");
        assert_eq!(e.to_string(), "rate expression at column 4: missing closing `)`");
        let e = ExpressionError::at(0, None, None, "empty");
        assert_eq!(e.to_string(), "schedule expression at column 1: empty");
    }

    #[test]
    fn byte_offsets_become_character_offsets() {
        // "é" is two bytes: byte 7 is character 6.
        let input = "cron(é 1";
        let e = ExpressionError::at(7, None, None, "x").in_chars(input);
        assert_eq!(e.position, 6);
        // Offsets inside a multi-byte character or past the end do not panic.
        let e = ExpressionError::at(6, None, None, "x").in_chars(input);
        assert_eq!(e.position, 6);
        let e = ExpressionError::at(100, None, None, "x").in_chars(input);
        assert_eq!(e.position, input.chars().count());
    }

    #[test]
    fn converts_into_a_validation_error() {
        let e = ExpressionError::at(0, None, None, "empty");
        let v: ValidationError = e.into();
        assert_eq!(v.code, "invalid_schedule_expression");
        assert_eq!(v.field, "schedule_expression");
        assert!(v.message.contains("column 1"));
    }
}
