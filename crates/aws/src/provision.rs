//! Creates a deployment's data and messaging resources on an emulator (moto) from the
//! same definitions the CloudFormation template uses, so tests and laptops run against
//! exactly the key schemas, GSIs, TTLs and queue settings that AWS gets.
//!
//! It reads `deploy/template.yaml` (compiled in) and creates every
//! `AWS::DynamoDB::Table`, then the topics, queues (with their DLQs and redrive policy)
//! and raw-delivery subscriptions of the routing table, and the schedule group. It is
//! not a CloudFormation engine: it understands only those resource types, and names
//! are the template's with `rez-${Stage}` replaced by the caller's prefix, so parallel
//! tests can share one emulator.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use rez_core::routing::{QueueName, Topic};
use serde_yaml_ng::Value;

use crate::config::QueueAddress;
use crate::{Clients, Names};

/// The CloudFormation template of the deployment.
pub const TEMPLATE: &str = include_str!("../../../deploy/template.yaml");

/// Visibility timeout of the queues in seconds (6× the 60 s function timeout).
pub const QUEUE_VISIBILITY_SECONDS: u32 = 360;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("template: {0}")]
    Template(String),
    #[error("{0}")]
    Aws(String),
}

fn aws(context: &str, e: impl std::error::Error) -> ProvisionError {
    let mut text = format!("{context}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ProvisionError::Aws(text)
}

/// A table as the template defines it.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    /// Name with `rez-${Stage}` still in it.
    pub name_pattern: String,
    pub attributes: Vec<(String, String)>,
    pub key: Vec<(String, String)>,
    pub indexes: Vec<(String, Vec<(String, String)>)>,
    pub ttl_attribute: Option<String>,
}

/// The `AWS::DynamoDB::Table` resources of [`TEMPLATE`].
pub fn table_specs() -> Result<Vec<TableSpec>, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| ProvisionError::Template(e.to_string()))?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| ProvisionError::Template("no Resources".into()))?;
    let mut out = Vec::new();
    for (id, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let id = id.as_str().unwrap_or_default().to_owned();
        let bad = |what: &str| ProvisionError::Template(format!("{id}: {what}"));
        let props = res.get("Properties").ok_or_else(|| bad("no Properties"))?;
        let name_pattern = tagged_str(props.get("TableName").ok_or_else(|| bad("no TableName"))?)
            .ok_or_else(|| bad("TableName is not a string or !Sub string"))?;
        let pairs = |v: Option<&Value>, a: &str, b: &str| -> Result<Vec<(String, String)>, ProvisionError> {
            v.and_then(Value::as_sequence)
                .ok_or_else(|| bad("missing list"))?
                .iter()
                .map(|e| {
                    let x = e.get(a).and_then(Value::as_str).ok_or_else(|| bad(a))?;
                    let y = e.get(b).and_then(Value::as_str).ok_or_else(|| bad(b))?;
                    Ok((x.to_owned(), y.to_owned()))
                })
                .collect()
        };
        let attributes = pairs(props.get("AttributeDefinitions"), "AttributeName", "AttributeType")?;
        let key = pairs(props.get("KeySchema"), "AttributeName", "KeyType")?;
        let mut indexes = Vec::new();
        if let Some(gsis) = props.get("GlobalSecondaryIndexes").and_then(Value::as_sequence) {
            for g in gsis {
                let name = g.get("IndexName").and_then(Value::as_str).ok_or_else(|| bad("IndexName"))?;
                indexes.push((name.to_owned(), pairs(g.get("KeySchema"), "AttributeName", "KeyType")?));
            }
        }
        let ttl_attribute = props
            .get("TimeToLiveSpecification")
            .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
            .and_then(|t| t.get("AttributeName"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.push(TableSpec { logical_id: id, name_pattern, attributes, key, indexes, ttl_attribute });
    }
    Ok(out)
}

/// A plain string or `!Sub "string"`.
fn tagged_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) if t.tag == "Sub" => t.value.as_str().map(str::to_owned),
        _ => None,
    }
}

fn key_schema(key: &[(String, String)]) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    key.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| aws("key schema", e))
        })
        .collect()
}

/// Create every resource for `prefix` (e.g. `rez-dev`, or a unique test prefix) and
/// return their names.
pub async fn provision(clients: &Clients, prefix: &str, stage: &str) -> Result<Names, ProvisionError> {
    let mut names = Names::for_prefix(prefix, stage);
    let tables = table_specs()?;
    for spec in &tables {
        let name = spec.name_pattern.replace("rez-${Stage}", prefix);
        create_table(clients, &name, spec).await?;
        match spec.logical_id.as_str() {
            "MessagesTable" => names.messages_table = name,
            "IdempotencyTable" => names.idempotency_table = name,
            "InboxTable" => names.inbox_table = name,
            "ApiKeysTable" => names.keys_table = name,
            "SchedulesTable" => names.schedules_table = name,
            "ResultsTable" => names.results_table = name,
            "BookingLedgerTable" => names.ledger_table = name,
            other => tracing::debug!(table = other, "table not used by the adapters"),
        }
    }

    let mut topics = BTreeMap::new();
    for t in Topic::ALL {
        let out = clients
            .sns
            .create_topic()
            .name(format!("{prefix}-{t}"))
            .send()
            .await
            .map_err(|e| aws("sns create_topic", e))?;
        topics.insert(t, out.topic_arn().unwrap_or_default().to_owned());
    }
    let mut queues = BTreeMap::new();
    for q in QueueName::ALL {
        let dlq_url = create_queue(clients, &format!("{prefix}-{}", q.dlq_name()), None).await?;
        let dlq_arn = queue_arn(clients, &dlq_url).await?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3 }).to_string();
        let url = create_queue(clients, &format!("{prefix}-{q}"), Some(redrive)).await?;
        let arn = queue_arn(clients, &url).await?;
        queues.insert(q, QueueAddress { url, arn, dlq_url, dlq_arn });
    }
    for t in Topic::ALL {
        for q in t.subscribers() {
            clients
                .sns
                .subscribe()
                .topic_arn(&topics[&t])
                .protocol("sqs")
                .endpoint(&queues[q].arn)
                .attributes("RawMessageDelivery", "true")
                .send()
                .await
                .map_err(|e| aws("sns subscribe", e))?;
        }
    }
    names.topics = topics;
    names.queues = queues;

    clients
        .scheduler
        .create_schedule_group()
        .name(&names.schedule_group)
        .send()
        .await
        .map_err(|e| aws("scheduler create_schedule_group", e))?;
    names.scheduler_role_arn = format!("arn:aws:iam::123456789012:role/{prefix}-scheduler");
    Ok(names)
}

async fn create_table(clients: &Clients, name: &str, spec: &TableSpec) -> Result<(), ProvisionError> {
    let mut req = clients.dynamodb.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in &spec.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| aws("attribute definition", e))?,
        );
    }
    req = req.set_key_schema(Some(key_schema(&spec.key)?));
    for (index, key) in &spec.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(key_schema(key)?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| aws("index", e))?,
        );
    }
    req.send().await.map_err(|e| aws(&format!("dynamodb create_table {name}"), e))?;
    if let Some(attr) = &spec.ttl_attribute {
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| aws("ttl", e))?,
            )
            .send()
            .await
            .map_err(|e| aws("dynamodb update_time_to_live", e))?;
    }
    Ok(())
}

async fn create_queue(clients: &Clients, name: &str, redrive: Option<String>) -> Result<String, ProvisionError> {
    let mut req = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, QUEUE_VISIBILITY_SECONDS.to_string())
        .attributes(QueueAttributeName::MessageRetentionPeriod, (4 * 24 * 3600).to_string());
    if let Some(r) = redrive {
        req = req.attributes(QueueAttributeName::RedrivePolicy, r);
    } else {
        // DLQs keep messages for the SQS maximum, 14 days.
        req = req.attributes(QueueAttributeName::MessageRetentionPeriod, (14 * 24 * 3600).to_string());
    }
    let out = req.send().await.map_err(|e| aws(&format!("sqs create_queue {name}"), e))?;
    out.queue_url().map(str::to_owned).ok_or_else(|| ProvisionError::Aws(format!("sqs create_queue {name}: no URL")))
}

async fn queue_arn(clients: &Clients, url: &str) -> Result<String, ProvisionError> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws("sqs get_queue_attributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ProvisionError::Aws(format!("no ARN for {url}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_every_table_the_adapters_use() {
        let specs = table_specs().unwrap();
        let ids: Vec<_> = specs.iter().map(|s| s.logical_id.as_str()).collect();
        for id in [
            "MessagesTable",
            "IdempotencyTable",
            "InboxTable",
            "ApiKeysTable",
            "SchedulesTable",
            "ResultsTable",
            "BookingLedgerTable",
        ] {
            assert!(ids.contains(&id), "{id} missing from the template");
        }
        let results = specs.iter().find(|s| s.logical_id == "ResultsTable").unwrap();
        assert_eq!(results.ttl_attribute.as_deref(), Some("expires_at"));
        assert!(specs.iter().all(|s| s.name_pattern.starts_with("rez-${Stage}-")));
    }
}
