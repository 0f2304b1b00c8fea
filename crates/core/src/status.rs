//! The message status state machine.
//!
//! ```text
//! created ─▶ queued ─▶ processing ─▶ completed
//!              ▲           │  ▲
//!              │           ▼  │ (redelivery after a crash or visibility timeout)
//!              └──────── failed
//! processing | failed ─▶ dead_lettered ─▶ queued (redrive / retry)
//! created ─▶ dead_lettered (the transport refuses the message for good)
//! ```
//!
//! Every status change goes through [`Status::transition`]; an illegal change is an
//! error, never an overwrite (the prior system let any write clobber any status).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Queued,
    Processing,
    Completed,
    Failed,
    DeadLettered,
}

/// An attempted status change that the state machine forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {from} -> {to}")]
pub struct IllegalTransition {
    pub from: Status,
    pub to: Status,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Created, Status::Queued, Status::Processing, Status::Completed, Status::Failed, Status::DeadLettered];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Queued => "queued",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::DeadLettered => "dead_lettered",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether `self -> to` is an edge of the state machine.
    pub fn can_transition(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Created, Queued)
                // A message the transport refuses for good (too large, invalid): it is
                // kept as a dead letter with the reason instead of retried forever.
                | (Created, DeadLettered)
                | (Queued, Processing)
                // Redelivery of in-flight work after a crash or an expired visibility timeout.
                | (Processing, Processing)
                | (Processing, Completed)
                | (Processing, Failed)
                | (Processing, DeadLettered)
                | (Failed, Queued)
                | (Failed, DeadLettered)
                | (DeadLettered, Queued)
        )
    }

    /// The checked transition.
    pub fn transition(self, to: Status) -> Result<Status, IllegalTransition> {
        if self.can_transition(to) { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }

    /// No further processing happens without a human (retry/redrive).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::DeadLettered)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn happy_path_and_retry() {
        let s = Status::Created.transition(Status::Queued).unwrap();
        let s = s.transition(Status::Processing).unwrap();
        let s = s.transition(Status::Failed).unwrap();
        let s = s.transition(Status::Queued).unwrap();
        let s = s.transition(Status::Processing).unwrap();
        assert_eq!(s.transition(Status::Completed).unwrap(), Status::Completed);
    }

    #[test]
    fn a_refused_created_message_is_dead_lettered_and_redriven() {
        let s = Status::Created.transition(Status::DeadLettered).unwrap();
        assert_eq!(s.transition(Status::Queued).unwrap(), Status::Queued);
        // Only queueing or a refusal lead out of `created`.
        let from_created: Vec<Status> =
            Status::ALL.into_iter().filter(|&to| Status::Created.can_transition(to)).collect();
        assert_eq!(from_created, vec![Status::Queued, Status::DeadLettered]);
    }

    #[test]
    fn completed_is_final() {
        for to in Status::ALL {
            assert!(Status::Completed.transition(to).is_err(), "completed -> {to}");
        }
    }

    /// The local store completes a message with one guarded UPDATE (`status =
    /// 'processing'`) instead of loading it through the state machine; that guard is
    /// right only while `processing` is the one way into `completed`.
    #[test]
    fn completed_is_reached_only_from_processing() {
        let from: Vec<Status> = Status::ALL.into_iter().filter(|s| s.can_transition(Status::Completed)).collect();
        assert_eq!(from, vec![Status::Processing]);
    }

    #[test]
    fn names_round_trip_and_unknown_rejected() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
        assert!(serde_json::from_str::<Status>("\"done\"").is_err());
        assert_eq!(Status::parse("Completed"), None);
    }

    fn any_status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }

    proptest! {
        /// Any walk through the machine that only takes legal edges starts at `created`
        /// and can never come back to `created`, and nothing leaves `completed`.
        #[test]
        fn random_walks_respect_the_machine(steps in prop::collection::vec(any_status(), 0..40)) {
            let mut s = Status::Created;
            for to in steps {
                match s.transition(to) {
                    Ok(next) => {
                        prop_assert_ne!(next, Status::Created);
                        prop_assert_ne!(s, Status::Completed);
                        s = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(e.from, s);
                        prop_assert!(!s.can_transition(to));
                    }
                }
            }
        }
    }
}
