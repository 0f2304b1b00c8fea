//! The dashboard against the real `rez serve` on port 0: the session cookie, CSRF and
//! cross-site refusals, scopes (a `read` key sees no action and its posts get 403), a
//! revoked key's session refused at once, and every page rendering.

mod common;

use common::{ADMIN_KEY, TestServer};
use reqwest::redirect::Policy;
use rez_core::auth::Scope;
use serde_json::json;

/// `application/x-www-form-urlencoded` of the pairs.
fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k.as_ref()), enc(v.as_ref()))).collect::<Vec<_>>().join("&")
}

/// A browser-like client that does not follow redirects (they are asserted).
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

/// Sign in with `key`; returns the `Set-Cookie` header and the session's `name=value`.
async fn sign_in_raw(t: &TestServer, key: &str) -> reqwest::Response {
    client()
        .post(t.url("/signin"))
        .header("origin", t.base.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("key", key)]))
        .send()
        .await
        .expect("sign in")
}

async fn sign_in(t: &TestServer, key: &str) -> Browser {
    let r = sign_in_raw(t, key).await;
    assert_eq!(r.status().as_u16(), 303, "signed in");
    let set = r.headers().get("set-cookie").expect("cookie").to_str().expect("ascii").to_owned();
    let cookie = set.split(';').next().expect("pair").to_owned();
    Browser { http: client(), base: t.base.clone(), cookie }
}

impl Browser {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.expect("get");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("post");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// The CSRF token of a page's forms.
    async fn csrf(&self, path: &str) -> String {
        let (_, body) = self.get(path).await;
        let at = body.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
        body[at..].split('"').next().expect("token").to_owned()
    }
}

async fn dead_letter(t: &TestServer) -> String {
    // A push server that keeps failing: three receives, then the dead-letter queue.
    t.ntfy.fail_always(500);
    let id = t.notify("to the dead letters").await;
    let m = t.wait_message(&id, std::time::Duration::from_secs(30), |m| m["status"] == "dead_lettered").await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    t.ntfy.reset();
    id
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_expiring_cookie_and_pages_need_it() {
    let mut t = TestServer::start().await;
    let anonymous = client().get(t.url("/")).send().await.expect("get");
    assert_eq!(anonymous.status().as_u16(), 303);
    assert_eq!(anonymous.headers()["location"], "/signin");
    let wrong = sign_in_raw(&t, "not-a-key").await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let r = sign_in_raw(&t, ADMIN_KEY).await;
    let set = r.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    for part in ["rez_session=", "HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    assert!(!set.contains(ADMIN_KEY), "the cookie never carries the key");
    let b = sign_in(&t, ADMIN_KEY).await;
    let r = b.http.get(t.url("/")).header("cookie", &b.cookie).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    // A forged cookie is no session.
    let forged = format!("{}x", b.cookie);
    let r = client().get(t.url("/")).header("cookie", forged).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 303);
    // Behind an https proxy the cookie is Secure.
    let r = client()
        .post(t.url("/signin"))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("key", ADMIN_KEY)]))
        .send()
        .await
        .expect("sign in");
    assert!(r.headers()["set-cookie"].to_str().expect("ascii").contains("; Secure"));
    // Signing out clears the cookie.
    let csrf = b.csrf("/").await;
    let r = client()
        .post(t.url("/signout"))
        .header("cookie", &b.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .expect("sign out");
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"));
    t.stop().await;
}

#[tokio::test]
async fn posts_without_the_sessions_csrf_token_or_from_another_site_are_refused() {
    let mut t = TestServer::start().await;
    let id = dead_letter(&t).await;
    let b = sign_in(&t, ADMIN_KEY).await;
    let other = sign_in(&t, ADMIN_KEY).await;
    let token = b.csrf("/dead-letters").await;
    let others_token = other.csrf("/dead-letters").await;
    assert_ne!(token, others_token, "each session has its own token");
    let redrive = [("id", id.as_str())];
    assert_eq!(b.post("/dead-letters/redrive", &redrive, &[]).await.0, 403, "no token");
    let with = |tok: &str| [("id", id.clone()), ("csrf", tok.to_owned())];
    let f = with(&others_token);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post("/dead-letters/redrive", &pairs, &[]).await.0, 403, "another session's token");
    let f = with(&token);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        b.post("/dead-letters/redrive", &pairs, &[("origin", "http://evil.example")]).await.0,
        403,
        "a cross-site post with the cookie and a valid token"
    );
    assert_eq!(b.post("/dead-letters/redrive", &pairs, &[("sec-fetch-site", "cross-site")]).await.0, 403);
    let (_, m) = t.get_json(&format!("/api/messages/{id}")).await;
    assert_eq!(m["status"], "dead_lettered", "nothing refused took effect");
    let (status, _) =
        b.post("/dead-letters/redrive", &pairs, &[("origin", &t.base), ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(status, 303, "the same post from this site, with its token");
    let (_, page) = b.get("/dead-letters?done=redriven&n=1").await;
    assert!(page.contains("1 dead letter(s) sent back"), "{page}");
    t.stop().await;
}

#[tokio::test]
async fn a_read_key_sees_no_action_and_its_posts_are_forbidden() {
    let mut t = TestServer::start().await;
    let id = dead_letter(&t).await;
    let (status, s) = t
        .post_json(
            "/api/schedules",
            json!({"name": "weekly", "schedule_expression": "rate(1 day)", "target_type": "notify",
                "target": {"payload": {"message": "hi"}}}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let sid = s["id"].as_str().expect("id").to_owned();
    let services = &t.server.as_ref().expect("server").services;
    let read = services.keys.create("reader", Scope::Read).await.expect("key");
    let b = sign_in(&t, &read.token).await;
    for path in [
        "/",
        "/messages",
        &format!("/messages/{id}"),
        "/schedules",
        &format!("/schedules/{sid}"),
        "/dead-letters",
        "/notifications",
        "/agent/runs",
        "/approvals",
        "/courses",
    ] {
        let (status, body) = b.get(path).await;
        assert_eq!(status, 200, "{path}");
        let posts: Vec<&str> = body.match_indices(r#"method="post""#).map(|(i, _)| &body[i..i + 60]).collect();
        assert_eq!(posts.len(), 1, "{path}: only the sign-out form, found {posts:?}");
        assert!(body.contains(r#"action="/signout""#));
        assert!(!body.contains("Redrive") && !body.contains("Run now") && !body.contains("New schedule"), "{path}");
    }
    assert_eq!(b.get("/keys").await.0, 403, "keys are for admin keys");
    assert!(!b.get("/").await.1.contains(r#"href="/keys""#), "no link to them either");
    let csrf = b.csrf("/").await;
    for (path, form) in [
        ("/dead-letters/redrive".to_owned(), vec![("all", "true"), ("csrf", csrf.as_str())]),
        (format!("/schedules/{sid}/pause"), vec![("csrf", csrf.as_str())]),
        (format!("/messages/{id}/retry"), vec![("csrf", csrf.as_str())]),
        ("/keys".to_owned(), vec![("name", "x"), ("scope", "admin"), ("csrf", csrf.as_str())]),
    ] {
        assert_eq!(b.post(&path, &form, &[]).await.0, 403, "{path}");
    }
    let (_, m) = t.get_json(&format!("/api/messages/{id}")).await;
    assert_eq!(m["status"], "dead_lettered");
    let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
    assert_eq!(s["status"], "active");
    t.stop().await;
}

#[tokio::test]
async fn a_revoked_keys_session_is_refused_at_once() {
    let mut t = TestServer::start().await;
    let services = t.server.as_ref().expect("server").services.clone();
    let writer = services.keys.create("writer", Scope::Write).await.expect("key");
    let b = sign_in(&t, &writer.token).await;
    assert_eq!(b.get("/").await.0, 200);
    let csrf = b.csrf("/").await;
    // Revoked from the keys page by an admin.
    let admin = sign_in(&t, ADMIN_KEY).await;
    let admin_csrf = admin.csrf("/keys").await;
    let (status, _) =
        admin.post(&format!("/keys/{}/revoke", writer.record.id), &[("csrf", admin_csrf.as_str())], &[]).await;
    assert_eq!(status, 303);
    let (status, _) = b.get("/").await;
    assert_eq!(status, 303, "sent to sign in");
    assert_eq!(b.post("/dead-letters/redrive", &[("all", "true"), ("csrf", csrf.as_str())], &[]).await.0, 401);
    assert_eq!(sign_in_raw(&t, &writer.token).await.status().as_u16(), 401, "and it cannot sign in again");
    t.stop().await;
}

#[tokio::test]
async fn an_admin_creates_a_key_shown_once_and_manages_schedules_through_forms() {
    let mut t = TestServer::start().await;
    let b = sign_in(&t, ADMIN_KEY).await;
    let csrf = b.csrf("/keys").await;
    let (status, page) = b.post("/keys", &[("name", "phone"), ("scope", "read"), ("csrf", csrf.as_str())], &[]).await;
    assert_eq!(status, 200);
    let at = page.find(r#"id="new-token""#).expect("token shown");
    let token = page[at..].split(r#"value=""#).nth(1).and_then(|v| v.split('"').next()).expect("value").to_owned();
    let r = t.http.get(t.url("/api/messages")).bearer_auth(&token).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200, "the shown key works");
    assert!(!b.get("/keys").await.1.contains(&token), "and is not shown again");
    // A schedule: preview (a GET), create, pause, resume, edit, run now, delete.
    let (status, page) =
        b.get("/schedules/new?schedule_expression=cron(0+6+%3F+*+FRI+*)&timezone=America%2FNew_York").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("-05:00").count() + page.matches("-04:00").count(), 10, "ten fires in the zone: {page}");
    let (status, page) = b.get("/schedules/new?schedule_expression=cron(nope)").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"class="error""#), "{page}");
    let csrf = b.csrf("/schedules/new").await;
    let create = |expr: &'static str| {
        vec![
            ("name", "friday"),
            ("schedule_expression", expr),
            ("timezone", "America/New_York"),
            ("message", "tee time"),
        ]
    };
    let mut bad = create("cron(nope)");
    bad.push(("csrf", csrf.as_str()));
    assert_eq!(b.post("/schedules", &bad, &[]).await.0, 400);
    let mut good = create("cron(0 6 ? * FRI *)");
    good.push(("csrf", csrf.as_str()));
    let r = b
        .http
        .post(t.url("/schedules"))
        .header("cookie", &b.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&good))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 303);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let base = location.split('?').next().expect("path").to_owned();
    let sid = base.trim_start_matches("/schedules/").to_owned();
    let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
    assert_eq!(s["target"]["payload"]["message"], "tee time");
    assert_eq!(s["timezone"], "America/New_York");
    for (action, status) in [("pause", "paused"), ("resume", "active")] {
        assert_eq!(b.post(&format!("{base}/{action}"), &[("csrf", csrf.as_str())], &[]).await.0, 303);
        let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
        assert_eq!(s["status"], status);
    }
    let edit = [
        ("name", "saturday"),
        ("schedule_expression", "cron(0 7 ? * SAT *)"),
        ("timezone", "UTC"),
        ("description", ""),
        ("csrf", csrf.as_str()),
    ];
    assert_eq!(b.post(&format!("{base}/edit"), &edit, &[]).await.0, 303);
    let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
    assert_eq!(
        (s["name"].as_str(), s["schedule_expression"].as_str()),
        (Some("saturday"), Some("cron(0 7 ? * SAT *)"))
    );
    assert_eq!(b.post(&format!("{base}/run"), &[("csrf", csrf.as_str())], &[]).await.0, 303);
    let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
    assert_eq!(s["execution_count"], 1);
    assert_eq!(b.post(&format!("{base}/delete"), &[("csrf", csrf.as_str())], &[]).await.0, 303);
    let (_, s) = t.get_json(&format!("/api/schedules/{sid}")).await;
    assert_eq!(s["status"], "deleted");
    t.stop().await;
}

#[tokio::test]
async fn every_page_renders_with_data_and_assets_are_cached_by_hash() {
    let mut t = TestServer::start().await;
    let id = t.notify("hello").await;
    t.wait_message(&id, std::time::Duration::from_secs(10), |m| m["status"] == "completed").await;
    let b = sign_in(&t, ADMIN_KEY).await;
    let (status, overview) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(overview.contains("<svg") && overview.contains("1 completed and 0 failed"), "{overview}");
    for path in [
        "/messages",
        "/messages?status=completed&message_type=notify",
        &format!("/messages/{id}"),
        "/schedules",
        "/schedules/new",
        "/dead-letters",
        "/notifications",
        "/keys",
        "/agent/runs",
    ] {
        let (status, body) = b.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("style=") && !body.contains("<script>"), "{path}: no inline style or script");
    }
    assert!(b.get(&format!("/messages/{id}")).await.1.contains("hello"));
    assert!(b.get("/notifications").await.1.contains("hello"));
    assert_eq!(b.get("/messages?status=nope").await.0, 400);
    assert_eq!(b.get("/messages?created_after=yesterday").await.0, 400);
    let (_, later) = b.get("/messages?created_after=2999-01-01T00:00").await;
    assert!(later.contains("No message matches."), "{later}");
    let (_, earlier) = b.get("/messages?created_before=2999-01-01T00:00&created_after=2000-01-01T00:00").await;
    assert!(earlier.contains(&id), "{earlier}");
    // The schedule form's preview fragment (what the script fetches as one types).
    let (status, fragment) = b.get("/schedules/preview?schedule_expression=rate(5+minutes)&timezone=UTC").await;
    assert_eq!(status, 200);
    assert!(fragment.starts_with("<section") && fragment.contains(r#"id="preview""#), "only the section: {fragment}");
    assert_eq!(fragment.matches("<li>").count(), 10, "{fragment}");
    assert!(b.get("/schedules/preview?schedule_expression=nope").await.1.contains(r#"role="alert""#));
    let css = overview.split(r#"href="/assets/"#).nth(1).and_then(|s| s.split('"').next()).expect("css link");
    let r = client().get(t.url(&format!("/assets/{css}"))).send().await.expect("css");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["cache-control"].to_str().expect("cc").contains("immutable"));
    assert_eq!(client().get(t.url("/assets/app.0000.css")).send().await.expect("css").status().as_u16(), 404);
    t.stop().await;
}

#[tokio::test]
async fn the_courses_page_says_which_courses_have_credentials_and_never_shows_them() {
    use rez_core::ports::{SecretStore, SecretValue};
    let mut t = TestServer::start().await;
    let b = sign_in(&t, ADMIN_KEY).await;
    let (status, page) = b.get("/courses").await;
    assert_eq!(status, 200);
    assert!(page.contains("birdsfoot") && page.contains("rez secrets set-golf --course birdsfoot"), "{page}");
    let store = &t.server.as_ref().expect("server").store;
    let creds = json!({"username": "golfer@example.com", "password": "hunter2-secret"}).to_string();
    store.put_secret("golf/birdsfoot", &SecretValue::new(creds)).await.expect("stored");
    let (_, page) = b.get("/courses").await;
    assert!(page.contains("stored"), "{page}");
    assert!(!page.contains("hunter2-secret") && !page.contains("golfer@example.com"), "never the credentials");
    t.stop().await;
}
