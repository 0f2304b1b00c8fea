//! `ResultStore` on SQLite: web-action results, kept for 3 days (each row carries its
//! expiry; the maintenance task purges expired rows).

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::ports::{ResultStore, StoreError, StoreResult};
use rez_core::time::Timestamp;
use rez_core::web_action::WebActionResult;

use crate::LocalStore;
use crate::db::sql;

#[async_trait]
impl ResultStore for LocalStore {
    async fn put_result(&self, result: &WebActionResult) -> StoreResult<()> {
        let body = serde_json::to_string(result).map_err(|e| StoreError::Corrupt(format!("result: {e}")))?;
        let (id, mid, ttl) = (result.id.to_string(), result.message_id.to_string(), result.ttl.timestamp_millis());
        self.db
            .write(move |ctx| {
                ctx.tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO results (id, message_id, expires_ms, body) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![id, mid, ttl, body])
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn results_for(&self, message_id: &MessageId) -> StoreResult<Vec<WebActionResult>> {
        let mid = message_id.to_string();
        self.db
            .read(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT body FROM results WHERE message_id = ?1 ORDER BY id").map_err(sql)?;
                let mut rows = stmt.query([mid]).map_err(sql)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let body: String = r.get(0).map_err(sql)?;
                    out.push(serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("result: {e}")))?);
                }
                Ok(out)
            })
            .await
    }

    async fn purge_expired_results(&self, now: Timestamp) -> StoreResult<u64> {
        let now_ms = now.timestamp_millis();
        self.db
            .write(move |ctx| {
                let n = ctx.tx.execute("DELETE FROM results WHERE expires_ms < ?1", [now_ms]).map_err(sql)?;
                Ok(n as u64)
            })
            .await
    }
}
