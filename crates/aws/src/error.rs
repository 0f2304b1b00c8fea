//! Mapping SDK errors to [`StoreError`]. The SDK's error types are large generics; every
//! adapter turns them into a `StoreError` at the call site through [`backend`].

use rez_core::ports::StoreError;

/// A backend failure, with the SDK error's full chain (never a secret: requests are not
/// included in SDK error displays).
pub fn backend(context: &str, err: impl std::error::Error) -> StoreError {
    let mut text = format!("{context}: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    StoreError::Unavailable(text)
}
