//! The shared port suite against the SQLite adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::clock::SystemClock;
use rez_local::{LocalStore, QueueConfig};
use rez_port_suite::{Fixture, Store};

#[derive(Default)]
struct Sqlite;

fn fresh_store(direct_handoff: bool) -> Arc<LocalStore> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    // Keep the directory for the life of the test process.
    std::mem::forget(dir);
    let config = QueueConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        direct_handoff,
    };
    Arc::new(LocalStore::open(&path, Arc::new(SystemClock), config).expect("open"))
}

#[async_trait]
impl Fixture for Sqlite {
    async fn fresh(&self) -> Arc<dyn Store> {
        fresh_store(false)
    }
}

rez_port_suite::port_suite!(Sqlite);

/// The same suite with the direct hand-off on, as `rez serve` runs: messages published
/// while a consumer keeps up are claimed for it at publish, which must not change what
/// the ports promise.
mod with_direct_handoff {
    use super::*;

    #[derive(Default)]
    struct SqliteHandoff;

    #[async_trait]
    impl Fixture for SqliteHandoff {
        async fn fresh(&self) -> Arc<dyn Store> {
            fresh_store(true)
        }
    }

    rez_port_suite::port_suite!(SqliteHandoff);
}

fn notify_message(text: &str) -> rez_core::message::Message {
    use rez_core::clock::{Clock, SystemClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": text}}), Stage::Dev)
            .expect("notify");
    Message::create(new, CreatedBy::Api, SystemClock.now())
}

/// SQLite-specific: a message published while this process's consumer keeps up is
/// claimed for it in the publish transaction and handed over in memory; the database
/// shows it in flight and `processing`, and completing it works as after any receive.
#[tokio::test]
async fn a_message_for_a_caught_up_consumer_is_handed_over() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    assert!(store.receive(q, 10, Duration::from_secs(30)).await.expect("receive").is_empty());
    let m = notify_message("handed");
    let id = m.id.clone();
    let accepted = store.submit(m).await.expect("submit").into_message();
    assert_eq!(accepted.status, Status::Queued, "the answer is the message as accepted");
    let stored = store.get_message(&id).await.expect("get").expect("stored");
    assert_eq!(stored.status, Status::Processing, "claimed in the same transaction");
    let stats = store.stats().await.expect("stats");
    let notify = stats.iter().find(|s| s.queue == q).expect("queue stats");
    assert_eq!((notify.depth, notify.in_flight), (0, 1));

    let got = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].message.id.clone(), got[0].receive_count), (id.clone(), 1));
    assert_eq!(got[0].message.status, Status::Processing);
    store.complete(&got[0]).await.expect("complete");
    assert_eq!(store.get_message(&id).await.expect("get").expect("stored").status, Status::Completed);
    assert!(store.receive(q, 10, Duration::from_secs(30)).await.expect("receive").is_empty(), "handed over once");
}

/// SQLite-specific: while the consumer has a backlog in the database, new messages queue
/// behind it instead of being handed over ahead of it.
#[tokio::test]
async fn a_backlog_is_not_overtaken_by_handed_over_messages() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    let mut first = Vec::new();
    for i in 0..12 {
        first.push(store.submit(notify_message(&format!("backlog {i}"))).await.expect("submit").into_message().id);
    }
    let ten = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    assert_eq!(ten.len(), 10, "a full batch: the consumer has a backlog");
    let late = store.submit(notify_message("late")).await.expect("submit").into_message().id;
    assert_eq!(store.get_message(&late).await.expect("get").expect("stored").status, Status::Queued);
    let rest = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    let mut ids: Vec<_> = rest.iter().map(|d| d.message.id.clone()).collect();
    assert_eq!(ids.pop(), Some(late), "after the backlog, from the database");
    // The backlog, in either batch (messages enqueued in the same millisecond come in
    // any order).
    ids.extend(ten.iter().map(|d| d.message.id.clone()));
    ids.sort();
    first.sort();
    assert_eq!(ids, first, "the whole backlog before the late message");
    // Now it keeps up: the next message is handed over.
    let next = store.submit(notify_message("next")).await.expect("submit").into_message().id;
    assert_eq!(store.get_message(&next).await.expect("get").expect("stored").status, Status::Processing);
}

/// SQLite-specific: once the hand-off is full, new messages wait in the database, and
/// later ones queue behind them until the consumer has caught up with the database.
#[tokio::test]
async fn a_full_hand_off_queues_new_messages_behind_it() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    let vis = Duration::from_secs(30);
    let status = |id: rez_core::MessageId| {
        let store = store.clone();
        async move { store.get_message(&id).await.expect("get").expect("stored").status }
    };
    assert!(store.receive(q, 10, vis).await.expect("receive").is_empty());
    for i in 0..rez_local::HANDOFF_MAX_WAITING {
        let id = store.submit(notify_message(&format!("handed {i}"))).await.expect("submit").into_message().id;
        assert_eq!(status(id).await, Status::Processing);
    }
    let overflow = store.submit(notify_message("overflow")).await.expect("submit").into_message().id;
    assert_eq!(status(overflow.clone()).await, Status::Queued, "the hand-off is full");
    assert_eq!(store.receive(q, 10, vis).await.expect("receive").len(), 10, "handed over");
    let behind = store.submit(notify_message("behind")).await.expect("submit").into_message().id;
    assert_eq!(status(behind.clone()).await, Status::Queued, "queues behind the one waiting in the database");
    let mut handed = 10;
    let mut from_db = Vec::new();
    loop {
        let got = store.receive(q, 10, vis).await.expect("receive");
        if got.is_empty() {
            break;
        }
        for d in got {
            if d.message.id == overflow || d.message.id == behind {
                from_db.push(d.message.id);
            } else {
                assert!(from_db.is_empty(), "handed-over messages come before the database's");
                handed += 1;
            }
        }
    }
    // The two waited in the database; enqueued in the same millisecond, they come in
    // either order.
    from_db.sort();
    let mut waited = vec![overflow, behind];
    waited.sort();
    assert_eq!((handed, from_db), (rez_local::HANDOFF_MAX_WAITING, waited));
    let next = store.submit(notify_message("next")).await.expect("submit").into_message().id;
    assert_eq!(status(next).await, Status::Processing, "caught up again");
}

/// SQLite-specific: a claim made for a process that then dies is reclaimed like any
/// in-flight delivery once its lease is stale, and received again elsewhere.
#[tokio::test]
async fn a_claim_of_a_dead_process_is_reclaimed() {
    use rez_core::QueueName;
    use rez_core::clock::ManualClock;
    use rez_core::ports::{MessageStore, Queues};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let config = QueueConfig { direct_handoff: true, ..QueueConfig::default() };
    let dead = LocalStore::open(&path, clock.clone(), config.clone()).expect("open");
    let alive = LocalStore::open(&path, clock.clone(), config).expect("open");
    let q = QueueName::Notifications;
    let vis = Duration::from_secs(360);
    assert!(dead.receive(q, 10, vis).await.expect("receive").is_empty());
    let id = dead.submit(notify_message("claimed")).await.expect("submit").into_message().id;
    // `dead` never takes it and stops heartbeating.
    assert!(alive.receive(q, 10, vis).await.expect("receive").is_empty(), "claimed by the other process");
    clock.advance(chrono::Duration::seconds(7));
    assert_eq!(alive.heartbeat().await.expect("heartbeat"), 1);
    let again = alive.receive(q, 10, vis).await.expect("receive");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message.id.clone(), again[0].receive_count), (id, 2));
    alive.complete(&again[0]).await.expect("complete");
}

/// SQLite-specific: the in-flight work of a process that died is reclaimed by the next
/// heartbeat of a live process once the dead lease is stale, long before the
/// visibility timeout.
#[tokio::test]
async fn dead_process_work_is_reclaimed() {
    use rez_core::clock::{Clock, ManualClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::{MessageType, QueueName};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rez.db");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let dead = LocalStore::open(&path, clock.clone(), QueueConfig::default()).unwrap();
    let alive = LocalStore::open(&path, clock.clone(), QueueConfig::default()).unwrap();
    dead.heartbeat().await.unwrap();
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}), Stage::Dev)
            .unwrap();
    assert_eq!(new.message_type, MessageType::Notify);
    dead.submit(Message::create(new, CreatedBy::Api, clock.now())).await.unwrap();
    let d = dead.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap();
    assert_eq!(d.len(), 1);
    // `dead` stops heartbeating. Within the stale window nothing is reclaimed...
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(alive.heartbeat().await.unwrap(), 0);
    assert!(alive.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().is_empty());
    // ...after it, the work is visible again, long before the 6-minute visibility timeout.
    clock.advance(chrono::Duration::seconds(5));
    assert_eq!(alive.heartbeat().await.unwrap(), 1);
    let again = alive.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    // The dead process's receipt no longer works.
    assert!(dead.complete(&d[0]).await.is_err());
    alive.complete(&again[0]).await.unwrap();
}

/// SQLite-specific: a process that resigned (clean shutdown) with deliveries still in
/// flight does not strand them.
#[tokio::test]
async fn resigned_process_work_is_reclaimed() {
    use rez_core::QueueName;
    use rez_core::clock::{Clock, SystemClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    use rez_core::ports::{MessageStore, Queues};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rez.db");
    let a = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).unwrap();
    let b = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).unwrap();
    a.heartbeat().await.unwrap();
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}), Stage::Dev)
            .unwrap();
    a.submit(Message::create(new, CreatedBy::Api, SystemClock.now())).await.unwrap();
    assert_eq!(a.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().len(), 1);
    a.resign().await.unwrap();
    assert_eq!(b.heartbeat().await.unwrap(), 1);
    assert_eq!(b.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().len(), 1);
}

/// The agent's run store and budget ledger on the same database.
mod agent {
    use super::*;
    use rez_core::agent::store::{AgentStore, BudgetLedger};
    use rez_port_suite::agent::AgentFixture;

    #[derive(Default)]
    struct SqliteAgent;

    #[async_trait]
    impl AgentFixture for SqliteAgent {
        async fn fresh_agent(&self) -> (Arc<dyn AgentStore>, Arc<dyn BudgetLedger>) {
            let store = fresh_store(false);
            (store.clone(), store)
        }
    }

    rez_port_suite::agent_port_suite!(SqliteAgent);

    #[derive(Default)]
    struct SqliteApprovals;

    #[async_trait]
    impl rez_port_suite::approvals::ApprovalFixture for SqliteApprovals {
        async fn fresh_approvals(&self) -> Arc<dyn rez_core::agent::approval::ApprovalStore> {
            fresh_store(false)
        }
    }

    rez_port_suite::approval_port_suite!(SqliteApprovals);

    use chrono::{NaiveDate, TimeDelta};
    use rez_core::agent::model::Usage;
    use rez_core::agent::money::Nanodollars;
    use rez_core::agent::run::{AgentRun, ChatExchange, Step, StepKind, ToolCall, tool_call_key};
    use rez_core::agent::store::{BudgetReservation, Reserved, RunClaim, RunFilter};
    use rez_core::clock::Clock;
    use rez_core::id::{AttemptId, ChatSessionId, RunId};
    use rez_core::ports::StoreError;

    async fn damage(store: &LocalStore, sql: &'static str) {
        store
            .db()
            .write(move |ctx| ctx.tx.execute_batch(sql).map_err(|e| StoreError::Unavailable(e.to_string())))
            .await
            .expect("damage the rows");
    }

    async fn raw(store: &LocalStore, sql: &'static str) -> String {
        store
            .db()
            .read(move |c| {
                c.query_row(sql, [], |r| r.get::<_, String>(0)).map_err(|e| StoreError::Unavailable(e.to_string()))
            })
            .await
            .expect("read the row")
    }

    fn corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
        assert!(matches!(&r, Err(StoreError::Corrupt(_))), "{what}: {r:?}");
    }

    /// SQLite-specific: a run, step, exchange or budget row that no longer decodes is
    /// `Corrupt` with the reason, for reads and writes alike, and nothing is written over
    /// it (reading a damaged run as absent would start it again; a damaged step as
    /// missing would repeat its side effect).
    #[tokio::test]
    async fn an_unreadable_agent_row_is_corrupt_and_left_alone() {
        let store = fresh_store(false);
        let t = SystemClock.now();
        let run = rez_port_suite::agent::run_at(t);
        store.create_run(&run).await.expect("create");
        let attempt = AttemptId::new(t);
        let RunClaim::Claimed(mut run) =
            store.claim_run(&run.id, &attempt, t, t + TimeDelta::seconds(60)).await.expect("claim")
        else {
            panic!("claimed");
        };
        let step = Step {
            index: 0,
            at: t,
            kind: StepKind::ToolCall(ToolCall {
                call_id: "toolu_1".into(),
                name: "list_courses".into(),
                arguments: serde_json::json!({}),
                idempotency_key: tool_call_key(&run.id, 0),
                outcome: None,
            }),
        };
        run.steps = 1;
        store.append_step(&run, &step, &attempt).await.expect("step");
        let session = ChatSessionId::new(t);
        let exchange = ChatExchange { run_id: run.id.clone(), user: "hi".into(), assistant: "hello".into(), at: t };
        store.append_exchange(&session, &exchange).await.expect("exchange");

        damage(&store, "UPDATE agent_steps SET doc = '{\"index\": 0, \"kind\": \"tool_call\"'").await;
        corrupt("steps", store.steps(&run.id).await);
        let done = rez_core::agent::run::ToolOutcome {
            text: "x".into(),
            structured: None,
            is_error: false,
            message_id: None,
            duration_ms: 1,
        };
        corrupt("finish_tool_call", store.finish_tool_call(&run.id, 0, &done, &attempt).await);
        assert_eq!(raw(&store, "SELECT doc FROM agent_steps").await, "{\"index\": 0, \"kind\": \"tool_call\"");

        damage(&store, "UPDATE agent_exchanges SET doc = '{}'").await;
        corrupt("get_session", store.get_session(&session).await);
        let next = ChatExchange { run_id: RunId::new(t), ..exchange };
        corrupt("append_exchange", store.append_exchange(&session, &next).await);

        damage(&store, "UPDATE agent_runs SET doc = '{\"id\": 1}'").await;
        corrupt("get_run", store.get_run(&run.id).await);
        corrupt("list_runs", store.list_runs(&RunFilter { limit: 10, ..Default::default() }).await);
        corrupt("claim_run", store.claim_run(&run.id, &AttemptId::new(t), t, t).await);
        corrupt("request_cancel", store.request_cancel(&run.id, t).await);
        corrupt("update_run", store.update_run(&run, &attempt).await);
        corrupt("create_run", store.create_run(&run).await);
        assert_eq!(raw(&store, "SELECT doc FROM agent_runs").await, "{\"id\": 1}", "nothing was written over it");
        // A document of another run under this id is as unreadable.
        let other = AgentRun { id: RunId::new(t), ..run.clone() };
        let doc = serde_json::to_string(&other).expect("json");
        let id = run.id.to_string();
        store
            .db()
            .write(move |ctx| {
                ctx.tx
                    .execute("UPDATE agent_runs SET doc = ?2 WHERE id = ?1", [&id, &doc])
                    .map_err(|e| StoreError::Unavailable(e.to_string()))
            })
            .await
            .expect("swap the document");
        corrupt("a document of another run", store.get_run(&run.id).await);

        let day = NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
        let r = BudgetReservation {
            run: run.id.clone(),
            step: 1,
            day,
            model: "m".into(),
            amount: Nanodollars(10),
            day_cap: Some(Nanodollars(100)),
            run_cap: None,
        };
        assert_eq!(store.reserve(&r).await.expect("reserve"), Reserved::Granted);
        damage(&store, "UPDATE budget_days SET committed = -5").await;
        corrupt("day", store.day(day).await);
        corrupt("reserve", store.reserve(&BudgetReservation { step: 2, ..r.clone() }).await);
        corrupt("settle", store.settle(&r, Nanodollars(5), &Usage::default()).await);
        damage(&store, "UPDATE budget_days SET committed = 10").await;
        store.settle(&r, Nanodollars(5), &Usage::default()).await.expect("settle");
        assert_eq!(store.spend(day, day).await.expect("spend").len(), 1);
        damage(&store, "UPDATE budget_spend SET cost = -1").await;
        corrupt("spend", store.spend(day, day).await);
    }

    /// SQLite-specific: money is an `i64` column. An amount above `i64::MAX`, or a sum
    /// that would pass it, is refused and changes nothing; never wrapped.
    #[tokio::test]
    async fn amounts_past_what_sqlite_holds_are_refused() {
        let store = fresh_store(false);
        let t = SystemClock.now();
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
        let r = |step: u32, amount: u64, day_cap: Option<u64>| BudgetReservation {
            run: RunId::new(t),
            step,
            day,
            model: "m".into(),
            amount: Nanodollars(amount),
            day_cap: day_cap.map(Nanodollars),
            run_cap: None,
        };
        let huge = r(0, u64::MAX, None);
        assert!(matches!(store.reserve(&huge).await, Err(StoreError::Conflict(_))));
        assert_eq!(store.day(day).await.expect("day").committed, Nanodollars::ZERO);
        let max = i64::MAX.unsigned_abs();
        let first = r(0, max, None);
        assert_eq!(store.reserve(&first).await.expect("reserve"), Reserved::Granted);
        assert!(matches!(store.reserve(&r(1, 1, None)).await, Err(StoreError::Conflict(_))), "the sum would wrap");
        assert_eq!(
            store.reserve(&r(1, 1, Some(max))).await.expect("reserve"),
            Reserved::DayExceeded { committed: Nanodollars(max), cap: Nanodollars(max) },
        );
        let within_cap = store.reserve(&r(1, 1, Some(u64::MAX))).await;
        assert!(matches!(within_cap, Err(StoreError::Conflict(_))), "within the cap, past i64: {within_cap:?}");
        assert_eq!(store.day(day).await.expect("day").committed, Nanodollars(max));
        let big_usage = Usage { input_tokens: u64::MAX, ..Usage::default() };
        assert!(matches!(store.settle(&first, Nanodollars(1), &big_usage).await, Err(StoreError::Conflict(_))));
        assert!(matches!(
            store.settle(&first, Nanodollars(u64::MAX), &Usage::default()).await,
            Err(StoreError::Conflict(_))
        ));
        store.settle(&first, Nanodollars(7), &Usage::default()).await.expect("settle");
        assert_eq!(
            store.day(day).await.expect("day"),
            rez_core::agent::store::DayBudget { spent: Nanodollars(7), committed: Nanodollars(7) }
        );
    }
}
