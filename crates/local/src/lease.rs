//! Process leases. Every process that consumes queues keeps a heartbeat row; in-flight
//! deliveries carry the owner's id. When a process dies (`kill -9`), its heartbeat stops
//! and any live process — typically the restarted one — makes its in-flight work visible
//! again within [`STALE_AFTER`], instead of after the full visibility timeout.

use std::time::Duration;

use rez_core::ports::StoreResult;

use crate::LocalStore;
use crate::db::sql;

/// How often a process renews its lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A lease not renewed for this long belongs to a dead process.
pub const STALE_AFTER: Duration = Duration::from_secs(4);

impl LocalStore {
    /// Renew this process's lease and reclaim the in-flight work of dead processes.
    /// Returns how many deliveries were reclaimed.
    pub async fn heartbeat(&self) -> StoreResult<u64> {
        let now_ms = self.now_ms();
        let me = self.instance.clone();
        let pid = std::process::id();
        let stale_ms = now_ms - STALE_AFTER.as_millis() as i64;
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                tx.prepare_cached(
                    "INSERT INTO instances (id, pid, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?3) \
                     ON CONFLICT(id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                )
                .map_err(sql)?
                .execute(rusqlite::params![&*me, pid, now_ms])
                .map_err(sql)?;
                // Work held by any owner without a live lease: dead (stale heartbeat) or
                // gone (resigned on shutdown with deliveries still in flight).
                const ORPHANED: &str =
                    "owner IS NOT NULL AND owner NOT IN (SELECT id FROM instances WHERE heartbeat_ms >= ?1)";
                let queues: Vec<String> = {
                    let mut stmt = tx
                        .prepare_cached(&format!("SELECT DISTINCT queue FROM queue_items WHERE {ORPHANED}"))
                        .map_err(sql)?;
                    let rows = stmt.query_map([stale_ms], |r| r.get(0)).map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let mut reclaimed = 0u64;
                if !queues.is_empty() {
                    let n = tx
                        .execute(
                            &format!(
                                "UPDATE queue_items SET receipt = NULL, owner = NULL, visible_ms = ?2 WHERE {ORPHANED}"
                            ),
                            rusqlite::params![stale_ms, now_ms],
                        )
                        .map_err(sql)?;
                    for q in queues.iter().filter_map(|q| rez_core::QueueName::parse(q)) {
                        ctx.wake(q);
                    }
                    tracing::warn!(reclaimed = n, "reclaimed in-flight work of processes that are gone");
                    reclaimed = n as u64;
                }
                tx.prepare_cached("DELETE FROM instances WHERE heartbeat_ms < ?1")
                    .map_err(sql)?
                    .execute([stale_ms])
                    .map_err(sql)?;
                Ok(reclaimed)
            })
            .await
    }

    /// Drop this process's lease on clean shutdown.
    pub async fn resign(&self) -> StoreResult<()> {
        let me = self.instance.clone();
        self.db
            .write(move |ctx| {
                ctx.tx.execute("DELETE FROM instances WHERE id = ?1", [&*me]).map_err(sql)?;
                Ok(())
            })
            .await
    }
}
