//! `ApprovalStore` on SQLite. An approval is a document in `approvals` beside the columns
//! that decide it: its state and the hashes of its two tokens (kept out of the document,
//! so nothing that reads approvals can show them). Each change reads, checks and writes
//! in one job of the single writer, so of two decisions at once exactly one finds the
//! approval pending.

use async_trait::async_trait;
use rez_core::agent::approval::{Approval, ApprovalFilter, ApprovalState, ApprovalStore, Decided, Decision, Proof};
use rez_core::id::{ApprovalId, RunId};
use rez_core::ports::{Page, StoreError, StoreResult};
use rez_core::time::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::db::sql;

const COLUMNS: &str = "id, state, approve_hash, decline_hash, doc";

fn decode(id: &str, state: &str, approve: String, decline: String, doc: &str) -> StoreResult<Approval> {
    let mut a: Approval = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("approval {id}: {e}")))?;
    if a.id.as_str() != id {
        return Err(StoreError::Corrupt(format!("approval {id}: the document is of approval {}", a.id)));
    }
    if a.state.as_str() != state {
        return Err(StoreError::Corrupt(format!("approval {id}: state column {state} but document {}", a.state)));
    }
    a.approve_token_hash = approve;
    a.decline_token_hash = decline;
    Ok(a)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn load(c: &Connection, where_: &str, params: &[&dyn rusqlite::ToSql]) -> StoreResult<Option<Approval>> {
    let q = format!("SELECT {COLUMNS} FROM approvals WHERE {where_}");
    let found = c.prepare_cached(&q).map_err(sql)?.query_row(params, row).optional().map_err(sql)?;
    found.map(|(id, state, ah, dh, doc)| decode(&id, &state, ah, dh, &doc)).transpose()
}

fn put(c: &Connection, a: &Approval) -> StoreResult<()> {
    let doc = serde_json::to_string(a).map_err(|e| StoreError::Corrupt(format!("approval {}: {e}", a.id)))?;
    c.prepare_cached(
        "INSERT INTO approvals (id, run_id, step, state, approve_hash, decline_hash, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT(id) DO UPDATE SET state = ?4, approve_hash = ?5, decline_hash = ?6, doc = ?7",
    )
    .map_err(sql)?
    .execute(rusqlite::params![
        a.id.as_str(),
        a.run_id.as_str(),
        a.step,
        a.state.as_str(),
        a.approve_token_hash,
        a.decline_token_hash,
        doc
    ])
    .map_err(sql)?;
    Ok(())
}

/// Hashes are hex of a SHA-256: compared without an early exit all the same.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl ApprovalStore for LocalStore {
    async fn create_approval(&self, approval: &Approval) -> StoreResult<(Approval, bool)> {
        let a = approval.clone();
        self.db
            .write(move |ctx| {
                if let Some(stored) = load(ctx.tx, "run_id = ?1 AND step = ?2", &[&a.run_id.as_str(), &a.step])? {
                    return Ok((stored, false));
                }
                put(ctx.tx, &a)?;
                tracing::debug!(approval_id = %a.id, run_id = %a.run_id, step = a.step, "approval created");
                Ok((a, true))
            })
            .await
    }

    async fn get_approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        let id = id.clone();
        self.db.read(move |c| load(c, "id = ?1", &[&id.as_str()])).await
    }

    async fn approval_for_step(&self, run: &RunId, step: u32) -> StoreResult<Option<Approval>> {
        let run = run.clone();
        self.db.read(move |c| load(c, "run_id = ?1 AND step = ?2", &[&run.as_str(), &step])).await
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> StoreResult<Page<Approval>> {
        let f = filter.clone();
        self.db
            .read(move |c| {
                let mut clauses: Vec<&str> = Vec::new();
                let mut params: Vec<SqlValue> = Vec::new();
                if let Some(s) = f.state {
                    clauses.push("state = ?");
                    params.push(SqlValue::Text(s.as_str().into()));
                }
                if let Some(r) = &f.run_id {
                    clauses.push("run_id = ?");
                    params.push(SqlValue::Text(r.as_str().into()));
                }
                if let Some(cur) = &f.cursor {
                    let id = ApprovalId::parse(cur).map_err(|_| StoreError::InvalidCursor)?;
                    clauses.push("id < ?");
                    params.push(SqlValue::Text(id.as_str().into()));
                }
                let limit = f.limit.clamp(1, 100);
                let where_ =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let q = format!("SELECT {COLUMNS} FROM approvals {where_} ORDER BY id DESC LIMIT {}", limit + 1);
                let mut stmt = c.prepare_cached(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let (id, state, ah, dh, doc) = row(r).map_err(sql)?;
                    items.push(decode(&id, &state, ah, dh, &doc)?);
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|a| a.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }

    async fn record_ask(
        &self,
        id: &ApprovalId,
        approve_hash: &str,
        decline_hash: &str,
        at: Timestamp,
    ) -> StoreResult<Approval> {
        let (id, ah, dh) = (id.clone(), approve_hash.to_owned(), decline_hash.to_owned());
        self.db
            .write(move |ctx| {
                let mut a = load(ctx.tx, "id = ?1", &[&id.as_str()])?
                    .ok_or_else(|| StoreError::NotFound(format!("approval {id}")))?;
                if a.state != ApprovalState::Pending {
                    return Err(StoreError::Conflict(format!("approval {id} is {}", a.state)));
                }
                a.approve_token_hash = ah;
                a.decline_token_hash = dh;
                a.asked_at = Some(at);
                put(ctx.tx, &a)?;
                Ok(a)
            })
            .await
    }

    async fn decide(&self, id: &ApprovalId, decision: Decision, proof: &Proof, now: Timestamp) -> StoreResult<Decided> {
        let (id, proof) = (id.clone(), proof.clone());
        self.db
            .write(move |ctx| {
                let Some(mut a) = load(ctx.tx, "id = ?1", &[&id.as_str()])? else { return Ok(Decided::NotFound) };
                let by = match &proof {
                    Proof::TokenHash(h) => {
                        if !same_hash(h, a.token_hash(decision)) {
                            return Ok(Decided::BadToken);
                        }
                        "link".to_owned()
                    }
                    Proof::Principal(who) => who.clone(),
                };
                if a.state == ApprovalState::Pending && now >= a.expires_at {
                    a.state = ApprovalState::Expired;
                    a.decided_at = Some(a.expires_at);
                    put(ctx.tx, &a)?;
                    return Ok(Decided::Already(a));
                }
                if a.state != ApprovalState::Pending {
                    return Ok(Decided::Already(a));
                }
                a.state = match decision {
                    Decision::Approve => ApprovalState::Approved,
                    Decision::Decline => ApprovalState::Declined,
                };
                a.decided_at = Some(now);
                a.decided_by = Some(by);
                put(ctx.tx, &a)?;
                tracing::info!(approval_id = %a.id, run_id = %a.run_id, decision = %decision, "approval decided");
                Ok(Decided::Now(a))
            })
            .await
    }

    async fn expire(&self, id: &ApprovalId, now: Timestamp) -> StoreResult<Option<Approval>> {
        let id = id.clone();
        self.db
            .write(move |ctx| {
                let Some(mut a) = load(ctx.tx, "id = ?1", &[&id.as_str()])? else { return Ok(None) };
                if a.state == ApprovalState::Pending && now >= a.expires_at {
                    a.state = ApprovalState::Expired;
                    a.decided_at = Some(a.expires_at);
                    put(ctx.tx, &a)?;
                    tracing::info!(approval_id = %a.id, run_id = %a.run_id, "approval expired");
                }
                Ok(Some(a))
            })
            .await
    }
}
