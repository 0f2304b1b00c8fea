//! `AgentStore` on SQLite: runs, their steps and chat sessions.
//!
//! A run is a JSON document in `agent_runs`, beside the columns listing filters on
//! (status, schedule, session); a step is a document in `agent_steps`, keyed by (run,
//! index). Every operation that changes a run reads it, decides and writes in one job of
//! the single writer ([`crate::db::Db::write`]), so a claim and the owner-only writes
//! after it are atomic: two deliveries of one run can never both own it, nor both store
//! the same step. A row that does not decode is `StoreError::Corrupt` with the reason,
//! never skipped or overwritten.

use async_trait::async_trait;
use rez_core::agent::run::{AgentRun, ChatExchange, ChatSession, RunLease, RunStatus, Step, StepKind, ToolOutcome};
use rez_core::agent::store::{AgentStore, RunClaim, RunFilter};
use rez_core::id::{AttemptId, ChatSessionId, RunId};
use rez_core::ports::{Page, StoreError, StoreResult};
use rez_core::time::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::codec::ts;
use crate::db::sql;

fn decode_run(id: &str, doc: &str) -> StoreResult<AgentRun> {
    let run: AgentRun = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("agent run {id}: {e}")))?;
    if run.id.as_str() != id {
        return Err(StoreError::Corrupt(format!("agent run {id}: the document is of run {}", run.id)));
    }
    Ok(run)
}

/// A document that cannot be encoded (a bug: every agent type serialises).
fn unencodable(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn load_run(c: &Connection, id: &str) -> StoreResult<Option<AgentRun>> {
    let doc: Option<String> = c
        .prepare_cached("SELECT doc FROM agent_runs WHERE id = ?1")
        .map_err(sql)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    doc.map(|d| decode_run(id, &d)).transpose()
}

/// Insert or replace the whole row of `run`.
fn put_run(c: &Connection, run: &AgentRun) -> StoreResult<()> {
    let doc = serde_json::to_string(run).map_err(unencodable("agent run"))?;
    c.prepare_cached(
        "INSERT INTO agent_runs (id, status, schedule_id, session_id, doc) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(id) DO UPDATE SET status = ?2, schedule_id = ?3, session_id = ?4, doc = ?5",
    )
    .map_err(sql)?
    .execute(rusqlite::params![
        run.id.as_str(),
        run.status.as_str(),
        run.schedule_id.as_ref().map(|s| s.as_str()),
        run.session_id.as_ref().map(|s| s.as_str()),
        doc,
    ])
    .map_err(sql)?;
    Ok(())
}

/// The stored run `id`, if `attempt` owns it (its lease names `attempt`; a lapsed lease
/// still owns the run until another attempt claims it).
fn owned_run(c: &Connection, id: &RunId, attempt: &AttemptId) -> StoreResult<AgentRun> {
    let run = load_run(c, id.as_str())?.ok_or_else(|| StoreError::NotFound(format!("agent run {id}")))?;
    match &run.lease {
        Some(lease) if &lease.attempt == attempt => Ok(run),
        Some(lease) => Err(StoreError::Conflict(format!("agent run {id} is owned by attempt {}", lease.attempt))),
        None => Err(StoreError::Conflict(format!("agent run {id} is not owned by attempt {attempt} ({})", run.status))),
    }
}

fn decode_step(run: &str, idx: i64, doc: &str) -> StoreResult<Step> {
    let step: Step =
        serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("step {idx} of agent run {run}: {e}")))?;
    if i64::from(step.index) != idx {
        return Err(StoreError::Corrupt(format!("step {idx} of agent run {run}: the document is step {}", step.index)));
    }
    Ok(step)
}

fn load_step(c: &Connection, run: &str, idx: u32) -> StoreResult<Option<Step>> {
    let doc: Option<String> = c
        .prepare_cached("SELECT doc FROM agent_steps WHERE run_id = ?1 AND idx = ?2")
        .map_err(sql)?
        .query_row(rusqlite::params![run, idx], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    doc.map(|d| decode_step(run, i64::from(idx), &d)).transpose()
}

fn load_session(c: &Connection, id: &str) -> StoreResult<Option<ChatSession>> {
    let head: Option<(i64, i64)> = c
        .prepare_cached("SELECT created_ms, updated_ms FROM agent_sessions WHERE id = ?1")
        .map_err(sql)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)?;
    let Some((created_ms, updated_ms)) = head else { return Ok(None) };
    let session_id =
        ChatSessionId::parse(id).map_err(|e| StoreError::Corrupt(format!("chat session id `{id}`: {e}")))?;
    let mut stmt = c
        .prepare_cached("SELECT seq, run_id, doc FROM agent_exchanges WHERE session_id = ?1 ORDER BY seq")
        .map_err(sql)?;
    let mut rows = stmt.query([id]).map_err(sql)?;
    let mut exchanges = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let seq: i64 = r.get(0).map_err(sql)?;
        let run_id: String = r.get(1).map_err(sql)?;
        let doc: String = r.get(2).map_err(sql)?;
        let exchange: ChatExchange = serde_json::from_str(&doc)
            .map_err(|e| StoreError::Corrupt(format!("exchange {seq} of chat session {id}: {e}")))?;
        if exchange.run_id.as_str() != run_id {
            return Err(StoreError::Corrupt(format!(
                "exchange {seq} of chat session {id}: run {run_id} holds another run's"
            )));
        }
        exchanges.push(exchange);
    }
    Ok(Some(ChatSession { id: session_id, created_at: ts(created_ms)?, updated_at: ts(updated_ms)?, exchanges }))
}

fn lease_live(run: &AgentRun, now: Timestamp) -> Option<&RunLease> {
    run.lease.as_ref().filter(|l| l.until > now)
}

#[async_trait]
impl AgentStore for LocalStore {
    async fn create_run(&self, run: &AgentRun) -> StoreResult<(AgentRun, bool)> {
        let run = run.clone();
        self.db
            .write(move |ctx| {
                if let Some(stored) = load_run(ctx.tx, run.id.as_str())? {
                    return Ok((stored, false));
                }
                put_run(ctx.tx, &run)?;
                tracing::debug!(run_id = %run.id, "agent run created");
                Ok((run, true))
            })
            .await
    }

    async fn get_run(&self, id: &RunId) -> StoreResult<Option<AgentRun>> {
        let id = id.clone();
        self.db.read(move |c| load_run(c, id.as_str())).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<Page<AgentRun>> {
        let f = filter.clone();
        self.db
            .read(move |c| {
                let mut clauses: Vec<&str> = Vec::new();
                let mut params: Vec<SqlValue> = Vec::new();
                if let Some(s) = f.status {
                    clauses.push("status = ?");
                    params.push(SqlValue::Text(s.as_str().into()));
                }
                if let Some(s) = &f.schedule_id {
                    clauses.push("schedule_id = ?");
                    params.push(SqlValue::Text(s.as_str().into()));
                }
                if let Some(s) = &f.session_id {
                    clauses.push("session_id = ?");
                    params.push(SqlValue::Text(s.as_str().into()));
                }
                if let Some(cur) = &f.cursor {
                    let id = RunId::parse(cur).map_err(|_| StoreError::InvalidCursor)?;
                    clauses.push("id < ?");
                    params.push(SqlValue::Text(id.as_str().into()));
                }
                let limit = f.limit.clamp(1, 100);
                let where_ =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let q = format!("SELECT id, doc FROM agent_runs {where_} ORDER BY id DESC LIMIT {}", limit + 1);
                let mut stmt = c.prepare_cached(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let id: String = r.get(0).map_err(sql)?;
                    let doc: String = r.get(1).map_err(sql)?;
                    items.push(decode_run(&id, &doc)?);
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|r| r.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }

    async fn claim_run(
        &self,
        id: &RunId,
        attempt: &AttemptId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<RunClaim> {
        let (id, attempt) = (id.clone(), attempt.clone());
        self.db
            .write(move |ctx| {
                let Some(run) = load_run(ctx.tx, id.as_str())? else { return Ok(RunClaim::NotFound) };
                let claim = RunClaim::decide(run, &attempt, now, until);
                if let RunClaim::Claimed(run) = &claim {
                    put_run(ctx.tx, run)?;
                    tracing::debug!(run_id = %id, attempt = %attempt, "agent run claimed");
                }
                Ok(claim)
            })
            .await
    }

    async fn append_step(&self, run: &AgentRun, step: &Step, attempt: &AttemptId) -> StoreResult<()> {
        let (progress, step, attempt) = (run.clone(), step.clone(), attempt.clone());
        let doc = serde_json::to_string(&step).map_err(unencodable("agent step"))?;
        self.db
            .write(move |ctx| {
                let mut stored = owned_run(ctx.tx, &progress.id, &attempt)?;
                if step.index != stored.steps {
                    return Err(StoreError::Conflict(format!(
                        "agent run {} is at step {}, not {}",
                        stored.id, stored.steps, step.index
                    )));
                }
                let inserted = ctx
                    .tx
                    .prepare_cached(
                        "INSERT INTO agent_steps (run_id, idx, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![stored.id.as_str(), step.index, doc])
                    .map_err(sql)?;
                if inserted == 0 {
                    return Err(StoreError::Conflict(format!("step {} of agent run {} exists", step.index, stored.id)));
                }
                stored.steps = step.index + 1;
                stored.turns = progress.turns;
                stored.usage = progress.usage;
                stored.cost = progress.cost;
                stored.updated_at = progress.updated_at;
                if let (Some(lease), Some(new)) = (stored.lease.as_mut(), progress.lease.as_ref())
                    && new.attempt == attempt
                {
                    lease.until = new.until;
                }
                put_run(ctx.tx, &stored)
            })
            .await
    }

    async fn finish_tool_call(
        &self,
        run: &RunId,
        index: u32,
        outcome: &ToolOutcome,
        attempt: &AttemptId,
    ) -> StoreResult<()> {
        let (id, outcome, attempt) = (run.clone(), outcome.clone(), attempt.clone());
        self.db
            .write(move |ctx| {
                owned_run(ctx.tx, &id, &attempt)?;
                let mut step = load_step(ctx.tx, id.as_str(), index)?
                    .ok_or_else(|| StoreError::NotFound(format!("step {index} of agent run {id}")))?;
                let StepKind::ToolCall(call) = &mut step.kind else {
                    return Err(StoreError::Conflict(format!("step {index} of agent run {id} is not a tool call")));
                };
                if call.outcome.is_some() {
                    return Err(StoreError::Conflict(format!("step {index} of agent run {id} has its outcome")));
                }
                call.outcome = Some(outcome);
                let doc = serde_json::to_string(&step).map_err(unencodable("agent step"))?;
                ctx.tx
                    .prepare_cached("UPDATE agent_steps SET doc = ?3 WHERE run_id = ?1 AND idx = ?2")
                    .map_err(sql)?
                    .execute(rusqlite::params![id.as_str(), index, doc])
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn update_run(&self, run: &AgentRun, attempt: &AttemptId) -> StoreResult<()> {
        let (next, attempt) = (run.clone(), attempt.clone());
        self.db
            .write(move |ctx| {
                let mut stored = owned_run(ctx.tx, &next.id, &attempt)?;
                stored.status = next.status;
                stored.answer = next.answer;
                stored.error = next.error;
                stored.updated_at = next.updated_at;
                stored.cancel_requested |= next.cancel_requested;
                if stored.status.is_final() {
                    stored.lease = None;
                    stored.finished_at = next.finished_at.or(Some(next.updated_at));
                } else {
                    // The caller may renew or give up its lease, never hand it to another.
                    stored.lease = next.lease.filter(|l| l.attempt == attempt);
                    stored.finished_at = None;
                }
                put_run(ctx.tx, &stored)?;
                if stored.status.is_final() {
                    tracing::debug!(run_id = %stored.id, status = %stored.status, "agent run ended");
                }
                Ok(())
            })
            .await
    }

    async fn steps(&self, id: &RunId) -> StoreResult<Vec<Step>> {
        let id = id.clone();
        self.db
            .read(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT idx, doc FROM agent_steps WHERE run_id = ?1 ORDER BY idx").map_err(sql)?;
                let mut rows = stmt.query([id.as_str()]).map_err(sql)?;
                let mut steps = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let idx: i64 = r.get(0).map_err(sql)?;
                    let doc: String = r.get(1).map_err(sql)?;
                    steps.push(decode_step(id.as_str(), idx, &doc)?);
                }
                Ok(steps)
            })
            .await
    }

    async fn request_cancel(&self, id: &RunId, now: Timestamp) -> StoreResult<Option<AgentRun>> {
        let id = id.clone();
        self.db
            .write(move |ctx| {
                let Some(mut run) = load_run(ctx.tx, id.as_str())? else { return Ok(None) };
                if run.status.is_final() {
                    return Ok(Some(run));
                }
                run.cancel_requested = true;
                run.updated_at = now;
                if matches!(run.status, RunStatus::Queued | RunStatus::AwaitingApproval)
                    && lease_live(&run, now).is_none()
                {
                    run.status = RunStatus::Cancelled;
                    run.finished_at = Some(now);
                    run.lease = None;
                }
                put_run(ctx.tx, &run)?;
                tracing::debug!(run_id = %id, status = %run.status, "agent run cancel requested");
                Ok(Some(run))
            })
            .await
    }

    async fn get_session(&self, id: &ChatSessionId) -> StoreResult<Option<ChatSession>> {
        let id = id.clone();
        self.db.read(move |c| load_session(c, id.as_str())).await
    }

    async fn append_exchange(&self, id: &ChatSessionId, exchange: &ChatExchange) -> StoreResult<ChatSession> {
        let (id, exchange) = (id.clone(), exchange.clone());
        let doc = serde_json::to_string(&exchange).map_err(unencodable("chat exchange"))?;
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let at_ms = exchange.at.timestamp_millis();
                let known: Option<i64> = tx
                    .prepare_cached("SELECT seq FROM agent_exchanges WHERE session_id = ?1 AND run_id = ?2")
                    .map_err(sql)?
                    .query_row([id.as_str(), exchange.run_id.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(sql)?;
                if known.is_none() {
                    let next: i64 = tx
                        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM agent_exchanges WHERE session_id = ?1")
                        .map_err(sql)?
                        .query_row([id.as_str()], |r| r.get(0))
                        .map_err(sql)?;
                    tx.prepare_cached(
                        "INSERT INTO agent_sessions (id, created_ms, updated_ms) VALUES (?1, ?2, ?2) \
                         ON CONFLICT(id) DO UPDATE SET updated_ms = MAX(updated_ms, ?2)",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![id.as_str(), at_ms])
                    .map_err(sql)?;
                    tx.prepare_cached(
                        "INSERT INTO agent_exchanges (session_id, seq, run_id, doc) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![id.as_str(), next, exchange.run_id.as_str(), doc])
                    .map_err(sql)?;
                }
                load_session(tx, id.as_str())?
                    .ok_or_else(|| StoreError::NotFound(format!("chat session {id} after appending to it")))
            })
            .await
    }
}
