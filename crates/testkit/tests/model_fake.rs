//! The fake model server itself: the three wire formats read into the neutral shape and
//! answered in their own shape, the script, the responder, faults, the key check, and the
//! protocol checks it records as violations.

use std::time::Duration;

use rez_core::agent::model::{ContentBlock, Role, StopReason, Usage};
use rez_testkit::{FakeCallId, FakeModel, FakeTurn, WireFormat};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

async fn anthropic(fake: &FakeModel, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .post(format!("{}/v1/messages", fake.anthropic_base_url()))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.expect("json"))
}

async fn openai(fake: &FakeModel, key: Option<&str>, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client().post(format!("{}/chat/completions", fake.openai_base_url())).json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.expect("json"))
}

fn anthropic_tools() -> Value {
    json!([{"name": "get_weather", "description": "Forecast", "input_schema": {"type": "object", "properties": {"day": {"type": "string"}}}}])
}

#[tokio::test]
async fn anthropic_tool_round_trip_is_read_into_the_neutral_shape() {
    let fake = FakeModel::start().await;
    fake.expect_key("sk-ant-test");
    fake.script([
        FakeTurn::tool_call("get_weather", json!({"day": "sat"})).with_text("Checking"),
        FakeTurn::text("Dry."),
    ]);

    let first = json!({"model": "claude-x", "max_tokens": 512, "system": "Be brief.", "tools": anthropic_tools(),
        "messages": [{"role": "user", "content": "Is Saturday dry?"}]});
    let (status, _, body) = anthropic(&fake, "sk-ant-test", first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0], json!({"type": "text", "text": "Checking"}));
    let call = &body["content"][1];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["input"], json!({"day": "sat"}));
    let id = call["id"].as_str().expect("id").to_owned();
    assert!(body["usage"]["input_tokens"].as_u64().expect("usage") > 0);

    let second = json!({"model": "claude-x", "max_tokens": 512, "system": [{"type": "text", "text": "Be brief."}], "tools": anthropic_tools(),
    "messages": [
        {"role": "user", "content": "Is Saturday dry?"},
        {"role": "assistant", "content": body["content"].clone()},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "sunny"}]}]}
    ]});
    let (status, _, body) = anthropic(&fake, "sk-ant-test", second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["content"][0]["text"], "Dry.");

    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].format, WireFormat::Anthropic);
    assert_eq!(seen[0].system, "Be brief.");
    assert_eq!(seen[1].system, "Be brief.");
    assert_eq!(seen[0].tool_names(), vec!["get_weather"]);
    assert_eq!(seen[0].max_tokens, Some(512));
    assert_eq!(seen[0].credential.as_deref(), Some("sk-ant-test"));
    assert_eq!(seen[1].last_tool_results(), vec![(id.as_str(), "sunny", false)]);
    assert_eq!(seen[1].messages[0], seen[0].messages[0], "history carried over");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert!(fake.repeated_requests().is_empty());
}

#[tokio::test]
async fn a_wrong_key_gets_the_providers_401_and_is_recorded() {
    let fake = FakeModel::start().await;
    fake.expect_key("right");
    let req = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, body) = anthropic(&fake, "wrong", req.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    let (status, _, body) = openai(&fake, None, req).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.pending_turns(), 0);
}

#[tokio::test]
async fn anthropic_requests_without_a_version_header_are_refused() {
    let fake = FakeModel::start().await;
    let resp = client()
        .post(format!("{}/v1/messages", fake.url()))
        .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(fake.violations().len(), 1);
    assert!(fake.violations()[0].message.contains("anthropic-version"));
}

#[tokio::test]
async fn unanswered_and_unknown_tool_results_are_violations() {
    let fake = FakeModel::start().await;
    let unanswered = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
        {"role": "user", "content": "well?"}]});
    let (status, _, _) = anthropic(&fake, "k", unanswered).await;
    assert_eq!(status, 400);
    let unknown = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
            {"type": "tool_result", "tool_use_id": "toolu_never", "content": "??"}]}]});
    let (status, _, _) = anthropic(&fake, "k", unknown).await;
    assert_eq!(status, 400);
    let v = fake.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0].request, Some(0));
    assert!(v[0].message.contains("\"toolu_1\"") && v[0].message.contains("not answered"), "{v:?}");
    assert_eq!(v[1].request, Some(1));
    assert!(v[1].message.contains("toolu_never"), "{v:?}");
}

#[tokio::test]
async fn openai_tool_calls_malformed_arguments_and_missing_ids() {
    let fake = FakeModel::start().await;
    fake.script([
        FakeTurn::malformed_tool_call("search_tee_times", "{\"day\": sat"),
        FakeTurn::tool_call("no_such_tool", json!({})).with_call_id(FakeCallId::Omitted),
        FakeTurn::text("ok").with_usage(Usage {
            input_tokens: 70,
            output_tokens: 5,
            cache_read_tokens: 30,
            cache_write_tokens: 0,
        }),
    ]);
    let tools = json!([{"type": "function", "function": {"name": "search_tee_times", "description": "d", "parameters": {"type": "object"}}}]);
    let (status, _, body) = openai(
        &fake,
        Some("sk"),
        json!({"model": "gpt-x", "max_completion_tokens": 99, "tools": tools,
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "find"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], "{\"day\": sat");
    let id = call["id"].as_str().expect("id").to_owned();

    let (_, _, body) = openai(
        &fake,
        Some("sk"),
        json!({"model": "gpt-x", "max_tokens": 99, "tools": tools, "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "find"},
        {"role": "assistant", "content": null, "tool_calls": [call.clone()]},
        {"role": "tool", "tool_call_id": id, "content": "error: arguments are not JSON"}]}),
    )
    .await;
    let call2 = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call2["function"]["name"], "no_such_tool");
    assert!(call2.get("id").is_none(), "{call2}");

    let (_, _, body) =
        openai(&fake, Some("sk"), json!({"model": "gpt-x", "messages": [{"role": "user", "content": "again"}]})).await;
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 100);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 30);

    let seen = fake.requests();
    assert_eq!(seen[0].system, "sys");
    assert_eq!(seen[0].max_tokens, Some(99));
    assert_eq!(seen[0].tool_names(), vec!["search_tee_times"]);
    assert_eq!(seen[0].credential.as_deref(), Some("sk"));
    assert_eq!(seen[1].messages.len(), 3);
    match &seen[1].messages[1].content[0] {
        ContentBlock::ToolUse { input, .. } => assert_eq!(input, &json!("{\"day\": sat")),
        other => panic!("expected a tool_use, got {other:?}"),
    }
    assert_eq!(seen[1].messages[2].role, Role::User);
    assert_eq!(seen[1].last_tool_results(), vec![(id.as_str(), "error: arguments are not JSON", false)]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn faults_come_in_each_providers_shape() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::rate_limited(7), FakeTurn::Overloaded, FakeTurn::ServerError, FakeTurn::ModelNotFound]);
    let req = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, body) = anthropic(&fake, "k", req.clone()).await;
    assert_eq!((status, headers["retry-after"].to_str().expect("h")), (429, "7"));
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let (status, _, body) = anthropic(&fake, "k", req.clone()).await;
    assert_eq!((status, body["error"]["type"].as_str()), (529, Some("overloaded_error")));
    let (status, _, _) = openai(&fake, None, req.clone()).await;
    assert_eq!(status, 500);
    let resp = client()
        .post(format!("{}/model/anthropic.claude-v2%3A1/converse", fake.bedrock_endpoint()))
        .json(&json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    // Faults are repeated on purpose; they do not count as a step asked twice.
    assert!(fake.repeated_requests().is_empty());
    // The script is used up: the default answer.
    let (status, _, body) = anthropic(&fake, "k", req.clone()).await;
    assert_eq!((status, body["content"][0]["text"].as_str()), (200, Some("done")));
    let (_, _, _) = anthropic(&fake, "k", req).await;
    assert_eq!(fake.repeated_requests(), vec![(4, 5)]);
}

#[tokio::test]
async fn a_hang_never_answers() {
    let fake = FakeModel::start().await;
    fake.push(FakeTurn::Hang);
    assert!(!fake.wait_for_requests(1, Duration::from_millis(20)).await);
    let req = client()
        .post(format!("{}/v1/messages", fake.url()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(req.expect_err("must time out").is_timeout());
    assert!(fake.wait_for_requests(1, Duration::from_secs(5)).await);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn bedrock_converse_round_trip() {
    let fake = FakeModel::start().await;
    fake.script([
        FakeTurn::tool_call("get_weather", json!({"day": "sat"})),
        FakeTurn::text("x").with_stop(StopReason::MaxTokens).with_usage(Usage {
            input_tokens: 10,
            output_tokens: 2,
            cache_read_tokens: 3,
            cache_write_tokens: 4,
        }),
    ]);
    let url = format!("{}/model/anthropic.claude-v2%3A1/converse", fake.bedrock_endpoint());
    let tools = json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "d", "inputSchema": {"json": {"type": "object"}}}}]});
    let resp: Value = client()
        .post(&url)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abc")
        .json(&json!({"system": [{"text": "sys"}], "toolConfig": tools, "inferenceConfig": {"maxTokens": 256},
            "messages": [{"role": "user", "content": [{"text": "dry?"}]}]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(resp["stopReason"], "tool_use");
    let tool_use = &resp["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(tool_use["name"], "get_weather");
    let id = tool_use["toolUseId"].as_str().expect("id").to_owned();
    let resp: Value = client()
        .post(&url)
        .json(&json!({"system": [{"text": "sys"}], "toolConfig": tools, "messages": [
            {"role": "user", "content": [{"text": "dry?"}]},
            {"role": "assistant", "content": [{"toolUse": tool_use.clone()}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": id, "content": [{"json": {"rain": false}}], "status": "error"}}]}]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(resp["stopReason"], "max_tokens");
    assert_eq!(
        resp["usage"],
        json!({"inputTokens": 10, "outputTokens": 2, "totalTokens": 19, "cacheReadInputTokens": 3, "cacheWriteInputTokens": 4})
    );
    let seen = fake.requests();
    assert_eq!(seen[0].format, WireFormat::Bedrock);
    assert_eq!(seen[0].model, "anthropic.claude-v2:1");
    assert_eq!(seen[0].system, "sys");
    assert_eq!(seen[0].max_tokens, Some(256));
    assert_eq!(seen[0].tool_names(), vec!["get_weather"]);
    assert!(seen[0].credential.as_deref().is_some_and(|c| c.starts_with("AWS4-HMAC-SHA256")));
    assert_eq!(seen[1].last_tool_results(), vec![(id.as_str(), "{\"rain\":false}", true)]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn the_responder_answers_each_conversation_from_its_request() {
    let fake = FakeModel::start().await;
    let fake = std::sync::Arc::new(fake);
    let inspect = std::sync::Arc::downgrade(&fake);
    // The responder may look at the fake itself.
    fake.respond_with(move |req| {
        let seen = inspect.upgrade().map_or(0, |f| f.requests().len());
        assert!(seen > req.index, "the request is recorded before the responder runs");
        FakeTurn::text(format!("echo: {}", req.last_user_text()))
    });
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = format!("{}/v1/messages", fake.url());
        tasks.push(tokio::spawn(async move {
            let body: Value = client()
                .post(url)
                .header("anthropic-version", "2023-06-01")
                .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": format!("run {i}")}]}))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            (i, body["content"][0]["text"].as_str().unwrap_or_default().to_owned())
        }));
    }
    for t in tasks {
        let (i, text) = t.await.expect("task");
        assert_eq!(text, format!("echo: run {i}"));
    }
    assert_eq!(fake.requests().len(), 20);
}

#[tokio::test]
async fn a_prefill_is_accepted_and_a_garbled_answer_is_an_html_page() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::text("ok"), FakeTurn::Garbled]);
    let prefill = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "Answer in JSON"}, {"role": "assistant", "content": "{"}]});
    let (status, _, _) = anthropic(&fake, "k", prefill).await;
    assert_eq!(status, 200);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let resp = client()
        .post(format!("{}/v1/chat/completions", fake.url()))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert!(resp.text().await.expect("body").starts_with("<html>"));
}

#[tokio::test]
async fn a_step_asked_again_with_a_newer_system_prompt_is_still_a_repeat() {
    let fake = FakeModel::start().await;
    let ask = |system: &str, prompt: &str| json!({"model": "m", "max_tokens": 10, "system": system, "messages": [{"role": "user", "content": prompt}]});
    anthropic(&fake, "k", ask("It is 08:00.", "book")).await;
    anthropic(&fake, "k", ask("It is 08:00.", "another run")).await;
    assert!(fake.repeated_requests().is_empty());
    anthropic(&fake, "k", ask("It is 08:05.", "book")).await;
    assert_eq!(fake.repeated_requests(), vec![(0, 2)]);
}
