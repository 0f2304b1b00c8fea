//! The routing table: which topic a message type is published to, and which queues
//! subscribe to each topic. It is the same table locally and on AWS (where topics are SNS
//! topics and queues SQS queues with a DLQ each).

use crate::message::MessageType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A topic messages are published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    WebActions,
    Notifications,
    ScheduleCreation,
    AgentResponse,
}

/// A work queue. Each queue has a dead-letter queue ([`QueueName::dlq_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    WebActions,
    Notifications,
    ScheduleCreation,
    AgentResponse,
}

impl Topic {
    pub const ALL: [Topic; 4] =
        [Topic::WebActions, Topic::Notifications, Topic::ScheduleCreation, Topic::AgentResponse];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::WebActions => "web-actions",
            Topic::Notifications => "notifications",
            Topic::ScheduleCreation => "schedule-creation",
            Topic::AgentResponse => "agent-response",
        }
    }

    /// Queues subscribed to this topic. Today every topic fans out to exactly one queue;
    /// the adapters enqueue on every queue listed here.
    pub fn subscribers(self) -> &'static [QueueName] {
        match self {
            Topic::WebActions => &[QueueName::WebActions],
            Topic::Notifications => &[QueueName::Notifications],
            Topic::ScheduleCreation => &[QueueName::ScheduleCreation],
            Topic::AgentResponse => &[QueueName::AgentResponse],
        }
    }
}

impl QueueName {
    pub const ALL: [QueueName; 4] =
        [QueueName::WebActions, QueueName::Notifications, QueueName::ScheduleCreation, QueueName::AgentResponse];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::WebActions => "web-actions",
            QueueName::Notifications => "notifications",
            QueueName::ScheduleCreation => "schedule-creation",
            QueueName::AgentResponse => "agent-response",
        }
    }

    /// Name of this queue's dead-letter queue.
    pub fn dlq_name(self) -> &'static str {
        match self {
            QueueName::WebActions => "web-actions-dlq",
            QueueName::Notifications => "notifications-dlq",
            QueueName::ScheduleCreation => "schedule-creation-dlq",
            QueueName::AgentResponse => "agent-response-dlq",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == raw)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `message_type` → topic, as in the seed.
pub fn topic_for(message_type: MessageType) -> Topic {
    match message_type {
        MessageType::WebAction => Topic::WebActions,
        MessageType::Notify | MessageType::HelloWorld => Topic::Notifications,
        MessageType::ScheduleCreation | MessageType::Scheduled => Topic::ScheduleCreation,
        MessageType::AgentResponse => Topic::AgentResponse,
    }
}

/// The queue whose processing decides a message's status (its topic's first subscriber).
pub fn primary_queue(message_type: MessageType) -> QueueName {
    topic_for(message_type).subscribers()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_matches_the_seed() {
        assert_eq!(topic_for(MessageType::WebAction), Topic::WebActions);
        assert_eq!(topic_for(MessageType::Notify), Topic::Notifications);
        assert_eq!(topic_for(MessageType::HelloWorld), Topic::Notifications);
        assert_eq!(topic_for(MessageType::ScheduleCreation), Topic::ScheduleCreation);
        assert_eq!(topic_for(MessageType::Scheduled), Topic::ScheduleCreation);
        assert_eq!(topic_for(MessageType::AgentResponse), Topic::AgentResponse);
    }

    #[test]
    fn every_topic_has_a_subscriber() {
        for t in Topic::ALL {
            assert!(!t.subscribers().is_empty());
        }
        for q in QueueName::ALL {
            assert_eq!(QueueName::parse(q.as_str()), Some(q));
            assert_ne!(q.as_str(), q.dlq_name());
        }
    }
}
