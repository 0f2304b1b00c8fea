//! The conformance suite of the agent's ports: the run store (`AgentStore`) and the budget
//! ledger (`BudgetLedger`). Its own fixture and macro, so an adapter expands it apart from
//! the message-store suite: `agent_port_suite!(MyFixture);` where `MyFixture:
//! AgentFixture + Default`.
//!
//! The checks pass `now` explicitly where the ports take it (claims, cancels), so lease
//! expiry is tested without sleeping; the races spawn their contenders on a two-thread
//! runtime and count outcomes, never timings.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use rez_core::agent::model::{ContentBlock, StopReason, Usage};
use rez_core::agent::money::Nanodollars;
use rez_core::agent::run::{
    AgentRequest, AgentRun, ChatExchange, ModelTurn, RunStatus, Step, StepKind, ToolCall, ToolOutcome, tool_call_key,
};
use rez_core::agent::store::{AgentStore, BudgetLedger, BudgetReservation, DayBudget, Reserved, RunClaim, RunFilter};
use rez_core::clock::{Clock, SystemClock};
use rez_core::id::{AttemptId, ChatSessionId, MessageId, RunId, ScheduleId};
use rez_core::message::CreatedBy;
use rez_core::ports::StoreError;
use rez_core::time::Timestamp;

/// Builds a fresh, empty run store and budget ledger of one adapter.
#[async_trait]
pub trait AgentFixture: Send + Sync {
    async fn fresh_agent(&self) -> (Arc<dyn AgentStore>, Arc<dyn BudgetLedger>);
}

/// Now, at the millisecond: what every adapter stores of a timestamp.
fn now() -> Timestamp {
    let t = SystemClock.now();
    Utc.timestamp_millis_opt(t.timestamp_millis()).single().expect("a valid timestamp")
}

fn request(prompt: &str) -> AgentRequest {
    AgentRequest {
        prompt: prompt.into(),
        course: Some("birdsfoot".into()),
        players: Some(4),
        auto_book: false,
        notify: true,
        approval: Default::default(),
    }
}

/// A queued run created at `at` (also for adapters' own tests).
pub fn run_at(at: Timestamp) -> AgentRun {
    AgentRun::new(
        RunId::new(at),
        request("find a tee time on Saturday morning"),
        CreatedBy::Api,
        Some(MessageId::new(at)),
        None,
        None,
        "anthropic",
        "claude-sonnet-4-5",
        at,
    )
}

async fn created(s: &dyn AgentStore, run: AgentRun) -> AgentRun {
    let (stored, new) = s.create_run(&run).await.expect("create_run");
    assert!(new, "a new run is created");
    stored
}

/// Claim `run` for a fresh attempt, with a lease of a minute from `at`.
async fn claimed(s: &dyn AgentStore, run: &AgentRun, at: Timestamp) -> (AgentRun, AttemptId) {
    let attempt = AttemptId::new(at);
    match s.claim_run(&run.id, &attempt, at, at + TimeDelta::seconds(60)).await.expect("claim_run") {
        RunClaim::Claimed(r) => (r, attempt),
        other => panic!("a queued run is claimed, got {other:?}"),
    }
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, cache_read_tokens: 7, cache_write_tokens: 3 }
}

/// A model turn asking for one tool call, every field set.
pub fn model_step(index: u32, at: Timestamp) -> Step {
    Step {
        index,
        at,
        kind: StepKind::ModelTurn(ModelTurn {
            model: "claude-sonnet-4-5-20250929".into(),
            request_bytes: 4_321,
            content: vec![
                ContentBlock::Text { text: "Checking the weather first.".into() },
                ContentBlock::ToolUse {
                    id: format!("toolu_{index}"),
                    name: "weather_forecast".into(),
                    input: serde_json::json!({"course": "birdsfoot", "days": [1, 2]}),
                },
            ],
            stop_reason: StopReason::ToolUse,
            usage: usage(1_200, 85),
            cost: Nanodollars(4_882_000),
            latency_ms: 812,
            attempts: 2,
        }),
    }
}

/// The tool call that the model turn at `index - 1` asked for, not yet run.
pub fn tool_step(run: &RunId, index: u32, at: Timestamp) -> Step {
    Step {
        index,
        at,
        kind: StepKind::ToolCall(ToolCall {
            call_id: format!("toolu_{}", index - 1),
            name: "weather_forecast".into(),
            arguments: serde_json::json!({"course": "birdsfoot", "days": [1, 2]}),
            idempotency_key: tool_call_key(run, index),
            outcome: None,
        }),
    }
}

/// A tool call's successful outcome.
pub fn outcome(at: Timestamp) -> ToolOutcome {
    ToolOutcome {
        text: "Saturday: dry, wind 8 mph".into(),
        structured: Some(serde_json::json!({"periods": [{"name": "Saturday", "precip": 0}]})),
        is_error: false,
        message_id: Some(MessageId::new(at)),
        duration_ms: 143,
    }
}

/// `run` after storing `step`: the progress `append_step` is given.
fn progressed(run: &AgentRun, step: &Step) -> AgentRun {
    let mut next = run.clone();
    next.steps = step.index + 1;
    if let StepKind::ModelTurn(t) = &step.kind {
        next.turns += 1;
        next.usage.add(&t.usage);
        next.cost = next.cost.saturating_add(t.cost);
    }
    next.updated_at = step.at;
    next
}

pub async fn runs_are_created_once(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = run_at(t);
    assert_eq!(s.get_run(&run.id).await.unwrap(), None);
    let first = created(&*s, run.clone()).await;
    assert_eq!(first, run);
    let mut other = run.clone();
    other.request = request("something else entirely");
    let (stored, new) = s.create_run(&other).await.unwrap();
    assert!(!new, "the second create finds the first");
    assert_eq!(stored, run, "and answers the stored run, unchanged");
    assert_eq!(s.get_run(&run.id).await.unwrap(), Some(run), "every field round-trips");
}

pub async fn runs_list_newest_first_with_filters_and_a_cursor(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let base = now() - TimeDelta::seconds(10);
    let schedule = ScheduleId::new(base);
    let session = ChatSessionId::new(base);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut run = run_at(base + TimeDelta::milliseconds(i * 5));
        if i % 2 == 0 {
            run.schedule_id = Some(schedule.clone());
        }
        if i == 3 {
            run.session_id = Some(session.clone());
        }
        ids.push(created(&*s, run).await);
    }
    claimed(&*s, &ids[1], base).await;
    let newest_first: Vec<RunId> = ids.iter().rev().map(|r| r.id.clone()).collect();

    let all = s.list_runs(&RunFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), newest_first);
    assert_eq!(all.next_cursor, None);

    let mut paged = Vec::new();
    let mut cursor = None;
    for page in 0.. {
        let p = s.list_runs(&RunFilter { limit: 2, cursor: cursor.clone(), ..Default::default() }).await.unwrap();
        assert!(p.items.len() <= 2);
        paged.extend(p.items.into_iter().map(|r| r.id));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(page < 5, "the cursor ends");
    }
    assert_eq!(paged, newest_first, "pages cover every run once, newest first");

    let running_only = RunFilter { status: Some(RunStatus::Running), limit: 10, ..Default::default() };
    let running = s.list_runs(&running_only).await.unwrap();
    assert_eq!(
        running.items.iter().map(|r| (r.id.clone(), r.status)).collect::<Vec<_>>(),
        [(ids[1].id.clone(), RunStatus::Running)]
    );
    let by_schedule =
        s.list_runs(&RunFilter { schedule_id: Some(schedule), limit: 10, ..Default::default() }).await.unwrap();
    let want: Vec<RunId> = [4, 2, 0].iter().map(|&i| ids[i].id.clone()).collect();
    assert_eq!(by_schedule.items.into_iter().map(|r| r.id).collect::<Vec<_>>(), want);
    let by_session =
        s.list_runs(&RunFilter { session_id: Some(session), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(by_session.items.into_iter().map(|r| r.id).collect::<Vec<_>>(), [ids[3].id.clone()]);
    let none =
        s.list_runs(&RunFilter { status: Some(RunStatus::Cancelled), limit: 10, ..Default::default() }).await.unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());

    let bad = s.list_runs(&RunFilter { limit: 10, cursor: Some("not a cursor".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)), "{bad:?}");
}

pub async fn a_claim_owns_a_run_under_a_lease(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let (a, b, c) = (AttemptId::new(t), AttemptId::new(t), AttemptId::new(t));
    let missing = RunId::new(t);
    assert_eq!(s.claim_run(&missing, &a, t, t + TimeDelta::seconds(60)).await.unwrap(), RunClaim::NotFound);

    let run = created(&*s, run_at(t)).await;
    let until = t + TimeDelta::seconds(60);
    let RunClaim::Claimed(mine) = s.claim_run(&run.id, &a, t, until).await.unwrap() else { panic!("claimed") };
    assert_eq!(mine.status, RunStatus::Running);
    assert_eq!(mine.lease.as_ref().map(|l| (&l.attempt, l.until)), Some((&a, until)));
    assert_eq!(s.get_run(&run.id).await.unwrap(), Some(mine.clone()), "the claim is stored");

    // Another attempt while the lease is live: busy until its end, and nothing changes.
    let later = t + TimeDelta::seconds(30);
    let busy = s.claim_run(&run.id, &b, later, later + TimeDelta::seconds(60)).await.unwrap();
    assert_eq!(busy, RunClaim::Busy { until });
    assert_eq!(s.get_run(&run.id).await.unwrap(), Some(mine));
    // The owner renews.
    let renewed = later + TimeDelta::seconds(60);
    let RunClaim::Claimed(r) = s.claim_run(&run.id, &a, later, renewed).await.unwrap() else { panic!("renewed") };
    assert_eq!(r.lease.map(|l| l.until), Some(renewed));

    // Once the lease has lapsed, another attempt takes the run; the first owns nothing now.
    let lapsed = renewed + TimeDelta::milliseconds(1);
    let RunClaim::Claimed(theirs) = s.claim_run(&run.id, &b, lapsed, lapsed + TimeDelta::seconds(60)).await.unwrap()
    else {
        panic!("a lapsed lease is taken over");
    };
    assert_eq!(theirs.lease.as_ref().map(|l| &l.attempt), Some(&b));
    let step = model_step(0, lapsed);
    let stale = s.append_step(&progressed(&theirs, &step), &step, &a).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");

    // A final run is finished for everyone.
    let mut done = theirs.clone();
    done.status = RunStatus::Completed;
    done.answer = Some("Booked 8:40 for four.".into());
    done.finished_at = Some(lapsed);
    s.update_run(&done, &b).await.unwrap();
    let RunClaim::Finished(f) = s.claim_run(&run.id, &c, lapsed, lapsed + TimeDelta::seconds(60)).await.unwrap() else {
        panic!("a final run is finished");
    };
    assert_eq!((f.status, f.lease, f.answer.as_deref()), (RunStatus::Completed, None, Some("Booked 8:40 for four.")));
}

pub async fn steps_are_stored_in_order_by_the_owner(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = created(&*s, run_at(t)).await;
    let step0 = model_step(0, t);
    let outsider = AttemptId::new(t);
    let unclaimed = s.append_step(&progressed(&run, &step0), &step0, &outsider).await;
    assert!(matches!(unclaimed, Err(StoreError::Conflict(_))), "a run nobody claimed takes no step: {unclaimed:?}");

    let (run, a) = claimed(&*s, &run, t).await;
    let gap = model_step(1, t);
    let r = s.append_step(&progressed(&run, &gap), &gap, &a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a gap: {r:?}");
    assert!(s.steps(&run.id).await.unwrap().is_empty());

    let run1 = progressed(&run, &step0);
    s.append_step(&run1, &step0, &a).await.unwrap();
    let stored = s.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.steps, stored.turns, stored.usage, stored.cost),
        (1, 1, usage(1_200, 85), Nanodollars(4_882_000))
    );
    assert_eq!(stored.status, RunStatus::Running);
    let again = s.append_step(&run1, &step0, &a).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "an existing index: {again:?}");

    // A write by an attempt that does not own the run changes nothing.
    let step1 = tool_step(&run.id, 1, t);
    let r = s.append_step(&progressed(&run1, &step1), &step1, &outsider).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "not the owner: {r:?}");
    assert_eq!(s.get_run(&run.id).await.unwrap().unwrap(), stored);
    assert_eq!(s.steps(&run.id).await.unwrap(), vec![step0.clone()]);

    let run2 = progressed(&run1, &step1);
    s.append_step(&run2, &step1, &a).await.unwrap();
    let step2 = model_step(2, t + TimeDelta::milliseconds(3));
    s.append_step(&progressed(&run2, &step2), &step2, &a).await.unwrap();
    assert_eq!(s.steps(&run.id).await.unwrap(), vec![step0, step1, step2], "in order, every field round-tripped");
    let stored = s.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!((stored.steps, stored.turns), (3, 2));
    assert_eq!(stored.cost, Nanodollars(2 * 4_882_000));
    assert!(s.steps(&RunId::new(t)).await.unwrap().is_empty(), "an unknown run has no steps");
}

pub async fn a_tool_call_outcome_is_recorded_once(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = created(&*s, run_at(t)).await;
    let (run, a) = claimed(&*s, &run, t).await;
    let step0 = model_step(0, t);
    let run1 = progressed(&run, &step0);
    s.append_step(&run1, &step0, &a).await.unwrap();
    let step1 = tool_step(&run.id, 1, t);
    s.append_step(&progressed(&run1, &step1), &step1, &a).await.unwrap();

    let done = outcome(t);
    let r = s.finish_tool_call(&run.id, 1, &done, &AttemptId::new(t)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "not the owner: {r:?}");
    let r = s.finish_tool_call(&run.id, 0, &done, &a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a model turn has no outcome: {r:?}");
    assert!(s.finish_tool_call(&run.id, 5, &done, &a).await.is_err(), "no such step");
    assert_eq!(s.steps(&run.id).await.unwrap()[1], step1, "nothing changed");

    s.finish_tool_call(&run.id, 1, &done, &a).await.unwrap();
    let mut other = done.clone();
    other.text = "a second outcome".into();
    let r = s.finish_tool_call(&run.id, 1, &other, &a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "an outcome is set once: {r:?}");
    let steps = s.steps(&run.id).await.unwrap();
    let StepKind::ToolCall(call) = &steps[1].kind else { panic!("a tool call") };
    assert_eq!(call.outcome.as_ref(), Some(&done), "the first outcome stays, every field round-tripped");
    assert_eq!(steps[0], step0);
}

pub async fn update_run_writes_the_run_s_own_fields(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = created(&*s, run_at(t)).await;
    let (run, a) = claimed(&*s, &run, t).await;
    let step0 = model_step(0, t);
    s.append_step(&progressed(&run, &step0), &step0, &a).await.unwrap();

    // A stale copy of the run (before the step, before the cancel request) may change
    // only the run's own fields: progress and the cancel request are kept.
    let asked = s.request_cancel(&run.id, t).await.unwrap().unwrap();
    assert!(asked.cancel_requested);
    let mut next = run.clone();
    next.error = Some("the model said 529 twice".into());
    next.lease = Some(rez_core::agent::run::RunLease { attempt: a.clone(), until: t + TimeDelta::seconds(120) });
    next.updated_at = t + TimeDelta::seconds(1);
    s.update_run(&next, &a).await.unwrap();
    let stored = s.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(stored.error.as_deref(), Some("the model said 529 twice"));
    assert_eq!(stored.lease.as_ref().map(|l| l.until), Some(t + TimeDelta::seconds(120)), "the lease is renewed");
    assert_eq!((stored.steps, stored.turns, stored.cost), (1, 1, Nanodollars(4_882_000)), "progress is kept");
    assert!(stored.cancel_requested, "a cancel request is kept");

    let outsider = AttemptId::new(t);
    let mut hijack = stored.clone();
    hijack.status = RunStatus::Failed;
    let r = s.update_run(&hijack, &outsider).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(s.get_run(&run.id).await.unwrap().unwrap(), stored, "nothing changed");

    let mut end = stored.clone();
    end.status = RunStatus::Cancelled;
    end.answer = Some("Stopped as asked.".into());
    end.finished_at = Some(t + TimeDelta::seconds(2));
    end.updated_at = t + TimeDelta::seconds(2);
    s.update_run(&end, &a).await.unwrap();
    let ended = s.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Cancelled);
    assert_eq!(ended.lease, None, "ending a run clears its lease");
    assert_eq!(ended.finished_at, Some(t + TimeDelta::seconds(2)));
    assert_eq!(ended.answer.as_deref(), Some("Stopped as asked."));
    // Its former owner can write nothing more.
    let r = s.update_run(&end, &a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let step1 = model_step(1, t);
    let r = s.append_step(&progressed(&ended, &step1), &step1, &a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = s.update_run(&run_at(t), &a).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "an unknown run: {r:?}");
}

pub async fn a_cancel_ends_a_queued_run_and_flags_a_running_one(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    assert_eq!(s.request_cancel(&RunId::new(t), t).await.unwrap(), None);

    let queued = created(&*s, run_at(t)).await;
    let at = t + TimeDelta::seconds(5);
    let cancelled = s.request_cancel(&queued.id, at).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.finished_at, cancelled.lease.clone()),
        (RunStatus::Cancelled, Some(at), None)
    );
    assert_eq!(s.get_run(&queued.id).await.unwrap(), Some(cancelled.clone()));
    assert!(matches!(
        s.claim_run(&queued.id, &AttemptId::new(t), at, at + TimeDelta::seconds(60)).await.unwrap(),
        RunClaim::Finished(_)
    ));
    // A final run is left as it is.
    assert_eq!(s.request_cancel(&queued.id, at + TimeDelta::seconds(5)).await.unwrap(), Some(cancelled.clone()));
    assert_eq!(s.get_run(&queued.id).await.unwrap(), Some(cancelled));

    let running = created(&*s, run_at(t)).await;
    let (_, a) = claimed(&*s, &running, t).await;
    let flagged = s.request_cancel(&running.id, at).await.unwrap().unwrap();
    assert_eq!((flagged.status, flagged.cancel_requested, flagged.finished_at), (RunStatus::Running, true, None));
    assert_eq!(flagged.lease.as_ref().map(|l| &l.attempt), Some(&a), "the owner keeps the run until it stops");
    assert_eq!(s.get_run(&running.id).await.unwrap(), Some(flagged));
}

/// Two attempts claiming one run at the same moment, 50 times: exactly one owns it.
pub async fn one_of_two_concurrent_claims_wins(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    for round in 0..50 {
        let t = now();
        let run = created(&*s, run_at(t)).await;
        let contenders: Vec<_> = (0..2)
            .map(|_| {
                let (s, id, attempt) = (Arc::clone(&s), run.id.clone(), AttemptId::new(t));
                tokio::spawn(async move { s.claim_run(&id, &attempt, t, t + TimeDelta::seconds(60)).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for c in contenders {
            outcomes.push(c.await.expect("join").expect("claim_run"));
        }
        let winners: Vec<_> =
            outcomes.iter().filter_map(|o| if let RunClaim::Claimed(r) = o { Some(r) } else { None }).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let until = winners[0].lease.as_ref().expect("a lease").until;
        assert!(outcomes.contains(&RunClaim::Busy { until }), "round {round}: {outcomes:?}");
        let stored = s.get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(stored.lease, winners[0].lease, "round {round}: the winner's lease is stored");
    }
}

/// The same step stored twice at once (a duplicated worker), and a lapsed owner racing
/// the attempt that takes the run over: exactly one step is stored each time.
pub async fn one_of_two_concurrent_appends_wins(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    for round in 0..20 {
        let t = now();
        let run = created(&*s, run_at(t)).await;
        let (run, a) = claimed(&*s, &run, t).await;
        let step = model_step(0, t);
        let next = progressed(&run, &step);
        let twice: Vec<_> = (0..2)
            .map(|_| {
                let (s, next, step, a) = (Arc::clone(&s), next.clone(), step.clone(), a.clone());
                tokio::spawn(async move { s.append_step(&next, &step, &a).await })
            })
            .collect();
        let mut ok = 0;
        for w in twice {
            match w.await.expect("join") {
                Ok(()) => ok += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: the same step twice at once");
        assert_eq!(s.steps(&run.id).await.unwrap().len(), 1);

        // The lease has lapsed: the old owner appends step 1 while another attempt
        // takes the run over and appends its own step 1.
        let lapsed = t + TimeDelta::seconds(61);
        let old = {
            let (s, step) = (Arc::clone(&s), tool_step(&run.id, 1, t));
            let (next, a) = (progressed(&next, &step), a.clone());
            tokio::spawn(async move { s.append_step(&next, &step, &a).await })
        };
        let new = {
            let (s, id, b, next) = (Arc::clone(&s), run.id.clone(), AttemptId::new(t), next.clone());
            tokio::spawn(async move {
                let RunClaim::Claimed(_) = s.claim_run(&id, &b, lapsed, lapsed + TimeDelta::seconds(60)).await? else {
                    return Err(StoreError::Conflict("not claimed".into()));
                };
                let step = model_step(1, lapsed);
                s.append_step(&progressed(&next, &step), &step, &b).await
            })
        };
        let (old, new) = (old.await.expect("join"), new.await.expect("join"));
        assert_eq!(usize::from(old.is_ok()) + usize::from(new.is_ok()), 1, "round {round}: {old:?} {new:?}");
        for r in [&old, &new] {
            assert!(matches!(r, Ok(()) | Err(StoreError::Conflict(_))), "round {round}: {r:?}");
        }
        let steps = s.steps(&run.id).await.unwrap();
        assert_eq!(steps.len(), 2, "round {round}");
        assert_eq!(s.get_run(&run.id).await.unwrap().unwrap().steps, 2, "round {round}");
    }
}

pub async fn chat_sessions_keep_exchanges_in_order_once_per_run(s: Arc<dyn AgentStore>, _: Arc<dyn BudgetLedger>) {
    let t = now();
    let id = ChatSessionId::new(t);
    assert_eq!(s.get_session(&id).await.unwrap(), None);
    let ex = |i: i64, user: &str, assistant: &str| ChatExchange {
        run_id: RunId::new(t + TimeDelta::milliseconds(i)),
        user: user.into(),
        assistant: assistant.into(),
        at: t + TimeDelta::seconds(i),
    };
    let first = ex(0, "Is Saturday dry at Birdsfoot?", "Yes: dry, wind 8 mph.");
    let second = ex(1, "Then book 8:40 for four.", "Booked 8:40 for four, confirmation CONF-77.");
    let one = s.append_exchange(&id, &first).await.unwrap();
    assert_eq!((&one.id, one.created_at, one.updated_at), (&id, first.at, first.at));
    assert_eq!(one.exchanges, vec![first.clone()]);
    let two = s.append_exchange(&id, &second).await.unwrap();
    assert_eq!(two.exchanges, vec![first.clone(), second.clone()], "oldest first");
    assert_eq!((two.created_at, two.updated_at), (first.at, second.at));
    // The same run's exchange again (a redelivered chat turn) is not added twice.
    let mut repeated = first.clone();
    repeated.assistant = "a second answer of the same run".into();
    let again = s.append_exchange(&id, &repeated).await.unwrap();
    assert_eq!(again, two);
    assert_eq!(s.get_session(&id).await.unwrap(), Some(two));
    // Sessions are apart.
    let other = ChatSessionId::new(t);
    let third = ex(2, "Hello", "Hi.");
    assert_eq!(s.append_exchange(&other, &third).await.unwrap().exchanges, vec![third]);
    assert_eq!(s.get_session(&id).await.unwrap().unwrap().exchanges.len(), 2);
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).expect("a date")
}

fn reservation(
    run: &RunId,
    step: u32,
    on: NaiveDate,
    amount: u64,
    day_cap: Option<u64>,
    run_cap: Option<u64>,
) -> BudgetReservation {
    BudgetReservation {
        run: run.clone(),
        step,
        day: on,
        model: "claude-sonnet-4-5".into(),
        amount: Nanodollars(amount),
        day_cap: day_cap.map(Nanodollars),
        run_cap: run_cap.map(Nanodollars),
    }
}

fn committed(c: u64, spent: u64) -> DayBudget {
    DayBudget { committed: Nanodollars(c), spent: Nanodollars(spent) }
}

pub async fn reservations_count_once_within_their_caps(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    let t = now();
    let (r1, r2) = (RunId::new(t), RunId::new(t));
    let d = day(1);
    assert_eq!(b.day(d).await.unwrap(), DayBudget::default());
    let cap = Some(10_000);
    assert_eq!(b.reserve(&reservation(&r1, 0, d, 4_000, cap, None)).await.unwrap(), Reserved::Granted);
    assert_eq!(b.reserve(&reservation(&r1, 0, d, 4_000, cap, None)).await.unwrap(), Reserved::Granted, "the same step");
    assert_eq!(b.day(d).await.unwrap(), committed(4_000, 0), "counted once");
    assert_eq!(b.reserve(&reservation(&r2, 0, d, 6_000, cap, None)).await.unwrap(), Reserved::Granted, "up to the cap");
    assert_eq!(
        b.reserve(&reservation(&r2, 1, d, 1, cap, None)).await.unwrap(),
        Reserved::DayExceeded { committed: Nanodollars(10_000), cap: Nanodollars(10_000) }
    );
    assert_eq!(b.day(d).await.unwrap(), committed(10_000, 0), "a refusal commits nothing");
    // Another day is apart.
    assert_eq!(b.reserve(&reservation(&r2, 1, day(2), 9_000, cap, None)).await.unwrap(), Reserved::Granted);
    assert_eq!(b.day(day(2)).await.unwrap(), committed(9_000, 0));
    assert_eq!(b.day(d).await.unwrap(), committed(10_000, 0));

    // The run's cap counts the run's reservations over every day.
    let r3 = RunId::new(t);
    let d3 = day(3);
    assert_eq!(b.reserve(&reservation(&r3, 0, d3, 3_000, None, Some(5_000))).await.unwrap(), Reserved::Granted);
    assert_eq!(
        b.reserve(&reservation(&r3, 1, d3, 2_001, None, Some(5_000))).await.unwrap(),
        Reserved::RunExceeded { committed: Nanodollars(3_000), cap: Nanodollars(5_000) }
    );
    assert_eq!(b.reserve(&reservation(&r3, 1, day(4), 2_000, None, Some(5_000))).await.unwrap(), Reserved::Granted);
    assert_eq!(
        b.reserve(&reservation(&r3, 2, day(4), 1, Some(1_000_000), Some(5_000))).await.unwrap(),
        Reserved::RunExceeded { committed: Nanodollars(5_000), cap: Nanodollars(5_000) }
    );
    assert_eq!((b.day(d3).await.unwrap(), b.day(day(4)).await.unwrap()), (committed(3_000, 0), committed(2_000, 0)));

    // Without caps, everything is granted.
    let r4 = RunId::new(t);
    let huge = 1_000_000_000_000_000;
    assert_eq!(b.reserve(&reservation(&r4, 0, day(5), huge, None, None)).await.unwrap(), Reserved::Granted);
    assert_eq!(b.reserve(&reservation(&r4, 1, day(5), huge, None, None)).await.unwrap(), Reserved::Granted);
    assert_eq!(b.day(day(5)).await.unwrap(), committed(2 * huge, 0));
}

pub async fn settling_replaces_a_reservation_by_its_cost(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = RunId::new(t);
    let d = day(10);
    let first = reservation(&run, 0, d, 5_000, Some(12_000), Some(9_000));
    let second = reservation(&run, 2, d, 4_000, Some(12_000), Some(9_000));
    assert_eq!(b.reserve(&first).await.unwrap(), Reserved::Granted);
    assert_eq!(b.reserve(&second).await.unwrap(), Reserved::Granted);
    assert_eq!(b.day(d).await.unwrap(), committed(9_000, 0));
    let unknown = reservation(&run, 1, d, 5_000, None, None);
    let r = b.settle(&unknown, Nanodollars(1), &usage(1, 1)).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "a reservation never made: {r:?}");
    assert_eq!(b.day(d).await.unwrap(), committed(9_000, 0));

    b.settle(&first, Nanodollars(1_250), &usage(300, 20)).await.unwrap();
    assert_eq!(b.day(d).await.unwrap(), committed(5_250, 1_250), "committed down by 3,750, spent up by 1,250");
    b.settle(&first, Nanodollars(1_250), &usage(300, 20)).await.unwrap();
    b.settle(&first, Nanodollars(4_999), &usage(999, 99)).await.unwrap();
    assert_eq!(b.day(d).await.unwrap(), committed(5_250, 1_250), "settling again changes nothing");
    // The run's room came back too: 1,250 settled + 4,000 open leaves 3,750 of its 9,000.
    assert_eq!(
        b.reserve(&reservation(&run, 3, d, 3_751, Some(12_000), Some(9_000))).await.unwrap(),
        Reserved::RunExceeded { committed: Nanodollars(5_250), cap: Nanodollars(9_000) }
    );
    assert_eq!(b.reserve(&reservation(&run, 3, d, 3_750, Some(12_000), Some(9_000))).await.unwrap(), Reserved::Granted);
    b.settle(&second, Nanodollars(4_000), &usage(900, 60)).await.unwrap();
    assert_eq!(b.day(d).await.unwrap(), committed(9_000, 5_250));

    // A granted step reserved again after settling stays granted and counts nothing.
    assert_eq!(b.reserve(&first).await.unwrap(), Reserved::Granted);
    assert_eq!(b.day(d).await.unwrap(), committed(9_000, 5_250));
}

pub async fn spend_is_kept_per_day_and_model(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = RunId::new(t);
    let settle = |step: u32, on: NaiveDate, model: &str, actual: u64, u: Usage| {
        let mut r = reservation(&run, step, on, 10_000, None, None);
        r.model = model.into();
        let b = Arc::clone(&b);
        async move {
            assert_eq!(b.reserve(&r).await.unwrap(), Reserved::Granted);
            b.settle(&r, Nanodollars(actual), &u).await.unwrap();
        }
    };
    settle(0, day(20), "claude-sonnet-4-5", 1_000, usage(100, 10)).await;
    settle(1, day(20), "claude-sonnet-4-5", 2_000, usage(200, 20)).await;
    settle(2, day(20), "gpt-4o-mini", 300, usage(30, 3)).await;
    settle(3, day(21), "claude-sonnet-4-5", 4_000, usage(400, 40)).await;
    settle(4, day(23), "claude-sonnet-4-5", 5_000, usage(500, 50)).await;
    // A reservation not settled yet is not spend.
    let open = reservation(&run, 5, day(21), 7_000, None, None);
    assert_eq!(b.reserve(&open).await.unwrap(), Reserved::Granted);

    let spend = b.spend(day(20), day(22)).await.unwrap();
    let rows: Vec<_> = spend.iter().map(|m| (m.day, m.model.as_str(), m.calls, m.usage, m.cost.0)).collect();
    let both = |a: Usage, c: Usage| {
        let mut u = a;
        u.add(&c);
        u
    };
    assert_eq!(
        rows,
        vec![
            (day(20), "claude-sonnet-4-5", 2, both(usage(100, 10), usage(200, 20)), 3_000),
            (day(20), "gpt-4o-mini", 1, usage(30, 3), 300),
            (day(21), "claude-sonnet-4-5", 1, usage(400, 40), 4_000),
        ]
    );
    assert_eq!(b.spend(day(23), day(23)).await.unwrap().len(), 1);
    assert!(b.spend(day(24), day(30)).await.unwrap().is_empty());
    assert_eq!(b.day(day(20)).await.unwrap(), committed(3_300, 3_300));
    assert_eq!(b.day(day(21)).await.unwrap(), committed(11_000, 4_000));
}

/// A small deterministic generator (xorshift64*), so the model check below is the same
/// sequence on every adapter and every run.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// 300 reservations and settlements drawn at random over four runs and two days, each
/// answer and each day's figures compared with a plain model of the rules after every
/// operation, then the spend per model.
pub async fn the_ledger_matches_a_model_of_its_rules(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    use std::collections::BTreeMap;
    let t = now();
    let runs: Vec<RunId> = (0..4).map(|_| RunId::new(t)).collect();
    let days = [day(25), day(26)];
    let (day_cap, run_cap) = (40_000u64, 25_000u64);
    // (run, step) → (day, amount, actual once settled)
    let mut made: BTreeMap<(usize, u32), (usize, u64, Option<u64>)> = BTreeMap::new();
    let day_committed = |made: &BTreeMap<(usize, u32), (usize, u64, Option<u64>)>, d: usize| -> (u64, u64) {
        made.values().filter(|(on, ..)| *on == d).fold((0, 0), |(c, s), (_, amount, actual)| match actual {
            Some(a) => (c + a, s + a),
            None => (c + amount, s),
        })
    };
    let run_committed = |made: &BTreeMap<(usize, u32), (usize, u64, Option<u64>)>, r: usize| -> u64 {
        made.iter().filter(|((run, _), _)| *run == r).map(|(_, (_, amount, actual))| actual.unwrap_or(*amount)).sum()
    };
    let mut draw = Draw(0x9E37_79B9_7F4A_7C15);
    // How often each rule decided: the sequence must exercise every one.
    let mut seen = [0u32; 5]; // granted, again, over the day, over the run, settled
    for op in 0..300 {
        let open: Vec<(usize, u32)> = made.iter().filter(|(_, v)| v.2.is_none()).map(|(k, _)| *k).collect();
        if !open.is_empty() && draw.below(3) == 0 {
            let key = open[usize::try_from(draw.below(open.len() as u64)).expect("small")];
            let (d, amount, _) = made[&key];
            let actual = draw.below(amount + 1);
            let r = reservation(&runs[key.0], key.1, days[d], amount, Some(day_cap), Some(run_cap));
            b.settle(&r, Nanodollars(actual), &usage(actual / 10, 1)).await.expect("settle");
            made.insert(key, (d, amount, Some(actual)));
            seen[4] += 1;
        } else {
            let (run, step) =
                (usize::try_from(draw.below(4)).expect("small"), u32::try_from(draw.below(12)).expect("small"));
            let d = usize::try_from(draw.below(2)).expect("small");
            let amount = 1 + draw.below(12_000);
            let r = reservation(&runs[run], step, days[d], amount, Some(day_cap), Some(run_cap));
            let got = b.reserve(&r).await.expect("reserve");
            let (day_now, _) = day_committed(&made, d);
            let run_now = run_committed(&made, run);
            let over_day = day_now + amount > day_cap;
            let over_run = run_now + amount > run_cap;
            let day_refusal = Reserved::DayExceeded { committed: Nanodollars(day_now), cap: Nanodollars(day_cap) };
            let run_refusal = Reserved::RunExceeded { committed: Nanodollars(run_now), cap: Nanodollars(run_cap) };
            let reserved_before = made.contains_key(&(run, step));
            if reserved_before {
                assert_eq!(got, Reserved::Granted, "op {op}: the same step again");
                seen[1] += 1;
            } else if over_day && over_run {
                assert!(got == day_refusal || got == run_refusal, "op {op}: {got:?}");
                seen[2] += 1;
            } else if over_day {
                assert_eq!(got, day_refusal, "op {op}");
                seen[2] += 1;
            } else if over_run {
                assert_eq!(got, run_refusal, "op {op}");
                seen[3] += 1;
            } else {
                assert_eq!(got, Reserved::Granted, "op {op}");
                made.insert((run, step), (d, amount, None));
                seen[0] += 1;
            }
        }
        for (d, on) in days.iter().enumerate() {
            let (c, spent) = day_committed(&made, d);
            assert_eq!(b.day(*on).await.unwrap(), committed(c, spent), "op {op}, day {on}");
            assert!(c <= day_cap, "op {op}: the model itself never passes the cap");
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "every rule decided at least once: {seen:?}");
    let spend = b.spend(days[0], days[1]).await.unwrap();
    for (d, on) in days.iter().enumerate() {
        let settled: Vec<u64> = made.values().filter(|(x, ..)| *x == d).filter_map(|v| v.2).collect();
        let row = spend.iter().find(|m| m.day == *on);
        match row {
            Some(m) => {
                assert_eq!((m.calls, m.cost.0), (settled.len() as u64, settled.iter().sum::<u64>()), "{on}");
                assert_eq!(m.usage.input_tokens, settled.iter().map(|a| a / 10).sum::<u64>(), "{on}");
            }
            None => assert!(settled.is_empty(), "{on}: spend of settled calls is missing"),
        }
    }
}

/// The race the budget exists for: 20 runs reserve at once against a day's cap that fits
/// exactly 5 calls. Exactly 5 are granted, the day never commits past its cap, and once
/// settled below their reservations the spend is the sum of the actual costs.
pub async fn concurrent_reservations_never_pass_the_day_cap(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    let t = now();
    let d = day(15);
    let (amount, cap) = (1_000_000u64, 5_000_000u64);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let b = Arc::clone(&b);
            let r = reservation(&RunId::new(t), 0, d, amount, Some(cap), Some(10 * amount));
            tokio::spawn(async move {
                let out = b.reserve(&r).await.expect("reserve");
                (r, out)
            })
        })
        .collect();
    let mut granted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (r, out) = task.await.expect("join");
        match out {
            Reserved::Granted => granted.push(r),
            Reserved::DayExceeded { committed, cap: c } => {
                assert_eq!(c, Nanodollars(cap));
                assert!(committed.0 + amount > cap && committed.0 <= cap, "{committed:?}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((granted.len(), refused), (5, 15));
    assert_eq!(b.day(d).await.unwrap(), committed(cap, 0), "committed to the cap exactly, never past it");

    let settles: Vec<_> = granted
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (b, r) = (Arc::clone(&b), r.clone());
            let actual = 400_000 + 1_000 * i as u64;
            tokio::spawn(async move {
                b.settle(&r, Nanodollars(actual), &usage(100, 10)).await.expect("settle");
                actual
            })
        })
        .collect();
    let mut actuals = 0;
    for s in settles {
        actuals += s.await.expect("join");
    }
    let after = b.day(d).await.unwrap();
    assert_eq!(after, committed(actuals, actuals));
    assert!(after.spent.0 <= cap);
    let per_model = b.spend(d, d).await.unwrap();
    assert_eq!((per_model.len(), per_model[0].calls, per_model[0].cost.0), (1, 5, actuals));
}

/// Parallel steps of one run reserving at once against its cap: the run never commits
/// past it.
pub async fn concurrent_reservations_never_pass_a_run_cap(_: Arc<dyn AgentStore>, b: Arc<dyn BudgetLedger>) {
    let t = now();
    let run = RunId::new(t);
    let (amount, cap) = (700u64, 2_100u64);
    let tasks: Vec<_> = (0..10)
        .map(|step| {
            let b = Arc::clone(&b);
            let r = reservation(&run, step, day(16), amount, Some(1_000_000), Some(cap));
            tokio::spawn(async move { b.reserve(&r).await.expect("reserve") })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.expect("join") {
            Reserved::Granted => granted += 1,
            Reserved::RunExceeded { committed, cap: c } => {
                assert_eq!(c, Nanodollars(cap));
                assert!(committed.0 + amount > cap && committed.0 <= cap, "{committed:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(granted, 3);
    assert_eq!(b.day(day(16)).await.unwrap(), committed(cap, 0));
}

/// Expand the agent suite for one adapter: `agent_port_suite!(MyFixture);` where
/// `MyFixture: AgentFixture + Default`.
#[macro_export]
macro_rules! agent_port_suite {
    ($fixture:ty) => {
        $crate::agent_port_suite!(@tests $fixture;
            runs_are_created_once, runs_list_newest_first_with_filters_and_a_cursor,
            a_claim_owns_a_run_under_a_lease, steps_are_stored_in_order_by_the_owner,
            a_tool_call_outcome_is_recorded_once, update_run_writes_the_run_s_own_fields,
            a_cancel_ends_a_queued_run_and_flags_a_running_one, one_of_two_concurrent_claims_wins,
            one_of_two_concurrent_appends_wins, chat_sessions_keep_exchanges_in_order_once_per_run,
            reservations_count_once_within_their_caps, settling_replaces_a_reservation_by_its_cost,
            spend_is_kept_per_day_and_model, the_ledger_matches_a_model_of_its_rules,
            concurrent_reservations_never_pass_the_day_cap,
            concurrent_reservations_never_pass_a_run_cap);
    };
    (@tests $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = <$fixture as ::core::default::Default>::default();
                let (runs, budget) = $crate::agent::AgentFixture::fresh_agent(&fixture).await;
                $crate::agent::$name(runs, budget).await;
            }
        )*
    };
}
