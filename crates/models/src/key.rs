//! [`ApiKey`]: a provider key that never shows itself. Its `Debug` and `Display` print a
//! mask, so a key cannot reach a log or an error message by accident.

use std::fmt;

/// A key that cannot be a header value (empty, spaces or control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the API key is empty or contains spaces or control characters")]
pub struct InvalidApiKey;

/// A provider API key, checked to be usable as a header value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Surrounding whitespace (a pasted newline) is trimmed; what remains must be visible
    /// ASCII.
    pub fn new(raw: impl AsRef<str>) -> Result<Self, InvalidApiKey> {
        let key = raw.as_ref().trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidApiKey);
        }
        Ok(Self(key.to_owned()))
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_never_shown() {
        let k = ApiKey::new(" sk-ant-abc123\n").expect("key");
        assert_eq!(k.expose(), "sk-ant-abc123");
        assert!(!format!("{k:?} {k}").contains("abc123"));
        for bad in ["", "  ", "sk ant", "sk\u{7f}x", "clé"] {
            assert_eq!(ApiKey::new(bad), Err(InvalidApiKey), "{bad:?}");
        }
    }
}
