//! `AgentStore` on DynamoDB (the agent-runs table), the AWS counterpart of the SQLite run
//! store. A run may be delivered twice at once by SQS; every write is one conditional write
//! or transaction, so only the attempt holding the run's lease takes a step.
//!
//! Item layout (key `pk`, `sk`):
//! - the run: `pk` = run id, `sk` = `run`; `doc` (the run as JSON), `status`, `steps`,
//!   `rev` (raised by every write of the run), `lease_attempt` and `lease_until_ms` (the
//!   lease, also in `doc`), `schedule_id`, `session_id`, `list_pk` (`all#<shard>`, the
//!   `by-all` index: listings newest first, sharded as in [`crate::shards`]);
//! - a step: `pk` = run id, `sk` = `step#0000000012`; `doc` (the step without a tool
//!   outcome), `kind`, and `outcome` (a tool call's outcome, written once);
//! - a chat session: `pk` = session id, `sk` = `session` (`created_at`, `updated_at`), and
//!   one item per exchange, `sk` = `x#<run id>`, so an exchange is added once per run by a
//!   put conditional on its absence, and a session is not bounded by the 400 KB item limit.
//!
//! Every write of a run reads it, changes the fields the call owns (a step's progress, the
//! run's own fields, the cancel request) and writes it back on the condition that `rev` is
//! unchanged, reading again when another write came in between, so no write loses another's
//! fields:
//! - `claim_run`: on `rev` AND status not final AND (no lease OR the lease ended OR the
//!   lease is the caller's);
//! - `append_step`: one transaction: put the step if absent, and the run on `rev` AND the
//!   caller's attempt holding the lease (its `steps` checked to be the step's index);
//! - `finish_tool_call`: one transaction: check the lease, and set the step's `outcome`
//!   if it is a tool call without one;
//! - `update_run`: on `rev` AND the caller's attempt holding the lease;
//! - `request_cancel`: on `rev`; a queued run, or one awaiting an approval, without a live
//!   lease ends at once.
//!
//! Filters of `list_runs` (status, schedule, session) are filter expressions on the
//! `by-all` Query: runs are few (each costs model calls within a budget), so one index
//! serves every listing and no filter needs its own.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::Utc;
use rez_core::agent::run::{AgentRun, ChatExchange, ChatSession, RunStatus, Step, StepKind, ToolOutcome};
use rez_core::agent::store::{AgentStore, RunClaim, RunFilter};
use rez_core::id::{AttemptId, ChatSessionId, RunId};
use rez_core::ports::{Page, StoreError, StoreResult};
use rez_core::time::Timestamp;

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, get_s, n, opt_n, opt_s, s};
use crate::error::backend;
use crate::shards::{IndexQuery, LEGACY_PK, LIST_PK_ATTR, Order, ShardedListing, list_pk};
use crate::transact::{Transacted, build_error, transact};

/// The `by-all` index of the agent-runs table.
const BY_ALL: &str = "by-all";
/// Sort key of a run item and of a session's head item.
const RUN_SK: &str = "run";
const SESSION_SK: &str = "session";
const STEP_PREFIX: &str = "step#";
const EXCHANGE_PREFIX: &str = "x#";
/// How often a read-then-conditional-write is repeated when the run changes under it.
const MAX_RACES: usize = 8;

fn step_sk(index: u32) -> String {
    format!("{STEP_PREFIX}{index:010}")
}

fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()).is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn status_of(status: RunStatus) -> AttributeValue {
    s(status.as_str())
}

fn ms(t: Timestamp) -> AttributeValue {
    n(t.timestamp_millis())
}

/// The run as stored and its `rev`.
fn run_of(item: &Item) -> StoreResult<(AgentRun, i64)> {
    let run: AgentRun = from_doc(item)?;
    let rev = opt_n(item, "rev")?.unwrap_or(0);
    Ok((run, rev))
}

/// An update expression with its attribute names and values.
type Expression = (String, HashMap<String, String>, HashMap<String, AttributeValue>);

/// The run's own fields as one `SET`/`REMOVE` update (lease cleared when the run has
/// ended), raising `rev`.
fn run_update(run: &AgentRun) -> StoreResult<Expression> {
    let mut stored = run.clone();
    if stored.status.is_final() {
        stored.lease = None;
    }
    let names = HashMap::from([
        ("#doc".to_owned(), DOC.to_owned()),
        ("#status".to_owned(), "status".to_owned()),
        ("#steps".to_owned(), "steps".to_owned()),
        ("#rev".to_owned(), "rev".to_owned()),
        ("#attempt".to_owned(), "lease_attempt".to_owned()),
        ("#until".to_owned(), "lease_until_ms".to_owned()),
    ]);
    let mut values = HashMap::from([
        (":doc".to_owned(), doc(&stored)?),
        (":status".to_owned(), status_of(stored.status)),
        (":steps".to_owned(), n(i64::from(stored.steps))),
        (":one".to_owned(), n(1)),
    ]);
    let expr = match &stored.lease {
        Some(lease) => {
            values.insert(":lease_attempt".to_owned(), s(lease.attempt.as_str()));
            values.insert(":lease_until".to_owned(), ms(lease.until));
            "SET #doc = :doc, #status = :status, #steps = :steps, #rev = #rev + :one, \
             #attempt = :lease_attempt, #until = :lease_until"
        }
        None => "SET #doc = :doc, #status = :status, #steps = :steps, #rev = #rev + :one REMOVE #attempt, #until",
    };
    Ok((expr.to_owned(), names, values))
}

fn run_key(id: &RunId) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(id.as_str())), ("sk".to_owned(), s(RUN_SK))])
}

/// The item of a new run.
fn new_run_item(run: &AgentRun) -> StoreResult<Item> {
    let mut item = Item::new();
    item.insert("pk".into(), s(run.id.as_str()));
    item.insert("sk".into(), s(RUN_SK));
    item.insert(DOC.into(), doc(run)?);
    item.insert("status".into(), status_of(run.status));
    item.insert("steps".into(), n(i64::from(run.steps)));
    item.insert("rev".into(), n(0));
    item.insert(LIST_PK_ATTR.into(), s(&list_pk(run.id.as_str())));
    if let Some(id) = &run.schedule_id {
        item.insert("schedule_id".into(), s(id.as_str()));
    }
    if let Some(id) = &run.session_id {
        item.insert("session_id".into(), s(id.as_str()));
    }
    if let Some(lease) = &run.lease {
        item.insert("lease_attempt".into(), s(lease.attempt.as_str()));
        item.insert("lease_until_ms".into(), ms(lease.until));
    }
    Ok(item)
}

/// The item of a step: its outcome (a tool call's) in its own attribute.
fn step_item(run: &RunId, step: &Step) -> StoreResult<Item> {
    let mut bare = step.clone();
    let (kind, outcome) = match &mut bare.kind {
        StepKind::ModelTurn(_) => ("model_turn", None),
        StepKind::ToolCall(call) => ("tool_call", call.outcome.take()),
    };
    let mut item = Item::new();
    item.insert("pk".into(), s(run.as_str()));
    item.insert("sk".into(), s(&step_sk(step.index)));
    item.insert(DOC.into(), doc(&bare)?);
    item.insert("kind".into(), s(kind));
    if let Some(o) = outcome {
        item.insert("outcome".into(), doc(&o)?);
    }
    Ok(item)
}

fn step_of(item: &Item) -> StoreResult<Step> {
    let mut step: Step = from_doc(item)?;
    if let (StepKind::ToolCall(call), Some(raw)) = (&mut step.kind, opt_s(item, "outcome")) {
        call.outcome = Some(
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad step outcome attribute: {e}")))?,
        );
    }
    Ok(step)
}

fn parse_time(item: &Item, name: &str) -> StoreResult<Timestamp> {
    let raw = get_s(item, name)?;
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("attribute `{name}` is not a time: {e}")))
}

impl AwsStore {
    fn agent_runs(&self) -> &str {
        &self.names.agent_runs_table
    }

    async fn run_item(&self, id: &RunId) -> StoreResult<Option<Item>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(self.agent_runs())
            .set_key(Some(run_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item agent run", e))?;
        Ok(out.item)
    }

    /// Replace the run's fields on the condition that its `rev` is still `rev` and
    /// `extra` holds; false when the condition failed.
    async fn put_run_if_rev(
        &self,
        run: &AgentRun,
        rev: i64,
        extra: Option<(&str, Vec<(&str, AttributeValue)>)>,
        context: &str,
    ) -> StoreResult<bool> {
        let (expr, names, mut values) = run_update(run)?;
        values.insert(":rev".into(), n(rev));
        let mut condition = "#rev = :rev".to_owned();
        let mut req = self
            .clients
            .dynamodb
            .update_item()
            .table_name(self.agent_runs())
            .set_key(Some(run_key(&run.id)))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names));
        if let Some((cond, vals)) = extra {
            condition = format!("{condition} AND ({cond})");
            for (k, v) in vals {
                values.insert(k.to_owned(), v);
            }
        }
        req = req.condition_expression(condition).set_expression_attribute_values(Some(values));
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(context, e)),
        }
    }

    /// The run as stored and its `rev`, if `attempt` holds its lease.
    async fn owned_run(&self, id: &RunId, attempt: &AttemptId) -> StoreResult<(AgentRun, i64)> {
        let item = self.run_item(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent run {id}")))?;
        let (run, rev) = run_of(&item)?;
        match &run.lease {
            Some(lease) if lease.attempt == *attempt => Ok((run, rev)),
            Some(lease) => Err(StoreError::Conflict(format!("agent run {id} is owned by attempt {}", lease.attempt))),
            None => {
                Err(StoreError::Conflict(format!("agent run {id} is not owned by attempt {attempt} ({})", run.status)))
            }
        }
    }

    /// The update writing `run` on the condition that its `rev` is still `rev` and
    /// `attempt` holds its lease, for a transaction.
    fn run_update_if(&self, run: &AgentRun, rev: i64, attempt: &AttemptId) -> StoreResult<Update> {
        let (expr, names, mut values) = run_update(run)?;
        values.insert(":rev".into(), n(rev));
        values.insert(":me".into(), s(attempt.as_str()));
        Update::builder()
            .table_name(self.agent_runs())
            .set_key(Some(run_key(&run.id)))
            .update_expression(expr)
            .condition_expression("#rev = :rev AND #attempt = :me")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| build_error("run update", e))
    }

    async fn step_item_of(&self, id: &RunId, index: u32) -> StoreResult<Option<Item>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(self.agent_runs())
            .key("pk", s(id.as_str()))
            .key("sk", s(&step_sk(index)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item agent step", e))?;
        Ok(out.item)
    }

    /// Every item of a partition whose sort key starts with `prefix`, in key order.
    async fn items_with_prefix(&self, pk: &str, prefix: &str, context: &str) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .clients
                .dynamodb
                .query()
                .table_name(self.agent_runs())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend(context, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl AgentStore for AwsStore {
    async fn create_run(&self, run: &AgentRun) -> StoreResult<(AgentRun, bool)> {
        let out = self
            .clients
            .dynamodb
            .put_item()
            .table_name(self.agent_runs())
            .set_item(Some(new_run_item(run)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(run_id = %run.id, "agent run created");
                Ok((run.clone(), true))
            }
            Err(e) if is_condition_failure(&e) => {
                let item = self
                    .run_item(&run.id)
                    .await?
                    .ok_or_else(|| StoreError::Conflict(format!("run {} exists and vanished", run.id)))?;
                Ok((run_of(&item)?.0, false))
            }
            Err(e) => Err(backend("dynamodb put_item agent run", e)),
        }
    }

    async fn get_run(&self, id: &RunId) -> StoreResult<Option<AgentRun>> {
        self.run_item(id).await?.map(|i| run_of(&i).map(|(r, _)| r)).transpose()
    }

    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<Page<AgentRun>> {
        let limit = filter.limit.clamp(1, 100);
        let mut query = IndexQuery::new(self.agent_runs(), BY_ALL, LIST_PK_ATTR);
        if let Some(status) = filter.status {
            query.filter_eq("status", status_of(status));
        }
        if let Some(id) = &filter.schedule_id {
            query.filter_eq("schedule_id", s(id.as_str()));
        }
        if let Some(id) = &filter.session_id {
            query.filter_eq("session_id", s(id.as_str()));
        }
        let listing = ShardedListing {
            listing: "agent-runs",
            query,
            base: LEGACY_PK,
            id_attr: "pk",
            sort_key: Some(("sk", RUN_SK)),
            valid_id: |id| RunId::parse(id).is_ok(),
            order: Order::NewestFirst,
            context: "dynamodb query agent runs",
        };
        let (items, next_cursor) = listing.page(&self.clients.dynamodb, limit, filter.cursor.as_deref()).await?;
        let items = items.iter().map(|i| run_of(i).map(|(r, _)| r)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn claim_run(
        &self,
        id: &RunId,
        attempt: &AttemptId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<RunClaim> {
        for _ in 0..MAX_RACES {
            let Some(item) = self.run_item(id).await? else { return Ok(RunClaim::NotFound) };
            let (run, rev) = run_of(&item)?;
            let claimed = match RunClaim::decide(run, attempt, now, until) {
                RunClaim::Claimed(run) => run,
                answer => return Ok(answer),
            };
            // Not ended: every status `RunStatus::is_final` calls open.
            let open: Vec<(String, AttributeValue)> = RunStatus::ALL
                .iter()
                .filter(|st| !st.is_final())
                .enumerate()
                .map(|(i, st)| (format!(":open{i}"), status_of(*st)))
                .collect();
            let condition = format!(
                "#status IN ({}) AND (attribute_not_exists(#attempt) OR #until <= :now OR #attempt = :me)",
                open.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
            );
            let mut values = vec![(":now", ms(now)), (":me", s(attempt.as_str()))];
            values.extend(open.iter().map(|(k, v)| (k.as_str(), v.clone())));
            if self
                .put_run_if_rev(&claimed, rev, Some((&condition, values)), "dynamodb update_item agent run claim")
                .await?
            {
                tracing::info!(run_id = %id, attempt = %attempt, "agent run claimed");
                return Ok(RunClaim::Claimed(claimed));
            }
        }
        Err(StoreError::Unavailable(format!("run {id} keeps changing; try again")))
    }

    async fn append_step(&self, run: &AgentRun, step: &Step, attempt: &AttemptId) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(self.agent_runs())
            .set_item(Some(step_item(&run.id, step)?))
            .condition_expression("attribute_not_exists(#sk)")
            .expression_attribute_names("#sk", "sk")
            .build()
            .map_err(|e| build_error("step put", e))?;
        for _ in 0..MAX_RACES {
            let (mut stored, rev) = self.owned_run(&run.id, attempt).await?;
            if step.index != stored.steps {
                return Err(StoreError::Conflict(format!(
                    "agent run {} is at step {}, not {}",
                    stored.id, stored.steps, step.index
                )));
            }
            stored.steps = step.index + 1;
            stored.turns = run.turns;
            stored.usage = run.usage;
            stored.cost = run.cost;
            stored.updated_at = run.updated_at;
            if let (Some(lease), Some(new)) = (stored.lease.as_mut(), run.lease.as_ref())
                && new.attempt == *attempt
            {
                lease.until = new.until;
            }
            let update = self.run_update_if(&stored, rev, attempt)?;
            let items = vec![
                TransactWriteItem::builder().put(put.clone()).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            match transact(&self.clients.dynamodb, items, "dynamodb transact agent step").await? {
                Transacted::Committed => {
                    tracing::debug!(run_id = %run.id, step = step.index, "agent step stored");
                    return Ok(());
                }
                t if t.failed(0) => {
                    return Err(StoreError::Conflict(format!("step {} of agent run {} exists", step.index, run.id)));
                }
                // The run changed since it was read: read and decide again.
                t if t.failed(1) => continue,
                Transacted::Cancelled(codes) => {
                    return Err(StoreError::Unavailable(format!("step transaction cancelled: {}", codes.join(","))));
                }
            }
        }
        Err(StoreError::Unavailable(format!("run {} keeps changing; try again", run.id)))
    }

    async fn finish_tool_call(
        &self,
        run: &RunId,
        index: u32,
        outcome: &ToolOutcome,
        attempt: &AttemptId,
    ) -> StoreResult<()> {
        let check = ConditionCheck::builder()
            .table_name(self.agent_runs())
            .set_key(Some(run_key(run)))
            .condition_expression("#attempt = :me")
            .expression_attribute_names("#attempt", "lease_attempt")
            .expression_attribute_values(":me", s(attempt.as_str()))
            .build()
            .map_err(|e| build_error("lease check", e))?;
        let update = Update::builder()
            .table_name(self.agent_runs())
            .key("pk", s(run.as_str()))
            .key("sk", s(&step_sk(index)))
            .update_expression("SET #outcome = :outcome")
            .condition_expression("attribute_exists(#sk) AND #kind = :tool AND attribute_not_exists(#outcome)")
            .expression_attribute_names("#outcome", "outcome")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":outcome", doc(outcome)?)
            .expression_attribute_values(":tool", s("tool_call"))
            .build()
            .map_err(|e| build_error("outcome update", e))?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        match transact(&self.clients.dynamodb, items, "dynamodb transact agent tool outcome").await? {
            Transacted::Committed => {
                tracing::debug!(run_id = %run, step = index, "agent tool call finished");
                Ok(())
            }
            t if t.failed(0) => Err(StoreError::Conflict(format!("attempt {attempt} does not own run {run}"))),
            t if t.failed(1) => match self.step_item_of(run, index).await? {
                None => Err(StoreError::NotFound(format!("run {run} has no step {index}"))),
                Some(item) if opt_s(&item, "kind") != Some("tool_call") => {
                    Err(StoreError::Conflict(format!("step {index} of run {run} is not a tool call")))
                }
                Some(_) => {
                    Err(StoreError::Conflict(format!("the tool call at step {index} of run {run} has an outcome")))
                }
            },
            Transacted::Cancelled(codes) => {
                Err(StoreError::Unavailable(format!("outcome transaction cancelled: {}", codes.join(","))))
            }
        }
    }

    async fn update_run(&self, run: &AgentRun, attempt: &AttemptId) -> StoreResult<()> {
        for _ in 0..MAX_RACES {
            let (mut stored, rev) = self.owned_run(&run.id, attempt).await?;
            stored.status = run.status;
            stored.answer = run.answer.clone();
            stored.error = run.error.clone();
            stored.updated_at = run.updated_at;
            stored.cancel_requested |= run.cancel_requested;
            if stored.status.is_final() {
                stored.lease = None;
                stored.finished_at = run.finished_at.or(Some(run.updated_at));
            } else {
                // The caller may renew or give up its lease, never hand it to another.
                stored.lease = run.lease.clone().filter(|l| l.attempt == *attempt);
                stored.finished_at = None;
            }
            let condition = "#attempt = :me";
            let values = vec![(":me", s(attempt.as_str()))];
            if self.put_run_if_rev(&stored, rev, Some((condition, values)), "dynamodb update_item agent run").await? {
                tracing::info!(run_id = %run.id, status = %stored.status, "agent run updated");
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!("run {} keeps changing; try again", run.id)))
    }

    async fn steps(&self, id: &RunId) -> StoreResult<Vec<Step>> {
        let items = self.items_with_prefix(id.as_str(), STEP_PREFIX, "dynamodb query agent steps").await?;
        items.iter().map(step_of).collect()
    }

    async fn request_cancel(&self, id: &RunId, now: Timestamp) -> StoreResult<Option<AgentRun>> {
        for _ in 0..MAX_RACES {
            let Some(item) = self.run_item(id).await? else { return Ok(None) };
            let (mut run, rev) = run_of(&item)?;
            if run.status.is_final() {
                return Ok(Some(run));
            }
            run.cancel_requested = true;
            run.updated_at = now;
            let leased = run.lease.as_ref().is_some_and(|l| l.until > now);
            if matches!(run.status, RunStatus::Queued | RunStatus::AwaitingApproval) && !leased {
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(now);
                run.lease = None;
            }
            if self.put_run_if_rev(&run, rev, None, "dynamodb update_item agent run cancel").await? {
                tracing::info!(run_id = %id, status = %run.status, "agent run cancel requested");
                return Ok(Some(run));
            }
        }
        Err(StoreError::Unavailable(format!("run {id} keeps changing; try again")))
    }

    async fn get_session(&self, id: &ChatSessionId) -> StoreResult<Option<ChatSession>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(self.agent_runs())
            .key("pk", s(id.as_str()))
            .key("sk", s(SESSION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item chat session", e))?;
        let Some(head) = out.item else { return Ok(None) };
        let items = self.items_with_prefix(id.as_str(), EXCHANGE_PREFIX, "dynamodb query chat exchanges").await?;
        let mut exchanges = items.iter().map(from_doc::<ChatExchange>).collect::<StoreResult<Vec<_>>>()?;
        exchanges.sort_by(|a, b| (a.at, &a.run_id).cmp(&(b.at, &b.run_id)));
        Ok(Some(ChatSession {
            id: id.clone(),
            created_at: parse_time(&head, "created_at")?,
            updated_at: parse_time(&head, "updated_at")?,
            exchanges,
        }))
    }

    async fn append_exchange(&self, id: &ChatSessionId, exchange: &ChatExchange) -> StoreResult<ChatSession> {
        let mut item = Item::new();
        item.insert("pk".into(), s(id.as_str()));
        item.insert("sk".into(), s(&format!("{EXCHANGE_PREFIX}{}", exchange.run_id)));
        item.insert(DOC.into(), doc(exchange)?);
        let put = Put::builder()
            .table_name(self.agent_runs())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#sk)")
            .expression_attribute_names("#sk", "sk")
            .build()
            .map_err(|e| build_error("exchange put", e))?;
        let at = s(&exchange.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let head = Update::builder()
            .table_name(self.agent_runs())
            .key("pk", s(id.as_str()))
            .key("sk", s(SESSION_SK))
            .update_expression("SET #created = if_not_exists(#created, :at), #updated = :at")
            .expression_attribute_names("#created", "created_at")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_values(":at", at)
            .build()
            .map_err(|e| build_error("session update", e))?;
        let items =
            vec![TransactWriteItem::builder().put(put).build(), TransactWriteItem::builder().update(head).build()];
        match transact(&self.clients.dynamodb, items, "dynamodb transact chat exchange").await? {
            Transacted::Committed => {
                tracing::info!(session_id = %id, run_id = %exchange.run_id, "chat exchange stored")
            }
            t if t.failed(0) => {
                tracing::info!(session_id = %id, run_id = %exchange.run_id, "chat exchange already stored")
            }
            Transacted::Cancelled(codes) => {
                return Err(StoreError::Unavailable(format!("exchange transaction cancelled: {}", codes.join(","))));
            }
        }
        self.get_session(id).await?.ok_or_else(|| StoreError::Conflict(format!("session {id} vanished")))
    }
}
