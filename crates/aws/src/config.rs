//! Every AWS resource name the adapters use. The template passes them to the functions as
//! environment variables (documented in DEPLOY.md); tests get them from [`provision`].
//!
//! [`provision`]: crate::provision

use std::collections::BTreeMap;

use rez_core::routing::{QueueName, Topic};

/// Names and addresses of the deployment's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Deployment stage (`dev`, `stage`, `prod`); also the EventBridge schedule group
    /// suffix.
    pub stage: String,
    pub messages_table: String,
    pub idempotency_table: String,
    pub inbox_table: String,
    pub keys_table: String,
    pub schedules_table: String,
    pub results_table: String,
    pub ledger_table: String,
    /// Agent runs, their steps and chat sessions.
    pub agent_runs_table: String,
    /// The agent's budget ledger: reservations, committed spend per day and run, spend per model.
    pub agent_budget_table: String,
    /// Approvals: the side-effecting calls runs wait to have approved.
    pub approvals_table: String,
    /// SNS topic ARN per topic.
    pub topics: BTreeMap<Topic, String>,
    /// SQS queue URL per queue.
    pub queues: BTreeMap<QueueName, QueueAddress>,
    /// The EventBridge Scheduler group of this stage.
    pub schedule_group: String,
    /// The role EventBridge Scheduler assumes to send to the scheduler queue.
    pub scheduler_role_arn: String,
    /// Prefix of the Secrets Manager secrets of this stage (`rez/<stage>/`).
    pub secrets_prefix: String,
}

/// One queue and its DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueAddress {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

/// A required variable is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingVariable(pub String);

impl Names {
    /// The default physical names for a stack prefix such as `rez-dev` (tables, group);
    /// topic and queue addresses must be filled in from the deployment.
    pub fn for_prefix(prefix: &str, stage: &str) -> Self {
        Self {
            stage: stage.to_owned(),
            messages_table: format!("{prefix}-messages"),
            idempotency_table: format!("{prefix}-idempotency"),
            inbox_table: format!("{prefix}-inbox"),
            keys_table: format!("{prefix}-api-keys"),
            schedules_table: format!("{prefix}-schedules"),
            results_table: format!("{prefix}-results"),
            ledger_table: format!("{prefix}-booking-ledger"),
            agent_runs_table: format!("{prefix}-agent-runs"),
            agent_budget_table: format!("{prefix}-agent-budget"),
            approvals_table: format!("{prefix}-approvals"),
            topics: BTreeMap::new(),
            queues: BTreeMap::new(),
            schedule_group: format!("{prefix}-schedules"),
            scheduler_role_arn: String::new(),
            secrets_prefix: format!("rez/{stage}/"),
        }
    }

    /// Names from the environment variables the template sets:
    /// `REZ_STAGE`, `REZ_TABLE_{MESSAGES,IDEMPOTENCY,INBOX,API_KEYS,SCHEDULES,RESULTS,BOOKING_LEDGER,AGENT_RUNS,AGENT_BUDGET,APPROVALS}`,
    /// `REZ_TOPIC_{WEB_ACTIONS,NOTIFICATIONS,SCHEDULE_CREATION,AGENT_RESPONSE}` (ARNs),
    /// `REZ_QUEUE_<Q>_URL`, `REZ_QUEUE_<Q>_ARN`, `REZ_QUEUE_<Q>_DLQ_URL`, `REZ_QUEUE_<Q>_DLQ_ARN`,
    /// `REZ_SCHEDULE_GROUP`, `REZ_SCHEDULER_ROLE_ARN`, `REZ_SECRETS_PREFIX` (default `rez/<stage>/`).
    pub fn from_env() -> Result<Self, MissingVariable> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MissingVariable> {
        let need = |k: &str| get(k).filter(|v| !v.is_empty()).ok_or_else(|| MissingVariable(k.to_owned()));
        let stage = need("REZ_STAGE")?;
        let mut topics = BTreeMap::new();
        for t in Topic::ALL {
            topics.insert(t, need(&format!("REZ_TOPIC_{}", env_suffix(t.as_str())))?);
        }
        let mut queues = BTreeMap::new();
        for q in QueueName::ALL {
            let s = env_suffix(q.as_str());
            queues.insert(
                q,
                QueueAddress {
                    url: need(&format!("REZ_QUEUE_{s}_URL"))?,
                    arn: need(&format!("REZ_QUEUE_{s}_ARN"))?,
                    dlq_url: need(&format!("REZ_QUEUE_{s}_DLQ_URL"))?,
                    dlq_arn: need(&format!("REZ_QUEUE_{s}_DLQ_ARN"))?,
                },
            );
        }
        Ok(Self {
            messages_table: need("REZ_TABLE_MESSAGES")?,
            idempotency_table: need("REZ_TABLE_IDEMPOTENCY")?,
            inbox_table: need("REZ_TABLE_INBOX")?,
            keys_table: need("REZ_TABLE_API_KEYS")?,
            schedules_table: need("REZ_TABLE_SCHEDULES")?,
            results_table: need("REZ_TABLE_RESULTS")?,
            ledger_table: need("REZ_TABLE_BOOKING_LEDGER")?,
            agent_runs_table: need("REZ_TABLE_AGENT_RUNS")?,
            agent_budget_table: need("REZ_TABLE_AGENT_BUDGET")?,
            approvals_table: need("REZ_TABLE_APPROVALS")?,
            topics,
            queues,
            schedule_group: need("REZ_SCHEDULE_GROUP")?,
            scheduler_role_arn: need("REZ_SCHEDULER_ROLE_ARN")?,
            secrets_prefix: get("REZ_SECRETS_PREFIX").unwrap_or_else(|| format!("rez/{stage}/")),
            stage,
        })
    }

    /// The environment variables [`Names::from_env`] reads, as `(name, value)` pairs
    /// (the inverse of `from_env`, for spawning functions in tests).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("REZ_STAGE".to_owned(), self.stage.clone()),
            ("REZ_TABLE_MESSAGES".to_owned(), self.messages_table.clone()),
            ("REZ_TABLE_IDEMPOTENCY".to_owned(), self.idempotency_table.clone()),
            ("REZ_TABLE_INBOX".to_owned(), self.inbox_table.clone()),
            ("REZ_TABLE_API_KEYS".to_owned(), self.keys_table.clone()),
            ("REZ_TABLE_SCHEDULES".to_owned(), self.schedules_table.clone()),
            ("REZ_TABLE_RESULTS".to_owned(), self.results_table.clone()),
            ("REZ_TABLE_BOOKING_LEDGER".to_owned(), self.ledger_table.clone()),
            ("REZ_TABLE_AGENT_RUNS".to_owned(), self.agent_runs_table.clone()),
            ("REZ_TABLE_AGENT_BUDGET".to_owned(), self.agent_budget_table.clone()),
            ("REZ_TABLE_APPROVALS".to_owned(), self.approvals_table.clone()),
            ("REZ_SCHEDULE_GROUP".to_owned(), self.schedule_group.clone()),
            ("REZ_SCHEDULER_ROLE_ARN".to_owned(), self.scheduler_role_arn.clone()),
            ("REZ_SECRETS_PREFIX".to_owned(), self.secrets_prefix.clone()),
        ];
        for (t, arn) in &self.topics {
            v.push((format!("REZ_TOPIC_{}", env_suffix(t.as_str())), arn.clone()));
        }
        for (q, a) in &self.queues {
            let s = env_suffix(q.as_str());
            v.push((format!("REZ_QUEUE_{s}_URL"), a.url.clone()));
            v.push((format!("REZ_QUEUE_{s}_ARN"), a.arn.clone()));
            v.push((format!("REZ_QUEUE_{s}_DLQ_URL"), a.dlq_url.clone()));
            v.push((format!("REZ_QUEUE_{s}_DLQ_ARN"), a.dlq_arn.clone()));
        }
        v
    }

    pub fn queue(&self, q: QueueName) -> Option<&QueueAddress> {
        self.queues.get(&q)
    }

    pub fn topic_arn(&self, t: Topic) -> Option<&str> {
        self.topics.get(&t).map(String::as_str)
    }

    /// Which queue a queue ARN (an SQS event record's `eventSourceARN`) belongs to.
    pub fn queue_by_arn(&self, arn: &str) -> Option<QueueName> {
        self.queues.iter().find(|(_, a)| a.arn == arn).map(|(q, _)| *q)
    }
}

/// `web-actions` → `WEB_ACTIONS`.
fn env_suffix(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_round_trip() {
        let mut n = Names::for_prefix("rez-dev", "dev");
        for t in Topic::ALL {
            n.topics.insert(t, format!("arn:aws:sns:us-east-1:1:{t}"));
        }
        for q in QueueName::ALL {
            n.queues.insert(
                q,
                QueueAddress {
                    url: format!("http://q/{q}"),
                    arn: format!("arn:q:{q}"),
                    dlq_url: format!("http://q/{q}-dlq"),
                    dlq_arn: format!("arn:q:{q}-dlq"),
                },
            );
        }
        n.scheduler_role_arn = "arn:aws:iam::1:role/s".into();
        let env: BTreeMap<String, String> = n.to_env().into_iter().collect();
        let back = Names::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.queue_by_arn("arn:q:notifications"), Some(QueueName::Notifications));
    }

    #[test]
    fn missing_variable_is_named() {
        let err = Names::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.0, "REZ_STAGE");
    }
}
