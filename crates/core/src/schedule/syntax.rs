//! Lexical helpers shared by the three expression parsers.
//!
//! `cron(...)`, `rate(...)` and `at(...)` share one envelope (`name(body)`), one length
//! limit and one notion of a token (a run of printable ASCII between single or repeated
//! spaces). Keeping that here means the three parsers report envelope and token problems
//! with the same words and the same (byte) positions.

use super::ScheduleKind;
use super::error::ExpressionError;

/// EventBridge Scheduler refuses a `ScheduleExpression` longer than 256 characters.
pub const MAX_EXPRESSION_LEN: usize = 256;

/// A token of an expression body and its byte offset in the full input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub(super) text: &'a str,
    pub(super) position: usize,
}

/// Checks the `name(` … `)` envelope and returns the body with the byte offset at which it
/// starts in `input`.
pub(super) fn call_body<'a>(
    input: &'a str,
    name: &str,
    kind: ScheduleKind,
) -> Result<(&'a str, usize), ExpressionError> {
    let err = |pos: usize, msg: String| ExpressionError::at(pos, Some(kind), None, msg);
    if let Some((byte, _)) = input.char_indices().nth(MAX_EXPRESSION_LEN) {
        return Err(err(byte, format!("the expression is longer than {MAX_EXPRESSION_LEN} characters")));
    }
    let Some(rest) = input.strip_prefix(name).and_then(|r| r.strip_prefix('(')) else {
        return Err(err(0, format!("expected `{name}(` at the start of the expression")));
    };
    let start = name.len() + 1;
    match rest.find(')') {
        None => Err(err(input.len(), "missing closing `)`".to_owned())),
        Some(i) if start + i + 1 != input.len() => {
            Err(err(start + i + 1, "unexpected text after the closing `)`".to_owned()))
        }
        Some(i) => Ok((&rest[..i], start)),
    }
}

/// Splits a body into tokens separated by one or more spaces. Leading or trailing spaces
/// inside the parentheses and any character that is not printable ASCII are refused.
pub(super) fn tokens(body: &str, base: usize, kind: ScheduleKind) -> Result<Vec<Token<'_>>, ExpressionError> {
    if let Some((i, c)) = body.char_indices().find(|(_, c)| *c != ' ' && !c.is_ascii_graphic()) {
        let shown = if c.is_control() { format!("{:?}", c) } else { format!("`{c}`") };
        return Err(ExpressionError::at(
            base + i,
            Some(kind),
            None,
            format!("invalid character {shown}: only printable ASCII characters and spaces are allowed"),
        ));
    }
    if body.starts_with(' ') {
        return Err(ExpressionError::at(base, Some(kind), None, "unexpected space after `(`"));
    }
    if body.ends_with(' ') {
        let last_word_end = body.trim_end_matches(' ').len();
        return Err(ExpressionError::at(base + last_word_end, Some(kind), None, "unexpected space before `)`"));
    }
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in body.split(' ') {
        if !piece.is_empty() {
            out.push(Token { text: piece, position: base + offset });
        }
        offset += piece.len() + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: ScheduleKind = ScheduleKind::Cron;

    #[test]
    fn envelope_ok() {
        assert_eq!(call_body("cron(a b)", "cron", K).unwrap(), ("a b", 5));
        assert_eq!(call_body("at()", "at", K).unwrap(), ("", 3));
    }

    #[test]
    fn envelope_errors() {
        let e = call_body("cron(a b", "cron", K).unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (8, "missing closing `)`"));
        let e = call_body("cron(a) b", "cron", K).unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.message.contains("after the closing"));
        let e = call_body("cron(a)b)", "cron", K).unwrap_err();
        assert_eq!(e.position, 7);
        let e = call_body("CRON(a)", "cron", K).unwrap_err();
        assert_eq!(e.position, 0);
        let e = call_body("cron (a)", "cron", K).unwrap_err();
        assert_eq!(e.position, 0);
    }

    #[test]
    fn length_limit_is_in_characters() {
        let ok = format!("cron({})", "é".repeat(MAX_EXPRESSION_LEN - 6));
        assert_eq!(ok.chars().count(), MAX_EXPRESSION_LEN);
        assert!(call_body(&ok, "cron", K).is_ok());
        let long = format!("cron({})", "1".repeat(MAX_EXPRESSION_LEN));
        let e = call_body(&long, "cron", K).unwrap_err();
        assert_eq!(e.position, MAX_EXPRESSION_LEN);
        assert!(e.message.contains("longer than 256"));
    }

    #[test]
    fn tokens_with_offsets() {
        let t = tokens("0  12 *", 5, K).unwrap();
        let got: Vec<_> = t.iter().map(|t| (t.text, t.position)).collect();
        assert_eq!(got, vec![("0", 5), ("12", 8), ("*", 11)]);
        assert!(tokens("", 5, K).unwrap().is_empty());
    }

    #[test]
    fn tokens_refuse_stray_spaces_and_odd_characters() {
        assert_eq!(tokens(" 0", 5, K).unwrap_err().position, 5);
        let e = tokens("0 1  ", 5, K).unwrap_err();
        assert_eq!(e.position, 8);
        assert!(e.message.contains("before `)`"));
        let e = tokens("0\t1", 5, K).unwrap_err();
        assert_eq!(e.position, 6);
        assert!(e.message.contains("invalid character '\\t'"), "{}", e.message);
        let e = tokens("0 é", 5, K).unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.message.contains("`é`"));
    }
}
