//! Creates a deployment's data and messaging resources on an emulator (moto) from the
//! same definitions the CloudFormation template uses, so tests and laptops run against
//! exactly the key schemas, GSIs, TTLs, queue settings and subscriptions that AWS gets.
//!
//! It reads `deploy/template.yaml` (compiled in) and creates every
//! `AWS::DynamoDB::Table`, `AWS::SNS::Topic`, `AWS::SQS::Queue` (visibility timeout,
//! retention, redrive policy), `AWS::SNS::Subscription` with protocol `sqs` (raw
//! delivery) and `AWS::Scheduler::ScheduleGroup`. It is not a CloudFormation engine: it
//! understands only those resource types and the few intrinsics they use (`!Sub` with
//! `${Stage}`, `!Ref`, `!GetAtt X.Arn`). Names are the template's with `rez-${Stage}`
//! replaced by the caller's prefix, so parallel tests can share one emulator.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use rez_core::routing::{QueueName, Topic};
use serde_yaml_ng::{Mapping, Value};

use crate::config::QueueAddress;
use crate::policies::Resolver;
use crate::{Clients, Names};

/// The CloudFormation template of the deployment.
pub const TEMPLATE: &str = include_str!("../../../deploy/template.yaml");

/// Visibility timeout of the queues in seconds (6× the 60 s function timeout). The
/// template is the source of truth; a test checks that it agrees with this constant.
pub const QUEUE_VISIBILITY_SECONDS: u32 = 360;
/// The agent-response queue's: 6 × the agent function's 300 s (a run takes several model
/// turns per invocation).
pub const AGENT_QUEUE_VISIBILITY_SECONDS: u32 = 1800;

/// The name placeholder every template name starts with.
const STAGE_PREFIX: &str = "rez-${Stage}";

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

fn template_error(id: &str, what: &str) -> ProvisionError {
    ProvisionError::Template(format!("{id}: {what}"))
}

/// The template's `Resources`, in template order.
fn resources() -> Result<Mapping, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| ProvisionError::Template(e.to_string()))?;
    doc.get("Resources")
        .and_then(Value::as_mapping)
        .cloned()
        .ok_or_else(|| ProvisionError::Template("no Resources".into()))
}

/// The template's parameters that have a default, with it (what a deploy without
/// overrides resolves `${Parameter}` to).
pub fn parameter_defaults() -> Result<Vec<(String, String)>, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| ProvisionError::Template(e.to_string()))?;
    let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (k, v) in params {
        let default = match v.get("Default") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        if let Some(k) = k.as_str() {
            out.push((k.to_owned(), default));
        }
    }
    Ok(out)
}

/// `(logical id, Properties)` of every resource of type `kind`.
fn resources_of(kind: &str) -> Result<Vec<(String, Value)>, ProvisionError> {
    let mut out = Vec::new();
    for (id, res) in resources()? {
        if res.get("Type").and_then(Value::as_str) != Some(kind) {
            continue;
        }
        let id = id.as_str().unwrap_or_default().to_owned();
        let props = res.get("Properties").cloned().ok_or_else(|| template_error(&id, "no Properties"))?;
        out.push((id, props));
    }
    Ok(out)
}

/// A template value: a literal, `!Sub`, `!Ref` or `!GetAtt` (short or long form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intrinsic {
    Literal(String),
    Sub(String),
    Ref(String),
    /// `(logical id, attribute)`.
    GetAtt(String, String),
}

impl Intrinsic {
    pub fn parse(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::Literal(s.clone())),
            Value::Number(n) => Some(Self::Literal(n.to_string())),
            Value::Bool(b) => Some(Self::Literal(b.to_string())),
            Value::Tagged(t) if t.tag == "Sub" => t.value.as_str().map(|s| Self::Sub(s.to_owned())),
            Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(|s| Self::Ref(s.to_owned())),
            Value::Tagged(t) if t.tag == "GetAtt" => Self::get_att(&t.value),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next()?;
                match k.as_str()? {
                    "Fn::Sub" => v.as_str().map(|s| Self::Sub(s.to_owned())),
                    "Ref" => v.as_str().map(|s| Self::Ref(s.to_owned())),
                    "Fn::GetAtt" => Self::get_att(v),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `X.Arn` or `[X, Arn]`.
    fn get_att(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => s.split_once('.').map(|(a, b)| Self::GetAtt(a.to_owned(), b.to_owned())),
            Value::Sequence(s) if s.len() == 2 => {
                Some(Self::GetAtt(s[0].as_str()?.to_owned(), s[1].as_str()?.to_owned()))
            }
            _ => None,
        }
    }

    /// The logical id a `!Ref X` or `!GetAtt X.Arn` points at.
    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Ref(id) => Some(id),
            Self::GetAtt(id, attr) if attr == "Arn" => Some(id),
            _ => None,
        }
    }
}

/// A name: a plain string or `!Sub "string"` (with `${Stage}` still in it).
fn name_pattern(id: &str, v: Option<&Value>) -> Result<String, ProvisionError> {
    match v.and_then(Intrinsic::parse) {
        Some(Intrinsic::Literal(s) | Intrinsic::Sub(s)) => Ok(s),
        _ => Err(template_error(id, "name is not a string or !Sub string")),
    }
}

/// The physical name for `prefix` of a template name such as `rez-${Stage}-messages`.
fn physical_name(pattern: &str, prefix: &str) -> String {
    pattern.replace(STAGE_PREFIX, prefix)
}

/// The part of a name after `rez-${Stage}-` (`web-actions`, `web-actions-dlq`).
fn name_suffix(pattern: &str) -> Option<&str> {
    pattern.strip_prefix(STAGE_PREFIX)?.strip_prefix('-')
}

/// A number given as a YAML number or a numeric string.
fn number(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean given as a YAML bool or `"true"`/`"false"`.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A GSI as the template defines it.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub name: String,
    pub key: Vec<(String, String)>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
}

/// A table as the template defines it.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    /// Name with `rez-${Stage}` still in it.
    pub name_pattern: String,
    pub attributes: Vec<(String, String)>,
    pub key: Vec<(String, String)>,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<String>,
}

/// The `AWS::DynamoDB::Table` resources of [`TEMPLATE`].
pub fn table_specs() -> Result<Vec<TableSpec>, ProvisionError> {
    let mut out = Vec::new();
    for (id, props) in resources_of("AWS::DynamoDB::Table")? {
        let bad = |what: &str| template_error(&id, what);
        let name_pattern = name_pattern(&id, props.get("TableName"))?;
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
                let projection = g
                    .get("Projection")
                    .and_then(|p| p.get("ProjectionType"))
                    .and_then(Value::as_str)
                    .unwrap_or("ALL")
                    .to_owned();
                indexes.push(IndexSpec {
                    name: name.to_owned(),
                    key: pairs(g.get("KeySchema"), "AttributeName", "KeyType")?,
                    projection,
                });
            }
        }
        let ttl_attribute = props
            .get("TimeToLiveSpecification")
            .filter(|t| boolean(t.get("Enabled")) == Some(true))
            .and_then(|t| t.get("AttributeName"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.push(TableSpec { logical_id: id, name_pattern, attributes, key, indexes, ttl_attribute });
    }
    Ok(out)
}

/// An SNS topic as the template defines it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub logical_id: String,
    pub name_pattern: String,
}

/// The `AWS::SNS::Topic` resources of [`TEMPLATE`].
pub fn topic_specs() -> Result<Vec<TopicSpec>, ProvisionError> {
    resources_of("AWS::SNS::Topic")?
        .into_iter()
        .map(|(id, props)| Ok(TopicSpec { name_pattern: name_pattern(&id, props.get("TopicName"))?, logical_id: id }))
        .collect()
}

/// An SQS queue as the template defines it.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name_pattern: String,
    pub visibility_timeout: Option<u32>,
    pub retention_seconds: Option<u32>,
    /// `(logical id of the DLQ, maxReceiveCount)` from `RedrivePolicy`.
    pub redrive: Option<(String, u32)>,
}

/// The `AWS::SQS::Queue` resources of [`TEMPLATE`].
pub fn queue_specs() -> Result<Vec<QueueSpec>, ProvisionError> {
    let mut out = Vec::new();
    for (id, props) in resources_of("AWS::SQS::Queue")? {
        let redrive = match props.get("RedrivePolicy") {
            None => None,
            Some(r) => {
                let dlq = r
                    .get("deadLetterTargetArn")
                    .and_then(Intrinsic::parse)
                    .and_then(|i| i.target().map(str::to_owned))
                    .ok_or_else(|| template_error(&id, "RedrivePolicy.deadLetterTargetArn is not !GetAtt X.Arn"))?;
                let max = number(r.get("maxReceiveCount"))
                    .ok_or_else(|| template_error(&id, "RedrivePolicy.maxReceiveCount"))?;
                Some((dlq, max))
            }
        };
        out.push(QueueSpec {
            name_pattern: name_pattern(&id, props.get("QueueName"))?,
            visibility_timeout: number(props.get("VisibilityTimeout")),
            retention_seconds: number(props.get("MessageRetentionPeriod")),
            redrive,
            logical_id: id,
        });
    }
    Ok(out)
}

/// An SNS → SQS subscription as the template defines it.
#[derive(Debug, Clone)]
pub struct SubscriptionSpec {
    pub logical_id: String,
    /// Logical id of the topic.
    pub topic: String,
    /// Logical id of the queue.
    pub queue: String,
    pub raw_message_delivery: bool,
}

/// The `AWS::SNS::Subscription` resources of [`TEMPLATE`] with protocol `sqs` (others,
/// such as the alarm e-mail, have nothing to do with message routing).
pub fn subscription_specs() -> Result<Vec<SubscriptionSpec>, ProvisionError> {
    let mut out = Vec::new();
    for (id, props) in resources_of("AWS::SNS::Subscription")? {
        if props.get("Protocol").and_then(Value::as_str) != Some("sqs") {
            continue;
        }
        let target = |key: &str| {
            props
                .get(key)
                .and_then(Intrinsic::parse)
                .and_then(|i| i.target().map(str::to_owned))
                .ok_or_else(|| template_error(&id, &format!("{key} is not !Ref or !GetAtt X.Arn")))
        };
        out.push(SubscriptionSpec {
            topic: target("TopicArn")?,
            queue: target("Endpoint")?,
            raw_message_delivery: boolean(props.get("RawMessageDelivery")).unwrap_or(false),
            logical_id: id,
        });
    }
    Ok(out)
}

/// A function as the template defines it (only what the queue rules need).
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// `Timeout`, or `Globals.Function.Timeout`, or Lambda's default of 3 s.
    pub timeout_seconds: u32,
    /// Logical ids of the queues of its SQS event sources.
    pub sqs_sources: Vec<String>,
}

/// The `AWS::Serverless::Function` resources of [`TEMPLATE`].
pub fn function_specs() -> Result<Vec<FunctionSpec>, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| ProvisionError::Template(e.to_string()))?;
    let global_timeout = number(doc.get("Globals").and_then(|g| g.get("Function")).and_then(|f| f.get("Timeout")));
    let mut out = Vec::new();
    for (id, props) in resources_of("AWS::Serverless::Function")? {
        let mut sqs_sources = Vec::new();
        if let Some(events) = props.get("Events").and_then(Value::as_mapping) {
            for (name, event) in events {
                if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                    continue;
                }
                let queue = event
                    .get("Properties")
                    .and_then(|p| p.get("Queue"))
                    .and_then(Intrinsic::parse)
                    .and_then(|i| i.target().map(str::to_owned))
                    .ok_or_else(|| template_error(&id, &format!("event {name:?}: Queue is not !GetAtt X.Arn")))?;
                sqs_sources.push(queue);
            }
        }
        out.push(FunctionSpec {
            timeout_seconds: number(props.get("Timeout")).or(global_timeout).unwrap_or(3),
            sqs_sources,
            logical_id: id,
        });
    }
    Ok(out)
}

/// The `Name` of the template's `AWS::Scheduler::ScheduleGroup`.
pub fn schedule_group_pattern() -> Result<String, ProvisionError> {
    let groups = resources_of("AWS::Scheduler::ScheduleGroup")?;
    match groups.as_slice() {
        [(id, props)] => name_pattern(id, props.get("Name")),
        _ => Err(ProvisionError::Template(format!("expected one schedule group, found {}", groups.len()))),
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
    Ok(provision_resolved(clients, prefix, stage).await?.0)
}

/// [`provision`], and what the template's intrinsics resolve to for the resources it
/// created (`!Ref` and `!GetAtt X.Arn` per logical id, the stage and the emulator's
/// pseudo parameters), for turning the roles' policies into concrete documents.
pub async fn provision_resolved(
    clients: &Clients,
    prefix: &str,
    stage: &str,
) -> Result<(Names, Resolver), ProvisionError> {
    let mut names = Names::for_prefix(prefix, stage);
    let mut resolver = Resolver::default();
    let region = clients.dynamodb.config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    for (k, v) in [
        ("AWS::Partition", "aws"),
        ("AWS::Region", region.as_str()),
        ("AWS::AccountId", EMULATOR_ACCOUNT_ID),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("Stage", stage),
    ] {
        resolver.variables.insert(k.to_owned(), v.to_owned());
    }
    for (k, v) in parameter_defaults()? {
        resolver.variables.entry(k).or_insert(v);
    }
    for spec in &table_specs()? {
        let name = physical_name(&spec.name_pattern, prefix);
        let arn = create_table(clients, &name, spec).await?;
        resolver.refs.insert(spec.logical_id.clone(), name.clone());
        resolver.arns.insert(spec.logical_id.clone(), arn);
        match spec.logical_id.as_str() {
            "MessagesTable" => names.messages_table = name,
            "IdempotencyTable" => names.idempotency_table = name,
            "InboxTable" => names.inbox_table = name,
            "ApiKeysTable" => names.keys_table = name,
            "SchedulesTable" => names.schedules_table = name,
            "ResultsTable" => names.results_table = name,
            "BookingLedgerTable" => names.ledger_table = name,
            "AgentRunsTable" => names.agent_runs_table = name,
            "AgentBudgetTable" => names.agent_budget_table = name,
            "ApprovalsTable" => names.approvals_table = name,
            other => tracing::debug!(table = other, "table not used by the adapters"),
        }
    }

    // Topics: logical id → ARN.
    let topic_specs = topic_specs()?;
    let mut topic_arns = BTreeMap::new();
    for spec in &topic_specs {
        let out = clients
            .sns
            .create_topic()
            .name(physical_name(&spec.name_pattern, prefix))
            .send()
            .await
            .map_err(|e| aws("sns create_topic", e))?;
        topic_arns.insert(spec.logical_id.clone(), out.topic_arn().unwrap_or_default().to_owned());
        resolver.refs.insert(spec.logical_id.clone(), out.topic_arn().unwrap_or_default().to_owned());
    }

    // Queues: DLQs (no redrive policy) first, then the queues that redrive to them.
    let mut queue_specs = queue_specs()?;
    queue_specs.sort_by_key(|q| q.redrive.is_some());
    let mut queue_addrs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for spec in &queue_specs {
        let redrive = match &spec.redrive {
            None => None,
            Some((dlq, max)) => {
                let (_, dlq_arn) = queue_addrs
                    .get(dlq)
                    .ok_or_else(|| template_error(&spec.logical_id, &format!("DLQ {dlq} is not a queue")))?;
                Some(serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max }).to_string())
            }
        };
        let url = create_queue(clients, &physical_name(&spec.name_pattern, prefix), spec, redrive).await?;
        let arn = queue_arn(clients, &url).await?;
        resolver.refs.insert(spec.logical_id.clone(), url.clone());
        resolver.arns.insert(spec.logical_id.clone(), arn.clone());
        queue_addrs.insert(spec.logical_id.clone(), (url, arn));
    }

    for sub in subscription_specs()? {
        let topic_arn =
            topic_arns.get(&sub.topic).ok_or_else(|| template_error(&sub.logical_id, "TopicArn is not a topic"))?;
        let (_, queue_arn) =
            queue_addrs.get(&sub.queue).ok_or_else(|| template_error(&sub.logical_id, "Endpoint is not a queue"))?;
        let mut req = clients.sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn);
        if sub.raw_message_delivery {
            req = req.attributes("RawMessageDelivery", "true");
        }
        req.send().await.map_err(|e| aws("sns subscribe", e))?;
    }

    // The routing table's topics and queues, found by name in the template.
    for t in Topic::ALL {
        let spec = topic_specs
            .iter()
            .find(|s| name_suffix(&s.name_pattern) == Some(t.as_str()))
            .ok_or_else(|| ProvisionError::Template(format!("no topic {STAGE_PREFIX}-{t}")))?;
        names.topics.insert(t, topic_arns[&spec.logical_id].clone());
    }
    for q in QueueName::ALL {
        let spec = queue_specs
            .iter()
            .find(|s| name_suffix(&s.name_pattern) == Some(q.as_str()))
            .ok_or_else(|| ProvisionError::Template(format!("no queue {STAGE_PREFIX}-{q}")))?;
        let (dlq, _) = spec
            .redrive
            .as_ref()
            .ok_or_else(|| template_error(&spec.logical_id, "a work queue needs a RedrivePolicy"))?;
        let dlq_spec = queue_specs.iter().find(|s| &s.logical_id == dlq).expect("resolved above");
        if name_suffix(&dlq_spec.name_pattern) != Some(q.dlq_name()) {
            return Err(template_error(dlq, &format!("the DLQ of {q} must be named {STAGE_PREFIX}-{}", q.dlq_name())));
        }
        let (url, arn) = queue_addrs[&spec.logical_id].clone();
        let (dlq_url, dlq_arn) = queue_addrs[dlq].clone();
        names.queues.insert(q, QueueAddress { url, arn, dlq_url, dlq_arn });
    }

    names.schedule_group = physical_name(&schedule_group_pattern()?, prefix);
    let group = clients
        .scheduler
        .create_schedule_group()
        .name(&names.schedule_group)
        .send()
        .await
        .map_err(|e| aws("scheduler create_schedule_group", e))?;
    for (id, _) in resources_of("AWS::Scheduler::ScheduleGroup")? {
        resolver.refs.insert(id.clone(), names.schedule_group.clone());
        resolver.arns.insert(id, group.schedule_group_arn().to_owned());
    }
    // The role EventBridge Scheduler would assume: named, not created (the emulator
    // never fires schedules).
    names.scheduler_role_arn = format!("arn:aws:iam::{EMULATOR_ACCOUNT_ID}:role/{prefix}-scheduler");
    resolver.arns.insert("SchedulerExecutionRole".to_owned(), names.scheduler_role_arn.clone());
    Ok((names, resolver))
}

/// The account id moto gives every resource.
pub const EMULATOR_ACCOUNT_ID: &str = "123456789012";

/// Create the table; its ARN.
async fn create_table(clients: &Clients, name: &str, spec: &TableSpec) -> Result<String, ProvisionError> {
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
    for index in &spec.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.key)?))
                .projection(
                    Projection::builder().projection_type(ProjectionType::from(index.projection.as_str())).build(),
                )
                .build()
                .map_err(|e| aws("index", e))?,
        );
    }
    let out = req.send().await.map_err(|e| aws(&format!("dynamodb create_table {name}"), e))?;
    let arn = out
        .table_description()
        .and_then(|t| t.table_arn())
        .map(str::to_owned)
        .ok_or_else(|| ProvisionError::Aws(format!("dynamodb create_table {name}: no ARN")))?;
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
    Ok(arn)
}

async fn create_queue(
    clients: &Clients,
    name: &str,
    spec: &QueueSpec,
    redrive: Option<String>,
) -> Result<String, ProvisionError> {
    let mut req = clients.sqs.create_queue().queue_name(name);
    if let Some(v) = spec.visibility_timeout {
        req = req.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    if let Some(r) = spec.retention_seconds {
        req = req.attributes(QueueAttributeName::MessageRetentionPeriod, r.to_string());
    }
    if let Some(r) = redrive {
        req = req.attributes(QueueAttributeName::RedrivePolicy, r);
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
            "AgentRunsTable",
            "AgentBudgetTable",
            "ApprovalsTable",
        ] {
            assert!(ids.contains(&id), "{id} missing from the template");
        }
        let results = specs.iter().find(|s| s.logical_id == "ResultsTable").unwrap();
        assert_eq!(results.ttl_attribute.as_deref(), Some("expires_at"));
        assert!(specs.iter().all(|s| s.name_pattern.starts_with("rez-${Stage}-")));
    }

    /// AWS's rule for SQS event sources: the queue's visibility timeout is at least six
    /// times the consuming function's timeout, so a batch still being retried by Lambda
    /// is not handed to another poller (the prior deployment had 1×).
    #[test]
    fn every_sqs_event_source_queue_waits_six_times_its_function_timeout() {
        let queues = queue_specs().unwrap();
        let functions = function_specs().unwrap();
        let mut consumed = 0;
        for f in &functions {
            for q in &f.sqs_sources {
                let spec = queues.iter().find(|s| &s.logical_id == q).unwrap_or_else(|| panic!("{q} is not a queue"));
                let visibility = spec.visibility_timeout.unwrap_or(30);
                assert!(
                    visibility >= 6 * f.timeout_seconds,
                    "{q}: VisibilityTimeout {visibility} < 6 × {} Timeout {}",
                    f.logical_id,
                    f.timeout_seconds
                );
                consumed += 1;
            }
        }
        assert_eq!(consumed, 4, "processor, webaction, scheduler and agent consume a queue each");
    }

    #[test]
    fn the_routing_queues_have_dlqs_after_three_receives_and_the_specs_retention() {
        let queues = queue_specs().unwrap();
        for q in QueueName::ALL {
            let spec = queues.iter().find(|s| name_suffix(&s.name_pattern) == Some(q.as_str())).unwrap();
            let visibility =
                if q == QueueName::AgentResponse { AGENT_QUEUE_VISIBILITY_SECONDS } else { QUEUE_VISIBILITY_SECONDS };
            assert_eq!(spec.visibility_timeout, Some(visibility), "{q}");
            assert_eq!(spec.retention_seconds, Some(4 * 24 * 3600), "{q}");
            let (dlq, max) = spec.redrive.as_ref().unwrap_or_else(|| panic!("{q} has no DLQ"));
            assert_eq!(*max, 3, "{q}");
            let dlq = queues.iter().find(|s| &s.logical_id == dlq).unwrap();
            assert_eq!(name_suffix(&dlq.name_pattern), Some(q.dlq_name()));
            assert_eq!(dlq.retention_seconds, Some(14 * 24 * 3600), "{q} DLQ");
            assert!(dlq.redrive.is_none());
        }
    }

    #[test]
    fn every_topic_reaches_the_routing_tables_queues_with_raw_delivery() {
        let topics = topic_specs().unwrap();
        let queues = queue_specs().unwrap();
        let subs = subscription_specs().unwrap();
        for t in Topic::ALL {
            let topic = topics.iter().find(|s| name_suffix(&s.name_pattern) == Some(t.as_str())).unwrap();
            let mut subscribed: Vec<_> = subs
                .iter()
                .filter(|s| s.topic == topic.logical_id)
                .map(|s| {
                    assert!(s.raw_message_delivery, "{}", s.logical_id);
                    let q = queues.iter().find(|q| q.logical_id == s.queue).unwrap();
                    name_suffix(&q.name_pattern).unwrap().to_owned()
                })
                .collect();
            subscribed.sort();
            let mut expected: Vec<_> = t.subscribers().iter().map(|q| q.as_str().to_owned()).collect();
            expected.sort();
            assert_eq!(subscribed, expected, "{t}");
        }
    }

    #[test]
    fn intrinsics_in_short_and_long_form() {
        let short: Value = serde_yaml_ng::from_str("[!Ref A, !GetAtt B.Arn, !Sub 'x-${Stage}', plain, 360]").unwrap();
        let parsed: Vec<_> = short.as_sequence().unwrap().iter().map(|v| Intrinsic::parse(v).unwrap()).collect();
        assert_eq!(
            parsed,
            [
                Intrinsic::Ref("A".into()),
                Intrinsic::GetAtt("B".into(), "Arn".into()),
                Intrinsic::Sub("x-${Stage}".into()),
                Intrinsic::Literal("plain".into()),
                Intrinsic::Literal("360".into()),
            ]
        );
        let long: Value =
            serde_yaml_ng::from_str("[{Ref: A}, {'Fn::GetAtt': [B, Arn]}, {'Fn::Sub': 'x'}, {'Fn::If': [c, a, b]}]")
                .unwrap();
        let parsed: Vec<_> = long.as_sequence().unwrap().iter().map(Intrinsic::parse).collect();
        assert_eq!(parsed[0].as_ref().and_then(Intrinsic::target), Some("A"));
        assert_eq!(parsed[1].as_ref().and_then(Intrinsic::target), Some("B"));
        assert_eq!(parsed[2], Some(Intrinsic::Sub("x".into())));
        assert_eq!(parsed[3], None);
        assert_eq!(physical_name("rez-${Stage}-web-actions-dlq", "rez-t1"), "rez-t1-web-actions-dlq");
    }
}
