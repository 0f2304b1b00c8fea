//! Exactly-once booking against the fake cps.golf course at its worst: a reserve that
//! commits after the client gave up, a reservations list that shows it only later,
//! connections that break, two deliveries of one booking at once, a damaged ledger row.
//!
//! Timing is production's scaled down 20 times, ratios kept: the client gives up after
//! 1.5 s (30 s), lookups follow an uncertain reserve after 1.5, 3, 6 s (30 s, 1, 2 min),
//! a call waits at most 2.25 s (45 s) for a lookup.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rez_actions::golf::{
    Booker, BookingConfirmation, BookingError, BookingKey, BookingLedger, BookingPath, BookingPolicy, Course, Courses,
    GolfClient, GolfConfig, GolfCredentials, GolfError, Holes, InMemoryLedger, LedgerEntry, LedgerState, SearchRequest,
    Step,
};
use rez_http::{HttpClient, OutboundPolicy, RetryPolicy};
use rez_testkit::golf::{FAKE_GOLFER_ID, FAKE_PASSWORD, FAKE_USERNAME};
use rez_testkit::{FakeCpsGolf, FakeSlot, GolfFault, GolfStep, ReserveAnswer};

const CLIENT_TIMEOUT: Duration = Duration::from_millis(1500);

fn course(fake: &FakeCpsGolf) -> Course {
    let mut c = Courses::builtin().expect("courses").find("birdsfoot").expect("birdsfoot").clone();
    c.origin = fake.url();
    c
}

fn creds() -> GolfCredentials {
    GolfCredentials::new(FAKE_USERNAME, FAKE_PASSWORD)
}

fn client() -> GolfClient {
    let config = GolfConfig {
        retry: RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
        ..GolfConfig::default()
    };
    let policy = OutboundPolicy { total_timeout: CLIENT_TIMEOUT, ..OutboundPolicy::loopback_for_tests() };
    GolfClient::new(HttpClient::new(policy).expect("http client"), config)
}

/// Production's policy, 20 times faster.
fn policy() -> BookingPolicy {
    BookingPolicy {
        lease: Duration::from_secs(15),
        verify_after: [1500, 3000, 6000, 15_000, 30_000].map(Duration::from_millis).to_vec(),
        max_wait: Duration::from_millis(2250),
    }
}

fn booker(ledger: Arc<InMemoryLedger>, policy: BookingPolicy) -> Booker {
    Booker::with_policy(client(), ledger, policy)
}

fn at(h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 6, 14).expect("date").and_hms_opt(h, m, 0).expect("time")
}

fn key(k: &str) -> BookingKey {
    BookingKey::new(k).expect("key")
}

#[tokio::test]
async fn a_reserve_committed_after_the_client_gave_up_is_found_not_booked_again() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(401, at(8, 10)));
    // The site takes 35 s (scaled) to answer the reserve; the client gives up at 30 s.
    fake.fail(GolfStep::Reserve, GolfFault::Delay(CLIENT_TIMEOUT * 35 / 30));
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger.clone(), policy());
    let k = key("msg_slow_site");
    let out = b.book(&k, &course(&fake), &creds(), 401, 2, Holes::Eighteen).await.expect("one call resolves it");
    assert_eq!(out.path, BookingPath::FoundInReservations);
    let held = fake.reservations();
    assert_eq!(held.len(), 1, "exactly one reservation");
    assert_eq!(out.confirmation.reservation_id, Some(held[0].reservation_id));
    assert_eq!(fake.count(GolfStep::Reserve), 1, "no second reserve");
    assert!(matches!(ledger.get(&k).await.expect("ledger").expect("row").state, LedgerState::Confirmed { .. }));
    // A redelivery returns the recorded confirmation without a request.
    let before = fake.count(GolfStep::Reservations) + fake.count(GolfStep::Lock);
    let again = b.book(&k, &course(&fake), &creds(), 401, 2, Holes::Eighteen).await.expect("again");
    assert_eq!((again.path, again.confirmation), (BookingPath::AlreadyConfirmed, out.confirmation));
    assert_eq!(fake.count(GolfStep::Reservations) + fake.count(GolfStep::Lock), before);
}

#[tokio::test]
async fn a_reservation_listed_only_later_is_found_on_a_later_lookup() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(411, at(8, 10)));
    // Reserved, but the connection breaks before the answer, and the list shows the
    // reservation only 40 s (scaled) later: the first lookup (30 s) misses it.
    fake.fail(GolfStep::Reserve, GolfFault::DropAfter);
    fake.set_listing_delay(Duration::from_millis(2000));
    let b = booker(Arc::new(InMemoryLedger::new()), policy());
    let out = b.book(&key("msg_listed_late"), &course(&fake), &creds(), 411, 1, Holes::Eighteen).await.expect("found");
    assert_eq!(out.path, BookingPath::FoundInReservations);
    assert_eq!(fake.reservations().len(), 1);
    assert_eq!(fake.count(GolfStep::Reserve), 1);
    assert_eq!(fake.count(GolfStep::Reservations), 2, "the first lookup missed it, the second found it");
}

#[tokio::test]
async fn a_redelivery_continues_the_search_and_books_again_only_after_the_whole_grace_period() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(421, at(8, 10)));
    // The connection breaks before the reserve reaches the site: nothing was reserved,
    // but the booker cannot know. It must not wait inside one call beyond 0.1 s.
    fake.fail(GolfStep::Reserve, GolfFault::DropBefore);
    // The first attempt's lock lapses on the site before the grace period ends.
    fake.set_lock_lifetime(Duration::from_millis(200));
    let policy = BookingPolicy {
        verify_after: [300, 600, 900].map(Duration::from_millis).to_vec(),
        max_wait: Duration::from_millis(100),
        ..policy()
    };
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger.clone(), policy);
    let (c, k) = (course(&fake), key("msg_grace"));
    let mut deliveries = 0;
    let out = loop {
        deliveries += 1;
        assert!(deliveries < 10, "the grace period ends");
        match b.book(&k, &c, &creds(), 421, 3, Holes::Eighteen).await {
            Ok(out) => break out,
            Err(BookingError::Verifying { retry_after, done, total, .. }) => {
                assert_eq!(total, 3);
                // The progress is in the row, for whichever delivery comes next.
                let row = ledger.get(&k).await.expect("ledger").expect("row");
                assert_eq!(row.verification.expect("search under way").lookups_done, done);
                assert_eq!(row.lease, None, "the key is handed on at once");
                assert_eq!(fake.count(GolfStep::Reserve), 1, "no new reserve during the grace period");
                assert!(retry_after <= Duration::from_millis(300), "{retry_after:?}");
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    };
    assert_eq!(out.path, BookingPath::Reserved);
    assert_eq!(fake.count(GolfStep::Reservations), 3, "each scheduled lookup once, none repeated");
    assert_eq!(fake.count(GolfStep::Reserve), 2, "booked again after the whole grace period");
    assert_eq!(fake.reservations().len(), 1);
}

#[tokio::test]
async fn two_deliveries_of_one_booking_at_once_reserve_once_every_time() {
    let fake = FakeCpsGolf::start().await;
    for i in 0..100 {
        fake.add_slot(FakeSlot::new(1000 + i, at(6, 0) + chrono::TimeDelta::minutes(8 * i)));
    }
    let c = course(&fake);
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger, policy());
    for i in 0..100 {
        let k = key(&format!("msg_race_{i}"));
        let who = creds();
        let (one, two) = tokio::join!(
            b.book(&k, &c, &who, 1000 + i, 2, Holes::Eighteen),
            b.book(&k, &c, &who, 1000 + i, 2, Holes::Eighteen)
        );
        let booked = [&one, &two].iter().filter(|r| matches!(r, Ok(o) if o.path == BookingPath::Reserved)).count();
        for r in [&one, &two] {
            assert!(
                matches!(r, Ok(_) | Err(BookingError::InProgress { .. })),
                "round {i}: the other is told it is in progress: {r:?}"
            );
        }
        assert_eq!(booked, 1, "round {i}");
        assert_eq!(fake.reservations_on_slot(1000 + i).len(), 1, "round {i}");
    }
    assert_eq!(fake.reservations().len(), 100);
}

#[tokio::test]
async fn an_unreadable_ledger_row_holds_the_key() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(431, at(8, 10)));
    let ledger = Arc::new(InMemoryLedger::new());
    let k = key("msg_corrupt");
    ledger.insert(k.clone(), LedgerEntry::new(LedgerState::Unreadable { reason: "intent: expected value".into() }));
    let b = booker(ledger.clone(), policy());
    let err = b.book(&k, &course(&fake), &creds(), 431, 2, Holes::Eighteen).await.expect_err("held");
    assert!(matches!(&err, BookingError::Held { reason, .. } if reason.contains("cannot be read")), "{err:?}");
    assert!(!err.is_transient(), "reported, not retried");
    assert_eq!(fake.count(GolfStep::Lock) + fake.count(GolfStep::Reserve) + fake.count(GolfStep::Token), 0);
    assert!(matches!(ledger.get(&k).await.expect("ledger").expect("row").state, LedgerState::Unreadable { .. }));
}

#[tokio::test]
async fn two_reservations_that_could_be_ours_hold_the_key() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(441, at(8, 10)));
    // The golfer holds two reservations on the slot already; our reserve breaks off.
    fake.add_reservation(FAKE_GOLFER_ID, 441, at(8, 10), 1);
    fake.add_reservation(FAKE_GOLFER_ID, 441, at(8, 10), 1);
    fake.fail(GolfStep::Reserve, GolfFault::DropBefore);
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger.clone(), policy());
    let k = key("msg_ambiguous");
    let err = b.book(&k, &course(&fake), &creds(), 441, 2, Holes::Eighteen).await.expect_err("ambiguous");
    assert!(matches!(&err, BookingError::Held { reason, .. } if reason.contains("2 reservations")), "{err:?}");
    let row = ledger.get(&k).await.expect("ledger").expect("row");
    assert_eq!(row.state, LedgerState::Pending, "the key stays held, with its intent");
    assert!(row.intent.is_some());
    assert_eq!(fake.count(GolfStep::Reserve), 1);
}

#[tokio::test]
async fn matching_needs_the_start_not_the_player_count() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(451, at(8, 10)));
    fake.fail(GolfStep::Reserve, GolfFault::DropAfter);
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger, policy());
    // Reserved for 3; the list is what decides, and it matches on course and start.
    let out = b.book(&key("msg_match"), &course(&fake), &creds(), 451, 3, Holes::Eighteen).await.expect("found");
    assert_eq!(out.path, BookingPath::FoundInReservations);
    assert_eq!(fake.count(GolfStep::Reserve), 1);
}

#[tokio::test]
async fn an_unknown_reserve_result_is_looked_for_not_refused() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(461, at(8, 10)));
    fake.answer_reserves(ReserveAnswer::ResultCode(7));
    let b = booker(Arc::new(InMemoryLedger::new()), policy());
    let out = b.book(&key("msg_result_7"), &course(&fake), &creds(), 461, 2, Holes::Eighteen).await.expect("found");
    assert_eq!(out.path, BookingPath::FoundInReservations);
    assert_eq!((fake.reservations().len(), fake.count(GolfStep::Reserve)), (1, 1));
}

#[tokio::test]
async fn a_reserve_confirmed_without_an_id_is_completed_from_the_list() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(471, at(9, 10)));
    fake.answer_reserves(ReserveAnswer::WithoutReservationId);
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger.clone(), policy());
    let k = key("msg_no_id");
    let out = b.book(&k, &course(&fake), &creds(), 471, 1, Holes::Eighteen).await.expect("booked");
    assert_eq!(out.path, BookingPath::Reserved);
    let held = fake.reservations_on_slot(471);
    assert_eq!(out.confirmation.reservation_id, Some(held[0].reservation_id));
    assert_eq!(fake.count(GolfStep::Reserve), 1);
}

#[tokio::test]
async fn definite_refusals_and_failures_before_the_reserve_release_the_key() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(481, at(8, 10)));
    fake.set_lock_lifetime(Duration::from_millis(200));
    let ledger = Arc::new(InMemoryLedger::new());
    let b = booker(ledger.clone(), policy());
    let (c, k) = (course(&fake), key("msg_refused"));
    fake.fail(GolfStep::Reserve, GolfFault::Status(400));
    let err = b.book(&k, &c, &creds(), 481, 1, Holes::Eighteen).await.expect_err("400");
    assert!(matches!(err, BookingError::Golf(GolfError::Status { status: 400, .. })) && !err.is_transient());
    assert!(matches!(ledger.get(&k).await.expect("ledger").expect("row").state, LedgerState::Failed { .. }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.fail(GolfStep::Lock, GolfFault::Status(503));
    let err = b.book(&k, &c, &creds(), 481, 1, Holes::Eighteen).await.expect_err("503");
    assert!(err.is_transient() && err.retry_after().is_none(), "{err:?}");
    assert!(matches!(ledger.get(&k).await.expect("ledger").expect("row").state, LedgerState::Failed { .. }));
    let out = b.book(&k, &c, &creds(), 481, 1, Holes::Eighteen).await.expect("third attempt");
    assert_eq!(out.path, BookingPath::Reserved);
    assert_eq!(fake.count(GolfStep::Reservations), 0, "a failed key is not looked up");
    assert_eq!(fake.reservations().len(), 1);
}

#[tokio::test]
async fn a_recorded_confirmation_is_returned_without_any_call() {
    let fake = FakeCpsGolf::start().await;
    let ledger = Arc::new(InMemoryLedger::new());
    let k = key("msg_done");
    let confirmation = BookingConfirmation {
        course_id: "birdsfoot".into(),
        course_name: "Birdsfoot Golf Course".into(),
        reservation_id: Some(77),
        confirmation_key: "ZX81".into(),
        tee_sheet_id: 9,
        start_time: at(9, 0),
        players: 2,
        holes: 18,
        total: Some(90.0),
        total_due_at_course: Some(90.0),
        confirmed_at: Utc::now(),
    };
    ledger.insert(k.clone(), LedgerEntry::new(LedgerState::Confirmed { confirmation: confirmation.clone() }));
    let b = booker(ledger, policy());
    let c = course(&fake);
    assert_eq!(b.book(&k, &c, &creds(), 9, 2, Holes::Eighteen).await.expect("book").confirmation, confirmation);
    let search = SearchRequest::new(at(9, 0).date(), 2);
    assert_eq!(b.auto_book(&k, &c, &creds(), &search).await.expect("auto").path, BookingPath::AlreadyConfirmed);
    assert_eq!(fake.count(GolfStep::Token) + fake.count(GolfStep::TeeTimes), 0);
}

#[tokio::test]
async fn auto_book_moves_on_when_the_earliest_is_taken_between_search_and_lock() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(491, at(8, 0)));
    fake.add_slot(FakeSlot::new(492, at(8, 10)));
    fake.set_latency(GolfStep::Lock, Duration::from_millis(400));
    let b = booker(Arc::new(InMemoryLedger::new()), policy());
    let c = course(&fake);
    let search = SearchRequest::new(at(8, 0).date(), 2)
        .window(NaiveTime::from_hms_opt(7, 0, 0).expect("t"), NaiveTime::from_hms_opt(9, 0, 0).expect("t"));
    let (k, who) = (key("msg_taken"), creds());
    let booking = b.auto_book(&k, &c, &who, &search);
    let other_golfer = async {
        // Someone else books the whole 8:00 foursome while our lock is on its way.
        while fake.count(GolfStep::Lock) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        fake.add_reservation(FAKE_GOLFER_ID + 1, 491, at(8, 0), 4);
    };
    let (out, ()) = tokio::join!(booking, other_golfer);
    let out = out.expect("the next slot");
    assert_eq!((out.confirmation.tee_sheet_id, out.confirmation.start_time), (492, at(8, 10)));
    assert_eq!(fake.count(GolfStep::Lock), 2);
    // Every slot taken: no tee time, said so.
    fake.add_reservation(FAKE_GOLFER_ID + 1, 492, at(8, 10), 2);
    let err = b.auto_book(&key("msg_none_left"), &c, &creds(), &search).await.expect_err("none left");
    assert!(
        matches!(err, BookingError::Golf(GolfError::NoTeeTimes(_) | GolfError::Rejected { step: Step::Lock, .. })),
        "{err:?}"
    );
}
