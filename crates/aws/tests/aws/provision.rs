//! The template's resources come up on moto with the names the adapters expect, and with
//! the queue settings and subscriptions the template gives AWS.

use crate::common;

use aws_sdk_sqs::types::QueueAttributeName;
use rez_aws::provision::{function_specs, queue_specs};
use rez_core::routing::{QueueName, Topic};

#[tokio::test]
async fn provisions_every_resource_of_the_template() {
    let (clients, names) = common::deployment().await;
    // Described one by one: ListTables pages at 100 and the emulator is shared.
    for t in [&names.messages_table, &names.schedules_table, &names.results_table, &names.ledger_table] {
        let described = clients.dynamodb.describe_table().table_name(t).send().await;
        assert!(described.is_ok(), "{t} not created: {described:?}");
    }
    let messages = clients.dynamodb.describe_table().table_name(&names.messages_table).send().await.unwrap();
    let gsis: Vec<_> = messages
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name().map(str::to_owned))
        .collect();
    assert!(gsis.contains(&"by-status".to_owned()), "{gsis:?}");
    assert_eq!(names.queues.len(), 4);
    assert_eq!(names.topics.len(), 4);
    let group = clients.scheduler.get_schedule_group().name(&names.schedule_group).send().await.unwrap();
    assert_eq!(group.name(), Some(names.schedule_group.as_str()));
}

async fn attributes(clients: &rez_aws::Clients, url: &str) -> std::collections::HashMap<QueueAttributeName, String> {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes()
        .cloned()
        .unwrap_or_default()
}

/// The notifications queue as created on moto: visibility 6 × the processor's timeout
/// (both read from the template), redrive to its DLQ after 3 receives, 4-day retention.
#[tokio::test]
async fn queues_carry_the_templates_visibility_retention_and_redrive() {
    let (clients, names) = common::deployment().await;
    let processor = function_specs().unwrap().into_iter().find(|f| f.logical_id == "ProcessorFunction").unwrap();
    assert_eq!(processor.sqs_sources, ["NotificationsQueue"]);
    let expected_visibility = 6 * processor.timeout_seconds;
    assert_eq!(expected_visibility, 360);

    let q = names.queue(QueueName::Notifications).unwrap();
    let attrs = attributes(&clients, &q.url).await;
    assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], expected_visibility.to_string());
    assert_eq!(attrs[&QueueAttributeName::MessageRetentionPeriod], (4 * 24 * 3600).to_string());
    let redrive: serde_json::Value = serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(3), "{redrive}");
    assert_eq!(redrive["deadLetterTargetArn"].as_str(), Some(q.dlq_arn.as_str()));

    let dlq = attributes(&clients, &q.dlq_url).await;
    assert_eq!(dlq[&QueueAttributeName::MessageRetentionPeriod], (14 * 24 * 3600).to_string());
    assert!(!dlq.contains_key(&QueueAttributeName::RedrivePolicy));

    // Every work queue: what the template says.
    let specs = queue_specs().unwrap();
    for q in QueueName::ALL {
        let spec = specs.iter().find(|s| s.name_pattern == format!("rez-${{Stage}}-{q}")).unwrap();
        let attrs = attributes(&clients, &names.queue(q).unwrap().url).await;
        assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], spec.visibility_timeout.unwrap().to_string(), "{q}");
    }
}

/// SNS → SQS with raw delivery: the queue receives the published body itself, not an SNS
/// envelope, on the queue the routing table names.
#[tokio::test]
async fn topics_fan_out_raw_to_their_queues() {
    let (clients, names) = common::deployment().await;
    for t in Topic::ALL {
        let subs =
            clients.sns.list_subscriptions_by_topic().topic_arn(names.topic_arn(t).unwrap()).send().await.unwrap();
        assert_eq!(subs.subscriptions().len(), t.subscribers().len(), "{t}");
        for s in subs.subscriptions() {
            let attrs = clients
                .sns
                .get_subscription_attributes()
                .subscription_arn(s.subscription_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(attrs.attributes().unwrap().get("RawMessageDelivery").map(String::as_str), Some("true"), "{t}");
        }
    }

    let body = r#"{"id":"msg_raw","message_type":"web_action"}"#;
    clients.sns.publish().topic_arn(names.topic_arn(Topic::WebActions).unwrap()).message(body).send().await.unwrap();
    let url = &names.queue(QueueName::WebActions).unwrap().url;
    let got = clients.sqs.receive_message().queue_url(url).wait_time_seconds(2).send().await.unwrap();
    let bodies: Vec<_> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [body]);
    let other = &names.queue(QueueName::Notifications).unwrap().url;
    let none = clients.sqs.receive_message().queue_url(other).send().await.unwrap();
    assert!(none.messages().is_empty());
}
