//! The sweeper: the half of "never stored but unqueued for good" that a single
//! transaction gives locally. A submission puts the message (`created`), publishes it,
//! then marks it `queued`; if the publish failed (or the process died between the
//! steps) the message stays `created`. [`sweep_created`] finds such messages through
//! the `by-status` index and publishes them again. It runs on a schedule in the
//! deployment (and can be called from anywhere; it is idempotent, and a message
//! published twice is delivered at least once, which consumers tolerate).

use rez_core::MessageId;
use rez_core::ports::StoreResult;
use rez_core::status::Status;

use crate::AwsStore;
use crate::codec::s;
use crate::messages::{BY_STATUS, publish_and_mark_queued, record_from_item};

/// Re-publish up to `limit` messages left `created` for longer than `older_than`
/// (younger ones are probably mid-submission), oldest first. Returns how many were
/// published; a publish that fails again is logged and left for the next sweep.
pub async fn sweep_created(store: &AwsStore, older_than: chrono::Duration, limit: usize) -> StoreResult<u64> {
    let cutoff = store.clock.now() - older_than;
    // Every id minted before the cutoff sorts below this one.
    let ceiling = MessageId::new(cutoff).as_str()[..MessageId::PREFIX.len() + 11].to_owned();
    let build = || {
        store
            .clients
            .dynamodb
            .query()
            .table_name(&store.names.messages_table)
            .index_name(BY_STATUS)
            .key_condition_expression("#st = :st AND #id < :ceiling")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":st", s(Status::Created.as_str()))
            .expression_attribute_values(":ceiling", s(&ceiling))
            .scan_index_forward(true)
    };
    let items = crate::codec::query_until(build, false, limit, None, "dynamodb query created messages").await?;
    let mut published = 0u64;
    for item in &items {
        let rec = record_from_item(item)?;
        let id = rec.message.id.clone();
        match publish_and_mark_queued(store, rec.message).await {
            Ok(m) => {
                tracing::info!(message_id = %id, status = %m.status, "sweeper published a message left created");
                published += 1;
            }
            Err(e) => tracing::warn!(message_id = %id, error = %e, "sweeper could not publish; will try again"),
        }
    }
    Ok(published)
}
