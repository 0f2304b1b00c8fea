//! The sweeper: the half of "never stored but unqueued for good" that a single
//! transaction gives locally. A submission puts the message (`created`), publishes it,
//! then marks it `queued`; if the publish failed (or the process died between the
//! steps) the message stays `created`. [`sweep_created`] finds such messages through
//! the `by-status` index and publishes them again. A message SNS refuses for good (see
//! [`crate::publish_refusal`]) is dead-lettered with the reason instead, so it is not
//! retried forever ahead of newer ones; it is listed and redriven like any dead letter.
//! The sweeper runs on a schedule in the deployment (and can be called from anywhere;
//! it is idempotent, and a message published twice is delivered at least once, which
//! consumers tolerate).

use rez_core::MessageId;
use rez_core::ports::StoreResult;
use rez_core::routing::primary_queue;
use rez_core::status::Status;

use crate::AwsStore;
use crate::codec::s;
use crate::messages::{
    DeadLetterInfo, modify, publish_and_mark_queued, record_from_item, status_listing, status_query,
};
use crate::publish_refusal::PublishError;
use crate::shards::Order;

/// What one [`sweep_created`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CreatedSweep {
    /// Published and marked `queued`.
    pub published: u64,
    /// Refused by SNS for good, now dead letters with the reason.
    pub dead_lettered: u64,
    /// Failed for now (or unreadable); left `created` for the next sweep.
    pub left: u64,
}

/// Re-publish up to `limit` messages left `created` for longer than `older_than`
/// (younger ones are probably mid-submission), oldest first. A message SNS refuses for
/// good is dead-lettered with the reason; one whose publish fails for now is logged and
/// left for the next sweep. Either way the sweep goes on with the next message.
pub async fn sweep_created(store: &AwsStore, older_than: chrono::Duration, limit: usize) -> StoreResult<CreatedSweep> {
    let cutoff = store.clock.now() - older_than;
    // Every id minted before the cutoff sorts below this one.
    let ceiling = MessageId::new(cutoff).as_str()[..MessageId::PREFIX.len() + 11].to_owned();
    let mut query = status_query(store);
    query.key("#id < :ceiling", &[("#id", "id")], vec![(":ceiling".into(), s(&ceiling))]);
    let listing =
        status_listing("created", Status::Created, query, Order::OldestFirst, "dynamodb query created messages");
    let (items, _) = listing.page(&store.clients.dynamodb, limit, None).await?;
    let mut outcome = CreatedSweep::default();
    for item in &items {
        let rec = match record_from_item(item) {
            Ok(rec) => rec,
            Err(e) => {
                let id = item.get("id").and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
                tracing::error!(message_id = %id, error = %e, "sweeper cannot read a created message; skipped");
                outcome.left += 1;
                continue;
            }
        };
        let id = rec.message.id.clone();
        match publish_and_mark_queued(store, rec.message).await {
            Ok(m) => {
                tracing::info!(message_id = %id, status = %m.status, "sweeper published a message left created");
                outcome.published += 1;
            }
            Err(PublishError::Refused(reason)) => match dead_letter_refused(store, &id, &reason).await {
                Ok(true) => {
                    tracing::warn!(message_id = %id, reason = %reason, "sweeper dead-lettered a message SNS refuses");
                    outcome.dead_lettered += 1;
                }
                Ok(false) => tracing::info!(message_id = %id, "refused message moved on before it was dead-lettered"),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "sweeper could not dead-letter a refused message; will try again");
                    outcome.left += 1;
                }
            },
            Err(PublishError::Failed(e)) => {
                tracing::warn!(message_id = %id, error = %e, "sweeper could not publish; will try again");
                outcome.left += 1;
            }
        }
    }
    Ok(outcome)
}

/// Mark the `created` message `id` dead-lettered with `reason`, listed under its primary
/// queue (where a redrive sends it). `Ok(false)` if it is no longer `created`.
async fn dead_letter_refused(store: &AwsStore, id: &MessageId, reason: &str) -> StoreResult<bool> {
    let now = store.clock.now();
    let changed = modify(store, id, |rec| {
        if rec.message.status != Status::Created {
            return Ok(false);
        }
        rec.message.status = rec.message.status.transition(Status::DeadLettered)?;
        rec.message.error_message = Some(reason.to_owned());
        rec.message.updated_date = now;
        rec.dead_letter = Some(DeadLetterInfo {
            source_queue: primary_queue(rec.message.message_type),
            at: now,
            receive_count: 0,
            last_error: Some(reason.to_owned()),
        });
        Ok(true)
    })
    .await?;
    Ok(changed.is_some_and(|(_, written)| written))
}

/// What the sweeper reads of a DLQ copy: the message and the attempt it was sent for.
#[derive(serde::Deserialize)]
struct DlqCopy {
    id: MessageId,
    #[serde(default)]
    retry_count: u32,
}

/// Receives spent per DLQ by [`sweep_dead_letter_queues`].
const DLQ_ROUNDS: usize = 10;

/// Record as dead letters the messages SQS itself moved to a DLQ. SQS's redrive policy
/// (3 receives) is the backstop for consumers that died mid-delivery; when it fires,
/// nothing updates the message item, which would stay `processing` and never be listed
/// by `dead_letters`. This receives from each DLQ (a bounded number of times), marks
/// such messages `dead_lettered` with their source queue, and leaves the copies in the
/// DLQ. Copies of messages that are gone or completed are deleted. Returns how many
/// messages it recorded.
pub async fn sweep_dead_letter_queues(store: &AwsStore) -> StoreResult<u64> {
    use crate::queues::{change_visibility, delete_quietly, url};
    use rez_core::ports::MAX_RECEIVES;
    use rez_core::routing::QueueName;

    let now = store.clock.now();
    let mut recorded = 0u64;
    for queue in QueueName::ALL {
        let dlq_url = url(store, queue, true)?;
        let mut held = Vec::new();
        for _ in 0..DLQ_ROUNDS {
            let out = store
                .clients
                .sqs
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| crate::error::backend("sqs receive_message (dlq)", e))?;
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let Some(receipt) = m.receipt_handle else { continue };
                let Some(copy) = m.body.as_deref().and_then(|b| serde_json::from_str::<DlqCopy>(b).ok()) else {
                    held.push(receipt);
                    continue;
                };
                let id = copy.id;
                let mut stale = false;
                // Conditional on the stored revision (`modify`), and on the copy being of
                // the message's current attempt: a copy left from before a retry or
                // redrive (its retry count is lower) must not dead-letter the message
                // again while it is queued or in flight.
                let changed = modify(store, &id, |rec| {
                    if copy.retry_count < rec.message.retry_count {
                        stale = true;
                        return Ok(false);
                    }
                    if rec.dead_letter.is_some() || rec.message.status == Status::Completed {
                        return Ok(false);
                    }
                    let error = "maximum receives exceeded (moved to the DLQ by SQS)";
                    if queue == primary_queue(rec.message.message_type)
                        && rec.message.status.can_transition(Status::DeadLettered)
                    {
                        rec.message.status = Status::DeadLettered;
                        rec.message.error_message = Some(error.to_owned());
                        rec.message.updated_date = now;
                    }
                    rec.dead_letter = Some(DeadLetterInfo {
                        source_queue: queue,
                        at: now,
                        receive_count: MAX_RECEIVES,
                        last_error: Some(error.to_owned()),
                    });
                    rec.receipt = None;
                    rec.parked = None;
                    Ok(true)
                })
                .await?;
                match changed {
                    None => delete_quietly(store, queue, true, &receipt).await,
                    Some(_) if stale => {
                        tracing::info!(message_id = %id, queue = %queue, "dropped a DLQ copy older than the message's last retry");
                        delete_quietly(store, queue, true, &receipt).await;
                    }
                    Some((rec, written)) => {
                        if written {
                            tracing::warn!(message_id = %id, queue = %queue, "recorded a message SQS dead-lettered");
                            recorded += 1;
                        }
                        if rec.message.status == Status::Completed {
                            delete_quietly(store, queue, true, &receipt).await;
                        } else {
                            held.push(receipt);
                        }
                    }
                }
            }
        }
        for receipt in held {
            if let Err(e) = change_visibility(store, queue, true, &receipt, 0).await {
                tracing::debug!(queue = %queue, error = %e, "could not release a DLQ message; it reappears in 30 s");
            }
        }
    }
    Ok(recorded)
}
