//! The provider clients against the fake model server over real HTTP: the wire formats as
//! the fake reads them, stop reasons and usage, tool-call oddities, and every fault the
//! retry loop must handle (429 with retry-after, 529, 500, a hang, a bad key, a missing
//! model, a server that wants `max_completion_tokens`).

use std::time::{Duration, Instant};

use rez_core::agent::model::{
    ChatMessage, ContentBlock, ModelClient, ModelErrorKind, ModelRequest, ModelResponse, Role, StopReason,
    ToolDefinition, Usage,
};
use rez_models::{AnthropicClient, AnthropicConfig, ApiKey, OpenAiClient, OpenAiConfig};
use rez_runtime::agent::retry::{RetryPolicy, complete_with_retries};
use rez_testkit::{FakeModel, FakeTurn, WireFormat};
use serde_json::{Map, json};

const KEY: &str = "sk-ant-test-key-0123456789";

fn anthropic(fake: &FakeModel, key: &str, timeout: Duration) -> AnthropicClient {
    let base = rez_http::Url::parse(&fake.anthropic_base_url()).expect("url");
    AnthropicClient::new(AnthropicConfig { api_key: ApiKey::new(key).expect("key"), base_url: Some(base), timeout })
        .expect("client")
}

fn openai(fake: &FakeModel, key: Option<&str>) -> OpenAiClient {
    let base = rez_http::Url::parse(&fake.openai_base_url()).expect("url");
    OpenAiClient::new(OpenAiConfig::new(key.map(|k| ApiKey::new(k).expect("key")), Some(base))).expect("client")
}

fn tools() -> Vec<ToolDefinition> {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), json!({"day": {"type": "string"}}));
    vec![ToolDefinition { name: "get_weather".into(), description: "The forecast".into(), input_schema: schema }]
}

fn request(prompt: &str) -> ModelRequest {
    ModelRequest {
        model: "claude-test".into(),
        system: "You book golf.".into(),
        messages: vec![ChatMessage::user_text(prompt)],
        tools: tools(),
        max_tokens: 256,
    }
}

/// Quick retries for tests (the same shape as production, milliseconds instead of seconds).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        deadline: Duration::from_secs(10),
    }
}

/// Append the answer and a result for each of its tool calls, as the run loop does.
fn continue_with_results(req: &mut ModelRequest, answer: &ModelResponse) {
    req.messages.push(ChatMessage { role: Role::Assistant, content: answer.content.clone() });
    let results = answer
        .tool_uses()
        .map(|(id, name, input)| ContentBlock::ToolResult {
            tool_use_id: id.to_owned(),
            content: if input.is_object() { format!("{name}: sunny") } else { "error: arguments are not JSON".into() },
            is_error: !input.is_object(),
        })
        .collect();
    req.messages.push(ChatMessage { role: Role::User, content: results });
}

#[tokio::test]
async fn a_tool_using_conversation_on_both_formats_keeps_ids_paired_and_history_carried() {
    for format in [WireFormat::Anthropic, WireFormat::OpenAi] {
        let fake = FakeModel::start().await;
        fake.expect_key(KEY);
        fake.script([
            FakeTurn::tool_call("get_weather", json!({"day": "sat"})).with_text("Checking."),
            FakeTurn::text("Saturday is dry."),
        ]);
        let client: Box<dyn ModelClient> = match format {
            WireFormat::Anthropic => Box::new(anthropic(&fake, KEY, Duration::from_secs(5))),
            _ => Box::new(openai(&fake, Some(KEY))),
        };
        let mut req = request("Is Saturday dry?");
        let first = client.complete(&req).await.expect("first turn");
        assert_eq!(first.stop_reason, StopReason::ToolUse, "{format:?}");
        let calls: Vec<_> = first.tool_uses().map(|(id, n, i)| (id.to_owned(), n.to_owned(), i.clone())).collect();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].1.as_str(), &calls[0].2), ("get_weather", &json!({"day": "sat"})));
        continue_with_results(&mut req, &first);
        let second = client.complete(&req).await.expect("second turn");
        assert_eq!(
            (second.stop_reason, second.content[0].clone()),
            (StopReason::EndTurn, ContentBlock::Text { text: "Saturday is dry.".into() })
        );

        let seen = fake.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].format, format);
        assert_eq!(seen[0].credential.as_deref(), Some(KEY));
        assert_eq!(seen[0].system, "You book golf.");
        assert_eq!(seen[0].tool_names(), vec!["get_weather"]);
        assert_eq!(seen[0].tools[0].input_schema, tools()[0].input_schema);
        assert_eq!(seen[0].max_tokens, Some(256));
        assert_eq!(seen[1].messages, req.messages, "{format:?}: the history arrives as it was sent");
        assert_eq!(seen[1].last_tool_results(), vec![(calls[0].0.as_str(), "get_weather: sunny", false)]);
        if format == WireFormat::Anthropic {
            assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
        }
        assert!(fake.violations().is_empty(), "{format:?}: {:?}", fake.violations());
        assert!(fake.repeated_requests().is_empty());
    }
}

#[tokio::test]
async fn every_stop_reason_and_the_cache_usage_come_through() {
    let usage = Usage { input_tokens: 100, output_tokens: 20, cache_read_tokens: 40, cache_write_tokens: 30 };
    let stops = [
        StopReason::EndTurn,
        StopReason::MaxTokens,
        StopReason::StopSequence,
        StopReason::Refusal,
        StopReason::PauseTurn,
        StopReason::Other("model_context_window_exceeded".into()),
    ];
    let fake = FakeModel::start().await;
    let client = anthropic(&fake, KEY, Duration::from_secs(5));
    for stop in stops {
        fake.push(FakeTurn::text("x").with_stop(stop.clone()).with_usage(usage));
        let r = client.complete(&request("hi")).await.expect("answer");
        assert_eq!((r.stop_reason, r.usage), (stop, usage));
    }

    let client = openai(&fake, None);
    let cases = [
        (StopReason::EndTurn, StopReason::EndTurn),
        (StopReason::MaxTokens, StopReason::MaxTokens),
        (StopReason::ContentFilter, StopReason::ContentFilter),
        (StopReason::Other("eos".into()), StopReason::Other("eos".into())),
    ];
    for (sent, expected) in cases {
        fake.push(FakeTurn::text("x").with_stop(sent).with_usage(usage));
        let r = client.complete(&request("hi")).await.expect("answer");
        assert_eq!(r.stop_reason, expected);
        // OpenAI has no cache writes: the fake folds them into the prompt, we read them as input.
        assert_eq!(
            r.usage,
            Usage { input_tokens: 130, output_tokens: 20, cache_read_tokens: 40, cache_write_tokens: 0 }
        );
    }
    let seen = fake.requests();
    assert_eq!(seen.last().map(|r| r.credential.clone()), Some(None), "no key, no Authorization header");
}

#[tokio::test]
async fn malformed_arguments_unknown_tools_and_missing_ids_come_through_as_asked() {
    for format in [WireFormat::Anthropic, WireFormat::OpenAi] {
        let fake = FakeModel::start().await;
        fake.script([
            FakeTurn::malformed_tool_call("get_weather", "{\"day\": sat"),
            FakeTurn::tool_call("book_the_moon", json!({"when": "now"})).with_call_id(rez_testkit::FakeCallId::Omitted),
            FakeTurn::text("Recovered."),
        ]);
        let client: Box<dyn ModelClient> = match format {
            WireFormat::Anthropic => Box::new(anthropic(&fake, KEY, Duration::from_secs(5))),
            _ => Box::new(openai(&fake, None)),
        };
        let mut req = request("Is Saturday dry?");
        let first = client.complete(&req).await.expect("malformed call is an answer, not an error");
        let (_, name, input) = first.tool_uses().next().expect("a call");
        assert_eq!((name, input), ("get_weather", &json!("{\"day\": sat")), "{format:?}");
        continue_with_results(&mut req, &first);
        let second = client.complete(&req).await.expect("unknown tool is an answer");
        let (id, name, _) = second.tool_uses().next().expect("a call");
        assert_eq!(name, "book_the_moon");
        assert!(!id.is_empty(), "{format:?}: a missing id gets a generated one");
        continue_with_results(&mut req, &second);
        let third = client.complete(&req).await.expect("recovers");
        assert_eq!(third.content, vec![ContentBlock::Text { text: "Recovered.".into() }]);
        assert!(fake.violations().is_empty(), "{format:?}: {:?}", fake.violations());
        // The malformed arguments were sent back as the model wrote them (OpenAI) or wrapped (Anthropic).
        let replayed = &fake.requests()[1].messages[1].content[0];
        match (format, replayed) {
            (WireFormat::OpenAi, ContentBlock::ToolUse { input, .. }) => assert_eq!(input, &json!("{\"day\": sat")),
            (WireFormat::Anthropic, ContentBlock::ToolUse { input, .. }) => {
                assert_eq!(input, &json!({"raw_input": "{\"day\": sat"}))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::rate_limited(1), FakeTurn::text("ok")]);
    let client = openai(&fake, None);
    let started = Instant::now();
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    assert_eq!(result.expect("success").content, vec![ContentBlock::Text { text: "ok".into() }]);
    assert_eq!(attempts, 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "retry-after: 1 honoured, {:?}", started.elapsed());
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::Overloaded, FakeTurn::ServerError, FakeTurn::Overloaded, FakeTurn::text("ok")]);
    let client = anthropic(&fake, KEY, Duration::from_secs(5));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    assert!(result.is_ok());
    assert_eq!(attempts, 4);

    fake.script(std::iter::repeat_n(FakeTurn::Overloaded, 5));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("gives up");
    assert_eq!((attempts, err.status, err.kind), (4, Some(529), ModelErrorKind::Transient));
    assert!(err.message.contains("overloaded"), "{}", err.message);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_returned_at_once() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::rate_limited(120)]);
    let client = anthropic(&fake, KEY, Duration::from_secs(5));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("gives up");
    assert_eq!((attempts, err.status, err.retry_after), (1, Some(429), Some(Duration::from_secs(120))));
}

#[tokio::test]
async fn a_hang_hits_the_timeout_and_the_retry_gets_through() {
    let fake = FakeModel::start().await;
    fake.push(FakeTurn::Hang);
    let client = anthropic(&fake, KEY, Duration::from_millis(300));
    let err = client.complete(&request("hi")).await.expect_err("times out");
    assert!(err.is_transient() && err.message.contains("did not answer within 0.3 s"), "{}", err.message);
    fake.script([FakeTurn::Hang, FakeTurn::text("ok")]);
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    assert!(result.is_ok());
    assert_eq!(attempts, 2);
    assert_eq!(fake.pending_turns(), 0);
}

#[tokio::test]
async fn a_bad_key_fails_at_once_with_what_to_fix() {
    let fake = FakeModel::start().await;
    fake.expect_key(KEY);
    let wrong = "sk-wrong-key-987654321";
    let client = anthropic(&fake, wrong, Duration::from_secs(5));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("refused");
    assert_eq!((attempts, err.kind, err.status), (1, ModelErrorKind::Permanent, Some(401)));
    assert!(
        err.message.contains("REZ_ANTHROPIC_API_KEY") && err.message.contains("anthropic_api_key"),
        "{}",
        err.message
    );
    assert!(!err.message.contains(wrong) && !format!("{err:?}").contains(wrong));
    assert_eq!(fake.requests().len(), 1);

    let client = openai(&fake, Some(wrong));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("refused");
    assert_eq!((attempts, err.provider), (1, "openai"));
    assert!(err.message.contains("REZ_OPENAI_API_KEY"), "{}", err.message);
    assert!(!format!("{err:?}").contains("sk-"), "{err:?}");
}

#[tokio::test]
async fn a_missing_model_is_permanent_with_the_providers_words() {
    let fake = FakeModel::start().await;
    fake.push(FakeTurn::ModelNotFound);
    let client = openai(&fake, None);
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("not found");
    assert_eq!((attempts, err.kind, err.status), (1, ModelErrorKind::Permanent, Some(404)));
    assert!(err.message.contains("does not exist") && err.message.contains("claude-test"), "{}", err.message);
}

#[tokio::test]
async fn a_server_wanting_max_completion_tokens_gets_it() {
    let fake = FakeModel::start().await;
    fake.refuse_max_tokens();
    let client = openai(&fake, None);
    let r = client.complete(&request("hi")).await.expect("switches field");
    assert_eq!(r.content, vec![ContentBlock::Text { text: "done".into() }]);
    client.complete(&request("again")).await.expect("keeps the field");
    assert_eq!(fake.attempts(), 3, "one refused request, then two with max_completion_tokens");
    let seen = fake.requests();
    assert!(seen.iter().all(|r| r.body.get("max_completion_tokens") == Some(&json!(256))));
    assert_eq!(seen[0].max_tokens, Some(256));
}

#[tokio::test]
async fn a_wrong_path_is_a_permanent_404_that_names_the_base_url() {
    let fake = FakeModel::start().await;
    let base = rez_http::Url::parse(&format!("{}/not-v1", fake.url())).expect("url");
    let client = OpenAiClient::new(OpenAiConfig::new(None, Some(base))).expect("client");
    let err = client.complete(&request("hi")).await.expect_err("404");
    assert_eq!((err.kind, err.status), (ModelErrorKind::Permanent, Some(404)));
    assert!(err.message.contains("base URL"), "{}", err.message);
}

#[tokio::test]
async fn a_200_that_is_not_a_model_answer_is_transient_and_retried() {
    let fake = FakeModel::start().await;
    fake.script([FakeTurn::Garbled, FakeTurn::text("ok")]);
    let client = anthropic(&fake, KEY, Duration::from_secs(5));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    assert!(result.is_ok());
    assert_eq!(attempts, 2);

    fake.script(std::iter::repeat_n(FakeTurn::Garbled, 4));
    let (result, attempts) = complete_with_retries(&client, &request("hi"), &quick()).await;
    let err = result.expect_err("gives up");
    assert_eq!((attempts, err.kind, err.status), (4, ModelErrorKind::Transient, Some(200)));
    assert!(err.message.contains("check the base URL"), "{}", err.message);
}
