//! The dashboard through the api function behind API Gateway: a page without a session
//! goes to sign-in, signing in with the admin key sets a `Secure` session cookie (API
//! Gateway is https only), and the cookie opens the pages. Every instance derives the same
//! session secret from the admin key, so a cookie set by one works on any other: a second
//! instance of the function accepts it.

use crate::common;

use common::{ADMIN_KEY, API_HOST, Deployment, http_event};
use serde_json::{Value, json};

/// A browser's request: a form body, a same-origin `Origin`, and the session cookie.
fn browser_event(method: &str, path: &str, form: Option<&str>, cookie: Option<&str>) -> Value {
    let mut e = http_event(method, path, None, None);
    e["headers"]["accept"] = json!("text/html");
    e["headers"]["origin"] = json!(format!("https://{API_HOST}"));
    if let Some(f) = form {
        e["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
        e["body"] = json!(f);
    }
    if let Some(c) = cookie {
        e["cookies"] = json!([c]);
    }
    e
}

fn header<'a>(resp: &'a Value, name: &str) -> Option<&'a str> {
    resp["headers"][name].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_serves_the_dashboard_to_a_signed_in_admin() {
    let d = Deployment::new().await;
    let api = d.start("api").await;

    let resp = api.invoke(browser_event("GET", "/", None, None)).await;
    assert_eq!(resp["statusCode"], 303, "{resp}");
    assert_eq!(header(&resp, "location"), Some("/signin"));

    let resp = api.invoke(browser_event("POST", "/signin", Some(&format!("key={ADMIN_KEY}")), None)).await;
    assert_eq!(resp["statusCode"], 303, "{resp}");
    let set = resp["cookies"][0].as_str().or_else(|| header(&resp, "set-cookie")).expect("a session cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(set.contains(attr), "{attr}: {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();

    let resp = api.invoke(browser_event("GET", "/", None, Some(&cookie))).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let body = resp["body"].as_str().unwrap_or("");
    assert!(body.contains("Overview"), "{body}");
    assert!(header(&resp, "content-security-policy").is_some_and(|c| c.contains("default-src 'self'")));

    // Another instance of the function (its own process) accepts the same cookie.
    let other = d.start("api").await;
    let resp = other.invoke(browser_event("GET", "/approvals", None, Some(&cookie))).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let resp = other.invoke(browser_event("GET", "/", None, Some("rez_session=forged"))).await;
    assert_eq!(resp["statusCode"], 303, "a forged cookie is sent to sign in");
}
