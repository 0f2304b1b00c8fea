//! The sharded `by-all` listings (messages, inbox) on moto: writes spread over every
//! shard, and a listing pages through all of them and the legacy unsharded partition in
//! order, every item once.

use crate::common;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rez_aws::AwsStore;
use rez_aws::shards::{LEGACY_PK, SHARDS, list_pk, shard_of};
use rez_core::MessageId;
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, Message, MessageType, NewMessage, Stage};
use rez_core::notify::NotifyPayload;
use rez_core::ports::{Inbox, MessageFilter, MessageStore, StoreError};

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

/// `list_pk` of every item of the messages table.
async fn list_pks(store: &AwsStore) -> BTreeMap<String, String> {
    let out = store.clients().dynamodb.scan().table_name(&store.names().messages_table).send().await.unwrap();
    out.items
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let s = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (s("id"), s("list_pk"))
        })
        .collect()
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
