//! Approvals end to end through `rez serve` with the fake model, cps.golf and ntfy: a run
//! with `approval: required` pauses on its booking and asks by push with Approve and
//! Decline buttons; the button links decide once, by their token; the run resumes with
//! the stored call, or is told no, or expires.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use common::WorldRig;
use rez_testkit::golf::FakeSlot;
use rez_testkit::model::{FakeModel, FakeTurn};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "sk-ant-approvals";
/// The public URL the buttons name; tests send the links' path and query to the server.
const PUBLIC: &str = "https://rez.example.net/base/";

async fn rig(model: &FakeModel, extra: &[(&str, &str)]) -> WorldRig {
    let agent = common::agent_env(model, KEY);
    let mut env = extra.to_vec();
    env.extend(agent.iter().map(|(k, v)| (*k, v.as_str())));
    env.push(("REZ_PUBLIC_URL", PUBLIC));
    common::world_with(&env).await
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 12).unwrap()
}

fn search() -> FakeTurn {
    FakeTurn::tool_call(
        "golf_search_tee_times",
        json!({"course": "birdsfoot", "date": "2026-12-12", "window_start": "08:00", "window_end": "10:00", "players": 4}),
    )
}

fn book(id: i64) -> FakeTurn {
    FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": id, "players": 4}))
}

async fn start(r: &WorldRig, body: Value) -> String {
    let (s, run) = r.t.post_json("/api/agent/runs", body).await;
    assert_eq!(s, 202, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

async fn wait_status(r: &WorldRig, id: &str, want: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, run) = r.t.get_json(&format!("/api/agent/runs/{id}")).await;
        if want.contains(&run["status"].as_str().unwrap_or("")) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "run never reached {want:?}: {run}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The approval push's buttons: decision → the link's path and query on this server.
async fn buttons(r: &WorldRig, approval: &str) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found =
            r.t.ntfy
                .received()
                .into_iter()
                .find(|p| p.actions.iter().any(|a| a["url"].as_str().is_some_and(|u| u.contains(approval))));
        if let Some(push) = found {
            assert_eq!(push.title.as_deref(), Some("rez agent asks: approve?"));
            return push
                .actions
                .iter()
                .map(|a| {
                    assert_eq!((a["action"].as_str(), a["method"].as_str()), (Some("http"), Some("POST")), "{a}");
                    let url = url::Url::parse(a["url"].as_str().unwrap()).unwrap();
                    assert!(url.as_str().starts_with(PUBLIC), "{url}");
                    let token = url.query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned();
                    assert!(token.len() >= 43, "at least 256 bits: {token}");
                    let path = url.path().strip_prefix("/base").unwrap().to_owned();
                    (a["label"].as_str().unwrap().to_lowercase(), format!("{path}?{}", url.query().unwrap()))
                })
                .collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "no approval push: {:?}", r.t.ntfy.received());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// POST a button's link without any key.
async fn press(r: &WorldRig, link: &str) -> (u16, Value) {
    let resp = r.t.http.post(r.t.url(link)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn pending_approval(r: &WorldRig, run: &str) -> Value {
    let (s, page) = r.t.get_json(&format!("/api/approvals?run_id={run}")).await;
    assert_eq!(s, 200, "{page}");
    page["items"][0].clone()
}

#[tokio::test]
async fn an_approved_booking_books_once_and_its_link_works_once() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    r.golf.add_slot(FakeSlot::new(901, day().and_hms_opt(8, 10, 0).unwrap()));
    model.script([search(), book(901), FakeTurn::text("Booked 08:10 for four.")]);
    let id =
        start(&r, json!({"prompt": "Book Saturday 8-10 at Birdsfoot for four", "players": 4, "approval": "required"}))
            .await;
    let run = wait_status(&r, &id, &["awaiting_approval"]).await;
    assert!(run["steps"].as_array().unwrap().last().unwrap()["outcome"].is_null(), "the call waits, not executed");
    assert!(r.golf.reservations().is_empty());
    assert!(model.requests()[0].tool_names().contains(&"golf_book_tee_time"), "offered: it is asked for, not done");

    let approval = pending_approval(&r, &id).await;
    assert_eq!(approval["state"], "pending");
    assert_eq!(approval["summary"], "Book Birdsfoot Golf Course, Sat 12 Dec 08:10, 4 players, $180");
    assert_eq!(approval["idempotency_key"], format!("{id}.3"));
    assert!(approval.get("approve_token_hash").is_none(), "token hashes are never served");
    let aid = approval["id"].as_str().unwrap();
    let links = buttons(&r, aid).await;

    let (s, decided) = press(&r, &links["approve"]).await;
    assert_eq!(s, 200, "{decided}");
    assert_eq!((decided["state"].as_str(), decided["decided_by"].as_str()), (Some("approved"), Some("link")));
    let run = wait_status(&r, &id, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(r.golf.reservations().len(), 1);
    let call = &run["steps"].as_array().unwrap()[3];
    assert_eq!(
        (call["name"].as_str(), call["outcome"]["is_error"].as_bool()),
        (Some("golf_book_tee_time"), Some(false))
    );

    // The same link again, or the other one: 409, and nothing more is booked.
    let (s, e) = press(&r, &links["approve"]).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("already_decided")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("already answered: approved at"), "{e}");
    let (s, _) = press(&r, &links["decline"]).await;
    assert_eq!(s, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.golf.reservations().len(), 1);
    r.t.stop().await;
}

#[tokio::test]
async fn a_declined_booking_books_nothing_and_the_model_is_told() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    r.golf.add_slot(FakeSlot::new(902, day().and_hms_opt(9, 0, 0).unwrap()));
    model.script([search(), book(902), FakeTurn::text("Understood, nothing booked.")]);
    let id = start(&r, json!({"prompt": "Book Saturday", "approval": "required"})).await;
    wait_status(&r, &id, &["awaiting_approval"]).await;
    let approval = pending_approval(&r, &id).await;
    let links = buttons(&r, approval["id"].as_str().unwrap()).await;
    let (s, _) = press(&r, &links["decline"]).await;
    assert_eq!(s, 200);
    let run = wait_status(&r, &id, &["completed", "failed"]).await;
    assert_eq!(run["answer"], "Understood, nothing booked.");
    assert!(r.golf.reservations().is_empty());
    let seen = model.requests();
    let told = seen[2].last_tool_results();
    assert!(told[0].2 && told[0].1.contains("The user declined"), "{told:?}");
    r.t.stop().await;
}

#[tokio::test]
async fn an_unanswered_approval_expires_and_says_so() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[("REZ_APPROVAL_TTL_SECS", "1")]).await;
    r.golf.add_slot(FakeSlot::new(903, day().and_hms_opt(9, 30, 0).unwrap()));
    model.script([search(), book(903)]);
    let id = start(&r, json!({"prompt": "Book Saturday", "approval": "required"})).await;
    let run = wait_status(&r, &id, &["approval_expired", "completed", "failed"]).await;
    assert_eq!(run["status"], "approval_expired", "{run}");
    assert!(run["error"].as_str().unwrap().contains("nobody answered"), "{run}");
    assert!(r.golf.reservations().is_empty());
    let deadline = tokio::time::Instant::now() + WAIT;
    while !r.t.ntfy.received().iter().any(|p| p.title.as_deref() == Some("rez agent: approval expired")) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", r.t.ntfy.received());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let approval = pending_approval(&r, &id).await;
    assert_eq!(approval["state"], "expired");
    let links = buttons(&r, approval["id"].as_str().unwrap()).await;
    let (s, e) = press(&r, &links["approve"]).await;
    assert_eq!(s, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("expired"), "{e}");
    assert!(r.golf.reservations().is_empty());
    r.t.stop().await;
}

#[tokio::test]
async fn wrong_tokens_keys_and_scopes_are_refused_and_change_nothing() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    r.golf.add_slot(FakeSlot::new(904, day().and_hms_opt(8, 30, 0).unwrap()));
    model.script([search(), book(904), FakeTurn::text("Done.")]);
    let id = start(&r, json!({"prompt": "Book Saturday", "approval": "required"})).await;
    wait_status(&r, &id, &["awaiting_approval"]).await;
    let approval = pending_approval(&r, &id).await;
    let aid = approval["id"].as_str().unwrap().to_owned();
    let links = buttons(&r, &aid).await;
    let decline_token = links["decline"].split("token=").nth(1).unwrap().to_owned();

    for link in [
        format!("/api/approvals/{aid}/approve?token=not-the-token"),
        format!("/api/approvals/{aid}/approve?token={decline_token}"),
    ] {
        let (s, e) = press(&r, &link).await;
        assert_eq!((s, e["error"]["code"].as_str()), (403, Some("invalid_token")), "{link}: {e}");
    }
    let (s, e) = press(&r, &format!("/api/approvals/{aid}/approve")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{e}");
    let (s, _) = press(&r, "/api/approvals/apr_nope/approve?token=x").await;
    assert_eq!(s, 400);
    // A read key may look, not decide.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .args(["keys", "create", "--name", "viewer", "--scope", "read"])
        .env("REZ_DATA_DIR", r.t.dir.path())
        .output()
        .unwrap();
    let read_key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let resp =
        r.t.http.post(r.t.url(&format!("/api/approvals/{aid}/approve"))).bearer_auth(&read_key).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let (_, still) = r.t.get_json(&format!("/api/approvals/{aid}")).await;
    assert_eq!(still["state"], "pending", "nothing was decided");
    assert!(r.golf.reservations().is_empty());

    // The admin decides with its key; the CLI then finds it answered.
    let (s, a) = r.t.post_json(&format!("/api/approvals/{aid}/approve"), json!({})).await;
    assert_eq!((s, a["decided_by"].as_str()), (200, Some("admin")), "{a}");
    wait_status(&r, &id, &["completed"]).await;
    assert_eq!(r.golf.reservations().len(), 1);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .args(["approvals", "decline", &aid])
        .env("REZ_DATA_DIR", r.t.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already approved"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_decline_raced_fifty_times_decide_once_and_book_at_most_once() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[("REZ_AGENT_CONCURRENCY", "16")]).await;
    for i in 0..50 {
        r.golf
            .add_slot(FakeSlot::new(2000 + i, day().and_hms_opt(6, 0, 0).unwrap() + chrono::TimeDelta::minutes(8 * i)));
    }
    // Each run books its own slot (named in its prompt), then answers.
    model.respond_with(|req| {
        let prompt = req.messages[0].text();
        let slot: i64 = prompt.trim_start_matches("slot ").parse().unwrap_or(0);
        match req.messages.len() {
            1 => book(slot),
            _ => FakeTurn::text("finished"),
        }
    });
    let mut runs = vec![];
    for i in 0..50 {
        runs.push(
            start(&r, json!({"prompt": format!("slot {}", 2000 + i), "approval": "required", "notify": false})).await,
        );
    }
    let mut approved = 0;
    for id in &runs {
        wait_status(&r, id, &["awaiting_approval"]).await;
        let approval = pending_approval(&r, id).await;
        let links = buttons(&r, approval["id"].as_str().unwrap()).await;
        let (yes, no) = tokio::join!(press(&r, &links["approve"]), press(&r, &links["decline"]));
        let mut codes = [yes.0, no.0];
        codes.sort_unstable();
        assert_eq!(codes, [200, 409], "exactly one decision: {yes:?} {no:?}");
        if yes.0 == 200 {
            approved += 1;
        }
    }
    for id in &runs {
        wait_status(&r, id, &["completed"]).await;
    }
    let booked = r.golf.reservations();
    assert_eq!(booked.len(), approved, "one booking per approval, none per decline");
    for i in 0..50 {
        assert!(r.golf.reservations_on_slot(2000 + i).len() <= 1);
    }
    r.t.stop().await;
}

#[tokio::test]
async fn the_dashboard_lists_a_pending_approval_and_approves_it_once() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    r.golf.add_slot(FakeSlot::new(905, day().and_hms_opt(8, 50, 0).unwrap()));
    model.script([search(), book(905), FakeTurn::text("Booked.")]);
    let id = start(&r, json!({"prompt": "Book Saturday", "players": 4, "approval": "required"})).await;
    wait_status(&r, &id, &["awaiting_approval"]).await;
    let aid = pending_approval(&r, &id).await["id"].as_str().unwrap().to_owned();

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let signed_in = http
        .post(r.t.url("/signin"))
        .header("origin", r.t.base.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", common::ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = http.get(r.t.url("/approvals")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Book Birdsfoot Golf Course, Sat 12 Dec 08:50, 4 players"), "{page}");
    assert!(page.contains(&format!("/approvals/{aid}/approve")), "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let post = |path: String| {
        http.post(r.t.url(&path))
            .header("cookie", &cookie)
            .header("origin", r.t.base.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}"))
            .send()
    };
    let answered = post(format!("/approvals/{aid}/approve")).await.unwrap();
    assert_eq!(answered.status(), 303);
    let run = wait_status(&r, &id, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(r.golf.reservations().len(), 1);
    let (_, a) = r.t.get_json(&format!("/api/approvals/{aid}")).await;
    assert_eq!(a["decided_by"], "dashboard:REZ_API_KEY");
    let again = post(format!("/approvals/{aid}/decline")).await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(r.golf.reservations().len(), 1);
    r.t.stop().await;
}
