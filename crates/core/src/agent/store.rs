//! The agent's ports: the run store (runs, their steps, chat sessions) and the budget
//! ledger. `rez-local` implements both on SQLite, `rez-aws` on DynamoDB; the port suite
//! holds them to the same rules, races included.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::model::Usage;
use super::money::Nanodollars;
use super::run::{AgentRun, ChatExchange, ChatSession, RunLease, RunStatus, Step, ToolOutcome};
use crate::id::{AttemptId, ChatSessionId, RunId, ScheduleId};
use crate::ports::{Page, StoreResult};
use crate::time::Timestamp;

/// Filters of `GET /api/agent/runs`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub schedule_id: Option<ScheduleId>,
    pub session_id: Option<ChatSessionId>,
    /// 1..=100.
    pub limit: usize,
    pub cursor: Option<String>,
}

/// The answer to [`AgentStore::claim_run`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunClaim {
    /// The caller's attempt owns the run until the lease's end; the run as stored now
    /// (status `running`).
    Claimed(AgentRun),
    /// Another attempt's lease is live until then.
    Busy {
        until: Timestamp,
    },
    /// The run has ended; nothing to do.
    Finished(AgentRun),
    NotFound,
}

impl RunClaim {
    /// What claiming `run`, as stored, for `attempt` at `now` comes to; every adapter
    /// decides with this inside its own conditional write. `Claimed` carries the run to
    /// write: `running`, leased to `attempt` until `until`.
    pub fn decide(mut run: AgentRun, attempt: &AttemptId, now: Timestamp, until: Timestamp) -> RunClaim {
        if run.status.is_final() {
            return RunClaim::Finished(run);
        }
        if let Some(lease) = &run.lease
            && lease.attempt != *attempt
            && lease.until > now
        {
            return RunClaim::Busy { until: lease.until };
        }
        run.status = RunStatus::Running;
        run.lease = Some(RunLease { attempt: attempt.clone(), until });
        run.updated_at = now;
        RunClaim::Claimed(run)
    }
}

/// Runs, their steps and chat sessions.
///
/// Ownership: a delivery first claims the run under a lease; every later write about the
/// run (a step, its outcome, the run's progress and end) is conditional on the caller's
/// attempt still owning it, so a second delivery of the same run can never take a step
/// the first one is taking. A lost lease is `StoreError::Conflict`.
#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    /// Store `run` unless a run with its id exists; either way answer the stored run and
    /// whether this call created it.
    async fn create_run(&self, run: &AgentRun) -> StoreResult<(AgentRun, bool)>;
    async fn get_run(&self, id: &RunId) -> StoreResult<Option<AgentRun>>;
    /// Newest first.
    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<Page<AgentRun>>;
    /// Take the run for `attempt` until `until` if it has not ended and no other attempt's
    /// lease is live at `now`; the run becomes `running`.
    async fn claim_run(
        &self,
        id: &RunId,
        attempt: &AttemptId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<RunClaim>;
    /// Store a new step at `step.index` (= the run's `steps`) and the run's progress
    /// (`run`: steps, turns, usage, cost, lease end) together, if `attempt` owns the run.
    async fn append_step(&self, run: &AgentRun, step: &Step, attempt: &AttemptId) -> StoreResult<()>;
    /// Record the outcome of the tool call at `index` (stored without one), if `attempt`
    /// owns the run. An outcome already stored is kept (`Conflict`).
    async fn finish_tool_call(
        &self,
        run: &RunId,
        index: u32,
        outcome: &ToolOutcome,
        attempt: &AttemptId,
    ) -> StoreResult<()>;
    /// Replace the run's own fields (status, answer, error, lease), if `attempt` owns it.
    /// Ending a run clears its lease. The progress `append_step` stored (steps, turns,
    /// usage, cost) and a cancel request are kept as stored, so a stale copy of the run
    /// cannot undo them.
    async fn update_run(&self, run: &AgentRun, attempt: &AttemptId) -> StoreResult<()>;
    /// Every step of a run, in order.
    async fn steps(&self, id: &RunId) -> StoreResult<Vec<Step>>;
    /// Ask a run to stop. A run that has not started (`queued`, no live lease) ends
    /// `cancelled` at once; a running one stops before its next step. `None`: no such run.
    async fn request_cancel(&self, id: &RunId, now: Timestamp) -> StoreResult<Option<AgentRun>>;

    async fn get_session(&self, id: &ChatSessionId) -> StoreResult<Option<ChatSession>>;
    /// Append an exchange to a session, creating the session if it is new. Idempotent per
    /// run: an exchange of a run already in the session is not added again. A session was
    /// created at its first exchange's `at` and updated at its latest's.
    async fn append_exchange(&self, id: &ChatSessionId, exchange: &ChatExchange) -> StoreResult<ChatSession>;
}

/// One reservation of spend for one model call: `(run, step)` names it, so the same step
/// reserved again after a crash is the same reservation, never a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetReservation {
    pub run: RunId,
    pub step: u32,
    /// The day it counts against (in the user's zone).
    pub day: NaiveDate,
    pub model: String,
    /// The most the call can cost.
    pub amount: Nanodollars,
    /// The day's cap, if one is set.
    pub day_cap: Option<Nanodollars>,
    /// The run's cap, if one is set.
    pub run_cap: Option<Nanodollars>,
}

/// The answer to [`BudgetLedger::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Reserved now, or reserved by an earlier attempt at the same step.
    Granted,
    /// The day's spend and open reservations plus this one would pass the day's cap.
    DayExceeded { committed: Nanodollars, cap: Nanodollars },
    /// The run's would pass the run's cap.
    RunExceeded { committed: Nanodollars, cap: Nanodollars },
}

/// Spend of one day, per model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelSpend {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub model: String,
    pub calls: u64,
    #[schema(value_type = Object)]
    pub usage: Usage,
    /// Nanodollars.
    #[schema(value_type = u64)]
    pub cost: Nanodollars,
}

/// Where a day stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayBudget {
    /// Settled spend.
    pub spent: Nanodollars,
    /// Spend plus reservations not settled yet: what the cap is compared with.
    pub committed: Nanodollars,
}

/// Spend per day and per run, exact under concurrency.
///
/// `reserve` is one atomic store operation: the reservation is recorded and both the day's
/// and the run's committed amount raised only if neither passes its cap, so parallel runs
/// can never commit the day past its cap. `settle` replaces the reservation by the actual
/// cost (once; settling again changes nothing).
#[async_trait]
pub trait BudgetLedger: Send + Sync + 'static {
    async fn reserve(&self, reservation: &BudgetReservation) -> StoreResult<Reserved>;
    /// Settle the reservation of `(reservation.run, reservation.step)` at `actual`, adding
    /// `usage` to the day's spend for its model (the day and model it was reserved
    /// with). A reservation never made: `StoreError::NotFound`.
    async fn settle(&self, reservation: &BudgetReservation, actual: Nanodollars, usage: &Usage) -> StoreResult<()>;
    async fn day(&self, day: NaiveDate) -> StoreResult<DayBudget>;
    /// Settled spend per day and model, for the days `from..=to`, by day then model.
    async fn spend(&self, from: NaiveDate, to: NaiveDate) -> StoreResult<Vec<ModelSpend>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::run::AgentRequest;
    use crate::message::CreatedBy;

    #[test]
    fn a_claim_takes_an_open_run_unless_another_attempt_holds_it() {
        let t0 = chrono::Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let request =
            AgentRequest::from_json(serde_json::json!({"prompt": "book"}).as_object().expect("an object"), "")
                .expect("a request");
        let run = AgentRun::new(RunId::new(t0), request, CreatedBy::Api, None, None, None, "anthropic", "m", t0);
        let (me, other) = (AttemptId::new(t0), AttemptId::new(at(1)));

        let RunClaim::Claimed(mine) = RunClaim::decide(run.clone(), &me, at(1), at(60)) else { panic!("claimed") };
        assert_eq!(mine.status, RunStatus::Running);
        assert_eq!(mine.lease, Some(RunLease { attempt: me.clone(), until: at(60) }));
        assert_eq!(mine.updated_at, at(1));
        // Another attempt while the lease is live: busy until its end; after it: taken over.
        assert_eq!(RunClaim::decide(mine.clone(), &other, at(59), at(120)), RunClaim::Busy { until: at(60) });
        let RunClaim::Claimed(taken) = RunClaim::decide(mine.clone(), &other, at(60), at(120)) else {
            panic!("taken over")
        };
        assert_eq!(taken.lease.map(|l| l.attempt), Some(other));
        // The owner renews its own live lease.
        assert!(matches!(RunClaim::decide(mine.clone(), &me, at(30), at(90)), RunClaim::Claimed(_)));
        // An ended run is answered as it is, whoever asks.
        let mut ended = mine;
        ended.status = RunStatus::Completed;
        assert_eq!(RunClaim::decide(ended.clone(), &me, at(2), at(60)), RunClaim::Finished(ended));
    }
}
