//! The shared port suite against the AWS adapters, on moto server: the same checks the
//! SQLite adapter passes.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use rez_port_suite::{Fixture, Store};

#[derive(Default)]
struct Moto;

#[async_trait]
impl Fixture for Moto {
    async fn fresh(&self) -> Arc<dyn Store> {
        Arc::new(common::store().await)
    }
}

rez_port_suite::port_suite!(Moto);
