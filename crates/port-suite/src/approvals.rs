//! The conformance suite of `ApprovalStore`: approvals are created once per (run, step),
//! decided once — by the token of the decision, or by a principal — never after their
//! expiry, and of two decisions at once exactly one wins. Expand it with
//! `approval_port_suite!(MyFixture)` where `MyFixture: ApprovalFixture + Default`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use rez_core::agent::approval::{Approval, ApprovalFilter, ApprovalState, ApprovalStore, Decided, Decision, Proof};
use rez_core::agent::run::tool_call_key;
use rez_core::clock::{Clock, SystemClock};
use rez_core::id::{ApprovalId, RunId};
use rez_core::time::Timestamp;
use serde_json::json;

/// Builds a fresh, empty approval store of one adapter.
#[async_trait]
pub trait ApprovalFixture: Send + Sync {
    async fn fresh_approvals(&self) -> Arc<dyn ApprovalStore>;
}

fn now() -> Timestamp {
    let t = SystemClock.now();
    Utc.timestamp_millis_opt(t.timestamp_millis()).single().expect("a valid timestamp")
}

/// A pending approval of `run`'s booking at `step`, created at `at` (also for adapters'
/// own tests).
pub fn approval(run: &RunId, step: u32, at: Timestamp) -> Approval {
    Approval {
        id: ApprovalId::new(at),
        run_id: run.clone(),
        step,
        tool: "golf_book_tee_time".into(),
        arguments: json!({"course": "birdsfoot", "tee_sheet_id": 701, "players": 4}),
        idempotency_key: tool_call_key(run, step),
        summary: "Book Birdsfoot, Sat 13 Dec 08:10, 4 players".into(),
        state: ApprovalState::Pending,
        created_at: at,
        expires_at: at + TimeDelta::hours(2),
        decided_at: None,
        decided_by: None,
        approve_token_hash: String::new(),
        decline_token_hash: String::new(),
        asked_at: None,
    }
}

const APPROVE: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const DECLINE: &str = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2";

async fn asked(s: &dyn ApprovalStore, at: Timestamp) -> Approval {
    let run = RunId::new(at);
    let (a, _) = s.create_approval(&approval(&run, 3, at)).await.expect("create");
    s.record_ask(&a.id, APPROVE, DECLINE, at).await.expect("ask")
}

pub async fn approvals_are_created_once_per_step(s: Arc<dyn ApprovalStore>) {
    let t = now();
    let run = RunId::new(t);
    let first = approval(&run, 3, t);
    let (stored, created) = s.create_approval(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    let (again, created) = s.create_approval(&approval(&run, 3, t + TimeDelta::seconds(1))).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id, "the run's step has its approval already");
    assert_eq!(s.get_approval(&first.id).await.unwrap().unwrap(), first);
    assert_eq!(s.approval_for_step(&run, 3).await.unwrap().unwrap().id, first.id);
    assert!(s.approval_for_step(&run, 4).await.unwrap().is_none());
    assert!(s.get_approval(&ApprovalId::new(t)).await.unwrap().is_none());
}

pub async fn approvals_list_newest_first_with_filters(s: Arc<dyn ApprovalStore>) {
    let t = now();
    let run = RunId::new(t);
    let mut ids = vec![];
    for step in 0..5 {
        let (a, _) =
            s.create_approval(&approval(&run, step, t + TimeDelta::milliseconds(i64::from(step)))).await.unwrap();
        ids.push(a.id);
    }
    s.decide(&ids[0], Decision::Decline, &Proof::Principal("admin".into()), t).await.unwrap();
    let page = s.list_approvals(&ApprovalFilter { limit: 3, ..Default::default() }).await.unwrap();
    let got: Vec<&ApprovalId> = page.items.iter().map(|a| &a.id).collect();
    assert_eq!(got, [&ids[4], &ids[3], &ids[2]]);
    let rest = s
        .list_approvals(&ApprovalFilter { limit: 3, cursor: page.next_cursor.clone(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
    let pending = s
        .list_approvals(&ApprovalFilter { state: Some(ApprovalState::Pending), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 4);
    let bad = s.list_approvals(&ApprovalFilter { limit: 3, cursor: Some("nope".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(rez_core::ports::StoreError::InvalidCursor)));
}

pub async fn a_token_decides_only_its_own_decision_once(s: Arc<dyn ApprovalStore>) {
    let t = now();
    let a = asked(s.as_ref(), t).await;
    assert!(a.asked_at.is_some());
    let wrong = Proof::TokenHash("00".repeat(32));
    assert_eq!(s.decide(&a.id, Decision::Approve, &wrong, t).await.unwrap(), Decided::BadToken);
    let declines_token = Proof::TokenHash(DECLINE.into());
    assert_eq!(
        s.decide(&a.id, Decision::Approve, &declines_token, t).await.unwrap(),
        Decided::BadToken,
        "a token is bound to its decision"
    );
    let Decided::Now(done) = s.decide(&a.id, Decision::Approve, &Proof::TokenHash(APPROVE.into()), t).await.unwrap()
    else {
        panic!("the approve token decides");
    };
    assert_eq!((done.state, done.decided_by.as_deref()), (ApprovalState::Approved, Some("link")));
    match s.decide(&a.id, Decision::Approve, &Proof::TokenHash(APPROVE.into()), t).await.unwrap() {
        Decided::Already(x) => assert_eq!((x.state, x.decided_at), (ApprovalState::Approved, done.decided_at)),
        other => panic!("a token is single-use: {other:?}"),
    }
    match s.decide(&a.id, Decision::Decline, &declines_token, t).await.unwrap() {
        Decided::Already(x) => assert_eq!(x.state, ApprovalState::Approved, "the first decision wins"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.decide(&ApprovalId::new(t), Decision::Approve, &Proof::Principal("admin".into()), t).await.unwrap(),
        Decided::NotFound
    );
}

pub async fn nothing_is_decided_after_the_expiry(s: Arc<dyn ApprovalStore>) {
    let t = now();
    let a = asked(s.as_ref(), t).await;
    let late = a.expires_at + TimeDelta::seconds(1);
    match s.decide(&a.id, Decision::Approve, &Proof::TokenHash(APPROVE.into()), late).await.unwrap() {
        Decided::Already(x) => assert_eq!(x.state, ApprovalState::Expired),
        other => panic!("an expired approval is not decided: {other:?}"),
    }
    let b = asked(s.as_ref(), t).await;
    assert_eq!(s.expire(&b.id, t).await.unwrap().unwrap().state, ApprovalState::Pending, "not yet due");
    let expired = s.expire(&b.id, late).await.unwrap().unwrap();
    assert_eq!((expired.state, expired.decided_at), (ApprovalState::Expired, Some(b.expires_at)));
    assert!(matches!(
        s.decide(&b.id, Decision::Decline, &Proof::Principal("admin".into()), t).await.unwrap(),
        Decided::Already(_)
    ));
    assert!(s.record_ask(&b.id, APPROVE, DECLINE, t).await.is_err(), "a decided approval is not asked again");
}

pub async fn of_an_approve_and_a_decline_at_once_exactly_one_wins(s: Arc<dyn ApprovalStore>) {
    for _ in 0..50 {
        let t = now();
        let a = asked(s.as_ref(), t).await;
        let (s1, s2) = (s.clone(), s.clone());
        let (id1, id2) = (a.id.clone(), a.id.clone());
        let yes = tokio::spawn(async move {
            s1.decide(&id1, Decision::Approve, &Proof::TokenHash(APPROVE.into()), t).await.unwrap()
        });
        let no = tokio::spawn(async move {
            s2.decide(&id2, Decision::Decline, &Proof::TokenHash(DECLINE.into()), t).await.unwrap()
        });
        let outcomes = [yes.await.unwrap(), no.await.unwrap()];
        let won = outcomes.iter().filter(|o| matches!(o, Decided::Now(_))).count();
        assert_eq!(won, 1, "{outcomes:?}");
        let stored = s.get_approval(&a.id).await.unwrap().unwrap();
        let winner = outcomes.iter().find_map(|o| if let Decided::Now(x) = o { Some(x.state) } else { None });
        assert_eq!(Some(stored.state), winner);
    }
}

/// Expands one test per check for an adapter: `approval_port_suite!(MyFixture)`.
#[macro_export]
macro_rules! approval_port_suite {
    ($fixture:ty) => {
        $crate::approval_port_suite!(@tests $fixture;
            approvals_are_created_once_per_step, approvals_list_newest_first_with_filters,
            a_token_decides_only_its_own_decision_once, nothing_is_decided_after_the_expiry,
            of_an_approve_and_a_decline_at_once_exactly_one_wins);
    };
    (@tests $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = <$fixture as ::core::default::Default>::default();
                let store = $crate::approvals::ApprovalFixture::fresh_approvals(&fixture).await;
                $crate::approvals::$name(store).await;
            }
        )*
    };
}
