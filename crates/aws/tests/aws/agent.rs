//! The agent's run store and budget ledger on DynamoDB (moto), beyond the shared port
//! suite: races of two deliveries of one run, the cancellation flag surviving a worker's
//! writes, sessions spread over items, and parallel reservations against one day's cap.

use crate::common;

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use rez_core::agent::model::Usage;
use rez_core::agent::money::Nanodollars;
use rez_core::agent::run::{AgentRun, ChatExchange, RunStatus, StepKind, ToolOutcome};
use rez_core::agent::store::{AgentStore, BudgetLedger, BudgetReservation, Reserved, RunClaim, RunFilter};
use rez_core::clock::{Clock, SystemClock};
use rez_core::id::{AttemptId, ChatSessionId, RunId, ScheduleId};
use rez_core::ports::StoreError;
use rez_core::time::Timestamp;
use rez_port_suite::agent::{model_step, run_at, tool_step};

fn now() -> Timestamp {
    SystemClock.now()
}

fn outcome(text: &str) -> ToolOutcome {
    ToolOutcome { text: text.into(), structured: None, is_error: false, message_id: None, duration_ms: 2 }
}

async fn claimed(s: &impl AgentStore, run: &AgentRun, attempt: &AttemptId) -> AgentRun {
    match s.claim_run(&run.id, attempt, now(), now() + Duration::seconds(60)).await.unwrap() {
        RunClaim::Claimed(r) => r,
        other => panic!("not claimed: {other:?}"),
    }
}

/// `run` advanced by one step.
fn advanced(run: &AgentRun) -> AgentRun {
    let mut next = run.clone();
    next.steps += 1;
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_of_one_run_never_both_take_a_step() {
    let s = Arc::new(common::store().await);
    let run = run_at(now());
    assert!(s.create_run(&run).await.unwrap().1);
    assert!(!s.create_run(&run).await.unwrap().1, "a second create is the same run");

    let attempts: Vec<AttemptId> = (0..4).map(|_| AttemptId::new(now())).collect();
    let mut tasks = Vec::new();
    for a in attempts.clone() {
        let (s, id) = (s.clone(), run.id.clone());
        tasks.push(tokio::spawn(async move { s.claim_run(&id, &a, now(), now() + Duration::seconds(60)).await }));
    }
    let mut winners = Vec::new();
    for (t, a) in tasks.into_iter().zip(&attempts) {
        match t.await.unwrap().unwrap() {
            RunClaim::Claimed(r) => winners.push((a.clone(), r)),
            RunClaim::Busy { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one delivery owns the run");
    let (owner, stored) = winners.pop().unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    let loser = attempts.iter().find(|a| **a != owner).unwrap();

    // The loser's writes change nothing.
    let err = s.append_step(&advanced(&stored), &model_step(0, now()), loser).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(matches!(s.update_run(&stored, loser).await, Err(StoreError::Conflict(_))));
    assert!(s.steps(&run.id).await.unwrap().is_empty());

    // Two appends of one index by the owner: the second is refused.
    let one = advanced(&stored);
    s.append_step(&one, &model_step(0, now()), &owner).await.unwrap();
    assert!(matches!(s.append_step(&one, &model_step(0, now()), &owner).await, Err(StoreError::Conflict(_))));
    let two = advanced(&one);
    s.append_step(&two, &tool_step(&run.id, 1, now()), &owner).await.unwrap();

    // A tool outcome is stored once, only by the owner, only on a tool call.
    assert!(matches!(s.finish_tool_call(&run.id, 1, &outcome("x"), loser).await, Err(StoreError::Conflict(_))));
    s.finish_tool_call(&run.id, 1, &outcome("courses"), &owner).await.unwrap();
    assert!(matches!(s.finish_tool_call(&run.id, 1, &outcome("again"), &owner).await, Err(StoreError::Conflict(_))));
    assert!(matches!(s.finish_tool_call(&run.id, 0, &outcome("turn"), &owner).await, Err(StoreError::Conflict(_))));
    assert!(matches!(s.finish_tool_call(&run.id, 7, &outcome("none"), &owner).await, Err(StoreError::NotFound(_))));
    let steps = s.steps(&run.id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].index, &steps[0].kind), (0, &model_step(0, now()).kind));
    match &steps[1].kind {
        StepKind::ToolCall(c) => assert_eq!(c.outcome.as_ref().unwrap().text, "courses"),
        other => panic!("{other:?}"),
    }

    // Ending the run clears the lease; a later claim finds it finished.
    let mut done = two.clone();
    done.status = RunStatus::Completed;
    done.answer = Some("done".into());
    done.finished_at = Some(now());
    s.update_run(&done, &owner).await.unwrap();
    let stored = s.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.steps, stored.lease.clone()), (RunStatus::Completed, 2, None));
    assert!(matches!(s.claim_run(&run.id, loser, now(), now()).await.unwrap(), RunClaim::Finished(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_old_owner_is_locked_out() {
    let s = common::store().await;
    let run = run_at(now());
    s.create_run(&run).await.unwrap();
    let first = AttemptId::new(now());
    let t0 = now();
    let r = match s.claim_run(&run.id, &first, t0, t0 + Duration::seconds(5)).await.unwrap() {
        RunClaim::Claimed(r) => r,
        other => panic!("{other:?}"),
    };
    let second = AttemptId::new(now());
    match s.claim_run(&run.id, &second, t0 + Duration::seconds(1), t0 + Duration::seconds(60)).await.unwrap() {
        RunClaim::Busy { until } => {
            assert_eq!(until.timestamp_millis(), (t0 + Duration::seconds(5)).timestamp_millis())
        }
        other => panic!("{other:?}"),
    }
    // The first attempt claims again (a redelivery to the same worker): still its own.
    assert!(matches!(
        s.claim_run(&run.id, &first, t0 + Duration::seconds(2), t0 + Duration::seconds(5)).await.unwrap(),
        RunClaim::Claimed(_)
    ));
    let taken =
        match s.claim_run(&run.id, &second, t0 + Duration::seconds(6), t0 + Duration::seconds(60)).await.unwrap() {
            RunClaim::Claimed(r) => r,
            other => panic!("{other:?}"),
        };
    assert_eq!(taken.lease.as_ref().unwrap().attempt, second);
    assert!(matches!(s.append_step(&advanced(&r), &model_step(0, now()), &first).await, Err(StoreError::Conflict(_))));
    s.append_step(&advanced(&taken), &model_step(0, now()), &second).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_survives_the_workers_writes_and_ends_a_queued_run_at_once() {
    let s = common::store().await;
    let running = run_at(now());
    s.create_run(&running).await.unwrap();
    let me = AttemptId::new(now());
    let r = claimed(&s, &running, &me).await;
    let flagged = s.request_cancel(&running.id, now()).await.unwrap().unwrap();
    assert_eq!((flagged.status, flagged.cancel_requested), (RunStatus::Running, true));
    // The worker still holds its copy without the flag; its write does not clear it.
    s.append_step(&advanced(&r), &model_step(0, now()), &me).await.unwrap();
    s.update_run(&advanced(&r), &me).await.unwrap();
    assert!(s.get_run(&running.id).await.unwrap().unwrap().cancel_requested);

    let queued = run_at(now());
    s.create_run(&queued).await.unwrap();
    let at = now();
    let cancelled = s.request_cancel(&queued.id, at).await.unwrap().unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(s.get_run(&queued.id).await.unwrap().unwrap(), cancelled);
    assert!(matches!(s.claim_run(&queued.id, &me, now(), now()).await.unwrap(), RunClaim::Finished(_)));
    assert!(s.request_cancel(&RunId::new(now()), now()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_newest_first_across_shards_with_filters_and_cursors() {
    let s = common::store().await;
    let schedule = ScheduleId::new(now());
    let base = now() - Duration::minutes(10);
    let mut ids = Vec::new();
    for i in 0..13 {
        let mut run = run_at(base + Duration::seconds(i));
        if i % 3 == 0 {
            run.schedule_id = Some(schedule.clone());
        }
        s.create_run(&run).await.unwrap();
        ids.push(run.id.clone());
    }
    let me = AttemptId::new(now());
    let first = s.get_run(&ids[0]).await.unwrap().unwrap();
    claimed(&s, &first, &me).await;

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list_runs(&RunFilter { limit: 5, cursor: cursor.clone(), ..RunFilter::default() }).await.unwrap();
        assert!(page.items.len() <= 5);
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let by_schedule = s
        .list_runs(&RunFilter { schedule_id: Some(schedule), limit: 100, ..RunFilter::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(by_schedule.len(), 5);
    let running = s
        .list_runs(&RunFilter { status: Some(RunStatus::Running), limit: 100, ..RunFilter::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(running.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![ids[0].clone()]);
    let bad = s.list_runs(&RunFilter { limit: 5, cursor: Some("garbage".into()), ..RunFilter::default() }).await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_adds_each_runs_exchange_once_in_order() {
    let s = common::store().await;
    let id = ChatSessionId::new(now());
    assert!(s.get_session(&id).await.unwrap().is_none());
    let t0 = now();
    let first = ChatExchange { run_id: RunId::new(t0), user: "hi".into(), assistant: "hello".into(), at: t0 };
    let second = ChatExchange {
        run_id: RunId::new(t0 + Duration::seconds(1)),
        user: "and?".into(),
        assistant: "more".into(),
        at: t0 + Duration::seconds(1),
    };
    s.append_exchange(&id, &first).await.unwrap();
    s.append_exchange(&id, &second).await.unwrap();
    let again = s.append_exchange(&id, &first).await.unwrap();
    assert_eq!(again.exchanges, vec![first.clone(), second.clone()]);
    assert_eq!(again.created_at.timestamp_millis(), t0.timestamp_millis());
    assert_eq!(s.get_session(&id).await.unwrap().unwrap().exchanges.len(), 2);
}

fn reservation(run: &RunId, step: u32, day: NaiveDate, amount: u64, day_cap: Option<u64>) -> BudgetReservation {
    BudgetReservation {
        run: run.clone(),
        step,
        day,
        model: "claude-haiku-4-5".into(),
        amount: Nanodollars(amount),
        day_cap: day_cap.map(Nanodollars),
        run_cap: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reservations_never_commit_a_day_past_its_cap() {
    let s = Arc::new(common::store().await);
    let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    // The cap fits five calls of 1,000.
    let cap = 5_000;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        let r = reservation(&RunId::new(now()), 0, day, 1_000, Some(cap));
        tasks.push(tokio::spawn(async move { (s.reserve(&r).await.unwrap(), r) }));
    }
    let mut granted = Vec::new();
    for t in tasks {
        let (outcome, r) = t.await.unwrap();
        match outcome {
            Reserved::Granted => granted.push(r),
            Reserved::DayExceeded { committed, cap: c } => {
                assert_eq!(c, Nanodollars(cap));
                assert!(committed.0 + 1_000 > cap, "refused with room left: {committed:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(granted.len(), 5);
    assert_eq!(s.day(day).await.unwrap().committed, Nanodollars(cap));

    // The same step reserved again is the same reservation.
    assert_eq!(s.reserve(&granted[0]).await.unwrap(), Reserved::Granted);
    assert_eq!(s.day(day).await.unwrap().committed, Nanodollars(cap));

    // Settling frees what was not used, once.
    let usage = Usage { input_tokens: 100, output_tokens: 20, cache_read_tokens: 3, cache_write_tokens: 0 };
    s.settle(&granted[0], Nanodollars(400), &usage).await.unwrap();
    s.settle(&granted[0], Nanodollars(400), &usage).await.unwrap();
    let d = s.day(day).await.unwrap();
    assert_eq!((d.spent, d.committed), (Nanodollars(400), Nanodollars(4_400)));
    let spend = s.spend(day, day).await.unwrap();
    assert_eq!(spend.len(), 1);
    assert_eq!((spend[0].calls, spend[0].cost, spend[0].usage), (1, Nanodollars(400), usage));
    assert!(s.spend(day + Duration::days(1), day + Duration::days(7)).await.unwrap().is_empty());
    let unknown = reservation(&RunId::new(now()), 3, day, 1, None);
    assert!(matches!(s.settle(&unknown, Nanodollars(1), &usage).await, Err(StoreError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cap_and_an_amount_above_a_cap_are_refused() {
    let s = common::store().await;
    let day = NaiveDate::from_ymd_opt(2026, 5, 2).unwrap();
    let run = RunId::new(now());
    let mut r = reservation(&run, 0, day, 600, Some(1_000_000));
    r.run_cap = Some(Nanodollars(1_000));
    assert_eq!(s.reserve(&r).await.unwrap(), Reserved::Granted);
    r.step = 1;
    assert_eq!(
        s.reserve(&r).await.unwrap(),
        Reserved::RunExceeded { committed: Nanodollars(600), cap: Nanodollars(1_000) }
    );
    r.step = 2;
    r.amount = Nanodollars(2_000_000);
    assert_eq!(
        s.reserve(&r).await.unwrap(),
        Reserved::DayExceeded { committed: Nanodollars(600), cap: Nanodollars(1_000_000) }
    );
    // No cap at all: always granted.
    let free = reservation(&RunId::new(now()), 0, day, 9_000_000, None);
    assert_eq!(s.reserve(&free).await.unwrap(), Reserved::Granted);
    assert_eq!(s.day(day).await.unwrap().committed, Nanodollars(9_000_600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_awaiting_an_approval_is_claimed_again_or_cancelled_at_once() {
    let s = common::store().await;
    let park = |run: &AgentRun| {
        let mut parked = run.clone();
        parked.status = RunStatus::AwaitingApproval;
        parked.lease = None;
        parked
    };
    let run = run_at(now());
    s.create_run(&run).await.unwrap();
    let first = AttemptId::new(now());
    let r = claimed(&s, &run, &first).await;
    s.update_run(&park(&r), &first).await.unwrap();
    assert_eq!(s.get_run(&run.id).await.unwrap().unwrap().status, RunStatus::AwaitingApproval);
    // The decision's delivery takes the run again: an awaiting run has not ended.
    let second = AttemptId::new(now());
    let resumed = claimed(&s, &run, &second).await;
    assert_eq!((resumed.status, resumed.lease.map(|l| l.attempt)), (RunStatus::Running, Some(second)));

    let other = run_at(now());
    s.create_run(&other).await.unwrap();
    let r = claimed(&s, &other, &first).await;
    s.update_run(&park(&r), &first).await.unwrap();
    let cancelled = s.request_cancel(&other.id, now()).await.unwrap().unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled, "nobody holds it: it ends at once");
}
