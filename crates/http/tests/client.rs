//! End-to-end checks of `HttpClient` against a local axum server (reached through the
//! test-only loopback allowance) and a scripted resolver: literal and resolved addresses,
//! DNS answers that change, redirects, scheme, allowlist, size cap, retries, redaction.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use rez_http::{
    HttpClient, HttpError, Method, OutboundPolicy, OutboundRequest, PolicyViolation, RetryPolicy, ScriptedLookup,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Hits {
    throttle: AtomicUsize,
    long_throttle: AtomicUsize,
    unavailable: AtomicUsize,
    post: AtomicUsize,
}

async fn start_server() -> (SocketAddr, Arc<Hits>) {
    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/big", get(|| async { vec![b'x'; 10_000] }))
        .route(
            "/echo-auth",
            get(|h: HeaderMap| async move {
                h.get(header::AUTHORIZATION).map(|v| v.as_bytes().to_vec()).unwrap_or_default()
            }),
        )
        .route("/to/{target}", get(|Path(target): Path<String>| async move { redirect(&target) }))
        .route(
            "/chain/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 { (StatusCode::OK, "end").into_response() } else { redirect(&format!("/chain/{}", n - 1)) }
            }),
        )
        .route(
            "/throttle",
            get(|State(h): State<Arc<Hits>>| async move {
                if h.throttle.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down").into_response()
                } else {
                    (StatusCode::OK, "finally").into_response()
                }
            }),
        )
        .route(
            "/long-throttle",
            get(|State(h): State<Arc<Hits>>| async move {
                h.long_throttle.fetch_add(1, Ordering::SeqCst);
                (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "3600")], "come back in an hour").into_response()
            }),
        )
        .route(
            "/unavailable",
            any(|State(h): State<Arc<Hits>>| async move {
                h.unavailable.fetch_add(1, Ordering::SeqCst);
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
        .route(
            "/post",
            any(|State(h): State<Arc<Hits>>| async move {
                h.post.fetch_add(1, Ordering::SeqCst);
                StatusCode::BAD_GATEWAY
            }),
        )
        .with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (addr, hits)
}

/// `/to/<name>` redirects to a fixed set of targets.
fn redirect(target: &str) -> axum::response::Response {
    let location = match target {
        "private" => "http://10.0.0.1/",
        "metadata" => "https://169.254.169.254/latest/meta-data/",
        "mapped" => "https://[::ffff:192.168.0.1]/",
        "internal-name" => "https://internal.test/",
        "off-list" => "https://example.com/",
        "plain-http" => "http://api.weather.gov/",
        other if other.starts_with('/') => other,
        _ => "/ok",
    };
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn test_client() -> HttpClient {
    HttpClient::new(OutboundPolicy::loopback_for_tests()).expect("client")
}

fn refusal(r: Result<rez_http::HttpResponse, HttpError>) -> PolicyViolation {
    match r {
        Err(HttpError::Refused(v)) => v,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

const BLOCKED_LITERALS: &[&str] = &[
    "127.0.0.1",
    "10.1.2.3",
    "172.16.5.4",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.2.1",
    "[::1]",
    "[::]",
    "[fd00::1]",
    "[fe80::1]",
    "[fec0::1]",
    "[ff02::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::10.0.0.1]",
    "[64:ff9b::a00:1]",
    "[2002:c0a8:1::]",
];

#[tokio::test]
async fn blocked_literals_are_refused_before_sending() {
    let client = HttpClient::new(OutboundPolicy::allowing(["*.test"]).expect("policy")).expect("client");
    for host in BLOCKED_LITERALS {
        for scheme in ["https", "http"] {
            let url = format!("{scheme}://{host}/x");
            let v = refusal(client.send(OutboundRequest::get(&url).expect("url")).await);
            assert!(matches!(v, PolicyViolation::ForbiddenAddress { .. }), "{url}: {v}");
        }
    }
}

#[tokio::test]
async fn blocked_addresses_are_refused_by_dns_name() {
    let addrs: Vec<&str> = BLOCKED_LITERALS.iter().map(|h| h.trim_start_matches('[').trim_end_matches(']')).collect();
    let mut lookup = ScriptedLookup::new();
    for (i, a) in addrs.iter().enumerate() {
        lookup = lookup.script(&format!("h{i}.test"), vec![vec![ip(a)]]);
    }
    let lookup = Arc::new(lookup);
    let client =
        HttpClient::with_lookup(OutboundPolicy::allowing(["*.test"]).expect("policy"), lookup.clone()).expect("client");
    for (i, a) in addrs.iter().enumerate() {
        let url = format!("https://h{i}.test/path");
        let v = refusal(client.send(OutboundRequest::get(&url).expect("url")).await);
        match v {
            PolicyViolation::ForbiddenAddress { host, addr, .. } => {
                assert_eq!(host, format!("h{i}.test"));
                assert_eq!(addr, ip(a));
            }
            other => panic!("{url}: {other}"),
        }
        assert_eq!(lookup.calls(&format!("h{i}.test")), 1);
    }
}

#[tokio::test]
async fn name_turning_private_on_second_lookup_is_refused() {
    let (addr, _) = start_server().await;
    // Under the test allowance loopback plays the part of a public address.
    let lookup = Arc::new(ScriptedLookup::new().script("localhost", vec![vec![ip("127.0.0.1")], vec![ip("10.0.0.1")]]));
    let client = HttpClient::with_lookup(OutboundPolicy::loopback_for_tests(), lookup.clone()).expect("client");
    let url = format!("http://localhost:{}/ok", addr.port());
    // `Connection: close` so the second request has to resolve again.
    let req = || OutboundRequest::get(&url).expect("url").try_header("connection", "close").expect("header");
    let first = client.send(req()).await.expect("first request");
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text(), "hello");
    let v = refusal(client.send(req()).await);
    assert!(matches!(v, PolicyViolation::ForbiddenAddress { addr, .. } if addr == ip("10.0.0.1")), "{v}");
    assert_eq!(lookup.calls("localhost"), 2);
}

#[tokio::test]
async fn redirects_are_vetted_hop_by_hop() {
    let (addr, _) = start_server().await;
    let lookup = Arc::new(ScriptedLookup::new().script("internal.test", vec![vec![ip("10.0.0.2")]]));
    let policy = OutboundPolicy::loopback_for_tests()
        .allow_host("internal.test")
        .expect("host")
        .allow_host("api.weather.gov")
        .expect("host");
    let client = HttpClient::with_lookup(policy, lookup.clone()).expect("client");
    let base = format!("http://{addr}");
    let get = |path: &str| OutboundRequest::get(&format!("{base}{path}")).expect("url");

    let v = refusal(client.send(get("/to/private")).await);
    assert!(matches!(v, PolicyViolation::ForbiddenAddress { addr, .. } if addr == ip("10.0.0.1")), "{v}");
    let v = refusal(client.send(get("/to/metadata")).await);
    assert!(
        matches!(v, PolicyViolation::ForbiddenAddress { reason: "cloud metadata endpoint (link-local)", .. }),
        "{v}"
    );
    let v = refusal(client.send(get("/to/mapped")).await);
    assert!(matches!(v, PolicyViolation::ForbiddenAddress { .. }), "{v}");
    // A redirect to an allowed name that resolves privately: refused by the resolver.
    let v = refusal(client.send(get("/to/internal-name")).await);
    assert!(matches!(v, PolicyViolation::ForbiddenAddress { addr, .. } if addr == ip("10.0.0.2")), "{v}");
    assert_eq!(lookup.calls("internal.test"), 1);
    let v = refusal(client.send(get("/to/off-list")).await);
    assert!(matches!(v, PolicyViolation::HostNotAllowed { .. }), "{v}");
    let v = refusal(client.send(get("/to/plain-http")).await);
    assert!(matches!(v, PolicyViolation::Scheme { .. }), "{v}");

    // Five hops are fine, six are not.
    let ok = client.send(get("/chain/5")).await.expect("five redirects");
    assert_eq!((ok.status, ok.text().as_str()), (StatusCode::OK, "end"));
    let v = refusal(client.send(get("/chain/6")).await);
    assert_eq!(v, PolicyViolation::TooManyRedirects { max: 5 });
}

#[tokio::test]
async fn plain_http_is_refused_without_the_allowance() {
    let client =
        HttpClient::new(OutboundPolicy::allowing(["api.weather.gov", "*.cps.golf"]).expect("policy")).expect("client");
    for url in
        ["http://api.weather.gov/points/1,2", "http://x.cps.golf/", "ftp://api.weather.gov/", "ws://api.weather.gov/"]
    {
        let v = refusal(client.send(OutboundRequest::get(url).expect("url")).await);
        assert!(matches!(v, PolicyViolation::Scheme { .. }), "{url}: {v}");
        assert!(v.to_string().contains("only https is allowed"), "{v}");
    }
    // Even the allowance admits http only towards loopback.
    let lenient = HttpClient::new(OutboundPolicy::loopback_for_tests().allow_host("api.weather.gov").expect("host"))
        .expect("client");
    let v = refusal(lenient.send(OutboundRequest::get("http://api.weather.gov/").expect("url")).await);
    assert!(matches!(v, PolicyViolation::Scheme { .. }), "{v}");
}

#[tokio::test]
async fn hosts_off_the_allowlist_are_refused() {
    let client =
        HttpClient::new(OutboundPolicy::allowing(["api.weather.gov", "*.cps.golf"]).expect("policy")).expect("client");
    for url in [
        "https://example.com/",
        "https://cps.golf/",
        "https://weather.gov/",
        "https://api.weather.gov.evil.com/",
        "https://evilcps.golf/",
    ] {
        let v = refusal(client.send(OutboundRequest::get(url).expect("url")).await);
        assert!(matches!(v, PolicyViolation::HostNotAllowed { .. }), "{url}: {v}");
    }
    // An empty allowlist allows nothing.
    let none = HttpClient::new(OutboundPolicy::default()).expect("client");
    let v = refusal(none.send(OutboundRequest::get("https://api.weather.gov/").expect("url")).await);
    assert!(matches!(v, PolicyViolation::HostNotAllowed { .. }), "{v}");
}

#[tokio::test]
async fn oversized_bodies_are_cut_off() {
    let (addr, _) = start_server().await;
    let policy = OutboundPolicy { max_response_bytes: 1000, ..OutboundPolicy::loopback_for_tests() };
    let client = HttpClient::new(policy).expect("client");
    let r = client.send(OutboundRequest::get(&format!("http://{addr}/big")).expect("url")).await;
    assert!(matches!(r, Err(HttpError::BodyTooLarge { limit: 1000, .. })), "{r:?}");
    let ok = client.send(OutboundRequest::get(&format!("http://{addr}/ok")).expect("url")).await.expect("small body");
    assert_eq!(ok.text(), "hello");
}

#[tokio::test]
async fn endless_chunked_body_is_cut_off_while_streaming() {
    // A raw server sending an unannounced, never-ending chunked body.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await;
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
        let chunk = format!("200\r\n{}\r\n", "y".repeat(0x200));
        while sock.write_all(chunk.as_bytes()).await.is_ok() {}
    });
    let policy = OutboundPolicy { max_response_bytes: 64 * 1024, ..OutboundPolicy::loopback_for_tests() };
    let client = HttpClient::new(policy).expect("client");
    let started = Instant::now();
    let r = client.send(OutboundRequest::get(&format!("http://{addr}/stream")).expect("url")).await;
    assert!(matches!(r, Err(HttpError::BodyTooLarge { limit: 65536, .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (addr, hits) = start_server().await;
    let client = test_client();
    let retry = RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(1), ..RetryPolicy::default() };
    let started = Instant::now();
    let r = client
        .send_with_retry(OutboundRequest::get(&format!("http://{addr}/throttle")).expect("url"), &retry)
        .await
        .expect("response");
    let waited = started.elapsed();
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "finally"));
    assert_eq!(hits.throttle.load(Ordering::SeqCst), 2);
    assert!(waited >= Duration::from_secs(1), "Retry-After: 1 not honoured ({waited:?})");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn retry_after_beyond_the_cap_returns_at_once() {
    let (addr, hits) = start_server().await;
    let client = test_client();
    let r = client
        .send_with_retry(
            OutboundRequest::get(&format!("http://{addr}/long-throttle")).expect("url"),
            &RetryPolicy::default(),
        )
        .await
        .expect("response");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(hits.long_throttle.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn only_idempotent_requests_are_retried() {
    let (addr, hits) = start_server().await;
    let client = test_client();
    let retry = RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), ..RetryPolicy::default() };
    let r = client
        .send_with_retry(OutboundRequest::get(&format!("http://{addr}/unavailable")).expect("url"), &retry)
        .await
        .expect("response");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(hits.unavailable.load(Ordering::SeqCst), 4);

    let post = OutboundRequest::post(&format!("http://{addr}/post")).expect("url").body("x");
    let r = client.send_with_retry(post.clone(), &retry).await.expect("response");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(hits.post.load(Ordering::SeqCst), 1, "POST is not retried");
    let r = client.send_with_retry(post.mark_idempotent(), &retry).await.expect("response");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(hits.post.load(Ordering::SeqCst), 5, "marked idempotent: retried");

    let put = OutboundRequest::new(Method::PUT, &format!("http://{addr}/unavailable")).expect("url");
    client.send_with_retry(put, &retry).await.expect("response");
    assert_eq!(hits.unavailable.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn connection_errors_are_retryable_and_redacted() {
    // A port with nothing listening.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let client = test_client();
    let url = format!("http://alice:hunter2@127.0.0.1:{port}/x?token=tk_sekret&q=1");
    let req = OutboundRequest::get(&url).expect("url").bearer_auth("tk_header_secret").expect("auth");
    let debug = format!("{req:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("tk_sekret") && !debug.contains("tk_header_secret"),
        "{debug}"
    );
    let retry = RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(1), ..RetryPolicy::default() };
    let err = client.send_with_retry(req, &retry).await.expect_err("nothing listens");
    assert!(matches!(err, HttpError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    let shown = format!("{err} / {err:?}");
    for secret in ["hunter2", "alice", "tk_sekret", "tk_header_secret"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(shown.contains("q=1") && shown.contains("token=[REDACTED]"), "{shown}");
}

#[tokio::test]
async fn authorization_is_sent() {
    let (addr, _) = start_server().await;
    let client = test_client();
    let r = client
        .send(
            OutboundRequest::get(&format!("http://{addr}/echo-auth"))
                .expect("url")
                .basic_auth("u", Some("p"))
                .expect("auth"),
        )
        .await
        .expect("response");
    assert_eq!(r.text(), "Basic dTpw");
}
