//! The run loop. One delivery of a run's `agent_response` message claims the run under a
//! lease and takes its steps until it ends; every step is stored before the next starts,
//! and each write is conditional on the lease. A later delivery (after a crash, a timeout,
//! a deferral) rebuilds the conversation from the stored steps and goes on:
//!
//! - a stored model turn is never requested again;
//! - a stored tool result is never executed again;
//! - a tool call stored without a result (its delivery died while it ran) is executed
//!   again with its stored idempotency key, so the message it records is the same one —
//!   the same notification, the same booking (the tools' own exactly-once guarantees
//!   carry through);
//! - before each model call its most possible cost is reserved against the run's and the
//!   day's cap in one store operation, and settled to the actual cost once the turn is
//!   stored, so concurrent runs never spend past a cap.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rez_core::agent::model::{ModelRequest, ToolDefinition, text_of};
use rez_core::agent::run::{ModelTurn, ToolCall, ToolOutcome, tool_call_key};
use rez_core::agent::store::{BudgetReservation, Reserved, RunClaim};
use rez_core::agent::{AgentRun, ModelClient, Nanodollars, RunStatus, Step, StepKind, StopReason, Usage};
use rez_core::id::{AttemptId, RunId};
use rez_core::ports::StoreError;
use rez_core::time::Timestamp;
use serde_json::Value;
use tracing::Instrument;

use rez_core::agent::approval::{Approval, ApprovalPolicy, ApprovalState};

use super::approvals;
use super::conversation::{self, Next};
use super::outcome;
use super::retry::{RetryPolicy, complete_with_retries};
use super::settings::AgentSettings;
use super::{Agent, AgentPorts};
use crate::tools::{CallContext, ToolError, ToolName};
use crate::workers::HandlerError;

/// The most of a tool's text a model is given.
const MAX_TOOL_TEXT: usize = 16 * 1024;
/// The largest structured result stored with a step: a step must fit one store item
/// (DynamoDB's is 400 KB); a larger one is left out, its message keeps it whole.
const MAX_TOOL_STRUCTURED: usize = 64 * 1024;

/// A run owned by this delivery.
struct Owned<'a> {
    ports: &'a AgentPorts,
    settings: &'a AgentSettings,
    model: &'a dyn ModelClient,
    run: AgentRun,
    attempt: AttemptId,
    steps: Vec<Step>,
    history: Vec<rez_core::agent::run::ChatExchange>,
    deadline: Timestamp,
}

fn store_error(what: &str, e: StoreError) -> HandlerError {
    match e {
        // Another delivery owns the run now (our lease ran out): it carries on; look again
        // once its lease could have ended.
        StoreError::Conflict(_) => {
            HandlerError::later(format!("{what}: another delivery owns the run"), Duration::from_secs(30))
        }
        e => HandlerError::transient(format!("{what}: {e}")),
    }
}

impl Agent {
    /// Take the steps of run `id` until it ends, or this delivery must stop. `last_try`:
    /// the queue will not deliver the message again, so a transient failure ends the run.
    pub async fn drive(&self, id: &RunId, last_try: bool) -> Result<(), HandlerError> {
        let span = tracing::info_span!("agent_run", run_id = %id);
        self.drive_inner(id, last_try).instrument(span).await
    }

    async fn drive_inner(&self, id: &RunId, last_try: bool) -> Result<(), HandlerError> {
        let Some(ports) = self.services.agent.as_ref() else {
            return Err(HandlerError::permanent("this deployment has no agent store"));
        };
        let now = self.services.clock.now();
        let attempt = AttemptId::new(now);
        let lease = ports.settings.as_ref().map_or(AgentSettings::DEFAULT_LEASE, |s| s.lease);
        let run =
            match ports.runs.claim_run(id, &attempt, now, now + lease).await.map_err(|e| store_error("claim", e))? {
                RunClaim::Claimed(run) => run,
                RunClaim::Busy { until } => {
                    let wait = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                    tracing::info!(wait_s = wait.as_secs(), "run is being worked on by another delivery");
                    return Err(HandlerError::later("another delivery is working on this run", wait));
                }
                RunClaim::Finished(run) => {
                    // Ended by an earlier delivery that may have died before telling anyone.
                    return outcome::after_end(&self.services, ports, &run).await;
                }
                RunClaim::NotFound => return Err(HandlerError::permanent(format!("run {id} does not exist"))),
            };
        let (Some(settings), Some(model)) = (ports.settings.as_ref(), self.model.as_deref()) else {
            let mut run = run;
            let why = "the agent is off: set REZ_AGENT_PROVIDER (anthropic, openai or bedrock) and REZ_AGENT_MODEL";
            return self.end(ports, &mut run, &attempt, RunStatus::Failed, None, Some(why.into())).await;
        };
        let steps = ports.runs.steps(id).await.map_err(|e| store_error("reading steps", e))?;
        let history = match &run.session_id {
            Some(s) => match ports.runs.get_session(s).await.map_err(|e| store_error("reading the session", e))? {
                Some(session) => session.exchanges.into_iter().filter(|x| x.run_id < *id).collect(),
                None => vec![],
            },
            None => vec![],
        };
        let started = steps.first().map_or(now, |s| s.at);
        let deadline = started + settings.run_timeout;
        let mut o = Owned { ports, settings, model, run, attempt, steps, history, deadline };
        self.resettle_last_turn(&o).await;
        tracing::info!(steps = o.steps.len(), turns = o.run.turns, "run claimed");
        self.take_steps(&mut o, last_try).await
    }

    async fn take_steps(&self, o: &mut Owned<'_>, last_try: bool) -> Result<(), HandlerError> {
        loop {
            let now = self.services.clock.now();
            match o.ports.runs.get_run(&o.run.id).await {
                Ok(Some(r)) if r.cancel_requested => {
                    return self.finish(o, RunStatus::Cancelled, None, Some("cancelled on request".into())).await;
                }
                Ok(_) => {}
                Err(e) => return Err(store_error("reading the run", e)),
            }
            if now >= o.deadline {
                let secs = o.settings.run_timeout.as_secs();
                return self
                    .finish(o, RunStatus::Failed, None, Some(format!("the run took longer than its {secs} s")))
                    .await;
            }
            match conversation::next(&o.steps) {
                Next::Finished(turn) => return self.finish_from_turn(o, &turn).await,
                Next::Resume(index) => {
                    let call = match o.steps.get(index as usize).map(|s| &s.kind) {
                        Some(StepKind::ToolCall(c)) => c.clone(),
                        _ => return Err(HandlerError::permanent(format!("step {index} is not a tool call"))),
                    };
                    if approvals::needs_approval(&o.run, &call.name) {
                        match self.gate(o, index, &call).await? {
                            Gate::Execute => {}
                            Gate::Answer(outcome) => {
                                self.store_outcome(o, index, outcome).await?;
                                continue;
                            }
                            Gate::Stop(end) => return end,
                        }
                    } else {
                        tracing::info!(step = index, tool = %call.name, "executing an interrupted tool call again with its key");
                    }
                    self.run_tool(o, index, call).await?;
                }
                Next::ToolCall { call_id, name, input } => {
                    let index = o.run.steps;
                    let call = ToolCall {
                        call_id,
                        name,
                        arguments: input,
                        idempotency_key: tool_call_key(&o.run.id, index),
                        outcome: None,
                    };
                    let step = Step { index, at: now, kind: StepKind::ToolCall(call.clone()) };
                    self.append(o, step).await?;
                    if approvals::needs_approval(&o.run, &call.name) {
                        return self.ask_and_pause(o, index, &call).await;
                    }
                    self.run_tool(o, index, call).await?;
                }
                Next::ModelTurn => {
                    if o.run.turns >= o.settings.max_turns {
                        let n = o.settings.max_turns;
                        let answer = last_text(&o.steps);
                        return self
                            .finish(
                                o,
                                RunStatus::MaxTurns,
                                answer,
                                Some(format!("used all {n} model turns without finishing")),
                            )
                            .await;
                    }
                    if o.run.usage.total() >= o.settings.run_token_cap {
                        let cap = o.settings.run_token_cap;
                        return self
                            .finish(
                                o,
                                RunStatus::BudgetExceeded,
                                last_text(&o.steps),
                                Some(format!("used its cap of {cap} tokens")),
                            )
                            .await;
                    }
                    if let Some(end) = self.model_turn(o, last_try).await? {
                        return end;
                    }
                }
            }
        }
    }

    /// Ask the model. `Some(result)`: the run ended (or must stop) here.
    async fn model_turn(
        &self,
        o: &mut Owned<'_>,
        last_try: bool,
    ) -> Result<Option<Result<(), HandlerError>>, HandlerError> {
        let began = Instant::now();
        let now = self.services.clock.now();
        let request = self.request(o, now);
        let request_bytes = request.size_bytes();
        let reservation = self.reservation(o, now, request_bytes);
        match o.ports.budget.reserve(&reservation).await.map_err(|e| store_error("reserving the budget", e))? {
            Reserved::Granted => {}
            Reserved::DayExceeded { committed, cap } => {
                let why = format!(
                    "today's agent budget of {cap} would be passed: {committed} is spent or reserved and this call could cost up to {} (REZ_AGENT_DAILY_BUDGET_USD)",
                    reservation.amount
                );
                return Ok(Some(self.finish(o, RunStatus::BudgetExceeded, last_text(&o.steps), Some(why)).await));
            }
            Reserved::RunExceeded { committed, cap } => {
                let why = format!(
                    "the run's budget of {cap} would be passed: {committed} is spent or reserved and this call could cost up to {} (REZ_AGENT_RUN_BUDGET_USD)",
                    reservation.amount
                );
                return Ok(Some(self.finish(o, RunStatus::BudgetExceeded, last_text(&o.steps), Some(why)).await));
            }
        }
        let left = (o.deadline - now).to_std().unwrap_or_default();
        let prepared = began.elapsed();
        let called = Instant::now();
        let policy = RetryPolicy { deadline: o.settings.retry.deadline.min(left), ..o.settings.retry.clone() };
        let (result, attempts) = complete_with_retries(o.model, &request, &policy).await;
        let waited = called.elapsed();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(provider = e.provider, status = e.status, attempts, transient = e.is_transient(), error = %e.message, "model call failed");
                if e.is_transient() && !last_try {
                    // The reservation stays open: the next delivery's call at this step
                    // is the same reservation, settled when it succeeds.
                    return Err(HandlerError::transient(format!("the model call failed: {e}")));
                }
                self.settle(o, &reservation, Nanodollars::ZERO, &Usage::default()).await;
                return Ok(Some(self.finish(o, RunStatus::Failed, last_text(&o.steps), Some(e.to_string())).await));
            }
        };
        let cost = o.settings.prices.price(&o.settings.model).map_or(Nanodollars::ZERO, |p| p.cost(&response.usage));
        let turn = ModelTurn {
            model: response.model.clone(),
            request_bytes,
            content: response.content,
            stop_reason: response.stop_reason,
            usage: response.usage,
            cost,
            latency_ms: waited.as_millis() as u64,
            attempts,
        };
        let stored_at = Instant::now();
        o.run.turns += 1;
        o.run.usage.add(&turn.usage);
        o.run.cost = o.run.cost.saturating_add(cost);
        let step = Step { index: o.run.steps, at: self.services.clock.now(), kind: StepKind::ModelTurn(turn.clone()) };
        self.append(o, step).await?;
        self.settle(o, &reservation, cost, &turn.usage).await;
        let m = &self.services.metrics;
        m.agent_model_turn(&turn.model, &turn.usage, cost.0);
        m.agent_step("model_turn", began.elapsed().as_secs_f64(), (prepared + stored_at.elapsed()).as_secs_f64());
        tracing::info!(
            step = o.run.steps - 1,
            stop_reason = %turn.stop_reason,
            input_tokens = turn.usage.input_tokens,
            output_tokens = turn.usage.output_tokens,
            cost_nanodollars = cost.0,
            latency_ms = turn.latency_ms,
            attempts,
            "model turn"
        );
        Ok(None)
    }

    fn request(&self, o: &Owned<'_>, now: Timestamp) -> ModelRequest {
        let req = &o.run.request;
        ModelRequest {
            model: o.settings.model.clone(),
            system: super::prompt::system_prompt(req, self.tools.courses(), o.settings.zone, now),
            messages: conversation::messages(&o.history, &req.prompt, &o.steps),
            tools: self
                .tools
                .specs()
                .iter()
                .filter(|s| allowed(&o.run, s.name))
                .map(|s| ToolDefinition {
                    name: s.name.to_owned(),
                    description: s.description.to_owned(),
                    input_schema: s.input_schema.clone(),
                })
                .collect(),
            max_tokens: o.settings.max_tokens,
        }
    }

    fn reservation(&self, o: &Owned<'_>, now: Timestamp, request_bytes: u64) -> BudgetReservation {
        let amount = o
            .settings
            .prices
            .price(&o.settings.model)
            .map_or(Nanodollars::ZERO, |p| p.bound(request_bytes, o.settings.max_tokens));
        BudgetReservation {
            run: o.run.id.clone(),
            step: o.run.steps,
            day: day_of(now, o.settings),
            model: o.settings.model.clone(),
            amount,
            day_cap: o.settings.day_cap,
            run_cap: o.settings.run_cap,
        }
    }

    async fn settle(&self, o: &Owned<'_>, r: &BudgetReservation, actual: Nanodollars, usage: &Usage) {
        if let Err(e) = o.ports.budget.settle(r, actual, usage).await {
            // The reservation stays counted (the safe side of the cap); the next delivery
            // settles the last stored turn again.
            tracing::warn!(step = r.step, error = %e, "settling a budget reservation failed");
        }
    }

    /// A delivery that died between storing a model turn and settling its reservation
    /// left it open; settling is idempotent, so the last stored turn is settled again.
    async fn resettle_last_turn(&self, o: &Owned<'_>) {
        let Some((index, at, turn)) = o.steps.iter().rev().find_map(|s| match &s.kind {
            StepKind::ModelTurn(t) => Some((s.index, s.at, t)),
            _ => None,
        }) else {
            return;
        };
        let r = BudgetReservation {
            run: o.run.id.clone(),
            step: index,
            day: day_of(at, o.settings),
            model: o.settings.model.clone(),
            amount: turn.cost,
            day_cap: o.settings.day_cap,
            run_cap: o.settings.run_cap,
        };
        self.settle(o, &r, turn.cost, &turn.usage).await;
    }

    async fn append(&self, o: &mut Owned<'_>, step: Step) -> Result<(), HandlerError> {
        let now = self.services.clock.now();
        let mut next = o.run.clone();
        next.steps = step.index + 1;
        next.updated_at = now;
        next.status = RunStatus::Running;
        if let Some(l) = &mut next.lease {
            l.until = now + o.settings.lease;
        }
        o.ports.runs.append_step(&next, &step, &o.attempt).await.map_err(|e| store_error("storing a step", e))?;
        o.run = next;
        o.steps.push(step);
        Ok(())
    }

    /// Store the outcome of the tool call at `index`, in the store and in `o`.
    async fn store_outcome(&self, o: &mut Owned<'_>, index: u32, outcome: ToolOutcome) -> Result<(), HandlerError> {
        o.ports
            .runs
            .finish_tool_call(&o.run.id, index, &outcome, &o.attempt)
            .await
            .map_err(|e| store_error("storing a tool result", e))?;
        if let Some(StepKind::ToolCall(c)) = o.steps.get_mut(index as usize).map(|s| &mut s.kind) {
            c.outcome = Some(outcome);
        }
        Ok(())
    }

    /// Where the approval of the call at `index` stands, and so what the run does.
    async fn gate(&self, o: &mut Owned<'_>, index: u32, call: &ToolCall) -> Result<Gate, HandlerError> {
        let Some(store) = o.ports.approvals.clone() else {
            return Ok(Gate::Answer(ToolOutcome {
                text: "This deployment cannot ask the user for approval, so the call was not made.".into(),
                structured: None,
                is_error: true,
                message_id: None,
                duration_ms: 0,
            }));
        };
        let now = self.services.clock.now();
        let found =
            store.approval_for_step(&o.run.id, index).await.map_err(|e| store_error("reading the approval", e))?;
        let Some(mut approval) = found else { return Ok(Gate::Stop(self.ask_and_pause(o, index, call).await)) };
        if approval.state == ApprovalState::Pending && now >= approval.expires_at {
            approval = store
                .expire(&approval.id, now)
                .await
                .map_err(|e| store_error("expiring the approval", e))?
                .unwrap_or(approval);
        }
        Ok(match approval.state {
            ApprovalState::Pending if approval.asked_at.is_none() => {
                Gate::Stop(self.ask_and_pause(o, index, call).await)
            }
            ApprovalState::Pending => Gate::Stop(self.pause(o, &approval).await),
            ApprovalState::Approved => {
                tracing::info!(approval_id = %approval.id, step = index, tool = %call.name, "approved: executing the stored call with its key");
                Gate::Execute
            }
            ApprovalState::Declined => Gate::Answer(ToolOutcome {
                text: format!(
                    "The user declined this: {}. It was not done. Do not try it again; say in your answer that it was not done.",
                    approval.summary
                ),
                structured: None,
                is_error: true,
                message_id: None,
                duration_ms: 0,
            }),
            ApprovalState::Expired => {
                let when = approval.expires_at.with_timezone(&o.settings.zone).format("%a %-d %b %H:%M");
                let why =
                    format!("nobody answered the approval of \"{}\" by {when}; nothing was done", approval.summary);
                Gate::Stop(self.finish(o, RunStatus::ApprovalExpired, last_text(&o.steps), Some(why)).await)
            }
        })
    }

    /// Ask for the approval of the call at `index` (once), then pause the run.
    async fn ask_and_pause(&self, o: &mut Owned<'_>, index: u32, call: &ToolCall) -> Result<(), HandlerError> {
        let waiting = approvals::WaitingCall { run: &o.run, steps: &o.steps, index, call };
        let approval = approvals::ask(&self.services, o.ports, o.settings, self.tools.courses(), waiting).await?;
        if approval.is_open(self.services.clock.now()) {
            return self.pause(o, &approval).await;
        }
        // Decided (or expired) while it was being asked: look again at once.
        Err(HandlerError::later("the approval was decided meanwhile", Duration::from_millis(1)))
    }

    /// Release the run while it waits: no worker is held; its message comes back at the
    /// approval's deadline (a decision brings the run back sooner).
    async fn pause(&self, o: &mut Owned<'_>, approval: &Approval) -> Result<(), HandlerError> {
        let now = self.services.clock.now();
        let mut run = o.run.clone();
        run.status = RunStatus::AwaitingApproval;
        run.lease = None;
        run.updated_at = now;
        o.ports.runs.update_run(&run, &o.attempt).await.map_err(|e| store_error("pausing the run", e))?;
        o.run = run;
        tracing::info!(approval_id = %approval.id, step = approval.step, "run paused for approval");
        Err(HandlerError::later(format!("waiting for approval {}", approval.id), approvals::wait_for(approval, now)))
    }

    async fn run_tool(&self, o: &mut Owned<'_>, index: u32, call: ToolCall) -> Result<(), HandlerError> {
        let began = Instant::now();
        let outcome = self.execute(&o.run, &call).await;
        let ran = began.elapsed();
        let stored_at = Instant::now();
        self.store_outcome(o, index, outcome.clone()).await?;
        self.services.metrics.agent_step("tool_call", began.elapsed().as_secs_f64(), stored_at.elapsed().as_secs_f64());
        match &outcome.message_id {
            Some(m) => {
                tracing::info!(step = index, tool = %call.name, is_error = outcome.is_error, message_id = %m, ms = ran.as_millis() as u64, "tool call")
            }
            None => {
                tracing::info!(step = index, tool = %call.name, is_error = outcome.is_error, ms = ran.as_millis() as u64, "tool call")
            }
        }
        Ok(())
    }

    /// Execute one call. Never fails: a refused, malformed or unknown call is a tool
    /// error the model reads and can recover from.
    async fn execute(&self, run: &AgentRun, call: &ToolCall) -> ToolOutcome {
        let began = Instant::now();
        let refused = |text: String| ToolOutcome {
            text,
            structured: None,
            is_error: true,
            message_id: None,
            duration_ms: began.elapsed().as_millis() as u64,
        };
        if ToolName::parse(&call.name).is_some() && !allowed(run, &call.name) {
            return refused(format!(
                "`{}` is not available in this run: it may find and propose a tee time, not book one (auto_book is off). Propose the tee time in your answer instead.",
                call.name
            ));
        }
        let args = match &call.arguments {
            Value::Object(m) => Some(m.clone()),
            Value::Null => None,
            Value::String(raw) => {
                return refused(format!(
                    "the arguments of `{}` were not valid JSON ({}): call it again with a JSON object that matches its input schema",
                    call.name,
                    excerpt(raw, 200)
                ));
            }
            other => {
                return refused(format!(
                    "the arguments of `{}` must be a JSON object, not {}: call it again with an object that matches its input schema",
                    call.name,
                    excerpt(&other.to_string(), 200)
                ));
            }
        };
        match self.tools.call(&call.name, args, CallContext::agent(call.idempotency_key.clone())).await {
            Ok(r) => ToolOutcome {
                text: excerpt(&r.text, MAX_TOOL_TEXT),
                structured: r
                    .structured
                    .filter(|v| serde_json::to_vec(v).map_or(0, |b| b.len()) <= MAX_TOOL_STRUCTURED),
                is_error: r.is_error,
                message_id: r.message_id,
                duration_ms: began.elapsed().as_millis() as u64,
            },
            Err(ToolError::UnknownTool(name)) => {
                let names: Vec<&str> = self.tools.specs().iter().map(|s| s.name).filter(|n| allowed(run, n)).collect();
                refused(format!("there is no tool `{name}`; the tools are: {}", names.join(", ")))
            }
        }
    }

    async fn finish_from_turn(&self, o: &mut Owned<'_>, turn: &ModelTurn) -> Result<(), HandlerError> {
        let text = text_of(&turn.content);
        let answer = (!text.trim().is_empty()).then_some(text);
        let (status, error) = match &turn.stop_reason {
            StopReason::EndTurn | StopReason::StopSequence => (RunStatus::Completed, None),
            StopReason::MaxTokens => {
                (RunStatus::Failed, Some(format!("the answer was cut off at {} output tokens", o.settings.max_tokens)))
            }
            StopReason::Refusal => (RunStatus::Failed, Some("the model declined the task".to_owned())),
            StopReason::ContentFilter => (RunStatus::Failed, Some("the provider filtered the answer".to_owned())),
            StopReason::ToolUse => (RunStatus::Failed, Some("the model asked for tools but named none".to_owned())),
            StopReason::PauseTurn => (RunStatus::Failed, Some("the model paused without continuing".to_owned())),
            StopReason::Other(r) => {
                (RunStatus::Failed, Some(format!("the model stopped for a reason rez does not know: {r}")))
            }
        };
        let answer = match (status, answer) {
            (RunStatus::Completed, None) => Some("(the model finished without an answer)".to_owned()),
            (_, a) => a,
        };
        self.finish(o, status, answer, error).await
    }

    async fn finish(
        &self,
        o: &mut Owned<'_>,
        status: RunStatus,
        answer: Option<String>,
        error: Option<String>,
    ) -> Result<(), HandlerError> {
        self.end(o.ports, &mut o.run, &o.attempt, status, answer, error).await
    }

    /// End the run: store its outcome (which ends the lease), then notify.
    async fn end(
        &self,
        ports: &AgentPorts,
        current: &mut AgentRun,
        attempt: &AttemptId,
        status: RunStatus,
        answer: Option<String>,
        error: Option<String>,
    ) -> Result<(), HandlerError> {
        let now = self.services.clock.now();
        let mut run = current.clone();
        run.status = status;
        run.answer = answer;
        run.error = error;
        run.finished_at = Some(now);
        run.updated_at = now;
        run.lease = None;
        ports.runs.update_run(&run, attempt).await.map_err(|e| store_error("ending the run", e))?;
        *current = run;
        self.services.metrics.agent_run_ended(status.as_str());
        match &current.error {
            Some(e) => {
                tracing::info!(outcome = %status, turns = current.turns, cost_nanodollars = current.cost.0, error = %e, "run ended")
            }
            None => {
                tracing::info!(outcome = %status, turns = current.turns, cost_nanodollars = current.cost.0, "run ended")
            }
        }
        outcome::after_end(&self.services, ports, current).await
    }
}

/// The day `at` falls on in the user's zone: the budget's day.
pub fn day_of(at: Timestamp, settings: &AgentSettings) -> NaiveDate {
    at.with_timezone(&settings.zone).date_naive()
}

/// Whether `run` may call `tool`: booking only with `auto_book`, or when every booking
/// waits for the user's approval.
pub fn allowed(run: &AgentRun, tool: &str) -> bool {
    tool != ToolName::GolfBookTeeTime.as_str()
        || run.request.auto_book
        || run.request.approval == ApprovalPolicy::Required
}

/// What an approval lets the run do with a waiting call.
enum Gate {
    /// Approved: execute it with its stored key.
    Execute,
    /// Declined (or impossible): this is its outcome.
    Answer(ToolOutcome),
    /// The delivery ends here (paused, or the run ended).
    Stop(Result<(), HandlerError>),
}

/// The text of the last model turn, if it said anything.
fn last_text(steps: &[Step]) -> Option<String> {
    steps.iter().rev().find_map(|s| match &s.kind {
        StepKind::ModelTurn(t) => Some(text_of(&t.content)).filter(|t| !t.trim().is_empty()),
        _ => None,
    })
}

fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
