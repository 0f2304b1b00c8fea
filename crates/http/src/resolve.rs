//! DNS resolution under the outbound policy.
//!
//! reqwest asks [`VettingResolver`] for the addresses of every host name it connects to,
//! and connects only to what it returns. The resolver refuses the whole name if *any*
//! resolved address is forbidden: a name that mixes public and private answers is
//! treated as hostile rather than trimmed. Because the vetted addresses are exactly the
//! ones connected to, there is no window for DNS rebinding between check and connect.
//!
//! The lookup itself is injectable ([`Lookup`]) so tests can script answers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::policy::{OutboundPolicy, PolicyViolation};

/// Turns a host name into IP addresses.
#[async_trait]
pub trait Lookup: Send + Sync + 'static {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver, through tokio's `lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// Per host: the scripted answers and how many lookups happened.
type Script = HashMap<String, (Vec<Vec<IpAddr>>, usize)>;

/// Scripted answers, for tests: each name has a list of answers, used in order, the last
/// one repeating. Unknown names fail like NXDOMAIN.
#[derive(Debug, Default)]
pub struct ScriptedLookup {
    answers: Mutex<Script>,
}

impl ScriptedLookup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Script the successive answers for `host`.
    pub fn script(self, host: &str, answers: Vec<Vec<IpAddr>>) -> Self {
        self.lock().insert(host.to_ascii_lowercase(), (answers, 0));
        self
    }

    /// How many times `host` was looked up.
    pub fn calls(&self, host: &str) -> usize {
        self.lock().get(&host.to_ascii_lowercase()).map_or(0, |(_, n)| *n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Lookup for ScriptedLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let mut map = self.lock();
        let Some((answers, calls)) = map.get_mut(&host.to_ascii_lowercase()) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no such host: {host}")));
        };
        let answer = answers.get(*calls).or_else(|| answers.last()).cloned().unwrap_or_default();
        *calls += 1;
        Ok(answer)
    }
}

/// reqwest's resolver hook, enforcing the policy on every resolved address.
#[derive(Clone)]
pub struct VettingResolver {
    policy: Arc<OutboundPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl VettingResolver {
    pub fn new(policy: Arc<OutboundPolicy>, lookup: Arc<dyn Lookup>) -> Self {
        Self { policy, lookup }
    }

    /// Resolve and vet `host`: every address must pass, and there must be at least one.
    pub async fn resolve_vetted(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // Defence in depth: URLs are checked before sending, but never resolve a name
        // this integration may not call.
        if !self.policy.host_allowed(&host) {
            return Err(ResolveError::Refused(PolicyViolation::HostNotAllowed { host }));
        }
        let addrs = self.lookup.lookup(&host).await.map_err(ResolveError::Lookup)?;
        if addrs.is_empty() {
            return Err(ResolveError::Refused(PolicyViolation::NoAddresses { host }));
        }
        for addr in &addrs {
            if let Some(reason) = self.policy.vet_ip(*addr) {
                tracing::warn!(host = %host, addr = %addr, reason, "refusing host name: it resolves to a forbidden address");
                return Err(ResolveError::Refused(PolicyViolation::ForbiddenAddress { host, addr: *addr, reason }));
            }
        }
        Ok(addrs)
    }
}

/// Failure of [`VettingResolver`]; reaches the caller through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(PolicyViolation),
    #[error("DNS lookup failed: {0}")]
    Lookup(io::Error),
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.resolve_vetted(&host).await?;
            // Port 0 is replaced by reqwest with the URL's port.
            let iter: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(iter)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test]
    async fn any_forbidden_answer_refuses_the_name() {
        let lookup = ScriptedLookup::new()
            .script("mixed.example", vec![vec![ip("93.184.216.34"), ip("10.0.0.5")]])
            .script("good.example", vec![vec![ip("93.184.216.34")]])
            .script("empty.example", vec![vec![]]);
        let policy = Arc::new(OutboundPolicy::allowing(["*.example"]).expect("policy"));
        let r = VettingResolver::new(policy, Arc::new(lookup));
        assert!(matches!(
            r.resolve_vetted("mixed.example").await,
            Err(ResolveError::Refused(PolicyViolation::ForbiddenAddress { reason: "private network (RFC 1918)", .. }))
        ));
        assert_eq!(r.resolve_vetted("good.example").await.expect("good"), vec![ip("93.184.216.34")]);
        assert!(matches!(
            r.resolve_vetted("empty.example").await,
            Err(ResolveError::Refused(PolicyViolation::NoAddresses { .. }))
        ));
        assert!(matches!(r.resolve_vetted("nx.example").await, Err(ResolveError::Lookup(_))));
        assert!(matches!(
            r.resolve_vetted("other.test").await,
            Err(ResolveError::Refused(PolicyViolation::HostNotAllowed { .. }))
        ));
    }

    #[tokio::test]
    async fn public_first_private_next_is_refused_the_second_time() {
        let lookup =
            ScriptedLookup::new().script("flip.example", vec![vec![ip("93.184.216.34")], vec![ip("169.254.169.254")]]);
        let policy = Arc::new(OutboundPolicy::allowing(["flip.example"]).expect("policy"));
        let r = VettingResolver::new(policy, Arc::new(lookup));
        assert_eq!(r.resolve_vetted("flip.example").await.expect("first"), vec![ip("93.184.216.34")]);
        assert!(matches!(
            r.resolve_vetted("flip.example").await,
            Err(ResolveError::Refused(PolicyViolation::ForbiddenAddress {
                reason: "cloud metadata endpoint (link-local)",
                ..
            }))
        ));
    }

    #[tokio::test]
    async fn scripted_answers_advance() {
        let l = ScriptedLookup::new().script("a.example", vec![vec![ip("1.1.1.1")], vec![ip("10.0.0.1")]]);
        assert_eq!(l.lookup("a.example").await.expect("1"), vec![ip("1.1.1.1")]);
        assert_eq!(l.lookup("A.example").await.expect("2"), vec![ip("10.0.0.1")]);
        assert_eq!(l.lookup("a.example").await.expect("3"), vec![ip("10.0.0.1")]);
        assert_eq!(l.calls("a.example"), 3);
    }
}
