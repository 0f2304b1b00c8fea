//! The ntfy client: rez_agent's push-notification channel (SPEC §6.2).
//!
//! It implements [`Notifier`] by publishing with ntfy's JSON form — `POST <server>/` with
//! `{"topic", "message", "title", "priority", "tags", "click", "markdown"}` — so no option
//! has to be squeezed into HTTP headers. Every call goes through `rez-http`, so the ntfy
//! host must be on the integration's allowlist and the usual SSRF checks apply.
//!
//! Within one [`Notifier::push`] call, 5xx, 429 and connection errors are retried with
//! exponential backoff honouring `Retry-After`, up to `max_attempts`; then the failure is
//! reported as [`PushError::Transient`] and the queue retries later. A publish is a POST,
//! but the notification processor makes it idempotent (the inbox records delivered
//! pushes), so retrying here is allowed. Other 4xx answers are [`PushError::Permanent`].
//!
//! Every publish carries a [`SequenceId`] derived from the message id. ntfy (2.16 and
//! later) replaces a notification in place when a publish repeats its sequence id, so a
//! push sent again — a retry here, or a redelivery after a crash between ntfy's answer and
//! our record of it — shows once on the phone. Older servers ignore the field.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::notify::{NotifyAction, NotifyPayload};
use rez_core::ports::{Notifier, PushError, PushReceipt};
use rez_http::{HttpClient, HttpError, HttpResponse, OutboundRequest, PolicyViolation, Redactor, RetryPolicy, Url};
use serde::{Deserialize, Serialize};

/// Attempts within one push, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Delay before the first retry; doubles with each further one.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);

/// How to authenticate to the ntfy server.
#[derive(Clone, Default)]
pub enum NtfyAuth {
    #[default]
    None,
    /// An access token, sent as `Authorization: Bearer tk_…`.
    Token(String),
    /// A user and password, sent as basic auth.
    Basic { user: String, password: String },
}

impl fmt::Debug for NtfyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtfyAuth::None => f.write_str("None"),
            NtfyAuth::Token(_) => f.write_str("Token([REDACTED])"),
            NtfyAuth::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: [REDACTED] }}")
            }
        }
    }
}

/// Configuration of the ntfy channel. `Debug` hides the topic (see [`Redactor::origin_only`]).
#[derive(Clone)]
pub struct NtfyConfig {
    /// The full topic URL, e.g. `https://ntfy.sh/mytopic`. The server is everything up
    /// to the last path segment, the topic is the last segment.
    pub topic_url: String,
    pub auth: NtfyAuth,
    /// Attempts within one push (≥ 1), default [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// Default [`DEFAULT_BACKOFF_BASE`].
    pub backoff_base: Duration,
    /// Ceiling of the exponential backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` waited for within one push; a longer one ends the push
    /// with [`PushError::Transient`] carrying it, for the queue to honour.
    pub max_retry_after: Duration,
}

impl fmt::Debug for NtfyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfyConfig")
            .field("topic_url", &Redactor.origin_only(&self.topic_url))
            .field("auth", &self.auth)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("max_backoff", &self.max_backoff)
            .field("max_retry_after", &self.max_retry_after)
            .finish()
    }
}

impl NtfyConfig {
    pub fn new(topic_url: impl Into<String>) -> Self {
        Self {
            topic_url: topic_url.into(),
            auth: NtfyAuth::None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: DEFAULT_BACKOFF_BASE,
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.auth = NtfyAuth::Token(token.into());
        self
    }

    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = NtfyAuth::Basic { user: user.into(), password: password.into() };
        self
    }

    /// The host of the topic URL: what the ntfy integration's allowlist must contain.
    pub fn host(&self) -> Option<String> {
        Url::parse(&self.topic_url).ok().and_then(|u| u.host_str().map(str::to_owned))
    }
}

/// A configuration the client cannot work with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NtfyConfigError {
    #[error("ntfy topic URL is not a valid URL: {0}")]
    InvalidUrl(String),
    #[error(
        "ntfy topic URL must not contain credentials, a query or a fragment; configure a token or user/password instead"
    )]
    UnexpectedUrlParts,
    #[error("ntfy topic URL has no topic: use e.g. https://ntfy.sh/mytopic")]
    MissingTopic,
    /// The topic itself is not shown: it is the credential of a public topic.
    #[error("invalid ntfy topic: 1–64 characters of A–Z, a–z, 0–9, - and _")]
    InvalidTopic,
    #[error("ntfy server refused by the outbound policy: {0}")]
    Refused(PolicyViolation),
    #[error("max_attempts must be at least 1")]
    NoAttempts,
}

/// Publishes notifications to one ntfy server.
#[derive(Clone)]
pub struct NtfyClient {
    http: HttpClient,
    publish_url: Url,
    default_topic: String,
    auth: NtfyAuth,
    retry: RetryPolicy,
}

impl fmt::Debug for NtfyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfyClient")
            .field("publish_url", &self.publish_url.as_str())
            .field("default_topic", &self.default_topic)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish()
    }
}

/// ntfy's sequence id: notifications of a topic with the same sequence id are one
/// notification, the latest publish replacing the earlier ones in place. ntfy accepts
/// 1–64 characters of `A–Z`, `a–z`, `0–9`, `-` and `_` and refuses any other value with
/// `400` (code 40049, "sequence ID invalid"), refusing the whole publish.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceId(String);

/// A value ntfy would refuse as a sequence id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ntfy sequence id {0:?}: 1–64 characters of A–Z, a–z, 0–9, - and _")]
pub struct InvalidSequenceId(String);

impl SequenceId {
    /// The longest sequence id ntfy accepts.
    pub const MAX_LEN: usize = 64;

    /// Checked constructor: ntfy's rule, `^[-_A-Za-z0-9]{1,64}$`.
    pub fn parse(raw: &str) -> Result<Self, InvalidSequenceId> {
        if (1..=Self::MAX_LEN).contains(&raw.len()) && raw.bytes().all(is_sequence_byte) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidSequenceId(raw.chars().take(Self::MAX_LEN + 1).collect()))
        }
    }

    /// The sequence id of every push of one message: the message id itself. A message id
    /// is `msg_` and a 26-character Crockford base-32 ULID, 30 characters ntfy accepts, so
    /// the id is kept as it is and a repeated push of the message carries the same value.
    pub fn for_message(id: &MessageId) -> Self {
        // Any character outside ntfy's set would become `_` and the id be cut to 64, so the
        // result is valid whatever the id; for a `MessageId` neither ever happens.
        let mapped: String = id
            .as_str()
            .bytes()
            .take(Self::MAX_LEN)
            .map(|b| if is_sequence_byte(b) { char::from(b) } else { '_' })
            .collect();
        if mapped.is_empty() { Self("msg".to_owned()) } else { Self(mapped) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SequenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_sequence_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// ntfy's JSON publish body.
#[derive(Debug, Serialize)]
struct JsonPublish<'a> {
    topic: &'a str,
    sequence_id: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    click: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    markdown: bool,
    #[serde(skip_serializing_if = "<[NotifyAction]>::is_empty")]
    actions: &'a [NotifyAction],
}

/// The part of ntfy's message object we use.
#[derive(Debug, Deserialize)]
struct PublishedMessage {
    id: Option<String>,
}

/// ntfy's error object, `{"code": 40301, "http": 403, "error": "forbidden"}`.
#[derive(Debug, Deserialize)]
struct NtfyErrorBody {
    error: Option<String>,
}

/// ntfy's topic rule.
pub fn is_valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl NtfyClient {
    /// Build the client; fails if the topic URL is unusable or the outbound policy of
    /// `http` would refuse the server (so a misconfiguration shows at startup).
    pub fn new(config: NtfyConfig, http: HttpClient) -> Result<Self, NtfyConfigError> {
        if config.max_attempts == 0 {
            return Err(NtfyConfigError::NoAttempts);
        }
        let url = Url::parse(config.topic_url.trim()).map_err(|e| NtfyConfigError::InvalidUrl(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(NtfyConfigError::UnexpectedUrlParts);
        }
        let path = url.path().trim_end_matches('/');
        let (base, topic) = path.rsplit_once('/').ok_or(NtfyConfigError::MissingTopic)?;
        if topic.is_empty() {
            return Err(NtfyConfigError::MissingTopic);
        }
        if !is_valid_topic(topic) {
            return Err(NtfyConfigError::InvalidTopic);
        }
        let mut publish_url = url.clone();
        publish_url.set_path(&format!("{base}/"));
        http.policy().check_url(&publish_url).map_err(NtfyConfigError::Refused)?;
        let retry = RetryPolicy {
            max_attempts: config.max_attempts,
            base_delay: config.backoff_base,
            max_delay: config.max_backoff,
            max_retry_after: config.max_retry_after,
        };
        Ok(Self { http, publish_url, default_topic: topic.to_owned(), auth: config.auth, retry })
    }

    /// Where JSON publishes go (the server root, e.g. `https://ntfy.sh/`).
    pub fn publish_url(&self) -> &Url {
        &self.publish_url
    }

    /// The topic of the configured URL.
    pub fn default_topic(&self) -> &str {
        &self.default_topic
    }

    /// Publish one notification, retrying transient failures within this call. Every
    /// publish with the same `sequence` (on the same topic) is one notification on the phone.
    pub async fn publish(&self, sequence: &SequenceId, notification: &NotifyPayload) -> Result<PushReceipt, PushError> {
        let topic = notification.topic.as_deref().unwrap_or(&self.default_topic);
        if !is_valid_topic(topic) {
            return Err(PushError::Permanent { message: NtfyConfigError::InvalidTopic.to_string() });
        }
        let body = JsonPublish {
            topic,
            sequence_id: sequence.as_str(),
            message: &notification.message,
            title: notification.title.as_deref(),
            priority: notification.priority.map(|p| p.get()),
            tags: &notification.tags,
            click: notification.click.as_deref(),
            markdown: notification.markdown,
            actions: &notification.actions,
        };
        let request = self.build_request(&body).map_err(|e| PushError::Permanent { message: e.to_string() })?;
        let result = self.http.send_with_retry(request, &self.retry).await;
        interpret(result)
    }

    fn build_request(&self, body: &JsonPublish<'_>) -> Result<OutboundRequest, HttpError> {
        let req =
            OutboundRequest::from_url(rez_http::Method::POST, self.publish_url.clone()).json(body)?.mark_idempotent();
        match &self.auth {
            NtfyAuth::None => Ok(req),
            NtfyAuth::Token(token) => req.bearer_auth(token),
            NtfyAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
        }
    }
}

/// Map the final outcome of the publish (after retries) to the port's terms.
/// Nothing here names the topic: whoever knows a public topic can read and post to it.
fn interpret(result: Result<HttpResponse, HttpError>) -> Result<PushReceipt, PushError> {
    let resp = match result {
        Ok(resp) => resp,
        Err(e) if e.is_retryable() || matches!(e, HttpError::Decode { .. }) => {
            return Err(PushError::Transient { message: format!("ntfy unreachable: {e}"), retry_after: None });
        }
        Err(e) => {
            return Err(PushError::Permanent { message: format!("ntfy publish impossible: {e}") });
        }
    };
    let status = resp.status;
    if status.is_success() {
        let push_id = match resp.json::<PublishedMessage>() {
            Ok(m) => m.id,
            Err(e) => {
                tracing::warn!(error = %e, "ntfy accepted the publish but its answer has no message id");
                None
            }
        };
        tracing::info!(push_id = push_id.as_deref().unwrap_or(""), "ntfy publish accepted");
        return Ok(PushReceipt { push_id });
    }
    let detail = resp.json::<NtfyErrorBody>().ok().and_then(|b| b.error).unwrap_or_else(|| resp.text());
    let mut detail = Redactor.text(detail.trim());
    if detail.len() > 200 {
        let cut = (0..=200).rev().find(|&i| detail.is_char_boundary(i)).unwrap_or(0);
        detail.truncate(cut);
    }
    let message =
        if detail.is_empty() { format!("ntfy answered {status}") } else { format!("ntfy answered {status}: {detail}") };
    if rez_http::is_retryable_status(status) {
        let retry_after = resp.retry_after();
        tracing::warn!(
            status = status.as_u16(),
            retry_after_s = retry_after.map(|d| d.as_secs()),
            "ntfy publish failed (transient)"
        );
        Err(PushError::Transient { message, retry_after })
    } else {
        tracing::warn!(status = status.as_u16(), "ntfy publish rejected (permanent)");
        Err(PushError::Permanent { message })
    }
}

#[async_trait]
impl Notifier for NtfyClient {
    async fn push(&self, message_id: &MessageId, notification: &NotifyPayload) -> Result<PushReceipt, PushError> {
        let span = tracing::info_span!("ntfy_push", message_id = %message_id);
        let sequence = SequenceId::for_message(message_id);
        tracing::Instrument::instrument(self.publish(&sequence, notification), span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rez_http::OutboundPolicy;

    fn http() -> HttpClient {
        HttpClient::new(OutboundPolicy::allowing(["ntfy.sh", "ntfy.example.com"]).expect("policy")).expect("client")
    }

    #[test]
    fn topic_url_parsing() {
        let c = NtfyClient::new(NtfyConfig::new("https://ntfy.sh/mytopic"), http()).expect("client");
        assert_eq!((c.publish_url().as_str(), c.default_topic()), ("https://ntfy.sh/", "mytopic"));
        let c = NtfyClient::new(NtfyConfig::new("https://ntfy.example.com/base/alerts/"), http()).expect("client");
        assert_eq!((c.publish_url().as_str(), c.default_topic()), ("https://ntfy.example.com/base/", "alerts"));
        for (url, want) in [
            ("https://ntfy.sh/", "MissingTopic"),
            ("https://ntfy.sh", "MissingTopic"),
            ("https://ntfy.sh/a.b", "InvalidTopic"),
            ("https://u:p@ntfy.sh/t", "UnexpectedUrlParts"),
            ("https://ntfy.sh/t?x=1", "UnexpectedUrlParts"),
            ("not a url", "InvalidUrl"),
            ("http://ntfy.sh/t", "Refused"),
            ("https://evil.example/t", "Refused"),
        ] {
            let e = NtfyClient::new(NtfyConfig::new(url), http()).expect_err(url);
            assert!(format!("{e:?}").starts_with(want), "{url}: {e:?}");
        }
        let zero = NtfyConfig { max_attempts: 0, ..NtfyConfig::new("https://ntfy.sh/t") };
        assert!(matches!(NtfyClient::new(zero, http()), Err(NtfyConfigError::NoAttempts)));
    }

    #[test]
    fn debug_hides_the_topic_and_credentials() {
        let c = NtfyConfig::new("https://ntfy.sh/topic-s3cret").with_basic_auth("me", "pw-s3cret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("topic-s3cret") && !shown.contains("pw-s3cret"), "{shown}");
        let auth = crate::assembly::NtfyAuth::Token("tk_s3cret".into());
        assert!(!format!("{auth:?}").contains("tk_s3cret"));
        let auth = crate::assembly::NtfyAuth::Basic { username: "me".into(), password: "pw-s3cret".into() };
        assert!(!format!("{auth:?}").contains("pw-s3cret"));
    }

    #[test]
    fn json_body_shape() {
        let mut n = NotifyPayload::text("hi");
        let minimal = serde_json::to_value(JsonPublish {
            topic: "t",
            sequence_id: "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            message: &n.message,
            title: None,
            priority: None,
            tags: &n.tags,
            click: None,
            markdown: false,
            actions: &[],
        })
        .expect("json");
        assert_eq!(
            minimal,
            serde_json::json!({"topic": "t", "sequence_id": "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "message": "hi"})
        );
        n.tags = vec!["a".into()];
        let full = serde_json::to_value(JsonPublish {
            topic: "t",
            sequence_id: "s",
            message: &n.message,
            title: Some("T"),
            priority: Some(5),
            tags: &n.tags,
            click: Some("https://x/"),
            markdown: true,
            actions: &[NotifyAction {
                action: rez_core::notify::NotifyActionKind::Http,
                label: "Approve".into(),
                url: "https://rez.example/a".into(),
                method: Some("POST".into()),
                clear: true,
            }],
        })
        .expect("json");
        assert_eq!(
            full,
            serde_json::json!({"topic": "t", "sequence_id": "s", "message": "hi", "title": "T", "priority": 5, "tags": ["a"], "click": "https://x/", "markdown": true,
                "actions": [{"action": "http", "label": "Approve", "url": "https://rez.example/a", "method": "POST", "clear": true}]})
        );
    }

    #[test]
    fn sequence_id_follows_ntfys_rule() {
        for ok in ["a", "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "A-b_9", &"x".repeat(64)] {
            assert_eq!(SequenceId::parse(ok).expect(ok).as_str(), ok);
        }
        for bad in ["", "a.b", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(SequenceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sequence_id_of_a_message_is_its_id() {
        let id = MessageId::new(chrono::Utc::now());
        let sequence = SequenceId::for_message(&id);
        assert_eq!(sequence.as_str(), id.as_str());
        assert_eq!(SequenceId::parse(sequence.as_str()), Ok(sequence.clone()));
        assert_eq!(SequenceId::for_message(&MessageId::parse(id.as_str()).expect("id")), sequence);
        assert_ne!(SequenceId::for_message(&MessageId::new(chrono::Utc::now())), sequence);
    }

    proptest::proptest! {
        #[test]
        fn parse_accepts_exactly_ntfys_rule(
            raw in proptest::prop_oneof!["[-_A-Za-z0-9]{0,70}", "[-_A-Za-z0-9./ é]{0,70}", "\\PC{0,70}"]
        ) {
            let valid = (1..=64).contains(&raw.len())
                && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            proptest::prop_assert_eq!(SequenceId::parse(&raw).is_ok(), valid);
        }

        #[test]
        fn every_message_id_is_a_valid_sequence_id(ms in 0i64..4_000_000_000_000) {
            let at = chrono::DateTime::from_timestamp_millis(ms).expect("time");
            let id = MessageId::new(at);
            let sequence = SequenceId::for_message(&id);
            proptest::prop_assert!(SequenceId::parse(sequence.as_str()).is_ok());
            proptest::prop_assert_eq!(sequence.as_str(), id.as_str());
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = NtfyConfig::new("https://ntfy.sh/t").with_token("tk_supersecret");
        assert!(!format!("{c:?}").contains("tk_supersecret"));
        let c = NtfyConfig::new("https://ntfy.sh/t").with_basic_auth("phil", "hunter2");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && shown.contains("phil"), "{shown}");
    }
}
