//! The notification inbox on SQLite. One row per notify message, keyed by message id:
//! that key is what makes the notification processor idempotent under redelivery.

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::notify::NotifyPayload;
use rez_core::ports::{AttemptOutcome, DeliveryState, Inbox, InboxEntry, Page, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row};

use crate::LocalStore;
use crate::codec::ts;
use crate::db::sql;

const COLUMNS: &str = "message_id, notification, state, attempts, last_error, push_id, created_ms, delivered_ms";
/// Spelled out once (`prepare_cached` looks statements up by their text).
static FIND_ENTRY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM inbox WHERE message_id = ?1"));

fn state_str(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::InboxOnly => "inbox_only",
    }
}

/// The SQL condition `state = '<state>'`, with the state as a literal.
fn state_is(s: DeliveryState) -> String {
    format!("state = '{}'", state_str(s))
}

fn parse_state(s: &str) -> StoreResult<DeliveryState> {
    Ok(match s {
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        "failed" => DeliveryState::Failed,
        "inbox_only" => DeliveryState::InboxOnly,
        other => return Err(StoreError::Corrupt(format!("inbox state {other}"))),
    })
}

fn entry(r: &Row<'_>) -> StoreResult<InboxEntry> {
    let id: String = r.get(0).map_err(sql)?;
    let n: String = r.get(1).map_err(sql)?;
    let state: String = r.get(2).map_err(sql)?;
    Ok(InboxEntry {
        message_id: MessageId::parse(&id).map_err(|_| StoreError::Corrupt(format!("inbox id {id}")))?,
        notification: serde_json::from_str::<NotifyPayload>(&n)
            .map_err(|e| StoreError::Corrupt(format!("inbox entry {id}: {e}")))?,
        state: parse_state(&state)?,
        attempts: r.get(3).map_err(sql)?,
        last_error: r.get(4).map_err(sql)?,
        push_id: r.get(5).map_err(sql)?,
        created_date: ts(r.get(6).map_err(sql)?)?,
        delivered_date: r.get::<_, Option<i64>>(7).map_err(sql)?.map(ts).transpose()?,
    })
}

/// Record one attempt for `id` (creating the entry with the encoded notification
/// `body` if needed). Shared by [`Inbox::record`] and `Queues::complete_notified`.
pub(crate) fn upsert_attempt(
    tx: &rusqlite::Connection,
    id: &str,
    body: &str,
    outcome: AttemptOutcome,
    now_ms: i64,
) -> StoreResult<()> {
    let (state, error, push_id, delivered) = match outcome {
        AttemptOutcome::Delivered { push_id } => (DeliveryState::Delivered, None, push_id, Some(now_ms)),
        AttemptOutcome::Failed { error } => (DeliveryState::Failed, Some(error), None, None),
        AttemptOutcome::InboxOnly => (DeliveryState::InboxOnly, None, None, Some(now_ms)),
    };
    tx.prepare_cached(
        "INSERT INTO inbox (message_id, notification, state, attempts, last_error, push_id, created_ms, delivered_ms) \
         VALUES (?1, ?6, ?2, 1, ?3, ?4, ?7, ?5) \
         ON CONFLICT(message_id) DO UPDATE SET state = ?2, attempts = attempts + 1, \
         last_error = COALESCE(?3, last_error), push_id = COALESCE(?4, push_id), \
         delivered_ms = COALESCE(?5, delivered_ms)",
    )
    .map_err(sql)?
    .execute(rusqlite::params![id, state_str(state), error, push_id, delivered, body, now_ms])
    .map_err(sql)?;
    Ok(())
}

fn load(c: &rusqlite::Connection, id: &str) -> StoreResult<Option<InboxEntry>> {
    let mut stmt = c.prepare_cached(&FIND_ENTRY).map_err(sql)?;
    stmt.query_row([id], |r| Ok(entry(r))).optional().map_err(sql)?.transpose()
}

#[async_trait]
impl Inbox for LocalStore {
    async fn open(&self, message_id: &MessageId, notification: &NotifyPayload) -> StoreResult<InboxEntry> {
        let id = message_id.to_string();
        let body = serde_json::to_string(notification).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                ctx.tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO inbox (message_id, notification, state, attempts, created_ms) VALUES (?1, ?2, 'pending', 0, ?3)",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![id, body, now_ms])
                    .map_err(sql)?;
                load(ctx.tx, &id)?.ok_or_else(|| StoreError::NotFound(format!("inbox entry {id}")))
            })
            .await
    }

    async fn record(
        &self,
        message_id: &MessageId,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<InboxEntry> {
        let id = message_id.to_string();
        let body = serde_json::to_string(notification).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                upsert_attempt(ctx.tx, &id, &body, outcome, now_ms)?;
                load(ctx.tx, &id)?.ok_or_else(|| StoreError::NotFound(format!("inbox entry {id}")))
            })
            .await
    }

    async fn get_entry(&self, message_id: &MessageId) -> StoreResult<Option<InboxEntry>> {
        self.db.read_point(|c| load(c, message_id.as_str()))
    }

    async fn list_entries(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<InboxEntry>> {
        let limit = limit.clamp(1, 100);
        self.db
            .read(move |c| {
                let cursor = cursor.map(|c| MessageId::parse(&c).map_err(|_| StoreError::InvalidCursor)).transpose()?;
                let mut clauses: Vec<String> = Vec::new();
                let mut params: Vec<String> = Vec::new();
                if let Some(s) = state {
                    // A literal, so that SQLite can use the partial state index.
                    clauses.push(state_is(s));
                }
                if let Some(c) = &cursor {
                    clauses.push("message_id < ?".into());
                    params.push(c.to_string());
                }
                let where_ =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let q = format!("SELECT {COLUMNS} FROM inbox {where_} ORDER BY message_id DESC LIMIT {}", limit + 1);
                let mut stmt = c.prepare(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    items.push(entry(r)?);
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|e| e.message_id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partial state index serves the states few entries stay in; the final ones
    /// walk the inbox newest first.
    #[test]
    fn a_state_filter_uses_the_partial_index_for_unfinished_states() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::test_support::migrated(dir.path());
        for state in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed, DeliveryState::InboxOnly]
        {
            let q = format!("SELECT {COLUMNS} FROM inbox WHERE {} ORDER BY message_id DESC LIMIT 11", state_is(state));
            let plan = crate::test_support::query_plan(&conn, &q, []);
            let indexed = plan.iter().any(|p| p.contains("INDEX inbox_by_state"));
            let unfinished = matches!(state, DeliveryState::Pending | DeliveryState::Failed);
            assert_eq!(indexed, unfinished, "{state:?}: {plan:?}");
        }
    }
}
