//! `ResultStore` on DynamoDB (the results table), the AWS counterpart of
//! `rez_local::results`: web-action results, kept for [`RESULT_TTL`] after creation.
//!
//! Item layout: `message_id` (hash) + `id` (range; result ids sort by creation time, so
//! a Query is "oldest first"), `doc` (the result as JSON), `expires_at` (epoch seconds,
//! the table's TTL attribute) and, for the `by-expiry` index (every item), `expiry_pk =
//! "all"` with `expires_ms` (the exact expiry in epoch ms).
//!
//! Expiry: DynamoDB's TTL deletes expired items lazily (typically within 48 h) and moto
//! never does, so TTL is only the backstop. Like the local store, `results_for` returns
//! what is stored (an expired result stays visible until it is purged) and
//! `purge_expired_results` finds expired items through `by-expiry` and deletes each with
//! a condition on its expiry, so a result rewritten meanwhile is never removed.
//!
//! [`RESULT_TTL`]: rez_core::web_action::RESULT_TTL

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::ports::{ResultStore, StoreError, StoreResult};
use rez_core::time::Timestamp;
use rez_core::web_action::WebActionResult;

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, n, s};
use crate::error::backend;

const EXPIRY_PK: &str = "all";
const BY_EXPIRY: &str = "by-expiry";

fn item_of(r: &WebActionResult) -> StoreResult<Item> {
    let mut item = Item::new();
    item.insert("message_id".into(), s(r.message_id.as_str()));
    item.insert("id".into(), s(r.id.as_str()));
    item.insert(DOC.into(), doc(r)?);
    // TTL wants whole seconds; round up so the backstop never deletes early.
    let ms = r.ttl.timestamp_millis();
    item.insert("expires_at".into(), n(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)));
    item.insert("expiry_pk".into(), s(EXPIRY_PK));
    item.insert("expires_ms".into(), n(ms));
    Ok(item)
}

#[async_trait]
impl ResultStore for AwsStore {
    async fn put_result(&self, result: &WebActionResult) -> StoreResult<()> {
        // An unconditional put replaces a result with the same id, like the local
        // `INSERT OR REPLACE`.
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.names.results_table)
            .set_item(Some(item_of(result)?))
            .send()
            .await
            .map_err(|e| backend("dynamodb put_item result", e))?;
        tracing::debug!(result_id = %result.id, message_id = %result.message_id, "result stored");
        Ok(())
    }

    async fn results_for(&self, message_id: &MessageId) -> StoreResult<Vec<WebActionResult>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .query()
                .table_name(&self.names.results_table)
                .key_condition_expression("#m = :m")
                .expression_attribute_names("#m", "message_id")
                .expression_attribute_values(":m", s(message_id.as_str()))
                .scan_index_forward(true)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("dynamodb query results", e))?;
            for item in page.items() {
                out.push(from_doc(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn purge_expired_results(&self, now: Timestamp) -> StoreResult<u64> {
        let now_ms = now.timestamp_millis();
        let mut purged = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .query()
                .table_name(&self.names.results_table)
                .index_name(BY_EXPIRY)
                .key_condition_expression("#pk = :pk AND #exp < :now")
                .expression_attribute_names("#pk", "expiry_pk")
                .expression_attribute_names("#exp", "expires_ms")
                .expression_attribute_values(":pk", s(EXPIRY_PK))
                .expression_attribute_values(":now", n(now_ms))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("dynamodb query expired results", e))?;
            for item in page.items() {
                let (Some(mid), Some(id)) = (item.get("message_id"), item.get("id")) else {
                    return Err(StoreError::Corrupt("expired result without its key".into()));
                };
                let deleted = self
                    .clients
                    .dynamodb
                    .delete_item()
                    .table_name(&self.names.results_table)
                    .key("message_id", mid.clone())
                    .key("id", id.clone())
                    .condition_expression("#exp < :now")
                    .expression_attribute_names("#exp", "expires_ms")
                    .expression_attribute_values(":now", n(now_ms))
                    .send()
                    .await;
                match deleted {
                    Ok(_) => purged += 1,
                    // Rewritten with a later expiry, or deleted by TTL or another purge.
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(backend("dynamodb delete_item result", e)),
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        if purged > 0 {
            tracing::info!(purged, "expired results purged");
        }
        Ok(purged)
    }
}
