//! `ScheduleStore` on SQLite. A schedule is stored whole as JSON, next to the columns the
//! engine needs indexed (status, due time, version). A firing — the message it creates
//! and the schedule's new state — is one transaction, conditional on the version the
//! engine planned from, so a firing can never produce two messages: not after a crash,
//! and not when two processes share the database.

use std::time::Duration;

use async_trait::async_trait;
use rez_core::ScheduleId;
use rez_core::ports::{
    FireOutcome, Firing, Gate, Page, ScheduleFilter, ScheduleStore, StoreError, StoreResult, Submitted,
};
use rez_core::schedules::{Schedule, ScheduleStatus, due_at};
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::codec::ts;

/// Batches at least this big are written ahead of their instant (smaller ones apply in
/// about a millisecond after it, and should not hold the writer at all).
const WRITE_AHEAD_MIN: usize = 64;
/// Expected time to apply a batch of firings in the writer, measured on the 2-core
/// benchmark machine (≈ 30 µs per firing) with margin; the batch is sent this long before
/// its instant.
const WRITE_AHEAD_BASE: Duration = Duration::from_millis(10);
const WRITE_AHEAD_PER_FIRING: Duration = Duration::from_micros(50);
use crate::db::WriteCtx;
use crate::db::sql;
use crate::messages::{EncodedMessage, submit_encoded};

fn due_ms(s: &Schedule) -> Option<i64> {
    match (s.status, s.next_fire_at) {
        (ScheduleStatus::Active, Some(next)) => {
            Some(due_at(&s.id, next, s.flexible_time_window_minutes).timestamp_millis())
        }
        _ => None,
    }
}

fn decode(body: &str) -> StoreResult<Schedule> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("schedule: {e}")))
}

fn encode(s: &Schedule) -> StoreResult<String> {
    serde_json::to_string(s).map_err(|e| StoreError::Corrupt(format!("schedule: {e}")))
}

fn load(c: &Connection, id: &str) -> StoreResult<Option<Schedule>> {
    let body: Option<String> = c
        .prepare_cached("SELECT body FROM schedules WHERE id = ?1")
        .map_err(sql)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    body.map(|b| decode(&b)).transpose()
}

fn write_row(c: &Connection, s: &Schedule, expected_version: Option<u64>) -> StoreResult<()> {
    let body = encode(s)?;
    let n = match expected_version {
        None => c
            .prepare_cached(
                "INSERT INTO schedules (id, version, status, target_type, due_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql)?
            .execute(rusqlite::params![s.id.as_str(), s.version as i64, s.status.as_str(), s.target_type.as_str(), due_ms(s), body])
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict(format!("schedule {} already exists", s.id))
                }
                e => sql(e),
            })?,
        Some(v) => update_encoded(c, s, &body, v)?,
    };
    if n == 0 {
        return Err(StoreError::Conflict(format!("schedule {} changed concurrently; reload and retry", s.id)));
    }
    Ok(())
}

/// `UPDATE` a schedule row to `s` (already encoded as `body`) if its stored version is
/// `expected_version`. Returns the number of rows changed (0 or 1).
fn update_encoded(c: &Connection, s: &Schedule, body: &str, expected_version: u64) -> StoreResult<usize> {
    c.prepare_cached(
        "UPDATE schedules SET version = ?2, status = ?3, target_type = ?4, due_ms = ?5, body = ?6 \
         WHERE id = ?1 AND version = ?7",
    )
    .map_err(sql)?
    .execute(rusqlite::params![
        s.id.as_str(),
        s.version as i64,
        s.status.as_str(),
        s.target_type.as_str(),
        due_ms(s),
        body,
        expected_version as i64
    ])
    .map_err(sql)
}

/// One firing, made ready for the writer on the caller's task: the schedule's new state
/// (assuming its message is created now, the usual case) and every JSON column encoded.
struct PreparedFiring {
    expected: u64,
    after: Schedule,
    body: String,
    message: Option<EncodedMessage>,
    /// `last_fired_at` before the firing: restored if the occurrence's message already
    /// existed (an earlier attempt created it), so the counters stay as they were.
    last_fired_before: Option<rez_core::time::Timestamp>,
    at: rez_core::time::Timestamp,
}

impl PreparedFiring {
    fn new(f: &Firing) -> StoreResult<Self> {
        // The firing carries the schedule it was planned from; if that is still the stored
        // version (checked by the writer), it is the stored schedule.
        let mut s = (*f.schedule).clone();
        let expected = s.version;
        let last_fired_before = s.last_fired_at;
        let message = match &f.message {
            Some(m) => {
                s.execution_count += 1;
                s.last_fired_at = Some(f.at);
                Some(EncodedMessage::new(m.clone(), f.at)?)
            }
            None => None,
        };
        s.missed_count += f.missed;
        s.next_fire_at = f.next_fire_at;
        s.status = f.status;
        s.last_error = f.last_error.clone().or(s.last_error);
        s.version += 1;
        s.updated_date = f.at;
        let body = encode(&s)?;
        Ok(Self { expected, after: s, body, message, last_fired_before, at: f.at })
    }

    /// Apply inside the writer's transaction (the caller isolates it in a savepoint).
    fn apply(self, ctx: &mut WriteCtx<'_>) -> StoreResult<FireOutcome> {
        let tx = ctx.tx;
        let Self { expected, after: mut s, body, message, last_fired_before, at } = self;
        // Version check and schedule update in one statement; the message below is only
        // written if this matched (and any error rolls both back).
        if update_encoded(tx, &s, &body, expected)? == 0 {
            let exists = tx
                .prepare_cached("SELECT 1 FROM schedules WHERE id = ?1")
                .map_err(sql)?
                .query_row([s.id.as_str()], |_| Ok(()))
                .optional()
                .map_err(sql)?;
            return match exists {
                Some(()) => Ok(FireOutcome::Stale),
                None => Err(StoreError::NotFound(format!("schedule {}", s.id))),
            };
        }
        let message = match message {
            None => None,
            Some(m) => match submit_encoded(ctx, m, at, None)? {
                Submitted::Created(m) => Some(m),
                Submitted::Existing(m) => {
                    // An earlier attempt created this occurrence's message: not a new
                    // execution. Rewrite the row without the counters bumped above.
                    s.execution_count -= 1;
                    s.last_fired_at = last_fired_before;
                    update_encoded(tx, &s, &encode(&s)?, s.version)?;
                    Some(m)
                }
            },
        };
        Ok(FireOutcome::Applied { schedule: Box::new(s), message })
    }
}

impl LocalStore {
    /// Wait until a batch of `n` firings due at `instant` may be sent to the writer.
    ///
    /// A big batch planned ahead is written ahead: the writer applies it during the last
    /// moments before the instant and only the commit waits for the gate, so the messages
    /// are queued one fsync after the instant instead of after a thousand rows' worth of
    /// writes. It is sent its expected apply time before the instant (which bounds how
    /// long it holds the writer), and gets back the receiver its commit waits on. Any
    /// other batch waits for the gate itself and gets `None`.
    async fn until_sendable(
        &self,
        mut gate: Gate,
        instant: Option<rez_core::time::Timestamp>,
        n: usize,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let Some(instant) = instant.filter(|_| n >= WRITE_AHEAD_MIN) else {
            gate.await;
            return None;
        };
        let head_start = WRITE_AHEAD_BASE + WRITE_AHEAD_PER_FIRING * n as u32;
        let until = (instant - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        if until > head_start {
            tokio::select! {
                // Opened early (a clock that jumped): nothing left to write ahead for.
                _ = &mut gate => return None,
                _ = tokio::time::sleep(until - head_start) => {}
            }
        }
        let (open, opened) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            gate.await;
            let _ = open.send(());
        });
        Some(opened)
    }
}

#[async_trait]
impl ScheduleStore for LocalStore {
    async fn insert_schedule(&self, schedule: &Schedule) -> StoreResult<()> {
        let s = schedule.clone();
        self.db.write(move |ctx| write_row(ctx.tx, &s, None)).await
    }

    async fn get_schedule(&self, id: &ScheduleId) -> StoreResult<Option<Schedule>> {
        let id = id.to_string();
        self.db.read(move |c| load(c, &id)).await
    }

    async fn list_schedules(&self, filter: &ScheduleFilter) -> StoreResult<Page<Schedule>> {
        let f = filter.clone();
        self.db
            .read(move |c| {
                let mut clauses = Vec::new();
                let mut params: Vec<String> = Vec::new();
                match f.status {
                    Some(s) => {
                        clauses.push("status = ?");
                        params.push(s.as_str().into());
                    }
                    None => clauses.push("status != 'deleted'"),
                }
                if let Some(t) = f.target_type {
                    clauses.push("target_type = ?");
                    params.push(t.as_str().into());
                }
                if let Some(cur) = &f.cursor {
                    let id = ScheduleId::parse(cur).map_err(|_| StoreError::InvalidCursor)?;
                    clauses.push("id < ?");
                    params.push(id.to_string());
                }
                let limit = f.limit.clamp(1, 100);
                let q = format!(
                    "SELECT body FROM schedules WHERE {} ORDER BY id DESC LIMIT {}",
                    clauses.join(" AND "),
                    limit + 1
                );
                let mut stmt = c.prepare(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    items.push(decode(&r.get::<_, String>(0).map_err(sql)?)?);
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|s| s.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }

    async fn count_schedules(&self) -> StoreResult<u64> {
        self.db
            .read(|c| {
                c.query_row("SELECT count(*) FROM schedules WHERE status != 'deleted'", [], |r| r.get::<_, i64>(0))
                    .map(|n| n.max(0) as u64)
                    .map_err(sql)
            })
            .await
    }

    async fn update_schedule(&self, schedule: &Schedule, expected_version: u64) -> StoreResult<Schedule> {
        let mut s = schedule.clone();
        s.version = expected_version + 1;
        s.updated_date = self.clock.now();
        self.db
            .write(move |ctx| {
                write_row(ctx.tx, &s, Some(expected_version))?;
                Ok(s)
            })
            .await
    }

    async fn due_schedules(&self, now: rez_core::time::Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        let now_ms = now.timestamp_millis();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT body FROM schedules WHERE due_ms IS NOT NULL AND due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
                    )
                    .map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params![now_ms, limit as i64]).map_err(sql)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    out.push(decode(&r.get::<_, String>(0).map_err(sql)?)?);
                }
                Ok(out)
            })
            .await
    }

    async fn next_due(&self) -> StoreResult<Option<rez_core::time::Timestamp>> {
        self.db
            .read(|c| {
                let ms: Option<i64> = c
                    .prepare_cached("SELECT MIN(due_ms) FROM schedules WHERE due_ms IS NOT NULL")
                    .map_err(sql)?
                    .query_row([], |r| r.get(0))
                    .map_err(sql)?;
                ms.map(ts).transpose()
            })
            .await
    }

    async fn fire(&self, firing: &Firing) -> StoreResult<FireOutcome> {
        self.fire_many(std::slice::from_ref(firing))
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("no outcome for the firing".into())))
    }

    async fn fire_many(&self, firings: &[Firing]) -> Vec<StoreResult<FireOutcome>> {
        self.fire_many_after(firings, Box::pin(std::future::ready(()))).await
    }

    async fn fire_many_after(&self, firings: &[Firing], gate: Gate) -> Vec<StoreResult<FireOutcome>> {
        // Encode on the caller's task (in parallel with the writer thread, and before the
        // gate opens), then apply the whole batch as ONE writer job: one savepoint per
        // firing, one group commit.
        let mut out: Vec<Option<StoreResult<FireOutcome>>> = Vec::with_capacity(firings.len());
        let mut batch = Vec::with_capacity(firings.len());
        for (i, f) in firings.iter().enumerate() {
            match PreparedFiring::new(f) {
                Ok(p) => {
                    batch.push((i, p));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let commit_gate = self.until_sendable(gate, firings.first().map(|f| f.at), batch.len()).await;
        if !batch.is_empty() {
            let sent: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
            let job = move |ctx: &mut WriteCtx<'_>| {
                Ok(batch.into_iter().map(|(i, p)| (i, ctx.isolated(|ctx| p.apply(ctx)))).collect::<Vec<_>>())
            };
            let applied = match commit_gate {
                Some(opened) => self.db.write_parts_committed_after(job, opened).await,
                None => self.db.write_parts(job).await,
            };
            match applied {
                Ok(results) => {
                    for (i, r) in results {
                        out[i] = Some(r);
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    for i in sent {
                        out[i] = Some(Err(StoreError::Unavailable(e.clone())));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("the database writer dropped a firing".into()))))
            .collect()
    }

    async fn acquire_engine_lease(&self, owner: &str, ttl: Duration) -> StoreResult<bool> {
        let owner = owner.to_owned();
        let now_ms = self.now_ms();
        let until = now_ms + ttl.as_millis() as i64;
        self.db
            .write(move |ctx| {
                let n = ctx
                    .tx
                    .execute(
                        "INSERT INTO engine_leases (name, owner, expires_ms) VALUES ('scheduler', ?1, ?2) \
                         ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms \
                         WHERE engine_leases.owner = excluded.owner OR engine_leases.expires_ms < ?3",
                        rusqlite::params![owner, until, now_ms],
                    )
                    .map_err(sql)?;
                Ok(n > 0)
            })
            .await
    }
}
