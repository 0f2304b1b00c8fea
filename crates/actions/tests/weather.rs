//! The NOAA weather client against the fake NOAA of `rez-testkit`, reached through
//! rez-http's test-only loopback allowance.

use std::time::Duration;

use chrono::{FixedOffset, NaiveDate, TimeZone};
use rez_actions::weather::{WeatherClient, WeatherConfig, WeatherError, summarize, summarize_per_day};
use rez_http::{HttpClient, OutboundPolicy, RetryPolicy};
use rez_testkit::FakeNoaa;

const UA: &str = "rez_agent-tests (ops@example.com)";
const LAT: f64 = 40.357_810_7;
const LON: f64 = -79.506_593_8;

fn client(fake: &FakeNoaa) -> WeatherClient {
    let http = HttpClient::new(OutboundPolicy::loopback_for_tests()).expect("http client");
    let config = WeatherConfig {
        retry: RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
        ..WeatherConfig::new(UA).with_base_url(fake.url())
    };
    WeatherClient::new(config, http).expect("weather client")
}

fn june_14() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 14).expect("date")
}

#[tokio::test]
async fn forecast_has_noaa_fields_and_user_agent() {
    let fake = FakeNoaa::start().await;
    fake.set_first_date(june_14());
    let c = client(&fake);
    let f = c.forecast(LAT, LON).await.expect("forecast");
    assert_eq!(f.periods.len(), 14);
    let first = &f.periods[0];
    assert_eq!(first.name, "Today");
    assert!(first.is_daytime);
    assert_eq!(first.temperature, Some(70));
    assert_eq!(first.temperature_unit, "F");
    assert_eq!(first.wind_speed, "5 to 10 mph");
    assert_eq!(first.wind_direction, "SW");
    assert_eq!(first.short_forecast, "Sunny");
    assert_eq!(first.probability_of_precipitation, None);
    assert_eq!(f.periods[1].probability_of_precipitation, Some(10));
    assert_eq!(f.periods[1].temperature_trend.as_deref(), Some("falling"));
    assert_eq!(first.start_time.to_rfc3339(), "2025-06-14T06:00:00-04:00");
    // The points lookup uses NOAA's 4-decimal form.
    assert_eq!(fake.paths()[0], "/points/40.3578,-79.5066");
    assert_eq!(fake.paths()[1], "/gridpoints/PBZ/95,64/forecast");
    let uas = fake.user_agents();
    assert_eq!(uas.len(), 2);
    assert!(uas.iter().all(|ua| ua.as_deref() == Some(UA)), "{uas:?}");
    // The structured forecast serialises for the result record.
    let json = serde_json::to_value(&f).expect("json");
    assert_eq!(json["periods"][0]["short_forecast"], "Sunny");
}

#[tokio::test]
async fn points_lookup_is_cached() {
    let fake = FakeNoaa::start().await;
    let c = client(&fake);
    c.forecast(LAT, LON).await.expect("first");
    c.forecast(LAT, LON).await.expect("second");
    c.hourly_forecast(LAT, LON).await.expect("hourly");
    // Coordinates equal after rounding to 4 decimals share the entry.
    c.forecast(40.357_83, -79.506_62).await.expect("rounded");
    assert_eq!(fake.points_requests(), 1);
    assert_eq!(fake.forecast_requests(), 3);
    assert_eq!(fake.hourly_requests(), 1);
    c.forecast(40.44, -79.99).await.expect("other point");
    assert_eq!(fake.points_requests(), 2);
}

#[tokio::test]
async fn summary_shows_every_period_including_the_trailing_day() {
    let fake = FakeNoaa::start().await;
    fake.set_first_date(june_14());
    fake.start_with_night(true);
    let f = client(&fake).forecast(LAT, LON).await.expect("forecast");
    assert_eq!(f.periods.len(), 14);
    assert_eq!(f.periods[0].name, "Tonight");
    let text = summarize(&f, None);
    for p in &f.periods {
        assert!(text.contains(&format!("{}:", p.name)), "{} missing from:\n{text}", p.name);
    }
    // Night first: the first day holds only the night; 14 periods span 8 calendar days and
    // the last one holds only its day period.
    let days = summarize_per_day(&f, None);
    assert_eq!(days.len(), 8, "{days:#?}");
    assert_eq!(days[0].0, "Weather: Saturday, Jun 14");
    assert_eq!(days[0].1.lines().count(), 1);
    assert!(days[0].1.starts_with("Tonight: "), "{}", days[0].1);
    for (_, body) in &days[1..7] {
        assert_eq!(body.lines().count(), 2, "{body}");
    }
    assert_eq!(days[7].0, "Weather: Saturday, Jun 21");
    assert_eq!(days[7].1.lines().count(), 1);
    assert!(days[7].1.starts_with("Saturday: "), "{}", days[7].1);
    assert!(text.contains("📅 Saturday, Jun 21\n  Saturday: "), "{text}");
}

#[tokio::test]
async fn day_first_summary_pairs_day_and_night() {
    let fake = FakeNoaa::start().await;
    fake.set_first_date(june_14());
    let f = client(&fake).forecast(LAT, LON).await.expect("forecast");
    let days = summarize_per_day(&f, None);
    assert_eq!(days.len(), 7);
    assert!(days.iter().all(|(_, b)| b.lines().count() == 2));
    assert!(days[0].1.starts_with("Today: 🌡️ 70°F"), "{}", days[0].1);
    assert!(days[0].1.contains("\nTonight: 🌡️ 50°F ↘️"), "{}", days[0].1);
    // A day limit keeps whole days.
    let two = summarize(&f, Some(2));
    assert_eq!(two.matches("📅").count(), 2, "{two}");
    assert!(two.contains("Sunday Night:"), "{two}");
    assert!(!two.contains("Monday"), "{two}");
    assert_eq!(summarize_per_day(&f, Some(3)).len(), 3);
}

#[tokio::test]
async fn hourly_around_a_tee_time() {
    let fake = FakeNoaa::start().await;
    fake.set_first_date(june_14());
    let c = client(&fake);
    let edt = FixedOffset::west_opt(4 * 3600).expect("offset");
    let tee = edt.with_ymd_and_hms(2025, 6, 15, 10, 10, 0).single().expect("tee time");
    let around = c.hourly_around(LAT, LON, &tee, 1, 2).await.expect("hourly");
    let starts: Vec<String> = around.iter().map(|p| p.start_time.format("%d %H:%M").to_string()).collect();
    assert_eq!(starts, ["15 09:00", "15 10:00", "15 11:00", "15 12:00"]);
    // The same instant in another zone selects the same hours.
    let utc = tee.with_timezone(&chrono::Utc);
    let again = c.hourly_around(LAT, LON, &utc, 1, 2).await.expect("hourly");
    assert_eq!(again, around);
    assert_eq!(fake.points_requests(), 1);
}

#[tokio::test]
async fn server_errors_are_reported_as_transient() {
    let fake = FakeNoaa::start().await;
    fake.fail_next(2, 503);
    let err = client(&fake).forecast(LAT, LON).await.expect_err("503 twice");
    match &err {
        WeatherError::Status { status: 503, what: "points lookup", detail } => {
            assert!(detail.contains("unexpected problem"), "{detail}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(fake.points_requests(), 2, "one retry within the call");
    // One failure is absorbed by the retry.
    fake.fail_next(1, 500);
    client(&fake).forecast(LAT, LON).await.expect("retried");
}

#[tokio::test]
async fn not_found_is_permanent_and_bad_input_is_refused() {
    let fake = FakeNoaa::start().await;
    fake.fail_next(1, 404);
    let err = client(&fake).forecast(LAT, LON).await.expect_err("404");
    assert!(matches!(err, WeatherError::Status { status: 404, .. }), "{err:?}");
    assert!(!err.is_transient());
    let err = client(&fake).forecast(91.0, 0.0).await.expect_err("latitude");
    assert!(matches!(err, WeatherError::InvalidCoordinates { .. }));
    let err = client(&fake).forecast(f64::NAN, 0.0).await.expect_err("nan");
    assert!(matches!(err, WeatherError::InvalidCoordinates { .. }));
}

#[tokio::test]
async fn forecast_urls_must_stay_on_the_noaa_origin() {
    let fake = FakeNoaa::start().await;
    // Configured as `localhost`, the fake answers with `127.0.0.1` URLs: another origin.
    let http = HttpClient::new(OutboundPolicy::loopback_for_tests()).expect("http client");
    let base = format!("http://localhost:{}", fake.addr().port());
    let c = WeatherClient::new(WeatherConfig::new(UA).with_base_url(base), http).expect("client");
    let err = c.forecast(LAT, LON).await.expect_err("foreign URL");
    assert!(matches!(err, WeatherError::ForeignUrl { .. }), "{err:?}");
    assert_eq!(fake.forecast_requests(), 0);
}

#[test]
fn configuration_is_checked() {
    let http = HttpClient::new(OutboundPolicy::allowing(["api.weather.gov"]).expect("policy")).expect("http");
    assert!(WeatherClient::new(WeatherConfig::new(UA), http.clone()).is_ok());
    let no_ua = WeatherClient::new(WeatherConfig::new("  "), http.clone()).expect_err("no UA");
    assert!(matches!(no_ua, WeatherError::Config(_)));
    let other_host = WeatherConfig::new(UA).with_base_url("https://evil.example");
    assert!(matches!(WeatherClient::new(other_host, http.clone()), Err(WeatherError::Config(_))));
    let plain_http = WeatherConfig::new(UA).with_base_url("http://api.weather.gov");
    assert!(matches!(WeatherClient::new(plain_http, http), Err(WeatherError::Config(_))));
}
