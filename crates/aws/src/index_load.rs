//! The write load on each index partition of the messages and inbox tables, simulated
//! over the items the stores really write ([`record_item`], the inbox's [`item_of`]) for
//! the whole life of many notify messages of one type, the worst case for `by-type`.
//! DynamoDB gives a partition about 1,000 WCU/s; an index with `ALL` projection costs
//! one write per KB of item for every index entry put or deleted, and an item whose key
//! attribute changes is a delete under the old value and a put under the new one. The
//! hottest partition per message sets the ceiling. DEPLOY.md "Ceilings" quotes what
//! `cargo test -p rez-aws --lib index_load -- --nocapture` prints.

use std::collections::HashMap;

use rez_core::clock::{Clock, ManualClock};
use rez_core::message::{CreatedBy, Message, MessageType, NewMessage, Stage};
use rez_core::notify::NotifyPayload;
use rez_core::ports::DeliveryState;
use rez_core::status::Status;

use crate::codec::Item;
use crate::inbox::{self, Stored, item_of};
use crate::messages::{self, Record, record_item};
use crate::shards::{LIST_PK_ATTR, SHARDS};

/// Partitions take about this many write units a second.
const PARTITION_WCU: f64 = 1_000.0;
const MESSAGES: usize = 40_000;

/// The GSIs of a table: name and partition key attribute.
const MESSAGE_INDEXES: [(&str, &str); 3] = [
    (messages::BY_ALL, LIST_PK_ATTR),
    (messages::BY_STATUS, messages::STATUS_ATTR),
    (messages::BY_TYPE, messages::TYPE_ATTR),
];
const INBOX_INDEXES: [(&str, &str); 2] = [(inbox::BY_ALL, LIST_PK_ATTR), (inbox::BY_STATE, inbox::STATE_ATTR)];

/// Write units per index and partition value.
#[derive(Default)]
struct Load(HashMap<(&'static str, String), u64>);

/// A write unit per started KB of the item, as DynamoDB counts an item's size: attribute
/// names plus values (strings by their UTF-8 length, numbers at most 21 bytes).
fn wcu(item: &Item) -> u64 {
    let bytes: usize = item
        .iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => s.len(),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => n.len().min(21),
                    _ => 1,
                }
        })
        .sum();
    bytes.div_ceil(1024) as u64
}

impl Load {
    /// The index writes of putting `after` over `before`.
    fn write(&mut self, indexes: &[(&'static str, &str)], before: Option<&Item>, after: &Item) {
        let key = |item: Option<&Item>, attr: &str| item.and_then(|i| i.get(attr)).and_then(|v| v.as_s().ok()).cloned();
        for (index, attr) in indexes {
            let (old, new) = (key(before, attr), key(Some(after), attr));
            if let (Some(o), Some(n)) = (&old, &new)
                && o == n
            {
                *self.0.entry((index, n.clone())).or_default() += wcu(after);
                continue;
            }
            if let (Some(o), Some(b)) = (old, before) {
                *self.0.entry((index, o)).or_default() += wcu(b);
            }
            if let Some(n) = new {
                *self.0.entry((index, n)).or_default() += wcu(after);
            }
        }
    }

    /// Per index: partitions written, write units per message in all, and in the
    /// hottest partition; with `unsharded`, as if every value were its bare base.
    fn report(&self, unsharded: bool) -> Vec<(&'static str, usize, f64, f64)> {
        let mut per: HashMap<&'static str, HashMap<String, u64>> = HashMap::new();
        for ((index, pk), w) in &self.0 {
            let pk = if unsharded { pk.split('#').next().unwrap_or(pk).to_owned() } else { pk.clone() };
            *per.entry(index).or_default().entry(pk).or_default() += w;
        }
        let mut out: Vec<_> = per
            .into_iter()
            .map(|(index, parts)| {
                let total: u64 = parts.values().sum();
                let hottest = parts.values().copied().max().unwrap_or(0);
                (index, parts.len(), total as f64 / MESSAGES as f64, hottest as f64 / MESSAGES as f64)
            })
            .collect();
        out.sort_by_key(|r| r.0);
        out
    }
}

/// Every write of a notify message's life, as the AWS stores make them: submitted
/// `created`, published and marked `queued`, taken `processing` with its receipt,
/// `completed`; its inbox entry opened `pending`, then `delivered`.
fn simulate() -> (Load, Load, u64) {
    let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000));
    let (mut messages, mut inbox) = (Load::default(), Load::default());
    let mut item_wcu = 0;
    for i in 0..MESSAGES {
        clock.advance(chrono::Duration::milliseconds(1));
        let new = NewMessage {
            message_type: MessageType::Notify,
            stage: Stage::Prod,
            payload: serde_json::json!({ "title": "Tee time", "message": format!("Booked 08:10, 4 players ({i})") })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            arguments: Default::default(),
            idempotency_key: None,
        };
        let m = Message::create(new, CreatedBy::Api, clock.now());
        let mut rec = Record::new(m.clone());
        let mut before: Option<Item> = None;
        for (status, receipt) in [
            (Status::Created, None),
            (Status::Queued, None),
            (Status::Processing, Some("AQEB".repeat(40))),
            (Status::Completed, None),
        ] {
            rec.message.status = status;
            rec.receipt = receipt;
            rec.rev += 1;
            let after = record_item(&rec).expect("a record encodes");
            item_wcu = item_wcu.max(wcu(&after));
            messages.write(&MESSAGE_INDEXES, before.as_ref(), &after);
            before = Some(after);
        }
        let mut entry = Stored::new(m.id.clone(), NotifyPayload::text("Booked 08:10, 4 players"), clock.now());
        let opened = item_of(&entry, 0).expect("an entry encodes");
        inbox.write(&INBOX_INDEXES, None, &opened);
        entry.state = DeliveryState::Delivered;
        entry.attempts = 1;
        entry.delivered_date = Some(clock.now());
        inbox.write(&INBOX_INDEXES, Some(&opened), &item_of(&entry, 1).expect("an entry encodes"));
    }
    (messages, inbox, item_wcu)
}

#[test]
fn sharding_divides_the_hottest_partition_by_the_shard_count() {
    let (messages, inbox, item_wcu) = simulate();
    println!("{MESSAGES} notify messages of one type, items of {item_wcu} WCU, {SHARDS} shards");
    println!(
        "| table | index | partitions | WCU per message | hottest partition, WCU per message | ceiling, messages/s | unsharded ceiling |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (table, load) in [("messages", &messages), ("inbox", &inbox)] {
        let before = load.report(true);
        for ((index, parts, total, hottest), (_, _, _, hottest_before)) in load.report(false).into_iter().zip(before) {
            println!(
                "| {table} | {index} | {parts} | {total:.2} | {hottest:.3} | {:.0} | {:.0} |",
                PARTITION_WCU / hottest,
                PARTITION_WCU / hottest_before
            );
            // The hottest value's load spreads evenly over its shards, within a few percent.
            let spread = hottest_before / hottest;
            assert!(spread >= SHARDS as f64 * 0.9 && spread <= SHARDS as f64 + 1e-9, "{table} {index}: {spread}");
        }
    }
}
