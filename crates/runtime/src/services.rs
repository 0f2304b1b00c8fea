//! The bundle of ports a running platform uses. Built by a binary from concrete
//! adapters and shared (cheaply cloned) by the API and the workers.

use std::sync::Arc;
use std::time::Instant;

use rez_core::Stage;
use rez_core::clock::Clock;
use rez_core::ports::{ApiKeyStore, Inbox, MessageStore, Notifier, Queues, ResultStore, ScheduleEngine, ScheduleStore};

use crate::agent::AgentPorts;
use crate::keys::KeyVerifier;
use crate::metrics::Metrics;
use crate::scheduling::Schedules;

/// The adapters a deployment provides.
pub struct Ports {
    pub messages: Arc<dyn MessageStore>,
    pub queues: Arc<dyn Queues>,
    pub inbox: Arc<dyn Inbox>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub results: Arc<dyn ResultStore>,
    pub engine: Arc<dyn ScheduleEngine>,
    /// `None`: no push server configured.
    pub notifier: Option<Arc<dyn Notifier>>,
    pub clock: Arc<dyn Clock>,
    /// The agent's run store, budget ledger and settings; `None` in a deployment that
    /// has no agent store (its routes answer `503`).
    pub agent: Option<AgentPorts>,
}

/// Input limits of SPEC §8 that a deployment configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most schedules that may exist at once.
    pub max_schedules: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_schedules: crate::scheduling::service::DEFAULT_MAX_SCHEDULES }
    }
}

/// Every handler and middleware clones the state it extracts, so the bundle sits behind
/// one `Arc`: a clone is one reference count, not one per port.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

/// What [`Services`] shares; reached through `Deref`.
pub struct ServiceSet {
    pub messages: Arc<dyn MessageStore>,
    pub queues: Arc<dyn Queues>,
    pub inbox: Arc<dyn Inbox>,
    pub results: Arc<dyn ResultStore>,
    pub keys: KeyVerifier,
    /// `None`: no push server configured; notifications go to the inbox only.
    pub notifier: Option<Arc<dyn Notifier>>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub agent: Option<AgentPorts>,
    pub schedules: Schedules,
    /// Stage given to messages that do not name one.
    pub stage: Stage,
    pub started: Instant,
}

impl Services {
    /// `admin_key` is the `REZ_API_KEY` admin key, if any; `stage` is given to messages
    /// that do not name one.
    pub fn new(ports: Ports, admin_key: Option<String>, stage: Stage) -> Self {
        Self::with_limits(ports, admin_key, stage, Limits::default())
    }

    /// [`Self::new`] with configured [`Limits`].
    pub fn with_limits(ports: Ports, admin_key: Option<String>, stage: Stage, limits: Limits) -> Self {
        let metrics = Arc::new(Metrics::new());
        Self(Arc::new(ServiceSet {
            keys: KeyVerifier::new(ports.keys, admin_key, ports.clock.clone()),
            schedules: Schedules::new(ports.schedules, ports.engine, ports.clock.clone(), metrics.clone())
                .with_max_schedules(limits.max_schedules),
            messages: ports.messages,
            queues: ports.queues,
            inbox: ports.inbox,
            results: ports.results,
            notifier: ports.notifier,
            clock: ports.clock,
            metrics,
            agent: ports.agent,
            stage,
            started: Instant::now(),
        }))
    }
}

impl std::ops::Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}
