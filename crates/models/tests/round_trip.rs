//! Property: any well-formed conversation sent by a client arrives at the fake model,
//! read back into the neutral shape, exactly as it was — text with any characters, tool
//! inputs of any JSON, tool_use ids paired with their results — on both wire formats.

use std::time::Duration;

use proptest::prelude::*;
use rez_core::agent::model::{ChatMessage, ContentBlock, ModelClient, ModelRequest, Role};
use rez_models::{AnthropicClient, AnthropicConfig, ApiKey, OpenAiClient, OpenAiConfig};
use rez_testkit::FakeModel;
use serde_json::{Map, Value, json};

fn text() -> impl Strategy<Value = String> {
    // Non-empty, any characters (quotes, newlines, emoji, NUL).
    prop::string::string_regex("(?s).{1,40}").expect("regex")
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

/// One exchange: the user's text, then the assistant's optional text and tool calls (each
/// answered in the next user message, with optional text after the results).
#[derive(Debug, Clone)]
struct Exchange {
    user: String,
    assistant_text: Option<String>,
    calls: Vec<(String, Value, String, bool)>,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (text(), prop::option::of(text()), prop::collection::vec(("[a-z_]{1,12}", object(), text(), any::<bool>()), 0..3))
        .prop_map(|(user, assistant_text, calls)| Exchange { user, assistant_text, calls })
        .prop_filter("an assistant message has content", |e| e.assistant_text.is_some() || !e.calls.is_empty())
}

/// The neutral conversation of `exchanges`, ending with a user message. `errors` keeps
/// the is_error flags (OpenAI has none: it gets `error: ` prefixed instead).
fn conversation(exchanges: &[Exchange], errors: bool) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    let mut pending_results: Vec<ContentBlock> = Vec::new();
    for (n, e) in exchanges.iter().enumerate() {
        let mut user = std::mem::take(&mut pending_results);
        user.push(ContentBlock::Text { text: e.user.clone() });
        messages.push(ChatMessage { role: Role::User, content: user });
        let mut assistant = Vec::new();
        if let Some(t) = &e.assistant_text {
            assistant.push(ContentBlock::Text { text: t.clone() });
        }
        for (i, (name, input, result, is_error)) in e.calls.iter().enumerate() {
            let id = format!("call_{n}_{i}");
            assistant.push(ContentBlock::ToolUse { id: id.clone(), name: name.clone(), input: input.clone() });
            pending_results.push(ContentBlock::ToolResult {
                tool_use_id: id,
                content: result.clone(),
                is_error: errors && *is_error,
            });
        }
        messages.push(ChatMessage { role: Role::Assistant, content: assistant });
    }
    pending_results.push(ContentBlock::Text { text: "go on".into() });
    messages.push(ChatMessage { role: Role::User, content: pending_results });
    messages
}

fn request(messages: Vec<ChatMessage>) -> ModelRequest {
    ModelRequest { model: "m".into(), system: "sys".into(), messages, tools: vec![], max_tokens: 64 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn conversations_arrive_as_sent(exchanges in prop::collection::vec(exchange(), 1..4)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let fake = FakeModel::start().await;
            let base = rez_http::Url::parse(&fake.url()).expect("url");
            let anthropic = AnthropicClient::new(AnthropicConfig {
                api_key: ApiKey::new("k").expect("key"),
                base_url: Some(base),
                timeout: Duration::from_secs(5),
            })
            .expect("client");
            let openai = OpenAiClient::new(OpenAiConfig::new(None, Some(rez_http::Url::parse(&fake.openai_base_url()).expect("url"))))
                .expect("client");

            let sent = conversation(&exchanges, true);
            anthropic.complete(&request(sent.clone())).await.expect("anthropic");
            let sent_openai = conversation(&exchanges, false);
            openai.complete(&request(sent_openai.clone())).await.expect("openai");

            let seen = fake.requests();
            prop_assert_eq!(&seen[0].messages, &sent);
            prop_assert_eq!(&seen[1].messages, &sent_openai);
            prop_assert!(fake.violations().is_empty(), "{:?}", fake.violations());
            Ok(())
        })?;
    }
}
