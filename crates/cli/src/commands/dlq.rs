//! `rez dlq list|redrive`.

use rez_core::MessageId;
use rez_core::ports::{Queues, RedriveSelector};
use rez_core::routing::QueueName;
use rez_local::LocalStore;

pub async fn list(store: &LocalStore, queue: Option<String>, json: bool) -> anyhow::Result<()> {
    let queue =
        queue.map(|q| QueueName::parse(&q).ok_or_else(|| anyhow::anyhow!("unknown queue `{q}`"))).transpose()?;
    let page = store.dead_letters(queue, 100, None).await?;
    if json {
        return super::print_json(&page);
    }
    if page.items.is_empty() {
        println!("no dead letters");
    }
    for d in page.items {
        println!(
            "{}  {:<18} receives={}  {}",
            d.message.id,
            d.source_queue.as_str(),
            d.receive_count,
            d.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn redrive(store: &LocalStore, all: bool, queue: Option<String>, ids: Vec<String>) -> anyhow::Result<()> {
    let selector = match (all, queue, ids.is_empty()) {
        (true, None, true) => RedriveSelector::All,
        (false, Some(q), true) => {
            RedriveSelector::Queue(QueueName::parse(&q).ok_or_else(|| anyhow::anyhow!("unknown queue `{q}`"))?)
        }
        (false, None, false) => RedriveSelector::Ids(
            ids.iter()
                .map(|i| MessageId::parse(i).map_err(|e| anyhow::anyhow!(e.message)))
                .collect::<anyhow::Result<_>>()?,
        ),
        _ => anyhow::bail!("give exactly one of --all, --queue <name> or message ids"),
    };
    let n = store.redrive(&selector).await?;
    println!("redriven {n}");
    Ok(())
}
