//! `BedrockModel` against the fake model's Bedrock Converse side: what goes over the wire
//! (system, tools, tool results with their ids and error status, maxTokens), what comes
//! back (content, stop reasons, usage with cache tokens), and every failure classified
//! transient or permanent with its status and `retry-after`.

use std::time::Duration;

use rez_aws::bedrock::BedrockModel;
use rez_core::agent::model::{
    ChatMessage, ContentBlock, ModelClient, ModelErrorKind, ModelRequest, Role, StopReason, ToolDefinition, Usage,
};
use rez_testkit::{FakeModel, FakeTurn, WireFormat};
use serde_json::json;

const MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

async fn model(fake: &FakeModel, timeout: Duration) -> BedrockModel {
    BedrockModel::for_endpoint(&fake.bedrock_endpoint(), "us-east-1", timeout).await
}

fn request(messages: Vec<ChatMessage>) -> ModelRequest {
    let schema = json!({"type": "object", "properties": {"course": {"type": "string"}}});
    ModelRequest {
        model: MODEL.into(),
        system: "You book tee times.".into(),
        messages,
        tools: vec![ToolDefinition {
            name: "search_tee_times".into(),
            description: "Search tee times".into(),
            input_schema: schema.as_object().cloned().unwrap_or_default(),
        }],
        max_tokens: 512,
    }
}

#[tokio::test]
async fn a_tool_using_conversation_crosses_converse_intact() {
    let fake = FakeModel::start().await;
    let usage = Usage { input_tokens: 120, output_tokens: 30, cache_read_tokens: 7, cache_write_tokens: 5 };
    fake.script([
        FakeTurn::tool_call("search_tee_times", json!({"course": "birdsfoot", "players": 4}))
            .with_text("Looking.")
            .with_usage(usage),
        FakeTurn::text("Nothing dry on Saturday."),
    ]);
    let m = model(&fake, Duration::from_secs(5)).await;
    assert_eq!(m.provider(), "bedrock");

    let first = m.complete(&request(vec![ChatMessage::user_text("Saturday?")])).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(first.usage, usage);
    assert_eq!(first.model, MODEL);
    let (id, name, input) = first.tool_uses().next().map(|(i, n, v)| (i.to_owned(), n.to_owned(), v.clone())).unwrap();
    assert_eq!((name.as_str(), input), ("search_tee_times", json!({"course": "birdsfoot", "players": 4})));
    assert_eq!(first.content[0], ContentBlock::Text { text: "Looking.".into() });

    let history = vec![
        ChatMessage::user_text("Saturday?"),
        ChatMessage { role: Role::Assistant, content: first.content.clone() },
        ChatMessage {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: "cps.golf is down".into(),
                is_error: true,
            }],
        },
    ];
    let second = m.complete(&request(history.clone())).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.content, vec![ContentBlock::Text { text: "Nothing dry on Saturday.".into() }]);

    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    let last = &seen[1];
    assert_eq!((last.format, last.model.as_str()), (WireFormat::Bedrock, MODEL));
    assert_eq!(last.system, "You book tee times.");
    assert_eq!(last.tool_names(), vec!["search_tee_times"]);
    assert_eq!(last.max_tokens, Some(512));
    assert_eq!(last.messages, history, "the history arrives as it was sent");
    assert_eq!(last.body.pointer("/messages/2/content/0/toolResult/status"), Some(&json!("error")));
    assert_eq!(
        last.body.pointer("/toolConfig/tools/0/toolSpec/inputSchema/json/properties/course/type"),
        Some(&json!("string"))
    );
    assert!(last.credential.as_deref().is_some_and(|c| c.starts_with("AWS4-HMAC-SHA256")), "signed with SigV4");
}

#[tokio::test]
async fn stop_reasons_map_to_the_neutral_ones() {
    let fake = FakeModel::start().await;
    let m = model(&fake, Duration::from_secs(5)).await;
    for (stop, expected) in [
        (StopReason::MaxTokens, StopReason::MaxTokens),
        (StopReason::StopSequence, StopReason::StopSequence),
        // The fake answers guardrail_intervened and content_filtered for these.
        (StopReason::ContentFilter, StopReason::ContentFilter),
        (StopReason::Refusal, StopReason::ContentFilter),
        (
            StopReason::Other("model_context_window_exceeded".into()),
            StopReason::Other("model_context_window_exceeded".into()),
        ),
    ] {
        fake.push(FakeTurn::text("x").with_stop(stop));
        let r = m.complete(&request(vec![ChatMessage::user_text("hi")])).await.unwrap();
        assert_eq!(r.stop_reason, expected);
    }
}

#[tokio::test]
async fn failures_are_classified_with_what_to_fix() {
    let fake = FakeModel::start().await;
    let m = model(&fake, Duration::from_millis(500)).await;
    let req = request(vec![ChatMessage::user_text("hi")]);

    fake.push(FakeTurn::rate_limited(3));
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!((e.kind, e.status, e.retry_after), (ModelErrorKind::Transient, Some(429), Some(Duration::from_secs(3))));
    assert!(e.message.contains("ThrottlingException"), "{e}");

    for (turn, status) in [(FakeTurn::Overloaded, 503), (FakeTurn::ServerError, 500)] {
        fake.push(turn);
        let e = m.complete(&req).await.unwrap_err();
        assert_eq!((e.kind, e.status), (ModelErrorKind::Transient, Some(status)), "{e}");
    }

    fake.push(FakeTurn::Unauthorized);
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ModelErrorKind::Permanent, Some(403)));
    assert!(e.message.contains("model access") && e.message.contains("AgentModelId"), "{e}");

    fake.push(FakeTurn::ModelNotFound);
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ModelErrorKind::Permanent, Some(404)));
    assert!(e.message.contains("REZ_AGENT_MODEL"), "{e}");

    fake.push(FakeTurn::Garbled);
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::Transient, "{e}");

    fake.push(FakeTurn::Hang);
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::Transient, "{e}");
    assert!(e.message.contains("timeout"), "{e}");

    // One HTTP exchange per call: the SDK's own retries are off.
    assert_eq!(fake.attempts(), 7);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let m = BedrockModel::for_endpoint("http://127.0.0.1:9", "us-east-1", Duration::from_secs(2)).await;
    let e = m.complete(&request(vec![ChatMessage::user_text("hi")])).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ModelErrorKind::Transient, None), "{e}");
}
