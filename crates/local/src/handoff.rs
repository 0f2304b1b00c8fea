//! Direct hand-off: a message published while this process's own consumer of its queue
//! is keeping up is claimed for that consumer in the publish transaction itself — the
//! queue item is written already received (receipt, owner, receive count 1, visibility
//! timeout) and the message already `processing` — and given to the consumer in memory
//! after the commit.
//!
//! Why: otherwise every message costs a second durable write (the receive: one more
//! commit and `fdatasync`) and a round trip from the consumer through the writer thread
//! before its handler can start. At low and moderate rates those were most of a
//! message's CPU and a commit's worth of its latency.
//!
//! Nothing here is needed for correctness. A claimed item is an ordinary in-flight
//! delivery in the database, owned under this process's lease: if the process dies, or
//! the consumer never takes it, it is reclaimed or times out and is received again like
//! any other. Claims are made only while the consumer's last look at the database found
//! nothing waiting, so a backlog is worked off in order rather than overtaken, and at
//! most [`MAX_WAITING`] claims wait for the consumer at a time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use rez_core::message::Message;
use rez_core::ports::Delivery;
use rez_core::routing::QueueName;

/// Claims waiting for the consumer (or being written) per queue, at most.
pub const MAX_WAITING: usize = 64;

/// A queue item claimed for this process's consumer, before the publish commits.
#[derive(Debug, Clone)]
pub struct Claim {
    pub queue: QueueName,
    pub receipt: String,
    /// End of the visibility timeout, as in a receive.
    pub visible_ms: i64,
}

#[derive(Default)]
struct Slot {
    /// The visibility timeout this process's consumer receives with (ms); 0 until it
    /// first asks.
    visibility_ms: AtomicI64,
    /// The consumer's last look at the database found nothing visible: it keeps up.
    caught_up: AtomicBool,
    /// Claims made and not yet taken by the consumer (or given back).
    held: AtomicUsize,
    /// Committed claims as deliveries, with the end of their visibility timeout.
    ready: Mutex<VecDeque<(Delivery, i64)>>,
}

/// The per-queue hand-off state of one process.
pub struct Handoff {
    enabled: bool,
    slots: [Slot; QueueName::ALL.len()],
}

impl Handoff {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, slots: Default::default() }
    }

    fn slot(&self, queue: QueueName) -> &Slot {
        let i = QueueName::ALL.iter().position(|q| *q == queue).unwrap_or(0);
        &self.slots[i]
    }

    /// Called by every receive: the consumer exists, with this visibility timeout.
    pub fn consumer_asks(&self, queue: QueueName, visibility: Duration) {
        let ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 4);
        self.slot(queue).visibility_ms.store(ms, Ordering::Relaxed);
    }

    /// What the consumer's look at the database found: nothing visible (it keeps up) or
    /// a backlog (new messages queue behind it, in order).
    pub fn consumer_saw(&self, queue: QueueName, nothing_waiting: bool) {
        self.slot(queue).caught_up.store(nothing_waiting, Ordering::Relaxed);
    }

    /// Whether the consumer's last look at the database found nothing waiting. Until it
    /// does (at start, and through a backlog), a receive goes straight to the database.
    pub fn consumer_caught_up(&self, queue: QueueName) -> bool {
        self.slot(queue).caught_up.load(Ordering::Relaxed)
    }

    /// Claim the next message on `queue` for this process's consumer, if it keeps up and
    /// has fewer than [`MAX_WAITING`] claims waiting. Every claim must end in
    /// [`Handoff::deliver`] (the publish committed) or [`Handoff::give_back`].
    pub fn claim(&self, queue: QueueName, now_ms: i64) -> Option<Claim> {
        if !self.enabled {
            return None;
        }
        let slot = self.slot(queue);
        let visibility_ms = slot.visibility_ms.load(Ordering::Relaxed);
        if visibility_ms <= 0 || !slot.caught_up.load(Ordering::Relaxed) {
            return None;
        }
        if slot.held.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            slot.held.fetch_sub(1, Ordering::AcqRel);
            // This message waits in the database: later ones queue behind it until the
            // consumer's look at the database finds nothing waiting again.
            slot.caught_up.store(false, Ordering::Relaxed);
            return None;
        }
        Some(Claim { queue, receipt: ulid::Ulid::new().to_string(), visible_ms: now_ms.saturating_add(visibility_ms) })
    }

    /// The claim was not used (the publish failed, or found an earlier message).
    pub fn give_back(&self, claim: &Claim) {
        self.slot(claim.queue).held.fetch_sub(1, Ordering::AcqRel);
    }

    /// The publish of `message` (as stored: `processing`) committed with `claim`: the
    /// consumer takes it at its next receive. The caller wakes the consumer after this.
    pub fn deliver(&self, claim: Claim, message: Message) {
        let slot = self.slot(claim.queue);
        let delivery = Delivery { queue: claim.queue, receipt: claim.receipt, message, receive_count: 1 };
        slot.ready.lock().unwrap_or_else(|e| e.into_inner()).push_back((delivery, claim.visible_ms));
    }

    /// Whether deliveries wait for the consumer of `queue`.
    pub fn has_ready(&self, queue: QueueName) -> bool {
        !self.slot(queue).ready.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Up to `max` deliveries handed to the consumer of `queue`, oldest first. One that
    /// waited so long that less than half its visibility timeout is left is not handed
    /// out: it times out in the database and is received again from there, so a handler
    /// never starts on a claim that may expire under it.
    pub fn take(&self, queue: QueueName, max: usize, now_ms: i64) -> Vec<Delivery> {
        let slot = self.slot(queue);
        let half = slot.visibility_ms.load(Ordering::Relaxed) / 2;
        let mut ready = slot.ready.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        while out.len() < max {
            let Some((d, visible_ms)) = ready.pop_front() else { break };
            slot.held.fetch_sub(1, Ordering::AcqRel);
            if visible_ms - now_ms >= half {
                out.push(d);
            } else {
                tracing::warn!(message_id = %d.message.id, queue = %queue, "handed-off delivery waited too long; it will be received again after its visibility timeout");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rez_core::clock::{Clock, SystemClock};
    use rez_core::message::{CreatedBy, NewMessage, Stage};

    use super::*;

    fn message() -> Message {
        let new = NewMessage::from_json(
            &serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}),
            Stage::Dev,
        )
        .expect("notify");
        Message::create(new, CreatedBy::Api, SystemClock.now())
    }

    /// A hand-off whose consumer of `q` asked with `visibility` and found nothing waiting.
    fn keeping_up(q: QueueName, visibility: Duration) -> Handoff {
        let h = Handoff::new(true);
        h.consumer_asks(q, visibility);
        h.consumer_saw(q, true);
        h
    }

    #[test]
    fn nothing_is_claimed_until_a_consumer_keeps_up() {
        let q = QueueName::Notifications;
        let off = Handoff::new(false);
        off.consumer_asks(q, Duration::from_secs(30));
        off.consumer_saw(q, true);
        assert!(off.claim(q, 0).is_none(), "disabled");

        let h = Handoff::new(true);
        assert!(h.claim(q, 0).is_none(), "no consumer has asked");
        h.consumer_asks(q, Duration::from_secs(30));
        assert!(h.claim(q, 0).is_none(), "the consumer has not looked at the database yet");
        h.consumer_saw(q, true);
        let claim = h.claim(q, 1_000).expect("claimed");
        assert_eq!(claim.visible_ms, 31_000);
        assert!(h.claim(QueueName::WebActions, 0).is_none(), "per queue");
        h.give_back(&claim);
        h.consumer_saw(q, false);
        assert!(h.claim(q, 0).is_none(), "a backlog");
    }

    #[test]
    fn a_claim_that_waited_past_half_its_visibility_is_not_handed_out() {
        let q = QueueName::Notifications;
        let h = keeping_up(q, Duration::from_millis(1_000));
        let fresh = h.claim(q, 0).expect("claimed");
        let stale = h.claim(q, 0).expect("claimed");
        h.deliver(fresh, message());
        assert!(h.has_ready(q));
        assert_eq!(h.take(q, 10, 500).len(), 1, "half its visibility left: handed out");
        h.deliver(stale, message());
        assert!(h.take(q, 10, 501).is_empty(), "less than half left: left to time out");
        assert!(!h.has_ready(q));
        assert_eq!(h.slot(q).held.load(Ordering::Relaxed), 0, "every claim accounted for");
    }
}
