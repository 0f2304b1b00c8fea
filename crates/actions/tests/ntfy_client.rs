//! The ntfy client against the fake ntfy server of `rez-testkit`, reached through
//! rez-http's test-only loopback allowance.

use std::time::{Duration, Instant};

use rez_actions::{NtfyClient, NtfyConfig};
use rez_core::MessageId;
use rez_core::notify::{NotifyPayload, Priority};
use rez_core::ports::{Notifier, PushError};
use rez_http::{HttpClient, OutboundPolicy};
use rez_testkit::{FakeNtfy, PublishForm};

fn http() -> HttpClient {
    HttpClient::new(OutboundPolicy::loopback_for_tests()).expect("http client")
}

/// Fast retries so the tests do not sleep for long.
fn config(fake: &FakeNtfy, topic: &str) -> NtfyConfig {
    NtfyConfig { backoff_base: Duration::from_millis(5), ..NtfyConfig::new(fake.topic_url(topic)) }
}

fn id() -> MessageId {
    MessageId::new(chrono::Utc::now())
}

fn full_payload() -> NotifyPayload {
    NotifyPayload {
        message: "**Tee time** booked for 8:10".into(),
        title: Some("Golf".into()),
        priority: Some(Priority::try_from(4).expect("priority")),
        tags: vec!["golf".into(), "white_check_mark".into()],
        click: Some("https://x.cps.golf/booking/1".into()),
        markdown: true,
        topic: None,
        actions: vec![],
    }
}

#[tokio::test]
async fn all_fields_arrive() {
    let fake = FakeNtfy::start().await;
    fake.require_token("tk_0123456789");
    let client = NtfyClient::new(config(&fake, "rez-alerts").with_token("tk_0123456789"), http()).expect("ntfy client");
    let receipt = client.push(&id(), &full_payload()).await.expect("push");
    let got = fake.received();
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(receipt.push_id.as_deref(), Some(p.id.as_str()));
    assert_eq!(p.form, PublishForm::Json);
    assert_eq!(p.topic, "rez-alerts");
    assert_eq!(p.message, "**Tee time** booked for 8:10");
    assert_eq!(p.title.as_deref(), Some("Golf"));
    assert_eq!(p.priority, Some(4));
    assert_eq!(p.tags, vec!["golf", "white_check_mark"]);
    assert_eq!(p.click.as_deref(), Some("https://x.cps.golf/booking/1"));
    assert!(p.markdown);
    assert_eq!(p.authorization(), Some("Bearer tk_0123456789"));
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
async fn minimal_payload_and_topic_override() {
    let fake = FakeNtfy::start().await;
    let client = NtfyClient::new(config(&fake, "default-topic"), http()).expect("ntfy client");
    client.push(&id(), &NotifyPayload::text("plain")).await.expect("push");
    let mut other = NotifyPayload::text("elsewhere");
    other.topic = Some("other_topic".into());
    client.push(&id(), &other).await.expect("push");
    let got = fake.received();
    assert_eq!((got[0].topic.as_str(), got[0].message.as_str()), ("default-topic", "plain"));
    assert_eq!((got[0].title.as_deref(), got[0].priority, got[0].markdown), (None, None, false));
    assert!(got[0].tags.is_empty() && got[0].click.is_none() && got[0].authorization().is_none());
    assert_eq!(got[1].topic, "other_topic");

    let mut bad = NotifyPayload::text("x");
    bad.topic = Some("../admin".into());
    assert!(matches!(client.push(&id(), &bad).await, Err(PushError::Permanent { .. })));
    assert_eq!(fake.attempts(), 2, "an invalid topic is never sent");
}

#[tokio::test]
async fn throttled_twice_then_success() {
    let fake = FakeNtfy::start().await;
    fake.throttle_next(2, 1);
    let client = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    let started = Instant::now();
    let receipt = client.push(&id(), &NotifyPayload::text("hi")).await.expect("third attempt succeeds");
    let waited = started.elapsed();
    assert!(receipt.push_id.is_some());
    assert_eq!((fake.attempts(), fake.count()), (3, 1));
    assert!(waited >= Duration::from_secs(2), "Retry-After: 1 twice must be honoured ({waited:?})");
}

#[tokio::test]
async fn server_errors_forever_end_as_transient_after_max_attempts() {
    let fake = FakeNtfy::start().await;
    fake.fail_always(500);
    let client = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    let err = client.push(&id(), &NotifyPayload::text("hi")).await.expect_err("fails");
    match err {
        PushError::Transient { message, retry_after } => {
            assert!(message.contains("500"), "{message}");
            assert_eq!(retry_after, None);
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert_eq!((fake.attempts(), fake.count()), (3, 0));

    let five = NtfyClient::new(NtfyConfig { max_attempts: 5, ..config(&fake, "t") }, http()).expect("ntfy client");
    assert!(matches!(five.push(&id(), &NotifyPayload::text("hi")).await, Err(PushError::Transient { .. })));
    assert_eq!(fake.attempts(), 8);
}

#[tokio::test]
async fn long_retry_after_is_handed_to_the_caller() {
    let fake = FakeNtfy::start().await;
    fake.throttle_next(1, 3600);
    let client = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    let err = client.push(&id(), &NotifyPayload::text("hi")).await.expect_err("throttled");
    assert!(
        matches!(err, PushError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert_eq!(fake.attempts(), 1, "no retry inside the call when the server asks for an hour");
}

#[tokio::test]
async fn client_errors_are_permanent_and_not_retried() {
    let fake = FakeNtfy::start().await;
    fake.fail_next(1, 400);
    let client = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    let err = client.push(&id(), &NotifyPayload::text("hi")).await.expect_err("400");
    assert!(
        matches!(&err, PushError::Permanent { message } if message.contains("400") && message.contains("injected failure")),
        "{err:?}"
    );
    assert_eq!(fake.attempts(), 1);

    // Wrong token: 401, permanent, and the token is not in the error.
    fake.reset();
    fake.require_token("tk_right");
    let wrong = NtfyClient::new(config(&fake, "t").with_token("tk_wrong_secret"), http()).expect("ntfy client");
    let err = wrong.push(&id(), &NotifyPayload::text("hi")).await.expect_err("401");
    assert!(matches!(&err, PushError::Permanent { message } if message.contains("401")), "{err:?}");
    assert!(!format!("{err:?}").contains("tk_wrong_secret"));
    let none = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    assert!(
        matches!(none.push(&id(), &NotifyPayload::text("hi")).await, Err(PushError::Permanent { message }) if message.contains("403"))
    );
    assert_eq!((fake.attempts(), fake.count()), (2, 0));
}

#[tokio::test]
async fn basic_auth() {
    let fake = FakeNtfy::start().await;
    fake.require_basic("phil", "s3cret pass");
    let client =
        NtfyClient::new(config(&fake, "t").with_basic_auth("phil", "s3cret pass"), http()).expect("ntfy client");
    client.push(&id(), &NotifyPayload::text("hi")).await.expect("push");
    // base64("phil:s3cret pass")
    assert_eq!(fake.received()[0].authorization(), Some("Basic cGhpbDpzM2NyZXQgcGFzcw=="));
}

#[tokio::test]
async fn unreachable_server_is_transient() {
    let fake = FakeNtfy::start().await;
    let topic_url = fake.topic_url("t");
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client =
        NtfyClient::new(NtfyConfig { backoff_base: Duration::from_millis(5), ..NtfyConfig::new(topic_url) }, http())
            .expect("ntfy client");
    let err = client.push(&id(), &NotifyPayload::text("hi")).await.expect_err("nobody listens");
    assert!(matches!(err, PushError::Transient { retry_after: None, .. }), "{err:?}");
}

#[tokio::test]
async fn the_default_policy_refuses_a_loopback_server() {
    let fake = FakeNtfy::start().await;
    let strict = HttpClient::new(OutboundPolicy::allowing(["127.0.0.1"]).expect("policy")).expect("http client");
    let err = NtfyClient::new(config(&fake, "t"), strict).expect_err("refused");
    assert!(matches!(err, rez_actions::NtfyConfigError::Refused(_)), "{err:?}");
    assert_eq!(fake.attempts(), 0);
}

#[tokio::test]
async fn a_repeated_push_of_one_message_shows_once_on_the_phone() {
    let fake = FakeNtfy::start().await;
    let client = NtfyClient::new(config(&fake, "t"), http()).expect("ntfy client");
    let (first, second) = (id(), id());
    client.push(&first, &NotifyPayload::text("one")).await.expect("push");
    // A redelivery of the same message after a crash pushes it again.
    client.push(&first, &NotifyPayload::text("one")).await.expect("push");
    client.push(&second, &NotifyPayload::text("two")).await.expect("push");
    let got = fake.received();
    assert_eq!(got.len(), 3, "ntfy received every publish");
    assert_eq!(got[0].sequence_id.as_deref(), Some(first.as_str()));
    assert_eq!(got[1].sequence_id.as_deref(), Some(first.as_str()));
    assert_eq!(got[2].sequence_id.as_deref(), Some(second.as_str()));
    assert_eq!(fake.shown_on_phone(), 2, "the repeat replaced the first notification");
}
