//! A whole AWS deployment for one test: the template's resources on moto under a unique
//! prefix, fake ntfy and NOAA on loopback, and the real `rez-lambda` binary run as each
//! function against a fake Lambda Runtime API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rez_aws::store::QueueConfig;
use rez_aws::{AwsStore, Clients, Names};
use rez_core::clock::SystemClock;
use rez_core::routing::QueueName;
use rez_testkit::{FakeLambdaRuntime, FakeNoaa, FakeNtfy, Invocation, Moto};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::iam::{AccessKey, iam_moto, moto_policy};

pub const REGION: &str = "us-east-1";
/// The function binary under test (integration tests get it from Cargo).
const BIN: Option<&str> = option_env!("CARGO_BIN_EXE_rez-lambda");
pub const ADMIN_KEY: &str = "rez-test-admin-key-0123456789";
/// The API Gateway domain the events name (the template passes it to the mcp function).
pub const API_HOST: &str = "abc123.execute-api.us-east-1.amazonaws.com";
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Deployment {
    pub clients: Clients,
    pub names: Names,
    pub store: AwsStore,
    pub ntfy: FakeNtfy,
    pub noaa: FakeNoaa,
    /// The emulator the functions talk to.
    pub endpoint: String,
    /// On an IAM-enforcing emulator: the functions' principals and secrets.
    pub iam: Option<IamSetup>,
}

/// Each function's access key (a user holding that function's role policy) and the
/// secrets the functions read instead of taking them from the environment.
pub struct IamSetup {
    pub keys: BTreeMap<&'static str, AccessKey>,
    /// Name of the secret holding [`ADMIN_KEY`].
    pub admin_key_secret: String,
    /// Name of the secret holding [`NTFY_TOKEN`].
    pub ntfy_token_secret: String,
}

/// The ntfy access token of IAM-enforced deployments (read from Secrets Manager).
pub const NTFY_TOKEN: &str = "tk_rez_test_token";

/// Function name (`REZ_FUNCTION`) → role and log group logical ids in the template.
pub const FUNCTION_ROLES: [(&str, &str, &str); 7] = [
    ("api", "ApiRole", "ApiLogGroup"),
    ("mcp", "McpRole", "McpLogGroup"),
    ("processor", "ProcessorRole", "ProcessorLogGroup"),
    ("webaction", "WebActionRole", "WebActionLogGroup"),
    ("scheduler", "SchedulerRole", "SchedulerLogGroup"),
    ("sweeper", "SweeperRole", "SweeperLogGroup"),
    ("agent", "AgentRole", "AgentLogGroup"),
];

/// One function process and its Runtime API.
pub struct Function {
    pub runtime: FakeLambdaRuntime,
    pub child: Child,
    pub spawned: Instant,
}

impl Deployment {
    pub async fn new() -> Self {
        let endpoint = Moto::shared().endpoint().to_owned();
        let clients = Clients::for_endpoint(&endpoint, REGION).await;
        let prefix = format!("rez-l{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let names = rez_aws::provision::provision(&clients, &prefix, "dev").await.expect("provision on moto");
        let store = AwsStore::new(clients.clone(), names.clone(), Arc::new(SystemClock), QueueConfig::default());
        Self {
            clients,
            names,
            store,
            ntfy: FakeNtfy::start().await,
            noaa: FakeNoaa::start().await,
            endpoint,
            iam: None,
        }
    }

    /// A deployment on the IAM-enforcing emulator: provisioned by the administrator, the
    /// admin key and ntfy token in Secrets Manager, and each function running as a user
    /// whose only policy is its role's policy from `deploy/template.yaml`.
    pub async fn with_iam() -> Self {
        let moto = iam_moto().await;
        let clients = Clients::for_endpoint_as(&moto.endpoint, REGION, &moto.admin.id, &moto.admin.secret).await;
        let prefix = format!("rez-i{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let (names, mut resolver) =
            rez_aws::provision::provision_resolved(&clients, &prefix, "dev").await.expect("provision on moto");
        let secret = |name: String, value: &str, logical_id: &str| {
            let clients = clients.clone();
            let value = value.to_owned();
            let logical_id = logical_id.to_owned();
            async move {
                let out = clients
                    .secrets
                    .create_secret()
                    .name(&name)
                    .secret_string(value)
                    .send()
                    .await
                    .expect("create secret");
                (name, logical_id, out.arn().unwrap_or_default().to_owned())
            }
        };
        let admin = secret(format!("{prefix}/admin-api-key"), ADMIN_KEY, "AdminApiKeySecret").await;
        let ntfy = secret(format!("{prefix}/ntfy-token"), NTFY_TOKEN, "NtfyTokenSecret").await;
        for (_, id, arn) in [&admin, &ntfy] {
            resolver.refs.insert(id.clone(), arn.clone());
        }
        let mut keys = BTreeMap::new();
        for (function, role, log_group) in FUNCTION_ROLES {
            // Lambda writes the logs; the emulator never sees those calls.
            resolver.arns.insert(
                log_group.to_owned(),
                format!("arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{prefix}-{function}:*"),
            );
            let policy = moto_policy(&resolver, role);
            keys.insert(function, moto.principal(&format!("{prefix}-{function}"), &policy).await);
        }
        let store = AwsStore::new(clients.clone(), names.clone(), Arc::new(SystemClock), QueueConfig::default());
        let ntfy_fake = FakeNtfy::start().await;
        ntfy_fake.require_token(NTFY_TOKEN);
        Self {
            clients,
            names,
            store,
            ntfy: ntfy_fake,
            noaa: FakeNoaa::start().await,
            endpoint: moto.endpoint.clone(),
            iam: Some(IamSetup { keys, admin_key_secret: admin.0, ntfy_token_secret: ntfy.0 }),
        }
    }

    /// The environment of a function, as the template would set it.
    pub fn env(&self, function: &str) -> Vec<(String, String)> {
        let mut env = self.names.to_env();
        let (key_id, secret) = match &self.iam {
            None => ("testing".to_owned(), "testing".to_owned()),
            Some(iam) => {
                let key = iam.keys.get(function).unwrap_or_else(|| panic!("no principal for {function}"));
                (key.id.clone(), key.secret.clone())
            }
        };
        // Secrets as the template passes them: the admin key to api and mcp, the ntfy
        // token to the processor and the agent (by secret name where IAM is enforced).
        match &self.iam {
            None => env.push(("REZ_API_KEY".to_owned(), ADMIN_KEY.to_owned())),
            Some(iam) => {
                if matches!(function, "api" | "mcp") {
                    env.push(("REZ_ADMIN_KEY_SECRET".to_owned(), iam.admin_key_secret.clone()));
                }
                if matches!(function, "processor" | "agent") {
                    env.push(("REZ_NTFY_TOKEN_SECRET".to_owned(), iam.ntfy_token_secret.clone()));
                }
            }
        }
        for (k, v) in [
            ("REZ_FUNCTION", function.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_LAMBDA_FUNCTION_NAME", format!("rez-dev-{function}")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/rez-dev-{function}")),
            ("REZ_NTFY_URL", self.ntfy.topic_url("rez-test")),
            ("REZ_NOAA_URL", self.noaa.url()),
            ("REZ_OUTBOUND_ALLOW_LOOPBACK", "1".to_owned()),
            ("REZ_RETRY_BACKOFF_MS", "100".to_owned()),
            ("REZ_MCP_ALLOWED_HOSTS", API_HOST.to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ] {
            env.push((k.to_owned(), v));
        }
        env
    }

    /// Start `function` (api, processor, webaction, scheduler, mcp, sweeper, agent).
    pub async fn start(&self, function: &str) -> Function {
        self.start_with(function, &[]).await
    }

    /// Start `function` with `extra` variables beside the template's.
    pub async fn start_with(&self, function: &str, extra: &[(&str, String)]) -> Function {
        let runtime = FakeLambdaRuntime::start().await.expect("fake runtime");
        // Set for tests only; the benchmark example spawns the binary it is given.
        let Some(bin) = BIN else { panic!("the rez-lambda binary is only known to the tests") };
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.runtime_api())
            .envs(self.env(function))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = cmd.spawn().expect("spawn rez-lambda");
        Function { runtime, child, spawned }
    }

    pub fn queue_url(&self, q: QueueName) -> &str {
        &self.names.queue(q).expect("queue").url
    }

    /// Receive up to 10 messages from `q` as SQS would hand them to a Lambda: an SQS
    /// event with the records' receipt handles and receive counts.
    pub async fn receive_event(&self, q: QueueName, within: Duration) -> Value {
        let address = self.names.queue(q).expect("queue");
        let deadline = Instant::now() + within;
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&address.url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let records: Vec<Value> = out
                .messages()
                .iter()
                .map(|m| {
                    let attributes: serde_json::Map<String, Value> = m
                        .attributes()
                        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect())
                        .unwrap_or_default();
                    json!({
                        "messageId": m.message_id(),
                        "receiptHandle": m.receipt_handle(),
                        "body": m.body(),
                        "attributes": attributes,
                        "messageAttributes": {},
                        "md5OfBody": m.md5_of_body(),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": address.arn,
                        "awsRegion": REGION,
                    })
                })
                .collect();
            if !records.is_empty() || Instant::now() > deadline {
                return json!({ "Records": records });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Function {
    /// Invoke and return the response; panics if the function reported an error.
    pub async fn invoke(&self, event: Value) -> Value {
        match self.runtime.invoke(event, INVOKE_TIMEOUT).await.expect("invocation answered") {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("function error: {e}"),
        }
    }

    /// Milliseconds from spawning the process to its first poll for work (its init).
    pub async fn init_ms(&self) -> f64 {
        let first = self.runtime.wait_for_first_poll(Duration::from_secs(30)).await.expect("function polled");
        (first - self.spawned).as_secs_f64() * 1000.0
    }
}

/// An API Gateway HTTP API (payload 2.0) event.
pub fn http_event(method: &str, path: &str, body: Option<&Value>, key: Option<&str>) -> Value {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers = serde_json::Map::new();
    headers.insert("host".into(), json!(API_HOST));
    if body.is_some() {
        headers.insert("content-type".into(), json!("application/json"));
    }
    if let Some(k) = key {
        headers.insert("authorization".into(), json!(format!("Bearer {k}")));
    }
    headers.insert("accept".into(), json!("application/json, text/event-stream"));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path_only,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path_only, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// Status and JSON body of an API Gateway response.
pub fn http_response(v: &Value) -> (u16, Value) {
    let status = v["statusCode"].as_u64().expect("statusCode") as u16;
    let body = v["body"].as_str().unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())))
}
