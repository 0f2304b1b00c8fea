//! The inbound limits of `rez serve` against the real server: thousands of idle and
//! slowloris connections do not starve normal requests and are closed by the header-read
//! timeout; a body sent too slowly gets `408`; past the connection cap new connections
//! wait for a free slot; a keep-alive connection left idle is closed by the idle timeout.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, TestServer};
use rez_cli::config::Config;
use rez_testkit::ntfy::FakeNtfy;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server whose `REZ_HTTP_*` settings are `http`.
async fn server_with(http: &[(&str, &str)]) -> TestServer {
    let ntfy = FakeNtfy::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env: Vec<(String, String)> = vec![
        ("REZ_DATA_DIR".into(), dir.path().to_string_lossy().into_owned()),
        ("REZ_BIND".into(), "127.0.0.1:0".into()),
        ("REZ_API_KEY".into(), ADMIN_KEY.into()),
        ("REZ_SHUTDOWN_GRACE_SECS".into(), "2".into()),
        ("REZ_OUTBOUND_ALLOW_LOOPBACK".into(), "true".into()),
        ("REZ_NTFY_URL".into(), ntfy.topic_url("inbound")),
    ];
    env.extend(http.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config =
        Config::load_from(None, move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config");
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    TestServer { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir }
}

/// Raise the soft file-descriptor limit to the hard one; returns the soft limit.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Whether the server closes `stream` within `within` (EOF or a reset on read).
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 400 answer before the close is fine; keep reading to the EOF.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn normal_requests_succeed(t: &TestServer, n: usize) {
    for i in 0..n {
        let r = t.http.get(t.url("/api/health")).send().await.expect("health");
        assert_eq!(r.status().as_u16(), 200);
        let (s, body) = t
            .post_json("/api/messages", json!({"message_type": "notify", "payload": {"message": format!("m{i}")}}))
            .await;
        assert_eq!(s, 202, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_do_not_starve_requests() {
    // Each connection costs a descriptor on both ends (client and server share this process).
    let fds = raise_fd_limit();
    let idle_count = 2000.min((fds.saturating_sub(400) / 2) as usize);
    assert!(idle_count >= 200, "the file-descriptor limit ({fds}) is too low for this test");
    let mut t = server_with(&[
        ("REZ_HTTP_MAX_CONNECTIONS", "4096"),
        ("REZ_HTTP_HEADER_READ_TIMEOUT_MS", "1500"),
        ("REZ_HTTP_REQUEST_TIMEOUT_MS", "3000"),
        ("REZ_HTTP_IDLE_TIMEOUT_MS", "60000"),
    ])
    .await;
    let addr = t.server.as_ref().expect("server").addr;

    let mut idle = Vec::with_capacity(idle_count);
    for _ in 0..idle_count {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Slowloris: a request head trickled one header line at a time, never finished.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("write");
        let (mut read, mut write) = s.into_split();
        let trickle = tokio::spawn(async move {
            for i in 0.. {
                if write.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let closed = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                }
            }
        });
        slow.push((trickle, closed));
    }

    normal_requests_succeed(&t, 20).await;

    // The header-read timeout closes every one of them.
    let mut checks = tokio::task::JoinSet::new();
    for mut s in idle {
        checks.spawn(async move { closed_by_server(&mut s, Duration::from_secs(10)).await });
    }
    let mut still_open = 0;
    while let Some(closed) = checks.join_next().await {
        if !closed.expect("check") {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "{still_open} of {idle_count} idle connections were never closed");
    for (trickle, closed) in slow {
        assert!(closed.await.expect("slowloris reader"), "a slowloris connection was never closed");
        trickle.abort();
    }
    normal_requests_succeed(&t, 5).await;
    t.stop().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408() {
    let mut t = server_with(&[("REZ_HTTP_REQUEST_TIMEOUT_MS", "500")]).await;
    let addr = t.server.as_ref().expect("server").addr;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"message_type\""
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_for_a_slot() {
    let mut t = server_with(&[
        ("REZ_HTTP_MAX_CONNECTIONS", "8"),
        ("REZ_HTTP_HEADER_READ_TIMEOUT_MS", "60000"),
        ("REZ_HTTP_IDLE_TIMEOUT_MS", "60000"),
    ])
    .await;
    let addr = t.server.as_ref().expect("server").addr;
    // Eight keep-alive connections, each answered once, so each surely holds a slot.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("answer").expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().expect("client");
    assert!(quick.get(t.url("/api/health")).send().await.is_err(), "a ninth connection was served past the cap");
    drop(held);
    let r = t.http.get(t.url("/api/health")).send().await.expect("served once a slot is free");
    assert_eq!(r.status().as_u16(), 200);
    t.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let mut t = server_with(&[("REZ_HTTP_HEADER_READ_TIMEOUT_MS", "60000"), ("REZ_HTTP_IDLE_TIMEOUT_MS", "300")]).await;
    let addr = t.server.as_ref().expect("server").addr;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("answer").expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(closed_by_server(&mut s, Duration::from_secs(10)).await, "the idle connection stayed open");
    t.stop().await;
}
