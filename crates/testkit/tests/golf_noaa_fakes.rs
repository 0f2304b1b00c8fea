//! The fake NOAA and cps.golf servers checked with a plain HTTP client, so their wire
//! shapes do not depend on rez_agent's own clients being right.

use base64::Engine as _;
use rez_testkit::golf::{FAKE_ACCT, FAKE_GOLFER_ID, FAKE_PASSWORD, FAKE_USERNAME};
use rez_testkit::{FakeCpsGolf, FakeNoaa, GolfFault, GolfStep};
use serde_json::Value;

fn part(token: &str, i: usize) -> Value {
    let seg = token.split('.').nth(i).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(seg).expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

async fn sign_in(http: &reqwest::Client, fake: &FakeCpsGolf, grant: &str) -> reqwest::Response {
    let form = format!(
        "grant_type={grant}&username={}&password={}&scope=openid%20onlinereservation",
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
