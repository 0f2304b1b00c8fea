//! The sharded listing indexes on moto (messages: `by-all`, `by-status`, `by-type`; inbox:
//! `by-all`, `by-state`): writes spread over every shard, and a listing pages through all
//! of them and the legacy unsharded partition in order, every item once. The sweeper,
//! the dead-letter listing, redrive and the queue statistics find items written before
//! sharding too.

use crate::common;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rez_aws::AwsStore;
use rez_aws::shards::{LEGACY_PK, SHARDS, list_pk, shard_of, sharded};
use rez_core::MessageId;
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, Message, MessageType, NewMessage, Stage};
use rez_core::notify::NotifyPayload;
use rez_core::ports::{
    AttemptOutcome, DeliveryState, Inbox, MessageFilter, MessageStore, Queues, RedriveSelector, StoreError,
};
use rez_core::routing::QueueName;
use rez_core::status::Status;

fn notify(i: usize) -> Message {
    let new = NewMessage {
        message_type: MessageType::Notify,
        stage: if i.is_multiple_of(2) { Stage::Dev } else { Stage::Prod },
        payload: serde_json::json!({ "message": format!("m{i}") }).as_object().cloned().unwrap_or_default(),
        arguments: Default::default(),
        idempotency_key: None,
    };
    Message::create(new, CreatedBy::Api, SystemClock.now())
}

/// Messages covering every shard at least three times, submitted; their ids.
async fn submit_across_shards(store: &AwsStore) -> Vec<Message> {
    let mut per_shard = [0usize; SHARDS as usize];
    let mut out = Vec::new();
    let mut i = 0;
    while per_shard.iter().any(|c| *c < 3) {
        let m = notify(i);
        i += 1;
        per_shard[shard_of(m.id.as_str()) as usize] += 1;
        store.submit(m.clone()).await.unwrap();
        out.push(m);
    }
    out
}

/// `attr` of every item of `table`, by the item's `key`.
async fn attribute_of_every_item(store: &AwsStore, table: &str, key: &str, attr: &str) -> BTreeMap<String, String> {
    let out = store.clients().dynamodb.scan().table_name(table).send().await.unwrap();
    out.items
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let s = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (s(key), s(attr))
        })
        .collect()
}

/// `list_pk` of every item of the messages table.
async fn list_pks(store: &AwsStore) -> BTreeMap<String, String> {
    attribute_of_every_item(store, &store.names().messages_table, "id", "list_pk").await
}

/// Rewrite key attributes of one item as they were written before sharding (bare values).
async fn unshard(store: &AwsStore, table: &str, key: (&str, &str), attrs: &[(&str, &str)]) {
    let mut update =
        store.clients().dynamodb.update_item().table_name(table).key(key.0, AttributeValue::S(key.1.to_owned()));
    let mut sets = Vec::new();
    for (i, (name, value)) in attrs.iter().enumerate() {
        sets.push(format!("#a{i} = :v{i}"));
        update = update
            .expression_attribute_names(format!("#a{i}"), *name)
            .expression_attribute_values(format!(":v{i}"), AttributeValue::S((*value).to_owned()));
    }
    update.update_expression(format!("SET {}", sets.join(", "))).send().await.unwrap();
}

/// How many distinct values `values` holds, and whether each is a shard of `base`.
fn shards_used(values: impl IntoIterator<Item = String>, base: &str) -> usize {
    let distinct: std::collections::BTreeSet<String> = values.into_iter().collect();
    for v in &distinct {
        assert!(v.strip_prefix(&format!("{base}#")).is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n < SHARDS)), "{v}");
    }
    distinct.len()
}

async fn list_all(store: &AwsStore, filter: MessageFilter) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let page = store.list_messages(&MessageFilter { cursor, ..filter.clone() }).await.unwrap();
        assert!(page.items.len() <= filter.limit);
        pages += 1;
        ids.extend(page.items.into_iter().map(|m| m.id.as_str().to_owned()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (ids, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_writes_spread_over_every_shard() {
    let store = common::store().await;
    let messages = submit_across_shards(&store).await;
    let pks = list_pks(&store).await;
    assert_eq!(pks.len(), messages.len());
    for m in &messages {
        assert_eq!(pks[m.id.as_str()], list_pk(m.id.as_str()), "after submit and queueing");
    }
    let mut counts = BTreeMap::new();
    for pk in pks.values() {
        *counts.entry(pk.clone()).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), SHARDS as usize, "{counts:?}");
    assert!(!counts.contains_key(LEGACY_PK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_every_shard_and_the_legacy_partition_in_order() {
    let store = common::store().await;
    let messages = submit_across_shards(&store).await;
    // Two items as written before sharding: in the legacy partition.
    for m in messages.iter().take(2) {
        store
            .clients()
            .dynamodb
            .update_item()
            .table_name(&store.names().messages_table)
            .key("id", AttributeValue::S(m.id.as_str().to_owned()))
            .update_expression("SET list_pk = :all")
            .expression_attribute_values(":all", AttributeValue::S(LEGACY_PK.to_owned()))
            .send()
            .await
            .unwrap();
    }
    let mut expected: Vec<String> = messages.iter().map(|m| m.id.as_str().to_owned()).collect();
    expected.sort_by(|a, b| b.cmp(a));

    let (ids, pages) = list_all(&store, MessageFilter { limit: 7, ..Default::default() }).await;
    assert_eq!(ids, expected, "every message exactly once, newest first");
    assert_eq!(pages, expected.len().div_ceil(7));

    // A filter keeps working across shards.
    let prod: Vec<String> = {
        let prod: std::collections::HashSet<&str> =
            messages.iter().filter(|m| m.stage == Stage::Prod).map(|m| m.id.as_str()).collect();
        expected.iter().filter(|id| prod.contains(id.as_str())).cloned().collect()
    };
    let (ids, _) = list_all(&store, MessageFilter { limit: 4, stage: Some(Stage::Prod), ..Default::default() }).await;
    assert_eq!(ids, prod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_cursors_refuse_foreign_and_malformed_input() {
    let store = common::store().await;
    submit_across_shards(&store).await;
    let page = store.list_messages(&MessageFilter { limit: 2, ..Default::default() }).await.unwrap();
    let all_cursor = page.next_cursor.unwrap();
    let by_type = MessageFilter { limit: 2, message_type: Some(MessageType::Notify), ..Default::default() };
    let typed_cursor = store.list_messages(&by_type).await.unwrap().next_cursor.unwrap();
    // A by-type cursor on the sharded listing, and the other way round.
    let err = store
        .list_messages(&MessageFilter { limit: 2, cursor: Some(typed_cursor), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    let err = store.list_messages(&MessageFilter { cursor: Some(all_cursor), ..by_type.clone() }).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    let err = store
        .list_messages(&MessageFilter { limit: 2, cursor: Some("e30".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_listing_pages_through_every_shard_and_the_legacy_partition() {
    let store = common::store().await;
    let n = NotifyPayload::text("x");
    let mut per_shard = [0usize; SHARDS as usize];
    let mut expected = Vec::new();
    while per_shard.iter().any(|c| *c < 2) {
        let id = MessageId::new(SystemClock.now());
        per_shard[shard_of(id.as_str()) as usize] += 1;
        store.open(&id, &n).await.unwrap();
        expected.push(id.as_str().to_owned());
    }
    let legacy = &expected[0];
    store
        .clients()
        .dynamodb
        .update_item()
        .table_name(&store.names().inbox_table)
        .key("message_id", AttributeValue::S(legacy.clone()))
        .update_expression("SET list_pk = :all")
        .expression_attribute_values(":all", AttributeValue::S(LEGACY_PK.to_owned()))
        .send()
        .await
        .unwrap();
    expected.sort_by(|a, b| b.cmp(a));
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_entries(None, 5, cursor).await.unwrap();
        assert!(page.items.len() <= 5);
        ids.extend(page.items.into_iter().map(|e| e.message_id.as_str().to_owned()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(ids, expected, "every entry exactly once, newest first");
    // A cursor of the messages listing is foreign here.
    submit_across_shards(&store).await;
    let messages_cursor =
        store.list_messages(&MessageFilter { limit: 1, ..Default::default() }).await.unwrap().next_cursor.unwrap();
    let err = store.list_entries(None, 5, Some(messages_cursor)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_type_and_state_keys_spread_over_every_shard() {
    let store = common::store().await;
    let messages = submit_across_shards(&store).await;
    let table = store.names().messages_table.clone();
    let status = attribute_of_every_item(&store, &table, "id", "status").await;
    let types = attribute_of_every_item(&store, &table, "id", "message_type").await;
    for m in &messages {
        assert_eq!(status[m.id.as_str()], sharded("queued", m.id.as_str()));
        assert_eq!(types[m.id.as_str()], sharded("notify", m.id.as_str()));
    }
    assert_eq!(shards_used(status.into_values(), "queued"), SHARDS as usize);
    assert_eq!(shards_used(types.into_values(), "notify"), SHARDS as usize);
    let n = NotifyPayload::text("x");
    for m in &messages {
        store.open(&m.id, &n).await.unwrap();
    }
    let states = attribute_of_every_item(&store, &store.names().inbox_table, "message_id", "state").await;
    assert_eq!(shards_used(states.into_values(), "pending"), SHARDS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_type_listings_merge_every_shard_and_the_legacy_partitions() {
    let store = common::store().await;
    let messages = submit_across_shards(&store).await;
    let table = store.names().messages_table.clone();
    // Three items as written before sharding.
    for m in messages.iter().take(3) {
        unshard(
            &store,
            &table,
            ("id", m.id.as_str()),
            &[("status", "queued"), ("message_type", "notify"), ("list_pk", LEGACY_PK)],
        )
        .await;
    }
    let mut expected: Vec<String> = messages.iter().map(|m| m.id.as_str().to_owned()).collect();
    expected.sort_by(|a, b| b.cmp(a));

    let queued = MessageFilter { limit: 7, status: Some(Status::Queued), ..Default::default() };
    let (ids, pages) = list_all(&store, queued.clone()).await;
    assert_eq!(ids, expected, "by status: every message exactly once, newest first");
    assert_eq!(pages, expected.len().div_ceil(7));
    let notify = MessageFilter { limit: 5, message_type: Some(MessageType::Notify), ..Default::default() };
    assert_eq!(list_all(&store, notify.clone()).await.0, expected, "by type");
    // Status and type together: the type is a filter over its shards and legacy value.
    let both = MessageFilter { limit: 4, message_type: Some(MessageType::Notify), ..queued.clone() };
    assert_eq!(list_all(&store, both.clone()).await.0, expected, "by status and type");
    let other = MessageFilter { message_type: Some(MessageType::WebAction), ..both.clone() };
    assert!(list_all(&store, other).await.0.is_empty());
    let done = MessageFilter { status: Some(Status::Completed), ..queued.clone() };
    assert!(list_all(&store, done).await.0.is_empty());
    // A time window is a key condition on every shard.
    let middle = &messages[messages.len() / 2];
    let after = MessageFilter { created_after: Some(middle.created_date), ..queued.clone() };
    let want: Vec<String> = expected
        .iter()
        .filter(|id| messages.iter().any(|m| m.id.as_str() == *id && m.created_date >= middle.created_date))
        .cloned()
        .collect();
    assert_eq!(list_all(&store, after).await.0, want);

    // A status change moves an item, legacy or not, to its new status's shard; each
    // listing then has it once.
    let taken = store.receive(QueueName::Notifications, 1, std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(taken.len(), 1);
    let moved = taken[0].message.id.as_str().to_owned();
    let status = attribute_of_every_item(&store, &table, "id", "status").await;
    assert_eq!(status[&moved], sharded("processing", &moved));
    let processing = MessageFilter { status: Some(Status::Processing), ..queued.clone() };
    assert_eq!(list_all(&store, processing).await.0, vec![moved.clone()]);
    let (ids, _) = list_all(&store, queued.clone()).await;
    assert_eq!(ids.len(), expected.len() - 1);
    assert!(!ids.contains(&moved));

    // One status's cursor is foreign to another status's listing, and to the type listing.
    let cursor = store.list_messages(&MessageFilter { limit: 1, ..queued.clone() }).await.unwrap().next_cursor.unwrap();
    for f in [MessageFilter { status: Some(Status::Failed), ..queued.clone() }, notify.clone()] {
        let err = store.list_messages(&MessageFilter { cursor: Some(cursor.clone()), ..f }).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_state_listing_merges_every_shard_and_the_legacy_partition() {
    let store = common::store().await;
    let n = NotifyPayload::text("x");
    let mut per_shard = [0usize; SHARDS as usize];
    let mut ids = Vec::new();
    while per_shard.iter().any(|c| *c < 2) {
        let id = MessageId::new(SystemClock.now());
        per_shard[shard_of(id.as_str()) as usize] += 1;
        store.open(&id, &n).await.unwrap();
        ids.push(id);
    }
    let table = store.names().inbox_table.clone();
    unshard(&store, &table, ("message_id", ids[0].as_str()), &[("state", "pending")]).await;
    unshard(&store, &table, ("message_id", ids[1].as_str()), &[("state", "pending")]).await;
    // Every third entry delivered, the legacy ones included.
    let mut delivered = Vec::new();
    let mut pending = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 {
            store.record(id, &n, AttemptOutcome::Delivered { push_id: None }).await.unwrap();
            delivered.push(id.as_str().to_owned());
        } else {
            pending.push(id.as_str().to_owned());
        }
    }
    delivered.sort_by(|a, b| b.cmp(a));
    pending.sort_by(|a, b| b.cmp(a));
    let list = |state: DeliveryState| {
        let store = &store;
        async move {
            let mut out = Vec::new();
            let mut cursor = None;
            loop {
                let page = store.list_entries(Some(state), 3, cursor).await.unwrap();
                assert!(page.items.len() <= 3);
                out.extend(page.items.into_iter().map(|e| e.message_id.as_str().to_owned()));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => return out,
                }
            }
        }
    };
    assert_eq!(list(DeliveryState::Pending).await, pending, "pending: the legacy entry and every shard");
    assert_eq!(list(DeliveryState::Delivered).await, delivered);
    assert!(list(DeliveryState::Failed).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_dead_letters_redrive_and_stats_find_items_written_before_sharding() {
    use rez_core::message::MAX_PUBLISHED_BYTES;
    use std::sync::Arc;
    let (clients, names) = common::deployment().await;
    let mut broken = names.clone();
    broken
        .topics
        .insert(rez_core::routing::Topic::Notifications, "arn:aws:sns:us-east-1:123456789012:no-such-topic".into());
    let broken = AwsStore::new(clients.clone(), broken, Arc::new(SystemClock), Default::default());
    let store = common::store_on(clients, names);
    let table = store.names().messages_table.clone();

    // Two messages left `created` (their publish failed), one as written before sharding;
    // one more too large for SNS, also legacy.
    let old = broken.submit(notify(1)).await.unwrap().into_message();
    let newer = broken.submit(notify(2)).await.unwrap().into_message();
    let mut big = notify(3);
    big.payload.insert("message".into(), serde_json::Value::String("x".repeat(MAX_PUBLISHED_BYTES)));
    let big = store.submit(big).await.unwrap().into_message();
    for m in [&old, &big] {
        unshard(&store, &table, ("id", m.id.as_str()), &[("status", "created"), ("message_type", "notify")]).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // The oldest live message is counted in the queue's statistics, legacy or not.
    let stats = store.stats().await.unwrap();
    let notifications = stats.iter().find(|s| s.queue == QueueName::Notifications).unwrap();
    assert_eq!(notifications.oldest_age_seconds, 0.0, "`created` is not yet in the queue");

    let swept = rez_aws::sweeper::sweep_created(&store, chrono::Duration::milliseconds(10), 100).await.unwrap();
    assert_eq!((swept.published, swept.dead_lettered, swept.left), (2, 1, 0));
    for m in [&old, &newer] {
        assert_eq!(store.get_message(&m.id).await.unwrap().unwrap().status, Status::Queued);
    }
    // Back to legacy form: a `queued` message and a dead letter as written before sharding.
    unshard(&store, &table, ("id", old.id.as_str()), &[("status", "queued")]).await;
    unshard(&store, &table, ("id", big.id.as_str()), &[("status", "dead_lettered")]).await;
    let stats = store.stats().await.unwrap();
    let notifications = stats.iter().find(|s| s.queue == QueueName::Notifications).unwrap();
    let age_of_old = (SystemClock.now() - old.created_date).num_milliseconds() as f64 / 1000.0;
    assert!(
        notifications.oldest_age_seconds > 0.0 && notifications.oldest_age_seconds <= age_of_old + 0.001,
        "{} vs {age_of_old}",
        notifications.oldest_age_seconds
    );
    assert!(notifications.oldest_age_seconds >= age_of_old - 5.0, "the legacy item is the oldest");

    for queue in [None, Some(QueueName::Notifications)] {
        let page = store.dead_letters(queue, 10, None).await.unwrap();
        assert_eq!(page.items.iter().map(|d| d.message.id.clone()).collect::<Vec<_>>(), vec![big.id.clone()]);
    }
    assert!(store.dead_letters(Some(QueueName::WebActions), 10, None).await.unwrap().items.is_empty());
    assert_eq!(store.redrive(&RedriveSelector::All).await.unwrap(), 1);
    assert!(store.dead_letters(None, 10, None).await.unwrap().items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_page_across_shards() {
    let store = common::store().await;
    let messages = submit_across_shards(&store).await;
    let table = store.names().messages_table.clone();
    // Every message made a dead letter of the notifications queue by hand: the item as
    // the dead-letter path writes it, sharded, and two in legacy form.
    for (i, m) in messages.iter().enumerate() {
        let status = if i < 2 { "dead_lettered".to_owned() } else { sharded("dead_lettered", m.id.as_str()) };
        let mut doc: serde_json::Value =
            serde_json::to_value(store.get_message(&m.id).await.unwrap().unwrap()).unwrap();
        doc["status"] = "dead_lettered".into();
        store
            .clients()
            .dynamodb
            .update_item()
            .table_name(&table)
            .key("id", AttributeValue::S(m.id.as_str().to_owned()))
            .update_expression("SET #st = :st, dlq = :q, dl_ms = :ms, dl_count = :c, doc = :doc")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", AttributeValue::S(status))
            .expression_attribute_values(":q", AttributeValue::S("notifications".into()))
            .expression_attribute_values(":ms", AttributeValue::N("1".into()))
            .expression_attribute_values(":c", AttributeValue::N("3".into()))
            .expression_attribute_values(":doc", AttributeValue::S(doc.to_string()))
            .send()
            .await
            .unwrap();
    }
    let mut expected: Vec<MessageId> = messages.iter().map(|m| m.id.clone()).collect();
    expected.sort_by(|a, b| b.cmp(a));
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.dead_letters(Some(QueueName::Notifications), 4, cursor).await.unwrap();
        assert!(page.items.len() <= 4);
        ids.extend(page.items.into_iter().map(|d| d.message.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(ids, expected, "every dead letter once, newest first");
    assert_eq!(store.redrive(&RedriveSelector::Queue(QueueName::Notifications)).await.unwrap(), expected.len() as u64);
}
