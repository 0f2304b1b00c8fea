//! The dashboard in a real headless Chromium through chromedriver (WebDriver, with
//! `fantoccini`): signing in, an `at()` schedule created in the form whose notification
//! reaches the inbox page, a dead letter redriven, a `read` key that sees no action, a
//! revoked key's session refused, and axe-core on every page (no serious or critical
//! violation). Screenshots (desktop and 390 px) go to `target/dashboard-screenshots/`.
//!
//! Skipped only when Chromium is missing and `REZ_BROWSER_TESTS` is not `1` (CI sets it
//! and installs Chromium, so there a missing browser fails the tests).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{ADMIN_KEY, TestServer};
use fantoccini::{Client, ClientBuilder, Locator};
use rez_core::auth::Scope;
use rez_testkit::model::{FakeModel, FakeTurn};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const AXE: &str = include_str!("fixtures/axe.min.js");

/// Whether to run: the browser is there, or CI insists.
fn browser_available() -> bool {
    let present = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        assert_ne!(
            std::env::var("REZ_BROWSER_TESTS").as_deref(),
            Ok("1"),
            "REZ_BROWSER_TESTS=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no Chromium here (apt-get install chromium chromium-driver, or REZ_BROWSER_TESTS=1)");
    }
    present
}

/// A chromedriver on a free loopback port and one browser session through it.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let caps = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--window-size=1280,900"]}});
        let caps: serde_json::Map<String, Value> = serde_json::from_value(caps).expect("caps");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not start a session: {e}"),
            }
        };
        Self { client, _driver: driver }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("source")
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.expect(css).click().await.expect("click");
    }

    async fn sign_in(&self, base: &str, key: &str) {
        self.goto(&format!("{base}/signin")).await;
        self.fill("#key", key).await;
        self.click("form button[type=submit]").await;
        // Signed in (the navigation) or refused (the error on the form).
        self.wait_for("nav.main, #signin-error").await;
    }

    /// Wait (up to 5 s) until the page shows `css`: a click's navigation has landed.
    async fn wait_for(&self, css: &str) {
        self.client.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css(css)).await.expect(css);
    }

    async fn path(&self) -> String {
        self.client.current_url().await.expect("url").path().to_owned()
    }

    /// The serious and critical axe-core violations of the current page.
    async fn axe(&self) -> Vec<String> {
        self.client.execute(AXE, vec![]).await.expect("axe loaded");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe run");
        serde_json::from_value(found).expect("a list")
    }

    /// Desktop and 390 px wide screenshots of the current page.
    async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (label, w, h) in [("desktop", 1280, 900), ("390px", 390, 844)] {
            self.client.set_window_size(w, h).await.expect("resize");
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
        }
        self.client.set_window_size(1280, 900).await.expect("resize");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("dashboard-screenshots")
}

/// Poll `page` until its source contains `text`, within `within`.
async fn wait_for_text(b: &Browser, page: &str, text: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        b.goto(page).await;
        if b.source().await.contains(text) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn sign_in_create_an_at_schedule_and_see_its_notification_in_the_inbox_with_every_page_accessible() {
    if !browser_available() {
        return;
    }
    let mut t = TestServer::start().await;
    let b = Browser::start().await;
    b.goto(&t.url("/")).await;
    assert_eq!(b.path().await, "/signin", "signed out: sent to sign in");
    assert!(b.axe().await.is_empty(), "sign-in page: {:?}", b.axe().await);
    b.screenshots("signin").await;
    b.sign_in(&t.base, ADMIN_KEY).await;
    assert_eq!(b.path().await, "/");
    // Times are shown in the browser's zone with UTC on hover: the script ran (CSP allows it).
    let localised: bool = serde_json::from_value(
        b.client
            .execute("const t = document.querySelector('time'); return !t || !t.textContent.endsWith('UTC');", vec![])
            .await
            .expect("script"),
    )
    .expect("bool");
    assert!(localised, "the <time> elements were localised");
    // Keyboard only: the first Tab reaches the skip link, which shows itself with a
    // visible focus ring; Enter follows it to the content.
    b.client.find(Locator::Css("body")).await.expect("body").send_keys("\u{E004}").await.expect("tab");
    let focused: Value = b
        .client
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e);
             return [e.className, s.outlineStyle, s.outlineWidth, e.getBoundingClientRect().left >= 0];",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(focused[0], "skip", "{focused}");
    assert_eq!(focused[1], "solid", "a visible focus outline: {focused}");
    assert_eq!(focused[3], true, "the skip link is on screen when focused: {focused}");
    b.client.active_element().await.expect("focused").send_keys("\u{E007}").await.expect("enter");
    assert_eq!(b.client.current_url().await.expect("url").fragment(), Some("main"));

    // An at() schedule eight seconds ahead, created through the form.
    let at = (chrono::Utc::now() + chrono::TimeDelta::seconds(8)).format("at(%Y-%m-%dT%H:%M:%S)").to_string();
    b.goto(&t.url("/schedules/new")).await;
    b.fill("input[name=name]", "soon").await;
    b.fill("input[name=schedule_expression]", &at).await;
    b.fill("input[name=timezone]", "UTC").await;
    b.fill("input[name=title]", "From the browser").await;
    b.fill("textarea[name=message]", "the at schedule fired").await;
    // The preview follows the typing (the script), then the button does it without it.
    b.client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#preview li"))
        .await
        .expect("the live preview lists the fire time");
    b.click("form.stack button[formaction]").await;
    b.wait_for("form.stack input[name=name][value=soon]").await;
    assert!(b.source().await.contains(&at[3..at.len() - 1]), "the preview before saving names the instant");
    b.screenshots("schedule-new").await;
    b.click("form.stack button:not([formaction])").await;
    b.wait_for("p.notice").await;
    assert!(b.path().await.starts_with("/schedules/sch_"), "{}", b.path().await);
    assert!(b.source().await.contains("The schedule was created."));
    b.screenshots("schedule").await;
    assert!(
        wait_for_text(&b, &t.url("/notifications"), "the at schedule fired", Duration::from_secs(20)).await,
        "the notification reached the inbox page"
    );
    b.screenshots("notifications").await;

    // axe-core finds what it should: an unlabelled field added to a page is reported.
    b.goto(&t.url("/messages")).await;
    b.client
        .execute("document.querySelector('main').appendChild(document.createElement('input'));", vec![])
        .await
        .expect("script");
    let found = b.axe().await;
    assert!(found.iter().any(|v| v.starts_with("label")), "axe reports an unlabelled field: {found:?}");

    // axe-core on every page, with data on it.
    let (_, list) = t.get_json("/api/messages?limit=1").await;
    let message = list["items"][0]["id"].as_str().expect("a message").to_owned();
    let (_, schedules) = t.get_json("/api/schedules").await;
    let schedule = schedules["items"][0]["id"].as_str().expect("a schedule").to_owned();
    for (name, path) in [
        ("overview", "/".to_owned()),
        ("messages", "/messages".to_owned()),
        ("message", format!("/messages/{message}")),
        ("schedules", "/schedules".to_owned()),
        ("schedule-detail", format!("/schedules/{schedule}")),
        ("dead-letters", "/dead-letters".to_owned()),
        ("keys", "/keys".to_owned()),
        ("agent-runs", "/agent/runs".to_owned()),
        ("chat-off", "/agent/chat".to_owned()),
        ("approvals", "/approvals?state=all".to_owned()),
        ("courses", "/courses".to_owned()),
    ] {
        b.goto(&t.url(&path)).await;
        let violations = b.axe().await;
        assert!(violations.is_empty(), "{path}: {violations:#?}");
        b.screenshots(name).await;
    }
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_redriven_from_the_browser() {
    if !browser_available() {
        return;
    }
    let mut t = TestServer::start().await;
    t.ntfy.fail_always(500);
    let id = t.notify("redrive me").await;
    let m = t.wait_message(&id, Duration::from_secs(30), |m| m["status"] == "dead_lettered").await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    t.ntfy.reset();
    let b = Browser::start().await;
    b.sign_in(&t.base, ADMIN_KEY).await;
    b.goto(&t.url("/dead-letters")).await;
    assert!(b.source().await.contains("500"), "why it failed is shown");
    let violations = b.axe().await;
    assert!(violations.is_empty(), "dead letters with one: {violations:#?}");
    b.screenshots("dead-letter").await;
    b.click(&format!("button[aria-label='Redrive {id}']")).await;
    b.wait_for("p.notice").await;
    assert!(b.source().await.contains("1 dead letter(s) sent back"));
    let m = t.wait_message(&id, Duration::from_secs(10), |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed", "{m}");
    b.screenshots("dead-letter-redriven").await;
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn a_read_key_sees_no_action_and_a_revoked_keys_session_is_refused() {
    if !browser_available() {
        return;
    }
    let mut t = TestServer::start().await;
    t.notify("something to look at").await;
    let services = t.server.as_ref().expect("server").services.clone();
    let read = services.keys.create("reader", Scope::Read).await.expect("key");
    let b = Browser::start().await;
    b.sign_in(&t.base, &read.token).await;
    for path in ["/", "/messages", "/schedules", "/dead-letters", "/notifications"] {
        b.goto(&t.url(path)).await;
        let buttons =
            b.client.find_all(Locator::Css("main form[method=post] button, main a.button")).await.expect("find");
        assert!(buttons.is_empty(), "{path}: a read key sees no action button");
        let posts = b.client.find_all(Locator::Css("form[method=post]")).await.expect("find");
        assert_eq!(posts.len(), 1, "{path}: only sign-out");
    }
    b.goto(&t.url("/schedules")).await;
    b.screenshots("read-key").await;
    // Revoked while signed in: the next page is the sign-in page.
    services.keys.store().revoke(&read.record.id, chrono::Utc::now()).await.expect("revoke");
    b.goto(&t.url("/messages")).await;
    assert_eq!(b.path().await, "/signin", "the revoked key's session is refused at once");
    b.sign_in(&t.base, &read.token).await;
    assert!(b.source().await.contains("revoked"), "and it cannot sign in again");
    b.screenshots("revoked").await;
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn chat_with_the_fake_model_shows_the_steps_and_the_answers_of_a_session() {
    if !browser_available() {
        return;
    }
    const KEY: &str = "sk-ant-test-key";
    let model = FakeModel::start().await;
    model.set_latency(Duration::from_millis(1500));
    model.script([
        FakeTurn::tool_call("get_weather_forecast", json!({"course": "birdsfoot", "days": 1})),
        FakeTurn::text("Dry and mild tomorrow at Birdsfoot."),
        FakeTurn::text("The day after looks dry too."),
    ]);
    let agent = common::agent_env(&model, KEY);
    let env: Vec<(&str, &str)> = agent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut r = common::world_with(&env).await;
    let b = Browser::start().await;
    b.sign_in(&r.t.base, ADMIN_KEY).await;
    b.goto(&r.t.url("/agent/chat")).await;
    b.fill("textarea[name=message]", "Will it rain at Birdsfoot tomorrow?").await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for(".exchange").await;
    // The page looks again by itself (the script) until the run has answered; a step
    // in progress is shown on the way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut saw_a_step = false;
    loop {
        let page = b.source().await;
        saw_a_step |= page.contains("get_weather_forecast") || page.contains("thought");
        if page.contains("Dry and mild tomorrow at Birdsfoot.") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no answer on the page: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_a_step, "the run's steps were shown while it worked");
    let violations = b.axe().await;
    assert!(violations.is_empty(), "chat: {violations:#?}");
    // A second turn in the same session keeps the first.
    b.fill("textarea[name=message]", "And the day after?").await;
    b.click("form.stack button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = b.source().await;
        if page.contains("The day after looks dry too.") {
            assert!(page.contains("Dry and mild tomorrow at Birdsfoot."), "the session's first exchange stays");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no second answer: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshots("chat").await;
    assert!(model.requests().last().expect("a request").last_user_text().contains("And the day after?"));
    b.close().await;
    r.t.stop().await;
}
