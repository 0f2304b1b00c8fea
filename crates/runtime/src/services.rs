//! The bundle of ports a running platform uses. Built by a binary from concrete
//! adapters and shared (cheaply cloned) by the API and the workers.

use std::sync::Arc;
use std::time::Instant;

use rez_core::Stage;
use rez_core::clock::Clock;
use rez_core::ports::{ApiKeyStore, Inbox, MessageStore, Notifier, Queues};

use crate::keys::KeyVerifier;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Services {
    pub messages: Arc<dyn MessageStore>,
    pub queues: Arc<dyn Queues>,
    pub inbox: Arc<dyn Inbox>,
    pub keys: KeyVerifier,
    /// `None`: no push server configured; notifications go to the inbox only.
    pub notifier: Option<Arc<dyn Notifier>>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Stage given to messages that do not name one.
    pub stage: Stage,
    pub started: Instant,
}

impl Services {
    pub fn new(
        messages: Arc<dyn MessageStore>,
        queues: Arc<dyn Queues>,
        inbox: Arc<dyn Inbox>,
        key_store: Arc<dyn ApiKeyStore>,
        admin_key: Option<String>,
        notifier: Option<Arc<dyn Notifier>>,
        clock: Arc<dyn Clock>,
        stage: Stage,
    ) -> Self {
        Self {
            messages,
            queues,
            inbox,
            keys: KeyVerifier::new(key_store, admin_key, clock.clone()),
            notifier,
            clock,
            metrics: Arc::new(Metrics::new()),
            stage,
            started: Instant::now(),
        }
    }
}
