//! `rez-local` implements rez_agent's ports on one embedded SQLite database (WAL mode):
//! the message store, durable topics and queues with SQS semantics, the notification
//! inbox and API keys, and the agent's run store and budget ledger. It is what
//! `rez serve` runs on.
//!
//! All writes go through one writer thread that commits in groups ([`db::Db`]): every
//! accepted write is durable (`synchronous=FULL`) before its caller hears back, and
//! concurrent writers share one fsync. Reads use a small pool of connections.

mod agent;
mod approvals;
mod booking;
mod budget;
mod codec;
pub mod db;
pub mod files;
mod handoff;
mod inbox;
mod keys;
pub mod lease;
mod messages;
mod migrations;
mod queues;
mod results;
mod schedules;
mod secrets;
pub mod wake;

#[cfg(test)]
mod test_support;

use std::path::Path;
use std::sync::Arc;

use rez_core::clock::Clock;

pub use db::{BackupError, Db, DbError};
pub use handoff::MAX_WAITING as HANDOFF_MAX_WAITING;
pub use queues::QueueConfig;
pub use secrets::{
    KeyTextError, MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey, SecretsError, check_secret_name, secret_env_var,
};

/// All local adapters over one database.
#[derive(Clone)]
pub struct LocalStore {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: QueueConfig,
    /// This process's id in the `instances` table; in-flight deliveries carry it.
    pub(crate) instance: Arc<str>,
    /// Seals the secret store; see [`LocalStore::with_master_key`].
    pub(crate) master_key: Option<std::sync::Arc<MasterKey>>,
    /// Signalled when this process takes deliveries, so an idle lease loop starts
    /// renewing (see [`LocalStore::lease_tick`]).
    pub(crate) work_taken: Arc<tokio::sync::Notify>,
    /// New messages claimed for this process's own consumers ([`QueueConfig::direct_handoff`]).
    pub(crate) handoff: Arc<handoff::Handoff>,
}

impl LocalStore {
    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, config: QueueConfig) -> Result<Self, DbError> {
        let db = Db::open(path)?;
        let instance: Arc<str> = format!("inst_{}", ulid::Ulid::new()).into();
        let handoff = Arc::new(handoff::Handoff::new(config.direct_handoff));
        Ok(Self {
            db,
            clock,
            config,
            instance,
            master_key: None,
            work_taken: Arc::new(tokio::sync::Notify::new()),
            handoff,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}
