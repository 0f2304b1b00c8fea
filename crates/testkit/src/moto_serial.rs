//! A proxy in front of moto that passes DynamoDB calls on one at a time.
//!
//! DynamoDB applies each conditional write, and each transaction, atomically; moto 5.2.5
//! does not: its server is threaded and checks a condition and writes without a lock, so
//! two racing conditional writes on one key can both succeed, and a cancelled transaction
//! restores a snapshot over one that committed meanwhile. Tests of races on DynamoDB
//! (exactly one claim of a booking key, one application of a schedule firing) go through
//! this proxy so that moto keeps DynamoDB's promise; everything else (SQS, SNS, IAM...)
//! passes through concurrently. Tests never race on items of another test (each has its
//! own tables), so serialising within one test process is enough.

use std::net::TcpListener;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    dynamodb: tokio::sync::Mutex<()>,
}

/// Start the proxy on its own thread and runtime (tests each have their own runtime, and
/// the proxy outlives them); returns its `http://127.0.0.1:PORT`.
pub(crate) fn start(upstream: &str) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("proxy socket: {e}"))?;
    let port = listener.local_addr().map_err(|e| format!("proxy socket: {e}"))?.port();
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        client: reqwest::Client::new(),
        dynamodb: tokio::sync::Mutex::new(()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("proxy runtime: {e}"))?;
    std::thread::Builder::new()
        .name("moto-serial-proxy".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let app = axum::Router::new().fallback(forward).with_state(proxy);
                let _ = axum::serve(listener, app).await;
            })
        })
        .map_err(|e| format!("proxy thread: {e}"))?;
    Ok(format!("http://127.0.0.1:{port}"))
}

fn is_dynamodb(req: &Request) -> bool {
    req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("DynamoDB_"))
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    match relay(&proxy, req).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(e));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

async fn relay(proxy: &Proxy, req: Request) -> Result<Response, String> {
    let _turn = if is_dynamodb(&req) { Some(proxy.dynamodb.lock().await) } else { None };
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| format!("request body: {e}"))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // Headers pass as they are, `Host` included: requests are signed over it.
    let mut out = proxy.client.request(parts.method, format!("{}{path}", proxy.upstream)).body(body);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let answer = out.send().await.map_err(|e| format!("moto: {e}"))?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(|e| format!("moto answer: {e}"))?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let skip: [HeaderName; 3] = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION];
    for (name, value) in &headers {
        if !skip.contains(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    Ok(response)
}
