//! `rez-http`: the only way rez_agent talks to the outside world (SPEC §6.1).
//!
//! reqwest does the HTTP; this crate adds the policy around it so no integration — nor
//! anything an LLM or MCP client can influence — can reach internal addresses:
//!
//! - [`OutboundPolicy`]: HTTPS only, a per-integration host allowlist, timeouts, a
//!   response size cap and at most [`MAX_REDIRECTS`] redirects;
//! - [`is_forbidden`]: loopback, private, link-local, CGNAT, multicast, reserved… and the
//!   IPv6 forms wrapping such IPv4 addresses;
//! - [`VettingResolver`]: every resolved address is vetted and the connection goes to the
//!   vetted address only; IP literals and redirect hops are vetted too;
//! - [`HttpClient::send_with_retry`]: backoff with jitter for idempotent requests,
//!   honouring `Retry-After`;
//! - [`Redactor`]: secrets never appear in errors or logs.
//!
//! Tests reach fake servers on 127.0.0.1 only through
//! [`OutboundPolicy::allow_loopback_for_tests`].

mod address;
mod client;
mod policy;
mod redact;
mod resolve;
mod retry;
mod tls;

pub use address::{embedded_v4, is_forbidden};
pub use client::{HttpClient, HttpError, HttpResponse, OutboundRequest};
pub use policy::{HostPattern, MAX_REDIRECTS, OperatorAllowance, OutboundPolicy, PolicyError, PolicyViolation};
pub use redact::{MASK, Redactor};
pub use resolve::{Lookup, ResolveError, ScriptedLookup, SystemLookup, VettingResolver};
pub use retry::{RetryPolicy, is_retryable_status, parse_retry_after};

/// Re-exported so callers build requests and read responses without depending on reqwest.
pub use reqwest::{Method, StatusCode, header};
pub use url::Url;
