//! `ScheduleStore` on SQLite. A schedule is stored whole as JSON, next to the columns the
//! engine needs indexed (status, due time, version). A firing — the message it creates
//! and the schedule's new state — is one transaction, conditional on the version the
//! engine planned from, so a firing can never produce two messages: not after a crash,
//! and not when two processes share the database.

use std::time::Duration;

use async_trait::async_trait;
use rez_core::ScheduleId;
use rez_core::ports::{FireOutcome, Firing, Page, ScheduleFilter, ScheduleStore, StoreError, StoreResult, Submitted};
use rez_core::schedules::{Schedule, ScheduleStatus, due_at};
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::codec::ts;
use crate::db::sql;
use crate::messages::submit_in_tx;

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
        Some(v) => c
            .prepare_cached(
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
                v as i64
            ])
            .map_err(sql)?,
    };
    if n == 0 {
        return Err(StoreError::Conflict(format!("schedule {} changed concurrently; reload and retry", s.id)));
    }
    Ok(())
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
        let f = firing.clone();
        self.db
            .write(move |ctx| {
                let expected = f.schedule.version;
                let stored: Option<i64> = ctx
                    .tx
                    .prepare_cached("SELECT version FROM schedules WHERE id = ?1")
                    .map_err(sql)?
                    .query_row([f.schedule.id.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(sql)?;
                match stored {
                    None => return Err(StoreError::NotFound(format!("schedule {}", f.schedule.id))),
                    Some(v) if v as u64 != expected => return Ok(FireOutcome::Stale),
                    Some(_) => {}
                }
                // Same version, same content: the planned copy is the stored schedule.
                let mut s = *f.schedule;
                let message = match f.message {
                    Some(m) => match submit_in_tx(ctx, m, f.at)? {
                        Submitted::Created(m) => {
                            s.execution_count += 1;
                            s.last_fired_at = Some(f.at);
                            Some(m)
                        }
                        Submitted::Existing(m) => Some(m),
                    },
                    None => None,
                };
                s.missed_count += f.missed;
                s.next_fire_at = f.next_fire_at;
                s.status = f.status;
                s.last_error = f.last_error.or(s.last_error);
                s.version += 1;
                s.updated_date = f.at;
                write_row(ctx.tx, &s, Some(expected))?;
                Ok(FireOutcome::Applied { schedule: Box::new(s), message })
            })
            .await
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
