//! The shared port suite against the SQLite adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::clock::SystemClock;
use rez_local::{LocalStore, QueueConfig};
use rez_port_suite::{Fixture, Store};

#[derive(Default)]
struct Sqlite;

#[async_trait]
impl Fixture for Sqlite {
    async fn fresh(&self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rez.db");
        // Keep the directory for the life of the test process.
        std::mem::forget(dir);
        let config = QueueConfig { backoff_base: Duration::from_millis(100), backoff_max: Duration::from_millis(400) };
        Arc::new(LocalStore::open(&path, Arc::new(SystemClock), config).expect("open"))
    }
}

rez_port_suite::port_suite!(Sqlite);
