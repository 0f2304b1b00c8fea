//! Process leases. Every process that consumes queues keeps a heartbeat row; in-flight
//! deliveries carry the owner's id. When a process dies (`kill -9`), its heartbeat stops
//! and any live process — typically the restarted one — makes its in-flight work visible
//! again within [`STALE_AFTER`], instead of after the full visibility timeout.
//!
//! A lease only matters while deliveries are in flight, so an idle process does not
//! renew it (no write, no fsync, every second, forever): [`LocalStore::lease_tick`]
//! renews and reclaims only while some delivery is in flight, here or in another process
//! sharing the database, and `receive` refreshes the lease in the same transaction that
//! takes work, so a lease that lapsed while idle is fresh again before it protects
//! anything.

use std::time::Duration;

use rez_core::ports::StoreResult;

use crate::LocalStore;
use crate::db::sql;

/// How often a process renews its lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A lease not renewed for this long belongs to a dead process.
pub const STALE_AFTER: Duration = Duration::from_secs(4);
/// How often a process with nothing in flight anywhere looks again (taking work wakes it
/// at once: [`LocalStore::work_taken`]).
pub const IDLE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Insert or renew the lease row of `instance` (inside a write transaction).
pub(crate) fn renew(tx: &rusqlite::Transaction<'_>, instance: &str, now_ms: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO instances (id, pid, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT(id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
    )
    .map_err(sql)?
    .execute(rusqlite::params![instance, std::process::id(), now_ms])
    .map_err(sql)?;
    Ok(())
}

impl LocalStore {
    /// One step of the lease loop: while any delivery is in flight (ours or another
    /// process's), renew our lease and reclaim the work of dead processes
    /// ([`LocalStore::heartbeat`]); otherwise only look, with one read. Returns whether
    /// work was in flight: the caller ticks every [`HEARTBEAT_EVERY`] then, and every
    /// [`IDLE_CHECK_EVERY`] (or at [`LocalStore::work_taken`]) otherwise.
    pub async fn lease_tick(&self) -> StoreResult<bool> {
        let busy = self
            .db
            .read(|c| {
                c.prepare_cached("SELECT EXISTS (SELECT 1 FROM queue_items WHERE owner IS NOT NULL)")
                    .map_err(sql)?
                    .query_row([], |r| r.get::<_, bool>(0))
                    .map_err(sql)
            })
            .await?;
        if busy {
            self.heartbeat().await?;
        }
        Ok(busy)
    }

    /// Resolves when this process next takes deliveries.
    pub async fn work_taken(&self) {
        self.work_taken.notified().await
    }

    /// Renew this process's lease and reclaim the in-flight work of dead processes.
    /// Returns how many deliveries were reclaimed.
    pub async fn heartbeat(&self) -> StoreResult<u64> {
        let now_ms = self.now_ms();
        let me = self.instance.clone();
        let stale_ms = now_ms - STALE_AFTER.as_millis() as i64;
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                renew(tx, &me, now_ms)?;
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
