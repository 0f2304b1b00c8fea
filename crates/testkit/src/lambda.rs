//! A fake AWS Lambda Runtime API (the `2018-06-01` interface a `provided.al2023` function
//! polls), so a real Lambda binary can be run as a child process and invoked from a test
//! without Docker or AWS. Point the function at it with
//! `AWS_LAMBDA_RUNTIME_API=<addr>`.
//!
//! It also timestamps the function's first `next` call: the time from spawning the
//! process to that call is the function's init time, which the benchmarks record.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::server::LoopbackServer;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function's response body, as JSON.
    Response(Value),
    /// The function reported an error (`/error`), with its error document.
    Error(Value),
}

#[derive(Default)]
struct Inner {
    pending: VecDeque<(String, Value)>,
    waiters: HashMap<String, oneshot::Sender<Invocation>>,
    first_poll: Option<Instant>,
    init_error: Option<Value>,
    seq: u64,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    work: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge the fake for the others.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake Runtime API on 127.0.0.1.
pub struct FakeLambdaRuntime {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl FakeLambdaRuntime {
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let (listener, _) = LoopbackServer::bind().await?;
        Ok(Self { server: LoopbackServer::serve(listener, app, "lambda-runtime"), shared })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Invoke the function with `event` and wait (up to `timeout`) for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Invocation, String> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            inner.seq += 1;
            let id = format!("req-{:08}", inner.seq);
            inner.waiters.insert(id.clone(), tx);
            inner.pending.push_back((id, event));
        }
        self.shared.work.notify_waiters();
        self.shared.work.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the fake runtime dropped the invocation".into()),
            Err(_) => {
                let init = self.shared.lock().init_error.clone();
                Err(format!("no answer within {timeout:?} (init error: {init:?})"))
            }
        }
    }

    /// When the function first asked for an event (its init was done).
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.lock().first_poll
    }

    /// Wait until the function has polled once; returns that instant.
    pub async fn wait_for_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.first_poll() {
                return Some(t);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The error the function reported during init, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.lock().init_error.clone()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().first_poll.get_or_insert_with(Instant::now);
    loop {
        let notified = shared.work.notified();
        if let Some((id, event)) = shared.lock().pending.pop_front() {
            let mut headers = HeaderMap::new();
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            let put = |h: &mut HeaderMap, k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            put(&mut headers, "lambda-runtime-aws-request-id", id);
            put(&mut headers, "lambda-runtime-deadline-ms", deadline.to_string());
            put(
                &mut headers,
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:rez-test".to_owned(),
            );
            put(&mut headers, "lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".to_owned());
            put(&mut headers, "content-type", "application/json".to_owned());
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        notified.await;
    }
}

fn settle(shared: &Shared, id: &str, answer: Invocation) -> StatusCode {
    match shared.lock().waiters.remove(id) {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json_or_string(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Invocation::Response(json_or_string(&body)))
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Invocation::Error(json_or_string(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.lock().init_error = Some(json_or_string(&body));
    StatusCode::ACCEPTED
}
