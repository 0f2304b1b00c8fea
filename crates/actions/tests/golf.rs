//! The cps.golf client, token handling, JWT verification and booking against the fake
//! cps.golf course of `rez-testkit`, reached through rez-http's test-only loopback
//! allowance. Exactly-once booking under faults is in `golf_booking.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rez_actions::golf::summary::{booking_text, reservations_text, tee_times_text};
use rez_actions::golf::{
    AuthConfig, AuthError, Booker, BookingError, BookingKey, BookingLedger, BookingPath, Course, CourseError, Courses,
    GolfClient, GolfConfig, GolfCredentials, GolfError, Holes, InMemoryLedger, JwtRejection, LedgerState,
    SearchRequest,
};
use rez_http::{HttpClient, OutboundPolicy, RetryPolicy};
use rez_testkit::golf::{FAKE_ACCT, FAKE_GOLFER_ID, FAKE_PASSWORD, FAKE_USERNAME};
use rez_testkit::{FakeCpsGolf, FakeSlot, GolfFault, GolfStep, TokenKind};

const ALL_STEPS: [GolfStep; 7] = [
    GolfStep::Token,
    GolfStep::Jwks,
    GolfStep::TeeTimes,
    GolfStep::Lock,
    GolfStep::Price,
    GolfStep::Reserve,
    GolfStep::Reservations,
];

fn course(fake: &FakeCpsGolf) -> Course {
    let mut c = Courses::builtin().expect("courses").find("birdsfoot").expect("birdsfoot").clone();
    c.origin = fake.url();
    c
}

fn creds() -> GolfCredentials {
    GolfCredentials::new(FAKE_USERNAME, FAKE_PASSWORD)
}

fn config() -> GolfConfig {
    GolfConfig {
        auth: AuthConfig::default(),
        retry: RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
    }
}

fn client_with(config: GolfConfig, timeout: Duration) -> GolfClient {
    let policy = OutboundPolicy { total_timeout: timeout, ..OutboundPolicy::loopback_for_tests() };
    GolfClient::new(HttpClient::new(policy).expect("http client"), config)
}

fn client() -> GolfClient {
    client_with(config(), Duration::from_secs(10))
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, m, d).expect("date")
}

fn at(d: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    d.and_hms_opt(h, m, 0).expect("time")
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

fn key(k: &str) -> BookingKey {
    BookingKey::new(k).expect("key")
}

fn total_requests(fake: &FakeCpsGolf) -> usize {
    ALL_STEPS.iter().map(|s| fake.count(*s)).sum()
}

/// Wait (up to five seconds) until no lock holds the tee time.
fn rejection(err: &GolfError) -> Option<&JwtRejection> {
    match err {
        GolfError::Auth(AuthError::Rejected(r)) => Some(r),
        _ => None,
    }
}

// ---- search ------------------------------------------------------------------------------

#[tokio::test]
async fn search_filters_window_and_players_and_sorts() {
    let fake = FakeCpsGolf::start().await;
    let d = date(6, 14);
    fake.add_slot(FakeSlot::new(105, at(d, 12, 0)));
    fake.add_slot(FakeSlot::new(104, at(d, 9, 30)));
    fake.add_slot(FakeSlot { max_players: 2, ..FakeSlot::new(103, at(d, 8, 0)) });
    fake.add_slot(FakeSlot::new(102, at(d, 8, 10)));
    fake.add_slot(FakeSlot::new(101, at(d, 7, 0)));
    fake.add_slot(FakeSlot::new(106, at(date(6, 15), 8, 30)));
    let c = course(&fake);
    let req = SearchRequest::new(d, 4).window(hm(7, 30), hm(10, 0));
    let slots = client().search_tee_times(&c, &creds(), &req).await.expect("search");
    let got: Vec<(i64, String)> =
        slots.iter().map(|s| (s.tee_sheet_id, s.start_time.format("%H:%M").to_string())).collect();
    assert_eq!(got, [(102, "08:10".to_owned()), (104, "09:30".to_owned())]);
    assert_eq!(slots[0].price, Some(45.0));
    assert_eq!(slots[0].course_name, "Birdsfoot Golf Course");
    assert_eq!(slots[0].holes, vec![18]);

    let r = &fake.requests(GolfStep::TeeTimes)[0];
    let q = r.query.as_deref().expect("query");
    assert!(q.starts_with("searchDate=Sat%20Jun%2014%202025&holes=0&numberOfPlayer=4&courseIds=1&"), "{q}");
    assert!(q.contains("teeSheetSearchView=5&classCode=R&defaultOnlineRate=N"), "{q}");
    assert_eq!(r.header("client-id"), Some("onlineresweb"));
    assert_eq!(r.header("origin"), Some(fake.url().as_str()));
    assert_eq!(r.header("referer"), Some(format!("{}/onlineresweb/search-teetime", fake.url()).as_str()));
    assert_eq!(r.header("x-websiteid"), Some("94fa26b7-2e63-4cbc-99e5-08d7d7f41522"));
    assert_eq!(r.header("x-timezone-offset"), Some("240"));
    assert_eq!(r.header("x-timezoneid"), Some("America/New_York"));
    assert!(r.header("authorization").is_some_and(|a| a.starts_with("Bearer ey")));
    // The search text names the course and lists the matches in order.
    let text = tee_times_text(&c, &req, &slots, 5);
    assert!(
        text.contains("Birdsfoot Golf Course") && text.contains("1. 8:10 AM") && text.contains("2. 9:30 AM"),
        "{text}"
    );
}

#[tokio::test]
async fn search_holes_and_no_tee_times() {
    let fake = FakeCpsGolf::start().await;
    let d = date(6, 14);
    fake.add_slot(FakeSlot { holes_display: "9/18".into(), ..FakeSlot::new(1, at(d, 15, 0)) });
    fake.add_slot(FakeSlot::new(2, at(d, 15, 10)));
    let c = course(&fake);
    let nine = client().search_tee_times(&c, &creds(), &SearchRequest::new(d, 2).holes(Holes::Nine)).await;
    assert_eq!(nine.expect("nine").iter().map(|s| s.tee_sheet_id).collect::<Vec<_>>(), [1]);
    // A day without tee times: cps.golf's NO_TEETIMES answer is an empty result.
    let none = client().search_tee_times(&c, &creds(), &SearchRequest::new(date(6, 20), 2)).await.expect("none");
    assert!(none.is_empty());
    let text = tee_times_text(&c, &SearchRequest::new(date(6, 20), 2), &none, 5);
    assert!(text.contains("No tee times"), "{text}");
    // Invalid requests never reach the network.
    let before = total_requests(&fake);
    for bad in
        [SearchRequest::new(d, 0), SearchRequest::new(d, 5), SearchRequest::new(d, 2).window(hm(10, 0), hm(9, 0))]
    {
        let err = client().search_tee_times(&c, &creds(), &bad).await.expect_err("invalid");
        assert!(matches!(err, GolfError::InvalidRequest(_)), "{err:?}");
    }
    assert_eq!(total_requests(&fake), before);
}

#[tokio::test]
async fn timezone_headers_follow_the_course_zone_per_date() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    let client = client();
    for (d, want) in [(date(1, 15), "300"), (date(7, 15), "240"), (date(11, 3), "300"), (date(3, 10), "240")] {
        client.search_tee_times(&c, &creds(), &SearchRequest::new(d, 1)).await.expect("search");
        let r = fake.requests(GolfStep::TeeTimes).pop().expect("request");
        assert_eq!(r.header("x-timezone-offset"), Some(want), "{d}");
        assert_eq!(r.header("x-timezoneid"), Some("America/New_York"));
    }
    // A winter booking sends the winter offset with the checkout steps.
    let winter = date(1, 15);
    fake.add_slot(FakeSlot::new(7, at(winter, 10, 0)));
    let booker = Booker::new(client, Arc::new(InMemoryLedger::new()));
    booker.book(&key("tz"), &c, &creds(), 7, 1, Holes::Eighteen).await.expect("book");
    for step in [GolfStep::Price, GolfStep::Reserve] {
        let r = &fake.requests(step)[0];
        assert_eq!(r.header("x-timezone-offset"), Some("300"), "{step:?}");
        assert_eq!(r.header("x-timezoneid"), Some("America/New_York"));
        assert_eq!(r.header("x-siteid"), Some("3"));
    }
}

// ---- booking ---------------------------------------------------------------------------------

#[tokio::test]
async fn booking_prices_every_participant_and_uses_verified_identity() {
    let fake = FakeCpsGolf::start().await;
    let d = date(6, 14);
    fake.add_slot(FakeSlot::new(201, at(d, 8, 10)));
    fake.add_slot(FakeSlot::new(202, at(d, 8, 20)));
    let c = course(&fake);
    let booker = Booker::new(client(), Arc::new(InMemoryLedger::new()));
    let out = booker.book(&key("msg_four"), &c, &creds(), 201, 4, Holes::Eighteen).await.expect("book");
    assert_eq!(out.path, BookingPath::Reserved);
    let conf = &out.confirmation;
    assert_eq!((conf.tee_sheet_id, conf.players, conf.holes), (201, 4, 18));
    assert_eq!(conf.start_time, at(d, 8, 10));
    assert_eq!(conf.total, Some(180.0));

    let pricing = fake.pricing_calls();
    assert_eq!(pricing.len(), 1);
    let p = &pricing[0];
    assert_eq!((p.selected_tee_sheet_id, p.number_of_player), (201, 4));
    assert_eq!(p.participants.len(), 4, "every player is priced");
    for (i, part) in p.participants.iter().enumerate() {
        assert_eq!(part["participantNo"], i + 1);
        assert_eq!(part["teeSheetId"], 201);
        assert_eq!(part["golferId"], FAKE_GOLFER_ID);
        assert_eq!(part["acct"], FAKE_ACCT);
        assert_eq!(part["isUnAssignedPlayer"], i > 0);
    }
    let lock = fake.requests(GolfStep::Lock)[0].json();
    assert_eq!(lock["golferId"], FAKE_GOLFER_ID);
    assert_eq!(lock["email"], FAKE_USERNAME);
    assert_eq!(lock["numberOfPlayer"], 4);
    assert_eq!(lock["action"], "Online Reservation V5");
    let reserve = fake.requests(GolfStep::Reserve)[0].json();
    assert_eq!(reserve["finalizeSaleModel"]["acct"], FAKE_ACCT);
    assert_eq!(reserve["finalizeSaleModel"]["creditCardInfo"]["email"], FAKE_USERNAME);
    assert_eq!(
        reserve["cancelReservationLink"],
        format!("{}/onlineresweb/auth/verify-email?returnUrl=cancel-booking", fake.url())
    );
    assert_eq!(fake.requests(GolfStep::Reserve)[0].header("x-websiteid"), Some("94fa26b7-2e63-4cbc-99e5-08d7d7f41522"));

    // The booked slot leaves the search and appears among the reservations.
    let left = booker.client().search_tee_times(&c, &creds(), &SearchRequest::new(d, 1)).await.expect("search");
    assert_eq!(left.iter().map(|s| s.tee_sheet_id).collect::<Vec<_>>(), [202]);
    let mine = booker.client().fetch_reservations(&c, &creds()).await.expect("reservations");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].players, Some(4));
    assert_eq!(mine[0].confirmation_key.as_deref(), Some(conf.confirmation_key.as_str()));
    let r = &fake.requests(GolfStep::Reservations)[0];
    assert!(r.query.as_deref().is_some_and(|q| q.contains(&format!("golferId={FAKE_GOLFER_ID}"))));
    assert_eq!(r.header("referer"), Some(format!("{}/onlineresweb/my-reservation", fake.url()).as_str()));
    assert_eq!(r.header("client-id"), Some("onlineresweb"));

    let text = booking_text(&c, &out);
    assert!(text.contains("Birdsfoot Golf Course") && text.contains(&conf.confirmation_key), "{text}");
    assert!(text.contains("4 players, 18 holes") && text.contains("Total: $180.00"), "{text}");
    let list = reservations_text(&c, &mine, 10);
    assert!(list.contains("Upcoming reservations at Birdsfoot Golf Course") && list.contains("4 players"), "{list}");
}

#[tokio::test]
async fn auto_book_takes_the_earliest_slot_not_the_first_in_api_order() {
    let fake = FakeCpsGolf::start().await;
    let d = date(6, 14);
    fake.add_slot(FakeSlot::new(303, at(d, 10, 0)));
    fake.add_slot(FakeSlot::new(302, at(d, 9, 0)));
    fake.add_slot(FakeSlot::new(309, at(d, 7, 0)));
    fake.add_slot(FakeSlot::new(301, at(d, 8, 10)));
    let c = course(&fake);
    let booker = Booker::new(client(), Arc::new(InMemoryLedger::new()));
    let search = SearchRequest::new(d, 2).window(hm(8, 0), hm(11, 0));
    let out = booker.auto_book(&key("auto"), &c, &creds(), &search).await.expect("auto-book");
    assert_eq!(out.confirmation.tee_sheet_id, 301);
    assert_eq!(out.confirmation.start_time, at(d, 8, 10));
    assert_eq!(fake.reservations().len(), 1);
    assert_eq!(fake.reservations()[0].tee_sheet_id, 301);
    // Nothing in the window: reported, nothing locked.
    let none = SearchRequest::new(d, 2).window(hm(15, 0), hm(16, 0));
    let err = booker.auto_book(&key("auto-2"), &c, &creds(), &none).await.expect_err("empty window");
    assert!(matches!(err, BookingError::Golf(GolfError::NoTeeTimes(_))) && !err.is_transient(), "{err:?}");
    assert_eq!(fake.count(GolfStep::Lock), 1);
}

// ---- tokens --------------------------------------------------------------------------------

fn token_form(fake: &FakeCpsGolf, i: usize) -> std::collections::HashMap<String, String> {
    let body = fake.requests(GolfStep::Token)[i].body.clone();
    url::form_urlencoded::parse(&body).into_owned().collect()
}

#[tokio::test]
async fn token_request_names_the_course_client_when_the_credentials_do_not() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    client().session(&c, &creds()).await.expect("signed in as the course's web app");
    let form = token_form(&fake, 0);
    assert_eq!(form.get("client_id").map(String::as_str), Some("onlineresweb"));
    assert_eq!(form.get("grant_type").map(String::as_str), Some("password"));
    assert_eq!(form.get("scope"), Some(&c.scope));
    assert!(!form.contains_key("client_secret"));

    // Credentials with a client of their own send theirs.
    fake.add_client_id("rez-agent");
    let own = GolfCredentials { client_id: Some("rez-agent".into()), client_secret: Some("s3cret".into()), ..creds() };
    client().session(&c, &own).await.expect("signed in as its own client");
    let form = token_form(&fake, 1);
    assert_eq!(form.get("client_id").map(String::as_str), Some("rez-agent"));
    assert_eq!(form.get("client_secret").map(String::as_str), Some("s3cret"));

    // A client the identity server does not know is refused for good.
    let mut unknown = c.clone();
    unknown.client_id = "not-registered".into();
    let err = client().session(&unknown, &creds()).await.expect_err("unknown client");
    assert!(
        matches!(&err, GolfError::Auth(AuthError::TokenEndpoint { status: 400, detail }) if detail.contains("invalid_client")),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn token_rejected_mid_flow_is_refreshed_once() {
    let fake = FakeCpsGolf::start().await;
    let d = date(6, 14);
    fake.add_slot(FakeSlot::new(701, at(d, 8, 10)));
    let c = course(&fake);
    let client = client();
    let req = SearchRequest::new(d, 1);
    client.search_tee_times(&c, &creds(), &req).await.expect("first search");
    assert_eq!(fake.tokens_issued(), 1);
    fake.revoke_tokens();
    let slots = client.search_tee_times(&c, &creds(), &req).await.expect("search after revocation");
    assert_eq!(slots.len(), 1);
    assert_eq!(fake.tokens_issued(), 2, "exactly one refresh");
    assert_eq!(fake.count(GolfStep::TeeTimes), 3, "the 401 and one repeat");
    // A 401 that persists after the refresh is reported, not looped on.
    fake.fail_times(GolfStep::TeeTimes, GolfFault::Status(401), 2);
    let err = client.search_tee_times(&c, &creds(), &req).await.expect_err("401 twice");
    assert!(matches!(err, GolfError::Status { status: 401, .. }), "{err:?}");
    assert_eq!(fake.tokens_issued(), 3);
    assert_eq!(fake.count(GolfStep::TeeTimes), 5);
    // Revoked between two operations of an auto-booking: the search refreshes, the
    // booking steps use the new token.
    fake.revoke_tokens();
    let booker = Booker::new(client.clone(), Arc::new(InMemoryLedger::new()));
    let out = booker.auto_book(&key("mid-flow"), &c, &creds(), &req).await.expect("auto-book after revocation");
    assert_eq!(out.confirmation.tee_sheet_id, 701);
    assert_eq!(fake.tokens_issued(), 4);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let fake = FakeCpsGolf::start().await;
    fake.set_token_lifetime(Duration::from_secs(3));
    let c = course(&fake);
    let config =
        GolfConfig { auth: AuthConfig { refresh_margin: Duration::from_secs(2), ..AuthConfig::default() }, ..config() };
    let client = client_with(config, Duration::from_secs(10));
    let req = SearchRequest::new(date(6, 14), 1);
    client.search_tee_times(&c, &creds(), &req).await.expect("first");
    client.search_tee_times(&c, &creds(), &req).await.expect("cached");
    assert_eq!(fake.tokens_issued(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.search_tee_times(&c, &creds(), &req).await.expect("refreshed");
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(fake.count(GolfStep::TeeTimes), 3, "refreshed ahead of time, no 401");
}

#[tokio::test]
async fn concurrent_calls_share_one_token_refresh() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    let client = client();
    let req = SearchRequest::new(date(6, 14), 1);
    let run = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, c, req) = (client.clone(), c.clone(), req.clone());
                tokio::spawn(async move { client.search_tee_times(&c, &creds(), &req).await })
            })
            .collect();
        async move {
            for t in tasks {
                t.await.expect("task").expect("search");
            }
        }
    };
    run(8).await;
    assert_eq!(fake.tokens_issued(), 1, "one sign-in for 8 concurrent cold calls");
    assert_eq!(fake.count(GolfStep::Jwks), 1);
    fake.revoke_tokens();
    run(8).await;
    assert_eq!(fake.tokens_issued(), 2, "one refresh for 8 concurrent 401s");
}

#[tokio::test]
async fn wrong_password_is_permanent() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    let err = client().session(&c, &GolfCredentials::new(FAKE_USERNAME, "nope")).await.expect_err("wrong password");
    assert!(matches!(err, GolfError::Auth(AuthError::InvalidCredentials(_))), "{err:?}");
    assert!(!err.is_transient());
    assert!(!format!("{err} {err:?}").contains("nope"));
    fake.fail(GolfStep::Token, GolfFault::Status(503));
    let err = client().session(&c, &creds()).await.expect_err("503");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(fake.count(GolfStep::Token), 2, "the password grant is not retried");
}

// ---- JWT verification --------------------------------------------------------------------

#[tokio::test]
async fn identity_comes_from_the_verified_token() {
    let fake = FakeCpsGolf::start().await;
    let s = client().session(&course(&fake), &creds()).await.expect("session");
    assert_eq!(s.identity.golfer_id, FAKE_GOLFER_ID);
    assert_eq!(s.identity.acct, FAKE_ACCT);
    assert_eq!(s.identity.email, FAKE_USERNAME);
    assert!(!format!("{s:?}").contains(s.token.secret()), "the token stays out of Debug");
    let form = String::from_utf8(fake.requests(GolfStep::Token)[0].body.to_vec()).expect("utf8");
    assert!(form.contains("grant_type=password") && form.contains("scope=openid+profile+onlinereservation"), "{form}");
    let r = &fake.requests(GolfStep::Token)[0];
    assert_eq!(r.header("client-id"), Some("onlineresweb"));
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
}

#[tokio::test]
async fn key_rotation_refetches_the_jwks_once() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    let client = client();
    let req = SearchRequest::new(date(6, 14), 1);
    client.search_tee_times(&c, &creds(), &req).await.expect("before rotation");
    assert_eq!(fake.count(GolfStep::Jwks), 1);
    let new_kid = fake.rotate_keys();
    assert_eq!(fake.current_kid(), new_kid);
    fake.revoke_tokens();
    client.search_tee_times(&c, &creds(), &req).await.expect("after rotation");
    assert_eq!(fake.count(GolfStep::Jwks), 2, "unknown kid → one refetch");
    fake.revoke_tokens();
    client.search_tee_times(&c, &creds(), &req).await.expect("again");
    assert_eq!(fake.count(GolfStep::Jwks), 2, "the new key is cached");
}

#[tokio::test]
async fn unknown_kid_after_refetch_is_rejected() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    let client = client();
    client.session(&c, &creds()).await.expect("signed in");
    fake.issue_tokens(TokenKind::UnknownKid);
    fake.revoke_tokens();
    let err =
        client.search_tee_times(&c, &creds(), &SearchRequest::new(date(6, 14), 1)).await.expect_err("unknown kid");
    assert!(matches!(rejection(&err), Some(JwtRejection::UnknownKid(_))), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(fake.count(GolfStep::Jwks), 2, "refetched exactly once");
    // With a cold cache the first fetch is the only one.
    let fresh = client_with(config(), Duration::from_secs(10));
    let err = fresh.session(&c, &creds()).await.expect_err("unknown kid");
    assert!(matches!(rejection(&err), Some(JwtRejection::UnknownKid(_))), "{err:?}");
    assert_eq!(fake.count(GolfStep::Jwks), 3);
}

#[tokio::test]
async fn forged_and_weak_tokens_are_rejected() {
    let fake = FakeCpsGolf::start().await;
    let c = course(&fake);
    for (kind, check) in [
        (TokenKind::Tampered, (|r: &JwtRejection| *r == JwtRejection::BadSignature) as fn(&JwtRejection) -> bool),
        (TokenKind::Expired, |r| *r == JwtRejection::Expired),
        (TokenKind::Hs256, |r| *r == JwtRejection::Algorithm("HS256".into())),
        (TokenKind::AlgNone, |r| *r == JwtRejection::Algorithm("none".into())),
        (TokenKind::MissingKid, |r| *r == JwtRejection::MissingKid),
    ] {
        fake.issue_tokens(kind);
        let jwks_before = fake.count(GolfStep::Jwks);
        let err = client().session(&c, &creds()).await.expect_err("rejected");
        let r = rejection(&err).unwrap_or_else(|| panic!("{kind:?}: unexpected {err:?}"));
        assert!(check(r), "{kind:?}: {r:?}");
        assert!(!err.is_transient());
        if matches!(kind, TokenKind::Hs256 | TokenKind::AlgNone | TokenKind::MissingKid) {
            assert_eq!(fake.count(GolfStep::Jwks), jwks_before, "{kind:?} refused before any key lookup");
        }
    }
    assert_eq!(fake.count(GolfStep::TeeTimes), 0);
}

// ---- course configuration ----------------------------------------------------------------

#[test]
fn user_course_file_adds_and_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("courses.yaml");
    std::fs::write(
        &path,
        r#"
courses:
  - id: birdsfoot
    course_id: 1
    name: Birdsfoot (renamed)
    address: 225 Furnace Run Rd, Freeport, PA 16229
    latitude: 40.72
    longitude: -79.65
    time_zone: America/New_York
    origin: https://birdsfoot.cps.golf
    client_id: onlineresweb
    website_id: 94fa26b7-2e63-4cbc-99e5-08d7d7f41522
    scope: openid profile onlinereservation
  - id: pebble
    course_id: 9
    name: Pebble Creek
    address: 1 Main St, Somewhere, CO
    latitude: 39.7
    longitude: -105.0
    time_zone: America/Denver
    origin: https://tee.pebble.example
    client_id: onlineresweb
    website_id: 11111111-2222-3333-4444-555555555555
    scope: openid profile onlinereservation
    paths:
      tee_times: /api/TeeTimes
"#,
    )
    .expect("write");
    let courses = Courses::load_with_overrides(Some(&path)).expect("load");
    assert_eq!(courses.list().len(), 3);
    assert_eq!(courses.find("birdsfoot").expect("b").name, "Birdsfoot (renamed)");
    let p = courses.find("pebble creek").expect("pebble");
    assert_eq!(p.paths.tee_times, "/api/TeeTimes");
    assert_eq!(p.paths.token, "/identityapi/connect/token", "unset paths keep their defaults");
    assert_eq!(p.timezone_offset_on(date(7, 1)).expect("offset"), 360);
    assert_eq!(Courses::load_with_overrides(None).expect("builtin").list().len(), 2);

    let bad = |origin: &str, tz: &str| {
        format!(
            "courses:\n  - {{id: x, course_id: 5, name: X, address: A, latitude: 1, longitude: 1, time_zone: {tz}, \
             origin: \"{origin}\", client_id: c, website_id: w, scope: s}}\n"
        )
    };
    let builtin = || Courses::builtin().expect("builtin");
    for (yaml, what) in [
        (bad("http://x.cps.golf", "UTC"), "plain http"),
        (bad("https://x.cps.golf/path", "UTC"), "a path"),
        (bad("https://user:pw@x.cps.golf", "UTC"), "credentials"),
        (bad("https://x.cps.golf", "Mars/Olympus"), "a time zone"),
        ("courses:\n  - {id: x}\n".to_owned(), "missing fields"),
    ] {
        let err = builtin().with_overrides_yaml(&yaml, "user.yaml").expect_err(what);
        assert!(matches!(err, CourseError::Invalid { .. } | CourseError::Parse { .. }), "{what}: {err:?}");
    }
    let dup =
        format!("{}{}", bad("https://x.cps.golf", "UTC"), bad("https://x.cps.golf", "UTC").replace("courses:\n", ""));
    assert!(matches!(builtin().with_overrides_yaml(&dup, "user.yaml"), Err(CourseError::DuplicateId(_))));
    // Course numbers are per site: another site may use Totteridge's 2, Totteridge's own
    // site may not configure its 2 twice.
    let other_site = bad("https://x.cps.golf", "UTC").replace("course_id: 5", "course_id: 2");
    assert_eq!(builtin().with_overrides_yaml(&other_site, "user.yaml").expect("per site").list().len(), 3);
    let clash = bad("https://Totteridge.cps.golf/", "UTC").replace("course_id: 5", "course_id: 2");
    assert!(matches!(
        builtin().with_overrides_yaml(&clash, "user.yaml"),
        Err(CourseError::DuplicateCourse { course_id: 2, ref origin }) if origin == "https://totteridge.cps.golf"
    ));
    assert!(matches!(
        Courses::load_with_overrides(Some(&dir.path().join("missing.yaml"))),
        Err(CourseError::Read { .. })
    ));
}

#[tokio::test]
async fn course_origin_must_pass_the_outbound_policy() {
    // Production policy: only *.cps.golf; a course pointing elsewhere is refused.
    let policy = OutboundPolicy::allowing(["*.cps.golf"]).expect("policy");
    let client = GolfClient::new(HttpClient::new(policy).expect("http"), config());
    let mut c = Courses::builtin().expect("courses").find("totteridge").expect("t").clone();
    c.origin = "https://127.0.0.1:9".into();
    let err = client.session(&c, &creds()).await.expect_err("refused");
    assert!(matches!(&err, GolfError::Auth(AuthError::Http(e)) if e.is_refused()), "{err:?}");
}

/// Two sites that both number their course 1, configured side by side.
fn two_sites_numbered_one(dir: &std::path::Path, east: &FakeCpsGolf, west: &FakeCpsGolf) -> Courses {
    let course = |id: &str, name: &str, origin: &str| {
        format!(
            "  - {{id: {id}, course_id: 1, name: {name}, address: A, latitude: 40, longitude: -80, \
             time_zone: America/New_York, origin: \"{origin}\", client_id: onlineresweb, website_id: w, \
             scope: openid onlinereservation}}\n"
        )
    };
    let path = dir.join("courses.yaml");
    let yaml =
        format!("courses:\n{}{}", course("east", "East Links", &east.url()), course("west", "West Links", &west.url()));
    std::fs::write(&path, yaml).expect("write");
    Courses::load_with_overrides_opts(Some(&path), true).expect("two sites may both use course number 1")
}

#[tokio::test]
async fn course_numbers_are_per_site_and_courses_are_known_by_id() {
    let (east, west) = (FakeCpsGolf::start().await, FakeCpsGolf::start().await);
    let d = date(6, 14);
    east.add_slot(FakeSlot::new(901, at(d, 8, 0)));
    west.add_slot(FakeSlot::new(902, at(d, 9, 0)));
    let dir = tempfile::tempdir().expect("tempdir");
    let courses = two_sites_numbered_one(dir.path(), &east, &west);
    assert!(matches!(courses.find("1"), Err(CourseError::NotFound(_))), "the number names no course");
    let (e, w) = (courses.find("east").expect("east").clone(), courses.find("west").expect("west").clone());
    assert_eq!((e.course_id, w.course_id), (1, 1));

    let client = client();
    let search = SearchRequest::new(d, 1);
    let found = |slots: Vec<rez_actions::golf::TeeTimeSlot>| slots.iter().map(|s| s.tee_sheet_id).collect::<Vec<_>>();
    assert_eq!(found(client.search_tee_times(&e, &creds(), &search).await.expect("east")), [901]);
    assert_eq!(found(client.search_tee_times(&w, &creds(), &search).await.expect("west")), [902]);
    for fake in [&east, &west] {
        let query = fake.requests(GolfStep::TeeTimes)[0].query.clone().unwrap_or_default();
        assert!(query.contains("courseIds=1&"), "{query}");
    }

    // Bookings are keyed and recorded by the course id, not the shared number.
    let ledger = Arc::new(InMemoryLedger::new());
    let booker = Booker::new(client, ledger.clone());
    let out = booker.book(&key("msg_west"), &w, &creds(), 902, 1, Holes::Eighteen).await.expect("book west");
    assert_eq!(out.confirmation.course_id, "west");
    assert_eq!((east.reservations().len(), west.reservations().len()), (0, 1));
    let row = ledger.get(&key("msg_west")).await.expect("ledger").expect("row");
    assert!(matches!(&row.state, LedgerState::Confirmed { confirmation } if confirmation.course_id == "west"));
    assert_eq!(row.intent.map(|i| i.course_id).as_deref(), Some("west"));
}
