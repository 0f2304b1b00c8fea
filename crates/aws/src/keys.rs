//! `ApiKeyStore` on DynamoDB (the api-keys table), the AWS counterpart of
//! `rez_local::keys`. It exists so the API's bearer-key check works the same in both
//! deployments.
//!
//! Item layout: `id` (hash key), `list_pk = "all"` (so `list_keys` is a Query on the
//! `by-all` index, never a Scan), `doc` (name, scope and creation date as JSON), `hash`
//! (the SHA-256 of the token, binary) and, once revoked, `revoked_at` (epoch ms).
//! `ApiKeyRecord` is not `Deserialize` and never serialises its hash, so `doc` holds a
//! private mirror of it; revocation is a separate attribute so that `revoke` is one
//! conditional update ("only an active key") with no read-modify-write.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeZone;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::ports::{ApiKeyStore, StoreError, StoreResult};
use rez_core::time::{Timestamp, serde_rfc3339};
use serde::{Deserialize, Serialize};

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, n, opt_n, s};
use crate::error::backend;

const LIST_PK: &str = "all";
const BY_ALL: &str = "by-all";

/// What `doc` holds: the record without its hash and revocation.
#[derive(Serialize, Deserialize)]
struct KeyDoc {
    id: ApiKeyId,
    name: String,
    scope: Scope,
    #[serde(with = "serde_rfc3339")]
    created_date: Timestamp,
}

fn ms_to_ts(ms: i64) -> StoreResult<Timestamp> {
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp out of range: {ms}")))
}

fn item_of(k: &ApiKeyRecord) -> StoreResult<Item> {
    let body = KeyDoc { id: k.id.clone(), name: k.name.clone(), scope: k.scope, created_date: k.created_date };
    let mut item = Item::new();
    item.insert("id".into(), s(k.id.as_str()));
    item.insert("list_pk".into(), s(LIST_PK));
    item.insert(DOC.into(), doc(&body)?);
    item.insert("hash".into(), AttributeValue::B(Blob::new(k.hash.to_vec())));
    if let Some(at) = k.revoked_date {
        item.insert("revoked_at".into(), n(at.timestamp_millis()));
    }
    Ok(item)
}

fn record_of(item: &Item) -> StoreResult<ApiKeyRecord> {
    let d: KeyDoc = from_doc(item)?;
    let hash = item
        .get("hash")
        .and_then(|v| v.as_b().ok())
        .and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("hash of key {}", d.id)))?;
    let revoked_date = opt_n(item, "revoked_at")?.map(ms_to_ts).transpose()?;
    Ok(ApiKeyRecord { id: d.id, name: d.name, scope: d.scope, hash, created_date: d.created_date, revoked_date })
}

#[async_trait]
impl ApiKeyStore for AwsStore {
    async fn insert(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let out = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.names.keys_table)
            .set_item(Some(item_of(key)?))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "id")
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(key_id = %key.id, scope = %key.scope, "api key stored");
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict(format!("api key {} already exists", key.id)))
            }
            Err(e) => Err(backend("dynamodb put_item api key", e)),
        }
    }

    async fn get_key(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.names.keys_table)
            .key("id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item api key", e))?;
        out.item().map(record_of).transpose()
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        // Oldest first (ids sort by creation time), like the local store's `ORDER BY id`.
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .query()
                .table_name(&self.names.keys_table)
                .index_name(BY_ALL)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "list_pk")
                .expression_attribute_values(":pk", s(LIST_PK))
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("dynamodb query api keys", e))?;
            for item in page.items() {
                out.push(record_of(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool> {
        let out = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.names.keys_table)
            .key("id", s(id.as_str()))
            .update_expression("SET #rev = :at")
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#rev)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#rev", "revoked_at")
            .expression_attribute_values(":at", n(at.timestamp_millis()))
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(key_id = %id, "api key revoked");
                Ok(true)
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(backend("dynamodb update_item api key", e)),
        }
    }
}
