//! The fake NOAA and cps.golf servers checked with a plain HTTP client, so their wire
//! shapes do not depend on rez_agent's own clients being right.

use std::time::Duration;

use base64::Engine as _;
use rez_testkit::golf::{FAKE_ACCT, FAKE_CLIENT_ID, FAKE_GOLFER_ID, FAKE_PASSWORD, FAKE_USERNAME};
use rez_testkit::{FakeCpsGolf, FakeNoaa, FakeSlot, GolfFault, GolfStep, ReserveAnswer};
use serde_json::Value;

fn part(token: &str, i: usize) -> Value {
    let seg = token.split('.').nth(i).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(seg).expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

async fn sign_in(http: &reqwest::Client, fake: &FakeCpsGolf, grant: &str) -> reqwest::Response {
    sign_in_as(http, fake, grant, Some(FAKE_CLIENT_ID)).await
}

async fn sign_in_as(
    http: &reqwest::Client,
    fake: &FakeCpsGolf,
    grant: &str,
    client_id: Option<&str>,
) -> reqwest::Response {
    let client = client_id.map(|c| format!("&client_id={c}")).unwrap_or_default();
    let form = format!(
        "grant_type={grant}&username={}&password={}&scope=openid%20onlinereservation{client}",
        FAKE_USERNAME.replace('@', "%40"),
        FAKE_PASSWORD.replace(' ', "%20")
    );
    http.post(format!("{}/identityapi/connect/token", fake.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn golf_fake_issues_real_rs256_tokens_and_publishes_its_keys() {
    let fake = FakeCpsGolf::start().await;
    let http = reqwest::Client::new();
    let bad = sign_in(&http, &fake, "client_credentials").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.expect("json")["error"], "unsupported_grant_type");

    // Like IdentityServer, the password grant needs a client id the server knows.
    for client in [None, Some("someone-else")] {
        let refused = sign_in_as(&http, &fake, "password", client).await;
        assert_eq!(refused.status(), 400, "{client:?}");
        assert_eq!(refused.json::<Value>().await.expect("json")["error"], "invalid_client", "{client:?}");
    }
    fake.add_client_id("someone-else");
    let other: Value = sign_in_as(&http, &fake, "password", Some("someone-else")).await.json().await.expect("json");
    assert_eq!(part(other["access_token"].as_str().expect("token"), 1)["client_id"], "someone-else");
    assert_eq!(fake.tokens_issued(), 1);

    let ok: Value = sign_in(&http, &fake, "password").await.json().await.expect("json");
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 3600);
    let token = ok["access_token"].as_str().expect("token");
    let header = part(token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], fake.current_kid().as_str());
    let claims = part(token, 1);
    assert_eq!(claims["golferId"], FAKE_GOLFER_ID.to_string());
    assert_eq!(claims["acct"], FAKE_ACCT);
    assert_eq!(claims["email"], FAKE_USERNAME);
    assert_eq!(claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"), 3600);

    let jwks: Value = http
        .get(format!("{}/identityapi/.well-known/openid-configuration/jwks", fake.url()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["alg"].as_str(), keys[0]["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    fake.rotate_keys();
    let jwks: Value = http
        .get(format!("{}/identityapi/.well-known/openid-configuration/jwks", fake.url()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    assert_eq!(fake.count(GolfStep::Jwks), 2);
}

#[tokio::test]
async fn golf_fake_checks_bearer_tokens_and_drops_connections_on_demand() {
    let fake = FakeCpsGolf::start().await;
    let http = reqwest::Client::new();
    let search = format!(
        "{}/onlineres/onlineapi/api/v1/onlinereservation/TeeTimes?searchDate=Sat%20Jun%2014%202025&numberOfPlayer=1",
        fake.url()
    );
    let anonymous = http.get(&search).send().await.expect("request");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));

    let ok: Value = sign_in(&http, &fake, "password").await.json().await.expect("json");
    let token = ok["access_token"].as_str().expect("token").to_owned();
    let empty: Value = http.get(&search).bearer_auth(&token).send().await.expect("search").json().await.expect("json");
    assert_eq!(empty["messageKey"], "NO_TEETIMES");

    fake.fail(GolfStep::TeeTimes, GolfFault::DropAfter);
    let err = http.get(&search).bearer_auth(&token).send().await.expect_err("dropped");
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(fake.count(GolfStep::TeeTimes), 3);

    fake.revoke_tokens();
    assert_eq!(http.get(&search).bearer_auth(&token).send().await.expect("request").status(), 401);
}

#[tokio::test]
async fn noaa_fake_serves_points_and_forecasts() {
    let fake = FakeNoaa::start().await;
    let http = reqwest::Client::new();
    let no_ua = http.get(format!("{}/points/40.3578,-79.5066", fake.url())).send().await.expect("request");
    assert_eq!(no_ua.status(), 403);
    assert_eq!(no_ua.headers()["content-type"], "application/problem+json");

    let points: Value = http
        .get(format!("{}/points/40.3578,-79.5066", fake.url()))
        .header("user-agent", "fake-test (ops@example.com)")
        .send()
        .await
        .expect("points")
        .json()
        .await
        .expect("json");
    let forecast_url = points["properties"]["forecast"].as_str().expect("forecast URL");
    assert_eq!(forecast_url, format!("{}/gridpoints/PBZ/95,64/forecast", fake.url()));
    assert_eq!(points["properties"]["forecastHourly"], format!("{forecast_url}/hourly"));

    fake.start_with_night(true);
    let forecast: Value = http
        .get(forecast_url)
        .header("user-agent", "fake-test (ops@example.com)")
        .send()
        .await
        .expect("forecast")
        .json()
        .await
        .expect("json");
    let periods = forecast["properties"]["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 14);
    assert_eq!(periods[0]["name"], "Tonight");
    assert_eq!(periods[0]["isDaytime"], false);
    assert_eq!(periods[0]["probabilityOfPrecipitation"]["unitCode"], "wmoUnit:percent");
    assert_eq!(periods[13]["isDaytime"], true, "night-first forecasts end with a day period");
    assert_eq!((fake.points_requests(), fake.forecast_requests()), (2, 1));
}

// ---- the tee sheet ---------------------------------------------------------------------------

const API: &str = "/onlineres/onlineapi/api/v1/onlinereservation";

fn day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 6, 14).expect("date")
}

fn at(h: u32, m: u32) -> chrono::NaiveDateTime {
    day().and_hms_opt(h, m, 0).expect("time")
}

async fn token(http: &reqwest::Client, fake: &FakeCpsGolf) -> String {
    let ok: Value = sign_in(http, fake, "password").await.json().await.expect("json");
    ok["access_token"].as_str().expect("token").to_owned()
}

async fn post(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, step: &str, body: Value) -> Value {
    http.post(format!("{}{API}/{step}", fake.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect(step)
        .json()
        .await
        .expect("json")
}

async fn lock(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, id: i64, players: u8, session: &str) -> Value {
    let body = serde_json::json!({"teeSheetIds": [id], "email": FAKE_USERNAME, "action": "Online Reservation V5",
        "sessionId": session, "golferId": FAKE_GOLFER_ID, "classCode": "R", "numberOfPlayer": players,
        "navigateUrl": "", "isGroupBooking": false});
    post(http, fake, token, "LockTeeTimes", body).await
}

async fn price(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, id: i64, players: u8) -> String {
    let list: Vec<Value> = (1..=players)
        .map(|n| serde_json::json!({"teeSheetId": id, "holes": 18, "participantNo": n, "golferId": FAKE_GOLFER_ID}))
        .collect();
    let body =
        serde_json::json!({"selectedTeeSheetId": id, "bookingList": list, "holes": 18, "numberOfPlayer": players});
    let answer = post(http, fake, token, "TeeTimePricesCalculation", body).await;
    answer["transactionId"].as_str().expect("transactionId").to_owned()
}

fn reserve_body(session: &str, transaction: &str) -> Value {
    serde_json::json!({"finalizeSaleModel": {"acct": FAKE_ACCT, "playerId": 0},
        "lockedTeeTimesSessionId": session, "transactionId": transaction})
}

async fn reserve(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, session: &str, transaction: &str) -> Value {
    post(http, fake, token, "ReserveTeeTimes", reserve_body(session, transaction)).await
}

/// Lock, price and reserve; the reserve's answer.
async fn book(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, id: i64, players: u8, session: &str) -> Value {
    let locked = lock(http, fake, token, id, players, session).await;
    assert_eq!(locked["sessionId"], session, "{locked}");
    let transaction = price(http, fake, token, id, players).await;
    reserve(http, fake, token, session, &transaction).await
}

async fn search(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str, players: u8) -> Value {
    http.get(format!(
        "{}{API}/TeeTimes?searchDate=Sat%20Jun%2014%202025&numberOfPlayer={players}&courseIds=1",
        fake.url()
    ))
    .bearer_auth(token)
    .send()
    .await
    .expect("search")
    .json()
    .await
    .expect("json")
}

async fn listed(http: &reqwest::Client, fake: &FakeCpsGolf, token: &str) -> Vec<i64> {
    let page: Value = http
        .get(format!("{}{API}/UpcomingReservation?golferId={FAKE_GOLFER_ID}&pageSize=14&currentPage=1", fake.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("reservations")
        .json()
        .await
        .expect("json");
    page["items"].as_array().expect("items").iter().map(|r| r["reservationId"].as_i64().expect("id")).collect()
}

#[tokio::test]
async fn golf_fake_slot_has_four_places_and_one_golfer_may_book_it_twice() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(11, at(8, 10)));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;

    let first = book(&http, &fake, &token, 11, 2, "session-1").await;
    assert_eq!(first["reservationResult"], 1, "{first}");
    assert_eq!(fake.places_left(11), Some(2));
    // Still searchable with the two places it has left.
    let slots = search(&http, &fake, &token, 2).await;
    assert_eq!(slots[0]["teeSheetId"], 11, "{slots}");
    assert_eq!((slots[0]["participants"].as_u64(), slots[0]["maxPlayer"].as_u64()), (Some(2), Some(2)));
    assert_eq!(search(&http, &fake, &token, 3).await["messageKey"], "NO_TEETIMES");
    let too_many = lock(&http, &fake, &token, 11, 3, "session-2").await;
    assert!(too_many["error"].as_str().is_some_and(|e| e.contains("2 place")), "{too_many}");
    assert_eq!(too_many["teeSheetIds"], serde_json::json!([]));

    // The same golfer books the same slot again: a double booking, as a real sheet allows.
    let second = book(&http, &fake, &token, 11, 2, "session-3").await;
    assert_eq!(second["reservationResult"], 1, "{second}");
    assert_ne!(first["reservationId"], second["reservationId"]);
    assert_eq!(fake.reservations_on_slot(11).len(), 2);
    assert_eq!(fake.reservations_of(FAKE_GOLFER_ID).len(), 2);
    assert_eq!(listed(&http, &fake, &token).await.len(), 2);
    assert_eq!(fake.places_left(11), Some(0));
    assert_eq!(search(&http, &fake, &token, 1).await["messageKey"], "NO_TEETIMES");
    let full = lock(&http, &fake, &token, 11, 1, "session-4").await;
    assert_eq!(full["error"], "The selected tee time is no longer available");
}

#[tokio::test]
async fn golf_fake_lock_holds_its_slot_until_consumed_or_expired() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(21, at(9, 0)));
    fake.add_slot(FakeSlot::new(22, at(9, 10)));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;

    let a = lock(&http, &fake, &token, 21, 1, "session-a").await;
    assert_eq!(a["teeSheetIds"], serde_json::json!([21]));
    let b = lock(&http, &fake, &token, 21, 1, "session-b").await;
    assert_eq!(b["error"], rez_testkit::golf::LOCK_HELD_ERROR, "a second lock does not steal the first");
    assert_eq!((b["sessionId"].clone(), b["teeSheetIds"].clone()), (Value::Null, serde_json::json!([])));
    // The refused session cannot reserve; the holder can, which consumes its lock.
    let transaction = price(&http, &fake, &token, 21, 1).await;
    let refused = reserve(&http, &fake, &token, "session-b", &transaction).await;
    assert_eq!(refused["reservationResult"], 0, "{refused}");
    let done = reserve(&http, &fake, &token, "session-a", &transaction).await;
    assert_eq!(done["reservationResult"], 1, "{done}");
    assert!(!fake.is_locked(21));
    let b = lock(&http, &fake, &token, 21, 1, "session-b").await;
    assert_eq!(b["sessionId"], "session-b", "{b}");

    // An expired lock frees the slot, and its holder can no longer reserve with it.
    fake.set_lock_lifetime(Duration::from_millis(300));
    let c = lock(&http, &fake, &token, 22, 1, "session-c").await;
    assert_eq!(c["sessionId"], "session-c");
    assert!(fake.is_locked(22));
    let transaction = price(&http, &fake, &token, 22, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!fake.is_locked(22));
    let expired = reserve(&http, &fake, &token, "session-c", &transaction).await;
    assert_eq!(expired["reservationResult"], 0, "{expired}");
    let d = lock(&http, &fake, &token, 22, 1, "session-d").await;
    assert_eq!(d["sessionId"], "session-d", "{d}");
    assert_eq!(fake.reservations_on_slot(22).len(), 0);
}

#[tokio::test]
async fn golf_fake_lists_a_reservation_only_after_the_listing_delay() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(31, at(10, 0)));
    fake.set_listing_delay(Duration::from_secs(1));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;
    let done = book(&http, &fake, &token, 31, 1, "session-1").await;
    assert_eq!(done["reservationResult"], 1, "{done}");
    let id = done["reservationId"].as_i64().expect("id");
    assert_eq!(fake.reservations_of(FAKE_GOLFER_ID).len(), 1, "committed");
    assert!(listed(&http, &fake, &token).await.is_empty(), "not listed yet");
    assert!(fake.listed_reservations_of(FAKE_GOLFER_ID).is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(listed(&http, &fake, &token).await, [id]);
    assert_eq!(fake.listed_reservations_of(FAKE_GOLFER_ID).len(), 1);
}

#[tokio::test]
async fn golf_fake_commits_a_slow_reserve_after_the_client_gave_up() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(41, at(11, 0)));
    fake.add_slot(FakeSlot::new(42, at(11, 10)));
    let http = reqwest::Client::new();
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(150)).build().expect("client");
    let token = token(&http, &fake).await;

    // A one-off delay on the reserve.
    let locked = lock(&http, &fake, &token, 41, 2, "session-1").await;
    assert_eq!(locked["sessionId"], "session-1");
    let transaction = price(&http, &fake, &token, 41, 2).await;
    fake.fail(GolfStep::Reserve, GolfFault::Delay(Duration::from_millis(600)));
    let err = impatient
        .post(format!("{}{API}/ReserveTeeTimes", fake.url()))
        .bearer_auth(&token)
        .json(&reserve_body("session-1", &transaction))
        .send()
        .await
        .expect_err("the client gives up");
    assert!(err.is_timeout(), "{err}");
    assert!(fake.reservations().is_empty(), "not yet");
    wait_for(|| fake.reservations_on_slot(41).len() == 1).await;

    // A slow step (every request): the lock is taken although its client hung up.
    fake.set_latency(GolfStep::Lock, Duration::from_millis(400));
    let body = serde_json::json!({"teeSheetIds": [42], "golferId": FAKE_GOLFER_ID, "numberOfPlayer": 1,
        "sessionId": "session-2"});
    let err = impatient
        .post(format!("{}{API}/LockTeeTimes", fake.url()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect_err("the client gives up");
    assert!(err.is_timeout(), "{err}");
    wait_for(|| fake.is_locked(42)).await;
    fake.set_latency(GolfStep::Lock, Duration::ZERO);
    assert_eq!(lock(&http, &fake, &token, 42, 1, "session-3").await["error"], rez_testkit::golf::LOCK_HELD_ERROR);
}

#[tokio::test]
async fn golf_fake_limits_reservations_per_day_on_demand() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(51, at(7, 0)));
    fake.add_slot(FakeSlot::new(52, at(15, 0)));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;
    fake.limit_reservations_per_day(Some(1));
    assert_eq!(book(&http, &fake, &token, 51, 1, "session-1").await["reservationResult"], 1);
    let refused = lock(&http, &fake, &token, 52, 1, "session-2").await;
    assert_eq!(refused["warning"], rez_testkit::golf::ONE_PER_DAY_WARNING);
    assert_eq!(refused["teeSheetIds"], serde_json::json!([]));
    fake.limit_reservations_per_day(None);
    assert_eq!(book(&http, &fake, &token, 52, 1, "session-3").await["reservationResult"], 1);
}

/// Poll `done` for up to five seconds.
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within five seconds");
}

#[tokio::test]
async fn golf_fake_answers_reserves_as_told_and_numbers_its_course() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(61, at(7, 0)));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;
    fake.answer_reserves(ReserveAnswer::WithoutReservationId);
    let bare = book(&http, &fake, &token, 61, 1, "session-1").await;
    assert_eq!(bare, serde_json::json!({"reservationResult": 1}));
    fake.answer_reserves(ReserveAnswer::ResultCode(7));
    let odd = book(&http, &fake, &token, 61, 1, "session-2").await;
    assert_eq!((odd["reservationResult"].as_i64(), odd["reservationId"].as_i64()), (Some(7), Some(0)));
    assert_eq!(fake.reservations_on_slot(61).len(), 2, "both reserves were carried out");
    assert_eq!(listed(&http, &fake, &token).await.len(), 2);

    fake.set_course_number(3);
    assert_eq!(search(&http, &fake, &token, 1).await["messageKey"], "NO_TEETIMES", "courseIds=1 is another course");
    let other: Value = http
        .get(format!("{}{API}/TeeTimes?searchDate=Sat%20Jun%2014%202025&numberOfPlayer=1&courseIds=3", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!((other[0]["teeSheetId"].as_i64(), other[0]["courseId"].as_i64()), (Some(61), Some(3)), "{other}");
}

#[tokio::test]
async fn golf_fake_grants_one_of_many_simultaneous_locks() {
    let fake = FakeCpsGolf::start().await;
    fake.add_slot(FakeSlot::new(71, at(12, 0)));
    let http = reqwest::Client::new();
    let token = token(&http, &fake).await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (http, url, token) = (http.clone(), format!("{}{API}/LockTeeTimes", fake.url()), token.clone());
        attempts.spawn(async move {
            let body = serde_json::json!({"teeSheetIds": [71], "golferId": FAKE_GOLFER_ID, "numberOfPlayer": 1,
                "sessionId": format!("session-{i}")});
            let answer = http.post(url).bearer_auth(token).json(&body).send().await.expect("lock");
            answer.json::<Value>().await.expect("json")
        });
    }
    let answers = attempts.join_all().await;
    let granted: Vec<&Value> = answers.iter().filter(|a| a["sessionId"].is_string()).collect();
    assert_eq!(granted.len(), 1, "{answers:?}");
    let refused = answers.iter().filter(|a| a["error"] == rez_testkit::golf::LOCK_HELD_ERROR).count();
    assert_eq!(refused, 19);
}
