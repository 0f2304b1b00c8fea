//! Turning a failed exchange into a [`ModelError`]: transient or permanent, with the
//! provider's `retry-after`, and a message that says what to fix.
//!
//! - 401 / 403: permanent; the message names the setting that holds the key. The
//!   provider's own text is left out of a 401 (OpenAI's echoes part of the key).
//! - 400, 404, 413, 422 and other 4xx: permanent, with the provider's message (model not
//!   found, a malformed request).
//! - 408, 409, 429, 529 and 5xx, connection failures, timeouts: transient, with the
//!   wait the provider asked for (`retry-after-ms`, else `retry-after` in seconds or as an
//!   HTTP date).
//! - A 200 whose body is not the expected JSON: transient. A proxy's error page or a cut
//!   connection looks like this, and a retry is bounded; a base URL pointing at something
//!   that is not a model server fails the same way on every attempt, and the message
//!   says to check it.
//!
//! Every provider text is scrubbed of the key (and of anything shaped like one) and cut
//! to a few hundred characters before it becomes part of a message.

use std::time::{Duration, SystemTime};

use rez_core::agent::model::{ModelError, ModelErrorKind};
use rez_http::{HttpError, HttpResponse, MASK, StatusCode, header::HeaderMap, parse_retry_after};
use serde_json::Value;

use crate::key::ApiKey;

/// How a provider is named in messages, and how its key is set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provider {
    /// `anthropic`, `openai`.
    pub(crate) id: &'static str,
    /// `the Anthropic API`, `the OpenAI-compatible server`.
    pub(crate) label: &'static str,
    /// What to do about a refused key.
    pub(crate) key_fix: &'static str,
}

/// Longest provider text kept in a message.
const MAX_PROVIDER_TEXT: usize = 400;

/// A failure before any answer: policy refusal, connection failure, timeout.
pub(crate) fn from_http_error(p: Provider, e: &HttpError, timeout: Duration) -> ModelError {
    match e {
        HttpError::Timeout { .. } => {
            ModelError::transient(p.id, format!("{} did not answer within {} s", p.label, timeout.as_secs_f64()))
        }
        HttpError::Connect { .. } | HttpError::Transport { .. } | HttpError::Decode { .. } => {
            ModelError::transient(p.id, format!("cannot reach {}: {e}", p.label))
        }
        HttpError::Refused(_) => ModelError::permanent(
            p.id,
            format!("{} is not an allowed destination: {e}; check the configured base URL", p.label),
        ),
        HttpError::BodyTooLarge { .. } | HttpError::Config(_) | HttpError::InvalidRequest(_) => {
            ModelError::permanent(p.id, format!("request to {} failed: {e}", p.label))
        }
    }
}

/// A non-2xx answer.
pub(crate) fn from_status(p: Provider, resp: &HttpResponse, key: Option<&ApiKey>, model: &str) -> ModelError {
    let status = resp.status.as_u16();
    let text = provider_text(&resp.body).map(|t| scrub(&t, key));
    let said = text.as_deref().map(|t| format!(": {t}")).unwrap_or_default();
    let (kind, message) = match status {
        401 => (ModelErrorKind::Permanent, format!("{} refused the API key (401): {}", p.label, p.key_fix)),
        403 => (
            ModelErrorKind::Permanent,
            format!("{} denied access (403){said}; check that the key may use model {model:?}", p.label),
        ),
        404 => (
            ModelErrorKind::Permanent,
            format!("{} answered 404{said}; check the model name ({model:?}) and the base URL", p.label),
        ),
        408 | 409 | 429 | 529 | 500..=599 => {
            let what = match status {
                429 => "is rate limiting this key",
                529 => "is overloaded",
                408 => "timed out the request",
                409 => "reported a conflict",
                _ => "had a server error",
            };
            (ModelErrorKind::Transient, format!("{} {what} ({status}){said}", p.label))
        }
        _ => (ModelErrorKind::Permanent, format!("{} refused the request ({status}){said}", p.label)),
    };
    let retry_after = if kind == ModelErrorKind::Transient { retry_after(&resp.headers) } else { None };
    ModelError { kind, provider: p.id, status: Some(status), retry_after, message }
}

/// A 2xx answer that is not the JSON the format promises.
pub(crate) fn unreadable(p: Provider, status: StatusCode, detail: &str) -> ModelError {
    ModelError {
        status: Some(status.as_u16()),
        ..ModelError::transient(
            p.id,
            format!(
                "{} answered {status} with a body that is not a model response ({detail}); check the base URL",
                p.label
            ),
        )
    }
}

/// The wait a provider asked for: `retry-after-ms`, else `retry-after`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let ms = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms < 1e12)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0));
    ms.or_else(|| parse_retry_after(headers, SystemTime::now()))
}

/// The provider's own words about an error, from the shapes in use: Anthropic
/// `{"error": {"type", "message"}}`, OpenAI `{"error": {"message", "code"}}`, Ollama
/// `{"error": "…"}`, vLLM `{"message": "…"}`, FastAPI `{"detail": …}`; else the body text.
pub(crate) fn provider_text(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let from = |v: &Value| -> Option<String> {
                match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                }
            };
            v.pointer("/error/message")
                .and_then(from)
                .or_else(|| v.get("error").filter(|e| e.is_string()).and_then(from))
                .or_else(|| v.get("message").and_then(from))
                .or_else(|| v.get("detail").and_then(from))
                .unwrap_or_else(|| v.to_string())
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_PROVIDER_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

/// `text` without the key, and without any word shaped like a provider key (`sk-…`).
pub(crate) fn scrub(text: &str, key: Option<&ApiKey>) -> String {
    let text = match key {
        Some(k) if k.expose().len() >= 4 => text.replace(k.expose(), MASK),
        _ => text.to_owned(),
    };
    text.split(' ')
        .map(|w| if w.trim_start_matches(['"', '\'', '(']).starts_with("sk-") { MASK } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rez_http::Url;
    use rez_http::header::HeaderValue;

    const P: Provider = Provider {
        id: "anthropic",
        label: "the Anthropic API",
        key_fix: "set REZ_ANTHROPIC_API_KEY or `rez secrets set anthropic_api_key`",
    };

    fn resp(status: u16, headers: &[(&'static str, &str)], body: &str) -> HttpResponse {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        HttpResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers: h,
            url: Url::parse("https://api.anthropic.com/v1/messages").expect("url"),
            body: body.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn statuses_are_classified() {
        let key = ApiKey::new("sk-ant-secret-123").expect("key");
        let cases = [
            (400, ModelErrorKind::Permanent),
            (401, ModelErrorKind::Permanent),
            (403, ModelErrorKind::Permanent),
            (404, ModelErrorKind::Permanent),
            (413, ModelErrorKind::Permanent),
            (422, ModelErrorKind::Permanent),
            (402, ModelErrorKind::Permanent),
            (408, ModelErrorKind::Transient),
            (409, ModelErrorKind::Transient),
            (429, ModelErrorKind::Transient),
            (500, ModelErrorKind::Transient),
            (502, ModelErrorKind::Transient),
            (503, ModelErrorKind::Transient),
            (529, ModelErrorKind::Transient),
        ];
        for (status, kind) in cases {
            let e = from_status(P, &resp(status, &[], r#"{"error":{"message":"m"}}"#), Some(&key), "claude-x");
            assert_eq!((e.kind, e.status), (kind, Some(status)), "{status}");
            assert_eq!(e.provider, "anthropic");
        }
    }

    #[test]
    fn a_refused_key_says_what_to_set_and_never_echoes_the_key() {
        let key = ApiKey::new("sk-proj-abcdef123456").expect("key");
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc***456.","code":"invalid_api_key"}}"#;
        let e = from_status(P, &resp(401, &[], body), Some(&key), "m");
        assert!(e.message.contains("REZ_ANTHROPIC_API_KEY") && e.message.contains("(401)"), "{}", e.message);
        assert!(!e.message.contains("sk-proj"), "{}", e.message);
        let e = from_status(
            P,
            &resp(400, &[], &body.replace("sk-proj-abc***456", "sk-proj-abcdef123456")),
            Some(&key),
            "m",
        );
        assert!(!e.message.contains("abcdef"), "{}", e.message);
        assert!(e.retry_after.is_none());
    }

    #[test]
    fn the_providers_message_is_kept_for_bad_requests() {
        let e = from_status(
            P,
            &resp(404, &[], r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"}}"#),
            None,
            "claude-nope",
        );
        assert!(e.message.contains("model: claude-nope") && e.message.contains("base URL"), "{}", e.message);
        assert_eq!(
            provider_text(br#"{"error":"model 'llama9' not found"}"#).as_deref(),
            Some("model 'llama9' not found")
        );
        assert_eq!(provider_text(br#"{"object":"error","message":"too long"}"#).as_deref(), Some("too long"));
        assert_eq!(provider_text(b"<html>\n bad gateway </html>").as_deref(), Some("<html> bad gateway </html>"));
        assert_eq!(provider_text(b""), None);
        let long = "x".repeat(5000);
        assert!(provider_text(long.as_bytes()).expect("text").chars().count() <= MAX_PROVIDER_TEXT + 1);
    }

    #[test]
    fn retry_after_comes_from_the_headers() {
        let e = from_status(P, &resp(429, &[("retry-after", "7")], "{}"), None, "m");
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let e = from_status(P, &resp(529, &[("retry-after", "7"), ("retry-after-ms", "1500")], "{}"), None, "m");
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
        let e = from_status(P, &resp(503, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], "{}"), None, "m");
        assert_eq!(e.retry_after, Some(Duration::ZERO));
        let e = from_status(P, &resp(500, &[("retry-after-ms", "-3")], "{}"), None, "m");
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn transport_failures_are_transient_and_refusals_are_not() {
        let t = from_http_error(P, &HttpError::Timeout { url: "u".into() }, Duration::from_secs(120));
        assert!(t.is_transient() && t.message.contains("120 s"), "{}", t.message);
        let c = from_http_error(P, &HttpError::Connect { url: "u".into(), message: "refused".into() }, Duration::ZERO);
        assert!(c.is_transient());
        let r = from_http_error(P, &HttpError::InvalidRequest("bad".into()), Duration::ZERO);
        assert!(!r.is_transient());
    }
}
