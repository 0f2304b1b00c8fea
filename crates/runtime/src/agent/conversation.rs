//! The conversation of a run, rebuilt from its stored steps. It is a pure function of
//! what is stored, so a delivery resuming a run after a crash sends the model exactly
//! what the first delivery would have sent, and knows which step comes next.

use rez_core::agent::StopReason;
use rez_core::agent::model::{ChatMessage, ContentBlock, Role};
use rez_core::agent::run::{ChatExchange, ModelTurn, Step, StepKind, ToolCall};

/// What the run does next, as its steps say.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Ask the model (no turn yet, or every tool call of the last turn has its result).
    ModelTurn,
    /// Execute the tool call stored at this index without a result (its delivery crashed
    /// while it ran): again, with its stored idempotency key.
    Resume(u32),
    /// Start the first tool call of the last model turn that has no step yet.
    ToolCall { call_id: String, name: String, input: serde_json::Value },
    /// The last model turn ended the run.
    Finished(ModelTurn),
}

/// The messages to send: the session's earlier exchanges, the prompt, then per model
/// turn its answer and the results of the tool calls it asked for.
pub fn messages(history: &[ChatExchange], prompt: &str, steps: &[Step]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(history.len() * 2 + 1 + steps.len());
    for ex in history {
        out.push(ChatMessage::user_text(&ex.user));
        out.push(ChatMessage::assistant_text(&ex.assistant));
    }
    out.push(ChatMessage::user_text(prompt));
    for step in steps {
        match &step.kind {
            StepKind::ModelTurn(turn) => {
                let content = if turn.content.is_empty() {
                    vec![ContentBlock::Text { text: "(no answer)".into() }]
                } else {
                    turn.content.clone()
                };
                out.push(ChatMessage { role: Role::Assistant, content });
            }
            StepKind::ToolCall(ToolCall { call_id, outcome: Some(o), .. }) => {
                let block = ContentBlock::ToolResult {
                    tool_use_id: call_id.clone(),
                    content: o.text.clone(),
                    is_error: o.is_error,
                };
                match out.last_mut() {
                    Some(m)
                        if m.role == Role::User
                            && matches!(m.content.first(), Some(ContentBlock::ToolResult { .. })) =>
                    {
                        m.content.push(block)
                    }
                    _ => out.push(ChatMessage { role: Role::User, content: vec![block] }),
                }
            }
            StepKind::ToolCall(_) => {}
        }
    }
    out
}

/// The next thing to do after `steps`.
pub fn next(steps: &[Step]) -> Next {
    let Some(last_turn_at) = steps.iter().rposition(|s| matches!(s.kind, StepKind::ModelTurn(_))) else {
        return Next::ModelTurn;
    };
    let StepKind::ModelTurn(turn) = &steps[last_turn_at].kind else { return Next::ModelTurn };
    let calls = &steps[last_turn_at + 1..];
    for s in calls {
        if let StepKind::ToolCall(ToolCall { outcome: None, .. }) = &s.kind {
            return Next::Resume(s.index);
        }
    }
    let asked: Vec<(&String, &String, &serde_json::Value)> = turn
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => Some((id, name, input)),
            _ => None,
        })
        .collect();
    if let Some((id, name, input)) = asked.get(calls.len()) {
        return Next::ToolCall { call_id: (*id).clone(), name: (*name).clone(), input: (*input).clone() };
    }
    if asked.is_empty() && turn.stop_reason != StopReason::PauseTurn {
        return Next::Finished(turn.clone());
    }
    Next::ModelTurn
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rez_core::agent::run::ToolOutcome;
    use rez_core::agent::{Nanodollars, Usage};
    use rez_core::message::IdempotencyKey;
    use serde_json::json;

    use super::*;

    fn turn(i: u32, content: Vec<ContentBlock>, stop: StopReason) -> Step {
        Step {
            index: i,
            at: Utc::now(),
            kind: StepKind::ModelTurn(ModelTurn {
                model: "m".into(),
                request_bytes: 1,
                content,
                stop_reason: stop,
                usage: Usage::default(),
                cost: Nanodollars::ZERO,
                latency_ms: 1,
                attempts: 1,
            }),
        }
    }

    fn call(i: u32, id: &str, done: bool) -> Step {
        Step {
            index: i,
            at: Utc::now(),
            kind: StepKind::ToolCall(ToolCall {
                call_id: id.into(),
                name: "list_courses".into(),
                arguments: json!({}),
                idempotency_key: IdempotencyKey::parse("k").unwrap(),
                outcome: done.then(|| ToolOutcome {
                    text: format!("result {id}"),
                    structured: None,
                    is_error: false,
                    message_id: None,
                    duration_ms: 1,
                }),
            }),
        }
    }

    fn uses(ids: &[&str]) -> Vec<ContentBlock> {
        ids.iter()
            .map(|id| ContentBlock::ToolUse { id: (*id).into(), name: "list_courses".into(), input: json!({}) })
            .collect()
    }

    #[test]
    fn each_state_has_its_next_step() {
        assert_eq!(next(&[]), Next::ModelTurn);
        let t = turn(0, uses(&["a", "b"]), StopReason::ToolUse);
        assert!(matches!(next(std::slice::from_ref(&t)), Next::ToolCall { ref call_id, .. } if call_id == "a"));
        let steps = vec![t.clone(), call(1, "a", true)];
        assert!(matches!(next(&steps), Next::ToolCall { ref call_id, .. } if call_id == "b"));
        let steps = vec![t.clone(), call(1, "a", true), call(2, "b", false)];
        assert_eq!(next(&steps), Next::Resume(2));
        let steps = vec![t.clone(), call(1, "a", true), call(2, "b", true)];
        assert_eq!(next(&steps), Next::ModelTurn);
        let end = turn(3, vec![ContentBlock::Text { text: "done".into() }], StopReason::EndTurn);
        let steps = vec![t, call(1, "a", true), call(2, "b", true), end];
        assert!(matches!(next(&steps), Next::Finished(_)));
        let paused = turn(0, vec![ContentBlock::Text { text: "…".into() }], StopReason::PauseTurn);
        assert_eq!(next(&[paused]), Next::ModelTurn, "a paused turn is continued");
    }

    #[test]
    fn every_tool_use_is_answered_by_id_in_one_user_message() {
        let history = [ChatExchange {
            run_id: rez_core::id::RunId::new(Utc::now()),
            user: "hi".into(),
            assistant: "hello".into(),
            at: Utc::now(),
        }];
        let steps = vec![turn(0, uses(&["a", "b"]), StopReason::ToolUse), call(1, "a", true), call(2, "b", true)];
        let m = messages(&history, "book", &steps);
        assert_eq!(m.len(), 5);
        assert_eq!((m[0].text(), m[1].text(), m[2].text()), ("hi".into(), "hello".into(), "book".into()));
        assert_eq!(m[3].role, Role::Assistant);
        let ids: Vec<&str> = m[4]
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
