//! Which failures to publish a message are for good. A publish that fails for a moment
//! (throttling, a network error, a missing topic during a deploy) is tried again by the
//! sweeper; one that SNS refuses because of the message itself (too large, an invalid
//! parameter) would fail the same way on every sweep, so the sweeper dead-letters it
//! with the reason instead of retrying it forever.

use aws_sdk_sns::error::ProvideErrorMetadata;
use aws_sdk_sns::operation::publish::PublishError as SnsPublishError;
use rez_core::message::MAX_PUBLISHED_BYTES;
use rez_core::ports::StoreError;

/// The most characters of a refusal reason kept on the message (SNS's text included).
const MAX_REASON_CHARS: usize = 500;

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// SNS refuses this message and will refuse it again: dead-letter it.
    #[error("publish refused for good: {0}")]
    Refused(String),
    /// The publish may succeed later: leave the message `created` for the next sweep.
    #[error(transparent)]
    Failed(#[from] StoreError),
}

/// A message attribute as SNS counts it toward the size limit.
pub(crate) struct Attribute<'a> {
    pub name: &'a str,
    pub data_type: &'a str,
    pub value: &'a str,
}

/// Bytes SNS counts for a publish: the body and every attribute's name, type and value.
pub(crate) fn publish_size(body: &str, attributes: &[Attribute<'_>]) -> usize {
    body.len() + attributes.iter().map(|a| a.name.len() + a.data_type.len() + a.value.len()).sum::<usize>()
}

/// `Some(reason)` if a publish of `size` bytes is over what SNS accepts (checked before
/// publishing, so the refusal does not depend on SNS's wording).
pub(crate) fn oversize_reason(size: usize) -> Option<String> {
    (size > MAX_PUBLISHED_BYTES).then(|| {
        format!(
            "the message is {size} bytes as published (attributes included); SNS accepts at most {MAX_PUBLISHED_BYTES}"
        )
    })
}

/// `Some(reason)` if SNS's answer `err` refuses the message for good: an invalid
/// parameter or parameter value (which is also how SNS answers a message that is too
/// long). Everything else (throttling, internal errors, a missing topic, denied access
/// during a deploy) is worth another try.
pub(crate) fn permanent_refusal(err: &SnsPublishError) -> Option<String> {
    let code = err.code().unwrap_or_default();
    // A modeled exception carries its text itself; the metadata has it once parsed.
    let own = match err {
        SnsPublishError::InvalidParameterException(e) => e.message(),
        SnsPublishError::InvalidParameterValueException(e) => e.message(),
        _ => None,
    };
    let message = own.or_else(|| err.message()).unwrap_or_default();
    let refused = err.is_invalid_parameter_exception()
        || err.is_invalid_parameter_value_exception()
        || matches!(code, "InvalidParameter" | "InvalidParameterValue")
        || message.to_ascii_lowercase().contains("message too long");
    refused.then(|| {
        let text = format!("SNS refused the message ({}): {message}", if code.is_empty() { "no code" } else { code });
        text.chars().take(MAX_REASON_CHARS).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::error::ErrorMetadata;
    use aws_sdk_sns::types::error::{InvalidParameterException, InvalidParameterValueException};

    #[test]
    fn invalid_parameters_and_too_long_are_permanent() {
        let e = SnsPublishError::InvalidParameterException(
            InvalidParameterException::builder().message("Invalid parameter: Message too long").build(),
        );
        let reason = permanent_refusal(&e).unwrap();
        assert!(reason.contains("Message too long"), "{reason}");
        let e = SnsPublishError::InvalidParameterValueException(
            InvalidParameterValueException::builder().message("bad attribute").build(),
        );
        assert!(permanent_refusal(&e).unwrap().contains("bad attribute"));
        // An error the SDK does not model, recognised by its code.
        let e = SnsPublishError::generic(ErrorMetadata::builder().code("InvalidParameter").message("x").build());
        assert!(permanent_refusal(&e).is_some());
    }

    #[test]
    fn throttling_and_unknown_failures_are_transient() {
        let e = SnsPublishError::generic(ErrorMetadata::builder().code("Throttling").message("slow down").build());
        assert_eq!(permanent_refusal(&e), None);
        let e = SnsPublishError::generic(ErrorMetadata::builder().code("InternalError").message("oops").build());
        assert_eq!(permanent_refusal(&e), None);
        let e = SnsPublishError::generic(ErrorMetadata::builder().code("NotFound").message("no topic").build());
        assert_eq!(permanent_refusal(&e), None);
    }

    #[test]
    fn refusal_reasons_are_bounded() {
        let long = "m".repeat(10_000);
        let e = SnsPublishError::InvalidParameterException(InvalidParameterException::builder().message(long).build());
        assert_eq!(permanent_refusal(&e).unwrap().chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn size_counts_attributes_and_the_limit_is_inclusive() {
        let attrs = [Attribute { name: "id", data_type: "String", value: "abc" }];
        assert_eq!(publish_size("12345", &attrs), 5 + 2 + 6 + 3);
        assert_eq!(oversize_reason(MAX_PUBLISHED_BYTES), None);
        let reason = oversize_reason(MAX_PUBLISHED_BYTES + 1).unwrap();
        assert!(reason.contains(&(MAX_PUBLISHED_BYTES + 1).to_string()), "{reason}");
    }
}
