//! The notification inbox on DynamoDB: one item per notify message, keyed by message id,
//! which is what makes the notification processor idempotent under redelivery (as the
//! SQLite inbox). `open` is a conditional put; `record` a read-modify-write conditional
//! on the revision read, so concurrent attempts never lose a count.

use std::collections::HashMap;

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::notify::NotifyPayload;
use rez_core::ports::{AttemptOutcome, DeliveryState, Inbox, InboxEntry, Page, StoreError, StoreResult};
use rez_core::time::{Timestamp, serde_rfc3339, serde_rfc3339_opt};
use serde::{Deserialize, Serialize};

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, n, opt_n, s};
use crate::error::backend;
use crate::shards::{IndexQuery, LEGACY_PK, LIST_PK_ATTR, Order, ShardedListing, list_pk, sharded};

/// The inbox's GSIs, each partitioned by a key sharded by message id (see
/// [`crate::shards`]): `by-state` by [`STATE_ATTR`], `by-all` by `list_pk`.
pub(crate) const BY_STATE: &str = "by-state";
pub(crate) const BY_ALL: &str = "by-all";
/// The entry's delivery state, sharded: `pending#2`.
pub(crate) const STATE_ATTR: &str = "state";
const MAX_RACES: usize = 8;

/// The stored form of an [`InboxEntry`] (which is only `Serialize`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub message_id: MessageId,
    pub notification: NotifyPayload,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub created_date: Timestamp,
    #[serde(with = "serde_rfc3339_opt", default, skip_serializing_if = "Option::is_none")]
    pub delivered_date: Option<Timestamp>,
}

impl Stored {
    /// A new entry: pending, no attempt yet.
    pub(crate) fn new(message_id: MessageId, notification: NotifyPayload, now: Timestamp) -> Self {
        Stored {
            message_id,
            notification,
            state: DeliveryState::Pending,
            attempts: 0,
            last_error: None,
            push_id: None,
            created_date: now,
            delivered_date: None,
        }
    }
}

impl From<Stored> for InboxEntry {
    fn from(s: Stored) -> Self {
        InboxEntry {
            message_id: s.message_id,
            notification: s.notification,
            state: s.state,
            attempts: s.attempts,
            last_error: s.last_error,
            push_id: s.push_id,
            created_date: s.created_date,
            delivered_date: s.delivered_date,
        }
    }
}

fn state_str(st: DeliveryState) -> &'static str {
    match st {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::InboxOnly => "inbox_only",
    }
}

pub(crate) fn item_of(e: &Stored, rev: i64) -> StoreResult<Item> {
    Ok(HashMap::from([
        ("message_id".to_owned(), s(e.message_id.as_str())),
        (STATE_ATTR.to_owned(), s(&sharded(state_str(e.state), e.message_id.as_str()))),
        (LIST_PK_ATTR.to_owned(), s(&list_pk(e.message_id.as_str()))),
        ("rev".to_owned(), n(rev)),
        (DOC.to_owned(), doc(e)?),
    ]))
}

impl AwsStore {
    async fn inbox_get(&self, id: &MessageId) -> StoreResult<Option<(Stored, i64)>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.names.inbox_table)
            .key("message_id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get inbox entry", e))?;
        match out.item {
            None => Ok(None),
            Some(item) => Ok(Some((from_doc(&item)?, opt_n(&item, "rev")?.unwrap_or(0)))),
        }
    }

    /// Put `e` as revision `rev + 1` if the stored revision is `rev` (or, with `None`, if
    /// there is no entry yet). `Ok(false)` if the condition failed.
    async fn inbox_put(&self, e: &Stored, rev: Option<i64>) -> StoreResult<bool> {
        let mut req = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.names.inbox_table)
            .set_item(Some(item_of(e, rev.map_or(0, |r| r + 1))?));
        req = match rev {
            None => {
                req.condition_expression("attribute_not_exists(#id)").expression_attribute_names("#id", "message_id")
            }
            Some(r) => req
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", "rev")
                .expression_attribute_values(":rev", n(r)),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(backend("dynamodb put inbox entry", err)),
        }
    }
}

#[async_trait]
impl Inbox for AwsStore {
    async fn open(&self, message_id: &MessageId, notification: &NotifyPayload) -> StoreResult<InboxEntry> {
        let fresh = Stored::new(message_id.clone(), notification.clone(), self.clock.now());
        if self.inbox_put(&fresh, None).await? {
            return Ok(fresh.into());
        }
        self.inbox_get(message_id)
            .await?
            .map(|(e, _)| e.into())
            .ok_or_else(|| StoreError::NotFound(format!("inbox entry {message_id}")))
    }

    async fn record(
        &self,
        message_id: &MessageId,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<InboxEntry> {
        let now = self.clock.now();
        for _ in 0..MAX_RACES {
            let (mut e, rev) = match self.inbox_get(message_id).await? {
                Some((e, rev)) => (e, Some(rev)),
                None => (Stored::new(message_id.clone(), notification.clone(), now), None),
            };
            e.attempts += 1;
            match &outcome {
                AttemptOutcome::Delivered { push_id } => {
                    e.state = DeliveryState::Delivered;
                    if push_id.is_some() {
                        e.push_id = push_id.clone();
                    }
                    e.delivered_date = Some(now);
                }
                AttemptOutcome::Failed { error } => {
                    e.state = DeliveryState::Failed;
                    e.last_error = Some(error.clone());
                }
                AttemptOutcome::InboxOnly => {
                    e.state = DeliveryState::InboxOnly;
                    e.delivered_date = Some(now);
                }
            }
            if self.inbox_put(&e, rev).await? {
                tracing::debug!(message_id = %message_id, state = state_str(e.state), attempts = e.attempts, "inbox attempt recorded");
                return Ok(e.into());
            }
        }
        Err(StoreError::Conflict(format!("inbox entry {message_id} keeps changing; gave up recording")))
    }

    async fn get_entry(&self, message_id: &MessageId) -> StoreResult<Option<InboxEntry>> {
        Ok(self.inbox_get(message_id).await?.map(|(e, _)| e.into()))
    }

    async fn list_entries(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<InboxEntry>> {
        let limit = limit.clamp(1, 100);
        let decode = |i: &Item| from_doc::<Stored>(i).map(InboxEntry::from);
        let (listing, index, pk_attr, base) = match state {
            None => ("inbox", BY_ALL, LIST_PK_ATTR, LEGACY_PK),
            Some(st) => ("inbox-by-state", BY_STATE, STATE_ATTR, state_str(st)),
        };
        let listing = ShardedListing {
            listing,
            query: IndexQuery::new(&self.names.inbox_table, index, pk_attr),
            base,
            id_attr: "message_id",
            sort_key: None,
            valid_id: |id| MessageId::parse(id).is_ok(),
            order: Order::NewestFirst,
            context: "dynamodb query inbox",
        };
        let (items, next_cursor) = listing.page(&self.clients.dynamodb, limit, cursor.as_deref()).await?;
        let items = items.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }
}
