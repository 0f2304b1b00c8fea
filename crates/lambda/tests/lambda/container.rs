//! Container/laptop mode: `rez-lambda provision` creates the template's resources on an
//! emulator and prints the environment; `rez-lambda serve` runs API, MCP and the queue
//! consumers in one process against it (`AWS_ENDPOINT_URL`). A notification posted to
//! the API reaches (fake) ntfy through SNS and SQS with no Lambda involved.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use rez_testkit::{FakeNtfy, Moto};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rez-lambda");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_then_serve_runs_the_cloud_flow_on_the_emulator() {
    let endpoint = Moto::shared().endpoint().to_owned();
    let prefix = format!("rez-c{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let out = Command::new(BIN)
        .args(["provision", "--endpoint", &endpoint, "--prefix", &prefix, "--stage", "dev"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert!(env.iter().any(|(k, v)| k == "REZ_TABLE_MESSAGES" && v == &format!("{prefix}-messages")), "{env:?}");

    // A scoped key, created straight in the deployment's keys table.
    let out = Command::new(BIN)
        .args(["create-key", "--name", "reader", "--scope", "read"])
        .envs(env.clone())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(read_key.starts_with("rez_"), "{read_key}");

    let ntfy = FakeNtfy::start().await;
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("REZ_API_KEY", common::ADMIN_KEY)
        .env("REZ_NTFY_URL", ntfy.topic_url("container"))
        .env("REZ_OUTBOUND_ALLOW_LOOPBACK", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.split("listening on ").nth(1) {
                return url.trim().to_owned();
            }
        }
        panic!("serve exited before listening");
    })
    .await
    .expect("serve listens");

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{url}/api/messages"))
        .bearer_auth(common::ADMIN_KEY)
        .json(&json!({"message_type": "notify", "payload": {"message": "from the container"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    assert!(ntfy.wait_for(1, Duration::from_secs(20)).await, "delivered through SNS and SQS");
    assert_eq!(ntfy.received()[0].message, "from the container");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m: Value = http
            .get(format!("{url}/api/messages/{id}"))
            .bearer_auth(common::ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if m["status"] == "completed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not completed: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The read key reads but cannot write.
    let status = http.get(format!("{url}/api/messages")).bearer_auth(&read_key).send().await.unwrap().status();
    assert_eq!(status, 200);
    let status = http
        .post(format!("{url}/api/messages"))
        .bearer_auth(&read_key)
        .json(&json!({"message_type": "notify", "payload": {"message": "nope"}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    child.kill().await.unwrap();
}
