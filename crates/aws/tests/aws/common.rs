//! A fresh, uniquely named deployment on the shared moto server per test.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rez_aws::store::QueueConfig;
use rez_aws::{AwsStore, Clients, Names};
use rez_core::clock::SystemClock;
use rez_testkit::Moto;

pub const REGION: &str = "us-east-1";

pub async fn clients() -> Clients {
    // DynamoDB calls one at a time, so races on conditional writes behave as on DynamoDB.
    Clients::for_endpoint(Moto::shared_serialized().endpoint(), REGION).await
}

/// A unique prefix, so tests sharing one emulator never see each other's resources.
pub fn unique_prefix() -> String {
    format!("rez-t{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

pub async fn deployment() -> (Clients, Names) {
    let clients = clients().await;
    let names = rez_aws::provision::provision(&clients, &unique_prefix(), "dev").await.expect("provision on moto");
    (clients, names)
}

pub async fn store() -> AwsStore {
    let (clients, names) = deployment().await;
    store_on(clients, names)
}

/// A store over an existing deployment (tests that also reach the tables directly).
pub fn store_on(clients: Clients, names: Names) -> AwsStore {
    let config = QueueConfig { backoff_base: Duration::from_millis(100), backoff_max: Duration::from_millis(400) };
    AwsStore::new(clients, names, Arc::new(SystemClock), config)
}
