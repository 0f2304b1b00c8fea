//! `rez messages list|show`.

use rez_core::MessageId;
use rez_core::message::MessageType;
use rez_core::ports::{Inbox, MessageFilter, MessageStore};
use rez_core::status::Status;
use rez_local::LocalStore;

pub async fn list(
    store: &LocalStore,
    status: Option<String>,
    message_type: Option<String>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let status =
        status.map(|s| Status::parse(&s).ok_or_else(|| anyhow::anyhow!("unknown status `{s}`"))).transpose()?;
    let message_type = message_type
        .map(|t| MessageType::parse(&t).ok_or_else(|| anyhow::anyhow!("unknown message type `{t}`")))
        .transpose()?;
    let page = store
        .list_messages(&MessageFilter { status, message_type, limit: limit.clamp(1, 100), ..Default::default() })
        .await?;
    if json {
        return super::print_json(&page);
    }
    for m in page.items {
        println!(
            "{}  {:<13} {:<17} {}  {}",
            m.id,
            m.status.as_str(),
            m.message_type.as_str(),
            rez_core::time::rfc3339(&m.created_date),
            m.error_message.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn show(store: &LocalStore, id: &str) -> anyhow::Result<()> {
    let id = MessageId::parse(id).map_err(|e| anyhow::anyhow!(e.message))?;
    let m = store.get_message(&id).await?.ok_or_else(|| anyhow::anyhow!("no message {id}"))?;
    let notification = store.get_entry(&id).await?;
    let results = rez_core::ports::ResultStore::results_for(store, &id).await?;
    super::print_json(&serde_json::json!({ "message": m, "notification": notification, "results": results }))
}
