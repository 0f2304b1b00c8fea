//! Request input helpers that turn every malformed input into an [`ApiError`] with our
//! error body (axum's own extractor rejections answer in plain text).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// A JSON body: content type checked, size capped (by the body-limit layer), parsed.
pub fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Value> {
    let bytes = body.map_err(|rej| {
        let status = rej.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "payload_too_large", "the request body is larger than the limit of 256 KiB")
        } else {
            ApiError::new(status, "bad_body", format!("the request body could not be read: {rej}"))
        }
    })?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be application/json",
            ));
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::bad_request("invalid_json", "the request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {e}"))
            .with_details(serde_json::json!({ "line": e.line(), "column": e.column() }))
    })
}

/// Query parameters as pairs; repeated or unknown keys are refused.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter `{k}`; expected one of {}", allowed.join(", ")),
                ));
            }
            if pairs[..i].iter().any(|(p, _)| p == k) {
                return Err(ApiError::bad_request(
                    "repeated_parameter",
                    format!("query parameter `{k}` is given more than once"),
                ));
            }
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Parse `key` with `f`; a failure names the parameter and what is expected.
    pub fn parse_with<T>(&self, key: &str, expected: &str, f: impl FnOnce(&str) -> Option<T>) -> ApiResult<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| {
                ApiError::bad_request("invalid_parameter", format!("query parameter `{key}` must be {expected}"))
                    .with_details(serde_json::json!({ "parameter": key }))
            }),
        }
    }

    /// `limit`, 1..=100, default 50.
    pub fn limit(&self) -> ApiResult<usize> {
        Ok(self
            .parse_with("limit", "an integer from 1 to 100", |v| {
                v.parse::<usize>().ok().filter(|n| (1..=100).contains(n))
            })?
            .unwrap_or(50))
    }
}
