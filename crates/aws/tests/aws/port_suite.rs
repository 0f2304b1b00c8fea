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

/// The agent's run store and budget ledger on moto: the same checks as on SQLite.
mod agent {
    use super::common;

    use std::sync::Arc;

    use async_trait::async_trait;
    use rez_core::agent::store::{AgentStore, BudgetLedger};
    use rez_port_suite::agent::AgentFixture;

    #[derive(Default)]
    struct MotoAgent;

    #[async_trait]
    impl AgentFixture for MotoAgent {
        async fn fresh_agent(&self) -> (Arc<dyn AgentStore>, Arc<dyn BudgetLedger>) {
            let store = Arc::new(common::store().await);
            (store.clone(), store)
        }
    }

    rez_port_suite::agent_port_suite!(MotoAgent);
}

/// Approvals on moto: created once per step, decided once, and of an approve and a decline
/// at once exactly one wins (through the serialising proxy, as DynamoDB orders them).
mod approvals {
    use super::common;

    use std::sync::Arc;

    use async_trait::async_trait;
    use rez_core::agent::approval::ApprovalStore;
    use rez_port_suite::approvals::ApprovalFixture;

    #[derive(Default)]
    struct MotoApprovals;

    #[async_trait]
    impl ApprovalFixture for MotoApprovals {
        async fn fresh_approvals(&self) -> Arc<dyn ApprovalStore> {
            Arc::new(common::store().await)
        }
    }

    rez_port_suite::approval_port_suite!(MotoApprovals);
}
