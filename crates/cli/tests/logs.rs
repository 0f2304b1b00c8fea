//! What the real binary writes to its logs when they go to a pipe (a file, journald, a
//! log shipper): plain text without terminal colour codes, and never a secret.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Run `rez serve` with `env` until it listens, make `work` happen against its URL, stop
/// it, and return its stderr.
async fn serve_and_collect_logs<F, Fut>(env: &[(&str, String)], work: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rez"));
    cmd.arg("serve").env_remove("REZ_CONFIG").env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().expect("spawn rez serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let collected = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
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
    work(url).await;
    // SIGTERM: a graceful stop, so the shutdown lines are logged too.
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    collected.await.expect("stderr reader")
}

#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let logs = serve_and_collect_logs(
        &[
            ("REZ_DATA_DIR", dir.path().to_string_lossy().into_owned()),
            ("REZ_BIND", "127.0.0.1:0".into()),
            ("REZ_LOG", "info".into()),
            ("REZ_LOG_FORMAT", "text".into()),
        ],
        |_| async {},
    )
    .await;
    assert!(logs.contains("INFO"), "the server logged at info: {logs}");
    assert!(!logs.contains('\u{1b}'), "terminal escape codes in piped logs: {logs:?}");
}
