//! The fake ntfy server itself: both publish forms, ntfy's response shape, fault
//! injection, auth, counting and waiting.

use std::time::{Duration, Instant};

use rez_testkit::{FakeNtfy, PublishForm};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

#[tokio::test]
async fn plain_publish_with_headers() {
    let fake = FakeNtfy::start().await;
    let resp = client()
        .post(fake.topic_url("alerts"))
        .header("Title", "Tee time")
        .header("X-Priority", "high")
        .header("Tags", "golf, warning")
        .header("X-Click", "https://x.cps.golf/")
        .header("Markdown", "yes")
        .header("Authorization", "Bearer tk_abc")
        .body("**Booked** 8:10")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["event"], "message");
    assert_eq!(body["topic"], "alerts");
    assert_eq!(body["message"], "**Booked** 8:10");
    assert_eq!(body["title"], "Tee time");
    assert_eq!(body["priority"], 4);
    assert_eq!(body["tags"], json!(["golf", "warning"]));
    assert_eq!(body["content_type"], "text/markdown");
    let id = body["id"].as_str().expect("id");
    assert_eq!(id.len(), 12);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(body["expires"].as_u64().expect("expires") > body["time"].as_u64().expect("time"));

    let got = fake.received();
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(p.id, id);
    assert_eq!(p.form, PublishForm::Plain);
    assert_eq!((p.topic.as_str(), p.message.as_str()), ("alerts", "**Booked** 8:10"));
    assert_eq!(p.title.as_deref(), Some("Tee time"));
    assert_eq!(p.priority, Some(4));
    assert_eq!(p.tags, vec!["golf", "warning"]);
    assert_eq!(p.click.as_deref(), Some("https://x.cps.golf/"));
    assert!(p.markdown);
    assert_eq!(p.authorization(), Some("Bearer tk_abc"));
}

#[tokio::test]
async fn plain_publish_with_short_aliases_and_query() {
    let fake = FakeNtfy::start().await;
    let c = client();
    c.put(format!("{}?t=From%20query&p=1", fake.topic_url("q")))
        .header("ta", "a,b")
        .body("hi")
        .send()
        .await
        .expect("send");
    c.post(fake.topic_url("q")).header("p", "5").header("ti", "short").send().await.expect("send");
    let got = fake.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].title.as_deref(), Some("From query"));
    assert_eq!(got[0].priority, Some(1));
    assert_eq!(got[0].tags, vec!["a", "b"]);
    assert_eq!(got[0].method, reqwest::Method::PUT);
    assert_eq!(got[1].priority, Some(5));
    assert_eq!(got[1].message, "triggered", "empty body → ntfy's default message");
    assert!(!got[1].markdown);
}

#[tokio::test]
async fn json_publish() {
    let fake = FakeNtfy::start().await;
    let resp = client()
        .post(format!("{}/", fake.url()))
        .json(&json!({"topic": "golf", "message": "m", "title": "t", "priority": 2, "tags": ["x"], "click": "https://a.b/", "markdown": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["topic"], "golf");
    let p = &fake.received()[0];
    assert_eq!(p.form, PublishForm::Json);
    assert_eq!((p.topic.as_str(), p.message.as_str(), p.title.as_deref()), ("golf", "m", Some("t")));
    assert_eq!(p.priority, Some(2));
    assert_eq!(p.tags, vec!["x"]);
    assert_eq!(p.click.as_deref(), Some("https://a.b/"));
    assert!(p.markdown);
}

#[tokio::test]
async fn malformed_requests_are_rejected_and_not_recorded() {
    let fake = FakeNtfy::start().await;
    let c = client();
    let root = format!("{}/", fake.url());
    assert_eq!(c.post(&root).body("not json").send().await.expect("send").status(), 400);
    assert_eq!(c.post(&root).json(&json!({"message": "no topic"})).send().await.expect("send").status(), 400);
    assert_eq!(c.post(&root).json(&json!({"topic": "t", "priority": 9})).send().await.expect("send").status(), 400);
    assert_eq!(c.post(fake.topic_url("t")).header("Priority", "loud").send().await.expect("send").status(), 400);
    assert_eq!(c.post(fake.topic_url("bad.topic")).send().await.expect("send").status(), 404);
    assert_eq!(c.get(fake.topic_url("t")).send().await.expect("send").status(), 404);
    let err: Value = c.post(&root).body("x").send().await.expect("send").json().await.expect("json");
    assert_eq!(err["http"], 400);
    assert_eq!(err["code"], 40001);
    assert_eq!(fake.count(), 0);
    assert_eq!(fake.attempts(), 7);
}

#[tokio::test]
async fn throttling_and_failures() {
    let fake = FakeNtfy::start().await;
    let c = client();
    fake.throttle_next(2, 7);
    fake.fail_next(1, 503);
    for _ in 0..2 {
        let r = c.post(fake.topic_url("t")).body("x").send().await.expect("send");
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let err: Value = r.json().await.expect("json");
        assert_eq!(err["code"], 42901);
    }
    assert_eq!(c.post(fake.topic_url("t")).body("x").send().await.expect("send").status(), 503);
    assert_eq!(c.post(fake.topic_url("t")).body("x").send().await.expect("send").status(), 200);
    assert_eq!((fake.count(), fake.attempts()), (1, 4));

    fake.fail_always(500);
    for _ in 0..3 {
        assert_eq!(c.post(fake.topic_url("t")).body("x").send().await.expect("send").status(), 500);
    }
    assert_eq!((fake.count(), fake.attempts()), (1, 7));
    fake.reset();
    assert_eq!((fake.count(), fake.attempts()), (0, 0));
    assert_eq!(c.post(fake.topic_url("t")).body("x").send().await.expect("send").status(), 200);
}

#[tokio::test]
async fn tokens_and_basic_auth() {
    let fake = FakeNtfy::start().await;
    let c = client();
    fake.require_token("tk_good");
    assert_eq!(c.post(fake.topic_url("t")).body("x").send().await.expect("send").status(), 403);
    assert_eq!(c.post(fake.topic_url("t")).bearer_auth("tk_bad").body("x").send().await.expect("send").status(), 401);
    assert_eq!(c.post(fake.topic_url("t")).bearer_auth("tk_good").body("x").send().await.expect("send").status(), 200);
    assert_eq!(
        c.post(fake.topic_url("t")).basic_auth("", Some("tk_good")).body("x").send().await.expect("send").status(),
        200
    );
    fake.require_basic("phil", "pw");
    assert_eq!(
        c.post(fake.topic_url("t")).basic_auth("phil", Some("nope")).body("x").send().await.expect("send").status(),
        401
    );
    assert_eq!(
        c.post(fake.topic_url("t")).basic_auth("phil", Some("pw")).body("x").send().await.expect("send").status(),
        200
    );
    assert_eq!(fake.count(), 3);
}

#[tokio::test]
async fn wait_for_and_delay() {
    let fake = FakeNtfy::start().await;
    assert!(!fake.wait_for(1, Duration::from_millis(50)).await);
    fake.set_delay(Duration::from_millis(200));
    let url = fake.topic_url("t");
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..2 {
            client().post(&url).body("x").send().await.expect("send");
        }
    });
    assert!(fake.wait_for(2, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    sender.await.expect("sender");
    let got = fake.received();
    assert!(got[1].at >= got[0].at);
    assert!(fake.wait_for(2, Duration::ZERO).await);
}

#[tokio::test]
async fn a_repeated_sequence_id_replaces_the_notification_on_the_phone() {
    let fake = FakeNtfy::start().await;
    let c = client();
    let publish = |topic: &str, message: &str, sequence: Option<&str>| {
        let mut body = json!({"topic": topic, "message": message});
        if let Some(s) = sequence {
            body["sequence_id"] = json!(s);
        }
        c.post(format!("{}/", fake.url())).json(&body).send()
    };
    let first: Value = publish("t", "first", Some("msg_1")).await.expect("send").json().await.expect("json");
    assert_eq!(first["sequence_id"], "msg_1");
    publish("t", "again", Some("msg_1")).await.expect("send");
    publish("other", "same id, other topic", Some("msg_1")).await.expect("send");
    publish("t", "no sequence", None).await.expect("send");
    publish("t", "no sequence", None).await.expect("send");
    // The header form, its alias and the path form.
    c.post(fake.topic_url("t")).header("X-Sequence-ID", "msg_2").body("h").send().await.expect("send");
    c.post(fake.topic_url("t")).header("sid", "msg_2").body("h2").send().await.expect("send");
    c.post(format!("{}/msg_3", fake.topic_url("t"))).body("path").send().await.expect("send");

    assert_eq!(fake.count(), 8);
    let shown = fake.on_phone();
    let texts: Vec<(&str, &str)> = shown.iter().map(|p| (p.topic.as_str(), p.message.as_str())).collect();
    assert_eq!(
        texts,
        [
            ("t", "again"),
            ("other", "same id, other topic"),
            ("t", "no sequence"),
            ("t", "no sequence"),
            ("t", "h2"),
            ("t", "path")
        ]
    );
    assert_eq!(fake.shown_on_phone(), 6);
    assert_eq!(fake.received()[7].sequence_id.as_deref(), Some("msg_3"));
}

#[tokio::test]
async fn an_invalid_sequence_id_refuses_the_publish() {
    let fake = FakeNtfy::start().await;
    let c = client();
    for bad in ["a.b", "with space", &"x".repeat(65)] {
        let resp = c
            .post(format!("{}/", fake.url()))
            .json(&json!({"topic": "t", "message": "m", "sequence_id": bad}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!((body["code"].as_u64(), body["http"].as_u64()), (Some(40049), Some(400)), "{bad}");
    }
    let resp = c.post(fake.topic_url("t")).header("X-Sequence-ID", "a/b").body("m").send().await.expect("send");
    assert_eq!(resp.status(), 400);
    // An empty one is none.
    c.post(format!("{}/", fake.url()))
        .json(&json!({"topic": "t", "message": "m", "sequence_id": ""}))
        .send()
        .await
        .expect("send");
    assert_eq!(fake.count(), 1);
    assert_eq!(fake.received()[0].sequence_id, None);
}
