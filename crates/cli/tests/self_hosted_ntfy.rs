//! A self-hosted ntfy named by the operator: `REZ_NTFY_URL` may be plain http to an
//! address the strict policy forbids (here loopback, which the URL names explicitly) with
//! no test allowance switched on, and the push is delivered. (The start-up warning about
//! http is checked in `logs.rs`; private ranges in `rez-http`'s policy tests.)

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, TestServer};
use rez_cli::config::Config;
use rez_testkit::ntfy::FakeNtfy;

#[tokio::test]
async fn an_operator_configured_http_ntfy_on_a_local_address_is_used() {
    let ntfy = FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = vec![
        ("REZ_DATA_DIR".into(), dir.path().to_string_lossy().into_owned()),
        ("REZ_BIND".into(), "127.0.0.1:0".into()),
        ("REZ_API_KEY".into(), ADMIN_KEY.into()),
        ("REZ_NTFY_URL".into(), ntfy.topic_url("home")),
        ("REZ_RETRY_BACKOFF_MS".into(), "100".into()),
    ];
    let config =
        Config::load_from(None, move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config");
    assert!(!config.allow_loopback_for_tests, "no test allowance is involved");
    assert_eq!(config.ntfy.as_ref().map(|n| n.url.scheme()), Some("http"));
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    let mut t = TestServer { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir };
    let id = t.notify("from the home server").await;
    let m = t.wait_message(&id, Duration::from_secs(10), |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(t.ntfy.received()[0].message, "from the home server");
    t.stop().await;
}
