//! The approvals table beyond the port suite: a run's step gets one approval however many
//! deliveries create it at once (the step item in the approval's transaction), and the
//! token hashes never enter the stored document.

use crate::common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use rez_core::agent::approval::ApprovalStore;
use rez_core::id::RunId;
use rez_port_suite::approvals::approval;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_created_by_ten_deliveries_at_once_has_one_approval() {
    let store = Arc::new(common::store().await);
    let run = RunId::new(Utc::now());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, a) = (store.clone(), approval(&run, 4, Utc::now()));
            tokio::spawn(async move { store.create_approval(&a).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|(_, created)| *created).count(), 1, "{outcomes:?}");
    let winner = &outcomes.iter().find(|(_, created)| *created).unwrap().0.id;
    assert!(outcomes.iter().all(|(a, _)| &a.id == winner), "every delivery gets the one approval");
    assert_eq!(store.approval_for_step(&run, 4).await.unwrap().unwrap().id, *winner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_hashes_are_kept_beside_the_document_not_in_it() {
    let store = common::store().await;
    let run = RunId::new(Utc::now());
    let (a, _) = store.create_approval(&approval(&run, 1, Utc::now())).await.unwrap();
    let (approve, decline) = ("a".repeat(64), "d".repeat(64));
    store.record_ask(&a.id, &approve, &decline, Utc::now()).await.unwrap();
    let item = store
        .clients()
        .dynamodb
        .get_item()
        .table_name(&store.names().approvals_table)
        .key("pk", AttributeValue::S(a.id.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let doc = item["doc"].as_s().unwrap();
    assert!(!doc.contains(&approve) && !doc.contains(&decline), "{doc}");
    assert_eq!(item["approve_hash"].as_s().unwrap(), &approve);
    let read = store.get_approval(&a.id).await.unwrap().unwrap();
    assert_eq!((read.approve_token_hash, read.decline_token_hash), (approve, decline));
    assert!(read.asked_at.is_some());
}
