//! An emulator that enforces IAM, and principals holding exactly the template's role
//! policies: one moto per test process started with `INITIAL_NO_AUTH_ACTION_COUNT`, an
//! administrator created in its unchecked first requests, then per deployment one IAM
//! user per function whose only policy is that function's role policy read from
//! `deploy/template.yaml`, resolved to the provisioned resources.
//!
//! What moto 5.2 cannot check, and the static check (`crates/lambda/src/permissions.rs`)
//! covers instead:
//! - resource ARNs are compared for SQS only; every other service authorises the action
//!   against `*`, so those statements are given `Resource: "*"` here (the action is still
//!   enforced);
//! - conditions are not evaluated (the `iam:PassRole` condition is dropped; moto does
//!   not check `PassRole` when a schedule is created either);
//! - a DynamoDB transaction is authorised as `dynamodb:TransactWriteItems`, where AWS
//!   authorises each item (`dynamodb:PutItem`): a statement granting `PutItem` also
//!   grants `TransactWriteItems` here.

use std::sync::OnceLock;
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use rez_aws::policies::Resolver;
use rez_testkit::Moto;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::common::REGION;

/// Requests moto lets through before it checks: the administrator's user, policy and key.
const UNCHECKED_REQUESTS: u32 = 3;

/// An access key of a user in the emulator.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

/// The IAM-enforcing emulator of this test process and its administrator.
#[derive(Debug)]
pub struct IamMoto {
    pub endpoint: String,
    pub admin: AccessKey,
}

/// One of the unchecked requests: moto reads the service from the credential scope of
/// the Authorization header, but does not verify the signature yet.
async fn unsigned(endpoint: &str, params: &[(&str, String)]) -> String {
    let resp = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAUNCHECKED/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(form(params))
        .send()
        .await
        .expect("moto answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "IAM {params:?}: {status} {text}");
    text
}

/// The process's IAM-enforcing moto, started (and its administrator created) on first use.
pub async fn iam_moto() -> &'static IamMoto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    static IAM: OnceCell<IamMoto> = OnceCell::const_new();
    IAM.get_or_init(|| async {
        let moto = MOTO.get_or_init(|| Moto::start_with_iam(UNCHECKED_REQUESTS).unwrap_or_else(|e| panic!("{e}")));
        let endpoint = moto.endpoint().to_owned();
        unsigned(&endpoint, &[("Action", "CreateUser".into()), ("UserName", "rez-test-admin".into())]).await;
        let allow_all =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        unsigned(
            &endpoint,
            &[
                ("Action", "PutUserPolicy".into()),
                ("UserName", "rez-test-admin".into()),
                ("PolicyName", "everything".into()),
                ("PolicyDocument", allow_all.to_string()),
            ],
        )
        .await;
        let key =
            unsigned(&endpoint, &[("Action", "CreateAccessKey".into()), ("UserName", "rez-test-admin".into())]).await;
        IamMoto { endpoint, admin: access_key(&key) }
    })
    .await
}

impl IamMoto {
    /// A user whose only policy is `policy`; its access key.
    pub async fn principal(&self, user: &str, policy: &Value) -> AccessKey {
        self.call(&[("Action", "CreateUser"), ("UserName", user)]).await;
        let doc = policy.to_string();
        self.call(&[("Action", "PutUserPolicy"), ("UserName", user), ("PolicyName", "role"), ("PolicyDocument", &doc)])
            .await;
        access_key(&self.call(&[("Action", "CreateAccessKey"), ("UserName", user)]).await)
    }

    /// An IAM query API call signed as the administrator.
    async fn call(&self, params: &[(&str, &str)]) -> String {
        let params: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let body = form(&params);
        let identity = aws_sdk_dynamodb::config::Credentials::new(
            self.admin.id.clone(),
            self.admin.secret.clone(),
            None,
            None,
            "rez-test",
        )
        .into();
        let signing = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let url = format!("{}/", self.endpoint);
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let signable =
            SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
                .expect("signable request");
        let (instructions, _) = sign(signable, &signing).expect("signed").into_parts();
        let mut request = reqwest::Client::new().post(&url).header("content-type", headers[0].1).body(body.clone());
        let (signed_headers, _) = instructions.into_parts();
        for h in signed_headers {
            request = request.header(h.name(), h.value());
        }
        let resp = request.send().await.expect("moto answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }
}

/// The role `role_id`'s policy from the template, resolved to this deployment's
/// resources, in the form moto can enforce (see the module documentation).
pub fn moto_policy(resolver: &Resolver, role_id: &str) -> Value {
    let mut doc = resolver.policy_document(role_id).unwrap_or_else(|e| panic!("{e}"));
    for st in doc["Statement"].as_array_mut().expect("statements") {
        let actions: Vec<String> =
            st["Action"].as_array().expect("actions").iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
        if !actions.iter().all(|a| a.starts_with("sqs:")) {
            st["Resource"] = json!("*");
        }
        if actions.iter().any(|a| a == "dynamodb:PutItem") {
            st["Action"].as_array_mut().expect("actions").push(json!("dynamodb:TransactWriteItems"));
        }
    }
    doc
}

fn form(params: &[(&str, String)]) -> String {
    let mut pairs: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    pairs.push("Version=2010-05-08".to_owned());
    pairs.join("&")
}

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The access key in a `CreateAccessKey` response.
fn access_key(xml: &str) -> AccessKey {
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let start = xml.find(&open).unwrap_or_else(|| panic!("no {tag} in {xml}")) + open.len();
        let end = xml[start..].find("</").map(|e| start + e).expect("closing tag");
        xml[start..end].trim().to_owned()
    };
    AccessKey { id: field("AccessKeyId"), secret: field("SecretAccessKey") }
}
