//! [`AwsStore`]: one value implementing every storage port over DynamoDB, SNS and SQS,
//! the AWS counterpart of `rez_local::LocalStore`. The port impls live one per file
//! (`messages.rs`, `queues.rs`, `inbox.rs`, ...); this file holds what they share.

use std::sync::Arc;
use std::time::Duration;

use rez_core::clock::Clock;

use crate::{Clients, Names};

/// Retry backoff of failed deliveries (visibility change on `fail`).
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { backoff_base: Duration::from_secs(5), backoff_max: Duration::from_secs(300) }
    }
}

#[derive(Clone)]
pub struct AwsStore {
    pub(crate) clients: Clients,
    pub(crate) names: Arc<Names>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) queue_config: QueueConfig,
}

impl AwsStore {
    pub fn new(clients: Clients, names: Names, clock: Arc<dyn Clock>, queue_config: QueueConfig) -> Self {
        Self { clients, names: Arc::new(names), clock, queue_config }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
