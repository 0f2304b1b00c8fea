//! `rez send`: queue a notification.

use rez_core::message::{CreatedBy, MessageType, NewMessage};
use rez_local::LocalStore;
use serde_json::{Map, Value, json};

use crate::config::Config;

pub struct SendArgs {
    pub message: String,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub tags: Vec<String>,
    pub click: Option<String>,
    pub markdown: bool,
}

pub async fn run(config: &Config, store: &LocalStore, args: SendArgs) -> anyhow::Result<()> {
    let mut payload = Map::new();
    payload.insert("message".into(), Value::String(args.message));
    if let Some(t) = args.title {
        payload.insert("title".into(), Value::String(t));
    }
    if let Some(p) = args.priority {
        let v = p.parse::<u64>().map(Value::from).unwrap_or(Value::String(p));
        payload.insert("priority".into(), v);
    }
    if !args.tags.is_empty() {
        payload.insert("tags".into(), json!(args.tags));
    }
    if let Some(c) = args.click {
        payload.insert("click".into(), Value::String(c));
    }
    if args.markdown {
        payload.insert("markdown".into(), Value::Bool(true));
    }
    let body = json!({ "message_type": MessageType::Notify.as_str(), "payload": payload });
    let new = NewMessage::from_json(&body, config.stage).map_err(|e| anyhow::anyhow!("{e}"))?;
    let services = crate::wiring::services(config, store, Default::default())?;
    let m = rez_runtime::intake::submit(&services, new, CreatedBy::Cli).await?.into_message();
    println!("{} {}", m.id, m.status);
    Ok(())
}
