//! Web actions end to end through `rez serve`: POST a `web_action` message, it ends
//! `completed`, the result is readable, and the notification reached the fake ntfy —
//! weather against the fake NOAA, golf search and booking against the fake cps.golf,
//! including a reserve whose answer is lost (exactly one reservation, one confirmation).

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::TestServer;
use rez_testkit::golf::{FakeSlot, GolfFault, GolfStep};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn run(t: &TestServer, payload: Value, arguments: Value) -> (String, Value) {
    let (s, m) = t
        .post_json("/api/messages", json!({"message_type": "web_action", "payload": payload, "arguments": arguments}))
        .await;
    assert_eq!(s, 202, "{m}");
    let id = m["id"].as_str().unwrap().to_owned();
    let done = t.wait_message(&id, WAIT, |m| matches!(m["status"].as_str(), Some("completed" | "dead_lettered"))).await;
    (id, done)
}

fn slot(id: i64, d: NaiveDate, h: u32, m: u32) -> FakeSlot {
    FakeSlot::new(id, d.and_hms_opt(h, m, 0).unwrap())
}

#[tokio::test]
async fn weather_for_a_course_is_stored_and_notified() {
    let mut r = common::world().await;
    let (id, m) = run(&r.t, json!({"action": "weather", "course": "Birdsfoot"}), json!({})).await;
    assert_eq!(m["status"], "completed", "{m}");
    let (_, results) = r.t.get_json(&format!("/api/results?message_id={id}")).await;
    let res = &results["items"][0];
    assert_eq!(
        (res["action"].as_str(), res["operation"].as_str(), res["status"].as_str()),
        (Some("weather"), Some("forecast"), Some("success"))
    );
    assert!(res["output"]["forecast"]["periods"].as_array().unwrap().len() >= 2);
    assert_eq!(m["results"][0]["id"], res["id"], "the message detail includes its result");
    assert!(r.t.ntfy.wait_for(1, WAIT).await);
    let push = &r.t.ntfy.received()[0];
    assert!(push.title.as_deref().unwrap().contains("Birdsfoot"), "{push:?}");
    // A URL in the request is refused at the door.
    let (s, e) =
        r.t.post_json(
            "/api/messages",
            json!({"message_type": "web_action", "payload": {"action": "weather", "url": "http://169.254.169.254/"}}),
        )
        .await;
    assert_eq!((s, e["error"]["details"]["field"].as_str()), (400, Some("url")));
    r.t.stop().await;
}

#[tokio::test]
async fn golf_search_and_four_player_booking() {
    let mut r = common::world().await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
    r.golf.add_slot(slot(501, day, 7, 30));
    r.golf.add_slot(slot(502, day, 8, 40));
    r.golf.add_slot(slot(503, day, 9, 20));
    let (id, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "search_tee_times", "date": "2026-12-05", "window_start": "08:00", "window_end": "10:00", "players": 4}),
    )
    .await;
    assert_eq!(m["status"], "completed", "{m}");
    let (_, results) = r.t.get_json(&format!("/api/results?message_id={id}")).await;
    let ids: Vec<i64> = results["items"][0]["output"]["tee_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tee_sheet_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [502, 503]);

    let (_, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "book_tee_time", "tee_sheet_id": 502, "players": 4}),
    )
    .await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(r.golf.reservations().len(), 1);
    let pricing = r.golf.pricing_calls();
    assert_eq!(pricing.len(), 1);
    assert_eq!(pricing[0].participants.len(), 4, "the pricing request lists every participant");
    assert!(r.t.ntfy.wait_for(2, WAIT).await);
    r.t.stop().await;
}

#[tokio::test]
async fn a_lost_reserve_answer_books_exactly_once() {
    let mut r = common::world().await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    r.golf.add_slot(slot(601, day, 9, 0));
    r.golf.add_slot(slot(602, day, 8, 10));
    // The reserve happens at cps.golf, then the connection drops before the answer.
    r.golf.fail_times(GolfStep::Reserve, GolfFault::DropAfter, 1);
    let (id, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "auto_book", "date": "2026-12-06", "window_start": "08:00", "window_end": "10:00", "players": 2}),
    )
    .await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(m["retry_count"], 0, "waiting for the lookup is a deferral, not a failure");
    let reservations = r.golf.reservations();
    assert_eq!(reservations.len(), 1, "exactly one reservation at cps.golf");
    assert_eq!(r.golf.count(GolfStep::Reserve), 1, "no second reserve call");
    let (_, results) = r.t.get_json(&format!("/api/results?message_id={id}")).await;
    let items = results["items"].as_array().unwrap();
    let ok: Vec<&Value> = items.iter().filter(|x| x["status"] == "success").collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["output"]["path"], "found_in_reservations");
    assert_eq!(ok[0]["output"]["confirmation"]["tee_sheet_id"], 602, "the earliest slot in the window");
    assert!(r.t.ntfy.wait_for(1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let booked: Vec<_> =
        r.t.ntfy
            .received()
            .into_iter()
            .filter(|p| p.title.as_deref().is_some_and(|t| t.starts_with("Booked")))
            .collect();
    assert_eq!(booked.len(), 1, "the user gets one confirmation");
    r.t.stop().await;
}

/// The double booking of the slow site: cps.golf commits the reserve after the client gave
/// up (35 s against 30 s, scaled). The message is handed back until the lookup is due,
/// finds the reservation, and completes with it: one reservation, one confirmation.
#[tokio::test]
async fn a_reserve_committed_after_the_client_gave_up_books_exactly_once() {
    let mut r = common::world().await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    r.golf.add_slot(slot(701, day, 8, 10));
    r.golf.fail(GolfStep::Reserve, GolfFault::Delay(Duration::from_millis(1750)));
    let (id, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "book_tee_time", "tee_sheet_id": 701, "players": 2}),
    )
    .await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(r.golf.reservations().len(), 1, "exactly one reservation at cps.golf");
    assert_eq!(r.golf.count(GolfStep::Reserve), 1, "no second reserve call");
    assert_eq!(m["retry_count"], 0, "waiting for the lookup is not a failure");
    let (_, results) = r.t.get_json(&format!("/api/results?message_id={id}")).await;
    let items = results["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "a deferral stores no result: {items:?}");
    let ok: Vec<Value> = items.iter().filter(|x| x["status"] == "success").cloned().collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["output"]["path"], "found_in_reservations");
    assert_eq!(ok[0]["output"]["confirmation"]["reservation_id"], r.golf.reservations()[0].reservation_id);
    assert!(r.t.ntfy.wait_for(1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let titles: Vec<String> = r.t.ntfy.received().into_iter().filter_map(|p| p.title).collect();
    assert_eq!(titles.iter().filter(|t| t.starts_with("Booked")).count(), 1, "{titles:?}");
    r.t.stop().await;
}

/// A booking that cannot happen says so on the phone.
#[tokio::test]
async fn a_failed_booking_and_an_empty_window_send_a_push() {
    let mut r = common::world().await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
    r.golf.add_slot(slot(801, day, 8, 10));
    r.golf.fail(GolfStep::Reserve, GolfFault::Status(400));
    let (_, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "book_tee_time", "tee_sheet_id": 801, "players": 2}),
    )
    .await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    let (_, m) = run(
        &r.t,
        json!({"action": "golf", "course": "birdsfoot"}),
        json!({"operation": "auto_book", "date": "2026-12-08", "window_start": "15:00", "window_end": "16:00", "players": 2}),
    )
    .await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    assert!(r.t.ntfy.wait_for(2, WAIT).await);
    let pushes = r.t.ntfy.received();
    let not_booked: Vec<_> =
        pushes.iter().filter(|p| p.title.as_deref().is_some_and(|t| t.starts_with("Not booked"))).collect();
    assert_eq!(not_booked.len(), 2, "{pushes:?}");
    assert!(not_booked.iter().any(|p| p.message.contains("400")), "{not_booked:?}");
    assert!(not_booked.iter().any(|p| p.message.contains("no tee time")), "{not_booked:?}");
    assert_eq!(r.golf.reservations().len(), 0);
    r.t.stop().await;
}

#[tokio::test]
async fn missing_credentials_fail_clearly_without_retries() {
    let mut r = common::world().await;
    let (_, m) =
        run(&r.t, json!({"action": "golf", "course": "totteridge"}), json!({"operation": "fetch_reservations"})).await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    assert!(m["error_message"].as_str().unwrap().contains("no credentials"), "{m}");
    assert_eq!(m["retry_count"], 1);
    r.t.stop().await;
}
