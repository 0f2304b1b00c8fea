//! Shared harness: the real server on 127.0.0.1:0 over a fresh data directory, with the
//! fake ntfy on loopback and a fresh admin key.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use rez_cli::config::Config;
use rez_cli::serve::Server;
use rez_testkit::model::FakeModel;
use rez_testkit::ntfy::FakeNtfy;
use serde_json::Value;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// The agent's settings for `model`'s Anthropic endpoint with `key`, which the fake then
/// requires; model retries start at 20 ms.
pub fn agent_env(model: &FakeModel, key: &str) -> Vec<(&'static str, String)> {
    model.expect_key(key);
    vec![
        ("REZ_AGENT_PROVIDER", "anthropic".to_owned()),
        ("REZ_AGENT_MODEL", "claude-sonnet-4-5".to_owned()),
        ("REZ_ANTHROPIC_API_KEY", key.to_owned()),
        ("REZ_ANTHROPIC_BASE_URL", model.anthropic_base_url()),
        ("REZ_AGENT_RETRY_BASE_MS", "20".to_owned()),
    ]
}

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    pub ntfy: FakeNtfy,
    pub dir: tempfile::TempDir,
}

pub fn config(data_dir: PathBuf, ntfy: Option<&FakeNtfy>) -> Config {
    config_with(data_dir, ntfy, &[])
}

/// [`config`] with more variables (they win).
pub fn config_with(data_dir: PathBuf, ntfy: Option<&FakeNtfy>, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("REZ_DATA_DIR".into(), data_dir.to_string_lossy().into_owned()),
        ("REZ_BIND".into(), "127.0.0.1:0".into()),
        ("REZ_API_KEY".into(), ADMIN_KEY.into()),
        ("REZ_RETRY_BACKOFF_MS".into(), "100".into()),
        ("REZ_SHUTDOWN_GRACE_SECS".into(), "5".into()),
        ("REZ_OUTBOUND_ALLOW_LOOPBACK".into(), "true".into()),
    ];
    if let Some(n) = ntfy {
        env.push(("REZ_NTFY_URL".into(), n.topic_url("alerts")));
    }
    for (k, v) in extra.iter().rev() {
        env.insert(0, ((*k).into(), (*v).into()));
    }
    Config::load_from(None, move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config")
}

impl TestServer {
    pub async fn start() -> Self {
        let ntfy = FakeNtfy::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Self::boot(config(dir.path().to_path_buf(), Some(&ntfy))).await;
        let base = format!("http://{}", server.addr);
        Self { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir }
    }

    pub async fn boot(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind(config.bind).await.expect("bind");
        Server::start(config, listener).await.expect("start")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).bearer_auth(ADMIN_KEY).json(&body).send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(ADMIN_KEY).send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn notify(&self, text: &str) -> String {
        let (status, body) = self
            .post_json("/api/messages", serde_json::json!({"message_type": "notify", "payload": {"message": text}}))
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Poll the message until `pred` holds or `within` passes; returns the last body.
    pub async fn wait_message(&self, id: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, body) = self.get_json(&format!("/api/messages/{id}")).await;
            if pred(&body) || tokio::time::Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("shutdown");
        }
    }
}

/// `rez serve` with every fake: ntfy, NOAA, and a cps.golf course (`birdsfoot`, pointed at
/// the fake through a user courses file) whose credentials are in the secret store.
pub struct WorldRig {
    pub t: TestServer,
    pub golf: rez_testkit::golf::FakeCpsGolf,
    pub _noaa: rez_testkit::noaa::FakeNoaa,
}

pub async fn world() -> WorldRig {
    world_with(&[]).await
}

/// [`world`] with more configuration variables (the agent's, for instance).
pub async fn world_with(extra: &[(&str, &str)]) -> WorldRig {
    use rez_core::ports::{SecretStore, SecretValue};
    use rez_testkit::golf::{FAKE_PASSWORD, FAKE_USERNAME, FakeCpsGolf};
    let ntfy = FakeNtfy::start().await;
    let noaa = rez_testkit::noaa::FakeNoaa::start().await;
    let golf = FakeCpsGolf::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let courses = dir.path().join("courses.yaml");
    std::fs::write(&courses, golf.courses_yaml()).expect("courses file");
    let mut config = config_with(dir.path().to_path_buf(), Some(&ntfy), extra);
    config.noaa_url = url::Url::parse(&noaa.url()).expect("noaa url");
    config.noaa_user_agent = "rez_agent tests (tests@example.com)".into();
    config.courses_file = Some(courses);
    // Golf timing 20 times faster than production (30 s client timeout, lookups 30 s…10
    // min after an uncertain reserve), and a short wait inside one delivery, so that a
    // pending lookup hands the message back to the queue.
    config.golf.request_timeout = Duration::from_millis(1500);
    config.golf.booking = rez_actions::golf::BookingPolicy {
        lease: Duration::from_secs(15),
        verify_after: [1500, 3000, 6000, 15_000, 30_000].map(Duration::from_millis).to_vec(),
        max_wait: Duration::from_millis(500),
    };
    let store = rez_cli::wiring::open_store(&config).expect("store");
    let creds = serde_json::json!({"username": FAKE_USERNAME, "password": FAKE_PASSWORD}).to_string();
    store.put_secret("golf/birdsfoot", &SecretValue::new(creds)).await.expect("credentials");
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    let t = TestServer { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir };
    WorldRig { t, golf, _noaa: noaa }
}

/// The URL a spawned `rez serve` prints on its stdout (`rez listening on URL`), read within
/// 20 s; the rest of stdout is drained in the background so the child never blocks on a
/// full pipe.
pub async fn listening_url(stdout: tokio::process::ChildStdout) -> String {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("rez listening on ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("rez did not start in time")
    .expect("no listening line");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    url
}
