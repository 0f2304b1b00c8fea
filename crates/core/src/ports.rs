//! Ports: the traits every deployment implements. `rez-runtime` only ever talks to these;
//! `rez-local` implements them on SQLite and the AWS adapter on DynamoDB/SNS/SQS.
//!
//! The suite in the `rez-port-suite` crate (`port_suite!`) is written against these traits
//! only, so every adapter runs the same checks.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::auth::{ApiKeyId, ApiKeyRecord};
use crate::id::{MessageId, ScheduleId};
use crate::message::{CreatedBy, Message, MessageType, Stage};
use crate::notify::NotifyPayload;
use crate::routing::QueueName;
use crate::schedules::{Schedule, ScheduleStatus, TargetType};
use crate::status::{IllegalTransition, Status};
use crate::time::{Timestamp, serde_rfc3339, serde_rfc3339_opt};
use crate::web_action::{WebActionError, WebActionOutput, WebActionRequest, WebActionResult};

/// Errors of any store or queue adapter.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid cursor")]
    InvalidCursor,
    /// The backend failed (disk, network, throttling). Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data in the store could not be decoded. A bug or a manual edit.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing, newest first, with an opaque cursor for the next page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters of `GET /api/messages`.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<Status>,
    pub message_type: Option<MessageType>,
    pub stage: Option<Stage>,
    pub created_by: Option<CreatedBy>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// 1..=100.
    pub limit: usize,
    pub cursor: Option<String>,
}

/// Result of [`MessageStore::submit`].
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Stored and queued now.
    Created(Message),
    /// The idempotency key was used within the last 24 h: this is the first message.
    Existing(Message),
}

impl Submitted {
    pub fn message(&self) -> &Message {
        match self {
            Submitted::Created(m) | Submitted::Existing(m) => m,
        }
    }

    pub fn into_message(self) -> Message {
        match self {
            Submitted::Created(m) | Submitted::Existing(m) => m,
        }
    }
}

/// How long an idempotency key holds.
pub const IDEMPOTENCY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Durable message storage *and* routing. `submit` both stores a message and makes it
/// deliverable on every queue subscribed to its topic; an adapter must never leave a
/// stored message unqueued for good (locally: one transaction; on AWS: put, publish,
/// mark queued, plus a sweeper for messages left in `created`).
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Store `message` (status `created`) and enqueue it. Returns it as `queued`, or the
    /// earlier message with the same idempotency key.
    async fn submit(&self, message: Message) -> StoreResult<Submitted>;
    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>>;
    async fn list_messages(&self, filter: &MessageFilter) -> StoreResult<Page<Message>>;
    /// Re-queue a `failed` or `dead_lettered` message on its primary queue with a fresh
    /// receive count (removing it from the DLQ if it is there), and count it in
    /// `retry_count`. So a delivery with receive count 1 and `retry_count` 0 is the
    /// message's first delivery ever ([`is_first_delivery`]).
    async fn retry(&self, id: &MessageId) -> StoreResult<Message>;
    /// A cheap round trip to the backend, for deep health checks.
    async fn ping(&self) -> StoreResult<()>;
    /// For each of the `hours` hours from `since`, the messages created in that hour that
    /// are now completed and those now failed or dead-lettered (the dashboard's chart).
    /// This default walks the listing, newest first, and stops after
    /// [`HOURLY_WALK_LIMIT`] messages (the counts of a busier day are then partial); an
    /// adapter with an aggregate query overrides it.
    async fn hourly_outcomes(&self, since: Timestamp, hours: u32) -> StoreResult<Vec<HourOutcomes>> {
        let mut out = HourOutcomes::empty(since, hours);
        let mut filter = MessageFilter { created_after: Some(since), limit: 100, ..MessageFilter::default() };
        let mut seen = 0;
        while seen < HOURLY_WALK_LIMIT {
            let page = self.list_messages(&filter).await?;
            seen += page.items.len();
            for m in &page.items {
                HourOutcomes::count(&mut out, since, m.created_date, m.status);
            }
            match page.next_cursor {
                Some(c) => filter.cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Most messages [`MessageStore::hourly_outcomes`]'s default reads.
pub const HOURLY_WALK_LIMIT: usize = 10_000;

/// One hour of [`MessageStore::hourly_outcomes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourOutcomes {
    pub hour_start: Timestamp,
    /// Created in this hour and now `completed`.
    pub completed: u64,
    /// Created in this hour and now `failed` or `dead_lettered`.
    pub failed: u64,
}

impl HourOutcomes {
    /// `hours` empty hours from `since`.
    pub fn empty(since: Timestamp, hours: u32) -> Vec<Self> {
        (0..hours)
            .map(|h| Self { hour_start: since + chrono::TimeDelta::hours(h.into()), completed: 0, failed: 0 })
            .collect()
    }

    /// Count a message created at `created` now in `status` into its hour, if it has one.
    pub fn count(hours: &mut [Self], since: Timestamp, created: Timestamp, status: Status) {
        let Ok(h) = usize::try_from((created - since).num_hours()) else { return };
        if created < since {
            return;
        }
        let Some(slot) = hours.get_mut(h) else { return };
        match status {
            Status::Completed => slot.completed += 1,
            Status::Failed | Status::DeadLettered => slot.failed += 1,
            _ => {}
        }
    }
}

/// A message received from a queue, invisible to other consumers until its visibility
/// timeout ends or it is completed, failed or released.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub queue: QueueName,
    /// Opaque handle for this receive; stale after the message is redelivered.
    pub receipt: String,
    pub message: Message,
    /// 1 on first delivery.
    pub receive_count: u32,
}

/// No earlier delivery of this message can have reached a handler: this is the first
/// receive of its queue item (`receive_count` 1), and the message was never retried,
/// redriven or failed (each counts in `retry_count`; a receive count starts afresh only
/// then, or after a [`Queues::release`] of a delivery never handled). Handlers may skip
/// looking for the record of an earlier attempt then.
pub fn is_first_delivery(message: &Message, receive_count: u32) -> bool {
    receive_count == 1 && message.retry_count == 0
}

/// Whether another attempt can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Retry with backoff until the receive limit, then dead-letter.
    Transient,
    /// Dead-letter now: retrying cannot help (e.g. the payload was rejected downstream).
    Permanent,
}

/// What happened to a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Visible again at this time.
    Retrying {
        visible_at: Timestamp,
    },
    DeadLettered,
}

/// SQS semantics: at-least-once, batches of up to [`MAX_BATCH`], visibility timeout,
/// receive counts, a DLQ after [`MAX_RECEIVES`] receives, retention of 4 days.
pub const MAX_BATCH: usize = 10;
pub const MAX_RECEIVES: u32 = 3;
/// The longest [`Queues::defer`] delay: SQS's longest message delay (15 min).
pub const MAX_DEFER: Duration = Duration::from_secs(900);
pub const RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(4);
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(6 * 60);

/// Depth and age of one queue and its DLQ.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    pub queue: QueueName,
    /// Waiting to be received (visible now or after a backoff).
    pub depth: u64,
    /// Received and not yet completed.
    pub in_flight: u64,
    /// Age in seconds of the oldest message still in the queue (waiting or in flight).
    pub oldest_age_seconds: f64,
    pub dlq_depth: u64,
}

/// A message in a dead-letter queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub message: Message,
    pub source_queue: QueueName,
    pub receive_count: u32,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub dead_lettered_date: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Which dead letters to redrive.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedriveSelector {
    All,
    Queue(QueueName),
    Ids(Vec<MessageId>),
}

/// Queue consumption. Completing or failing a delivery also moves the message's status
/// (`completed`, `failed`, `dead_lettered`), so status and queue never disagree.
#[async_trait]
pub trait Queues: Send + Sync + 'static {
    /// Up to `max` (≤ [`MAX_BATCH`]) visible messages; marks them `processing`.
    /// Messages already received [`MAX_RECEIVES`] times go to the DLQ instead.
    async fn receive(&self, queue: QueueName, max: usize, visibility: Duration) -> StoreResult<Vec<Delivery>>;
    /// Done: remove from the queue and mark `completed`.
    async fn complete(&self, delivery: &Delivery) -> StoreResult<()>;
    /// Done after a notification attempt: record the attempt in the inbox (as
    /// [`Inbox::record`]) and complete the delivery, as one write where the adapter can,
    /// so recording a push costs no write of its own. The record stands even when the
    /// receipt is stale (the message was redelivered meanwhile), so the redelivery sees
    /// the push and does not repeat it; that case returns `Conflict`, like
    /// [`Queues::complete`].
    async fn complete_notified(
        &self,
        delivery: &Delivery,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;
    /// Failed: back off and retry, or dead-letter.
    async fn fail(&self, delivery: &Delivery, error: &str, kind: FailureKind) -> StoreResult<FailOutcome>;
    /// Give a delivery back untouched (shutdown): visible again now, and not counted as
    /// a receive. Only for a delivery whose handler never ran.
    async fn release(&self, delivery: &Delivery) -> StoreResult<()>;
    /// Hand a delivery back to be delivered again after `delay`, without it counting
    /// toward [`MAX_RECEIVES`]: the handler made progress and knows when the next step
    /// is due (a booking waiting for its next reservations lookup). The receive count
    /// starts afresh with the next delivery. A delay beyond [`MAX_DEFER`] is cut to it
    /// (the handler defers again if it is early). Stale receipts answer `Conflict`.
    async fn defer(&self, delivery: &Delivery, delay: Duration) -> StoreResult<()>;
    /// Resolve when `queue` may have work, or after `timeout`.
    async fn wait_for_work(&self, queue: QueueName, timeout: Duration);
    async fn stats(&self) -> StoreResult<Vec<QueueStats>>;
    async fn dead_letters(
        &self,
        queue: Option<QueueName>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<DeadLetter>>;
    /// Move dead letters back to their source queue with a fresh receive count; returns
    /// how many moved. Each move from a message's primary queue counts in its
    /// `retry_count` (see [`MessageStore::retry`]).
    async fn redrive(&self, selector: &RedriveSelector) -> StoreResult<u64>;
    /// Drop a dead letter for good; false if it was not in a DLQ.
    async fn delete_dead_letter(&self, id: &MessageId) -> StoreResult<bool>;
}

/// Delivery state of an inbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// A push is being attempted.
    Pending,
    /// The push server accepted it.
    Delivered,
    /// The last attempt failed; another may follow.
    Failed,
    /// No push server is configured: the inbox is the only destination.
    InboxOnly,
}

/// One notification, as kept in the inbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxEntry {
    pub message_id: MessageId,
    pub notification: NotifyPayload,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Id the push server gave the notification, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date: Timestamp,
    #[serde(with = "serde_rfc3339_opt", skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_date: Option<Timestamp>,
}

/// The outcome of one push attempt, as recorded.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered { push_id: Option<String> },
    Failed { error: String },
    InboxOnly,
}

/// The notification inbox. It is also the record that makes the notification processor
/// idempotent: a push recorded as delivered is never pushed again.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Create the entry for `message_id` if it does not exist; return the entry as stored.
    async fn open(&self, message_id: &MessageId, notification: &NotifyPayload) -> StoreResult<InboxEntry>;
    /// Record one attempt (increments `attempts`), creating the entry if needed.
    async fn record(
        &self,
        message_id: &MessageId,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<InboxEntry>;
    async fn get_entry(&self, message_id: &MessageId) -> StoreResult<Option<InboxEntry>>;
    async fn list_entries(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<InboxEntry>>;
}

/// API key storage. Keys are stored as SHA-256 hashes only.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    async fn insert(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn get_key(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Returns false if there was no such active key.
    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool>;
}

/// What a push server said about one notification.
#[derive(Debug, Clone, Default)]
pub struct PushReceipt {
    /// The id the push server assigned, if it returned one.
    pub push_id: Option<String>,
}

/// Why a push failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushError {
    /// Worth retrying later (5xx, 429, timeout, connection reset).
    #[error("push failed (transient): {message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// Retrying cannot help (4xx other than 429, a refused destination).
    #[error("push failed (permanent): {message}")]
    Permanent { message: String },
}

/// A push-notification channel (ntfy). Implementations retry 5xx/429 a few times inside
/// one call (honouring `Retry-After`) and then report; the queue retries beyond that.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn push(&self, message_id: &MessageId, notification: &NotifyPayload) -> Result<PushReceipt, PushError>;
}

/// Filters of `GET /api/schedules`. Deleted schedules are listed only when asked for
/// by status.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFilter {
    pub status: Option<ScheduleStatus>,
    pub target_type: Option<TargetType>,
    /// 1..=100.
    pub limit: usize,
    pub cursor: Option<String>,
}

/// One firing (or catch-up step) of a schedule, applied atomically: the message it
/// creates and the schedule's new state commit together or not at all.
#[derive(Debug, Clone)]
pub struct Firing {
    /// The schedule as this firing was planned from. If the stored schedule's version is
    /// no longer `schedule.version` (another engine fired it, or it was updated), nothing
    /// is applied. Carrying it saves the store re-reading and re-parsing the schedule.
    pub schedule: Box<Schedule>,
    /// The message to create (its idempotency key is `(schedule_id, scheduled_time)`).
    pub message: Option<Message>,
    /// Occurrences skipped without firing.
    pub missed: u64,
    pub next_fire_at: Option<Timestamp>,
    pub status: ScheduleStatus,
    pub last_error: Option<String>,
    pub at: Timestamp,
}

/// What [`ScheduleStore::fire_many_after`] waits for before applying anything.
pub type Gate = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What [`ScheduleStore::fire`] did.
#[derive(Debug, Clone)]
pub enum FireOutcome {
    /// Applied; the message created by this firing (or the one an earlier attempt
    /// created for the same occurrence), if it fired.
    Applied { schedule: Box<Schedule>, message: Option<Message> },
    /// The schedule changed since the plan was made; nothing was applied.
    Stale,
}

/// Durable schedules. Every update bumps `version` and is conditional on the version
/// the caller read, so concurrent writers never overwrite each other.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    async fn insert_schedule(&self, schedule: &Schedule) -> StoreResult<()>;
    async fn get_schedule(&self, id: &ScheduleId) -> StoreResult<Option<Schedule>>;
    async fn list_schedules(&self, filter: &ScheduleFilter) -> StoreResult<Page<Schedule>>;
    /// How many schedules exist (any status but deleted), for the schedule-count limit of
    /// SPEC §8. The default pages through [`Self::list_schedules`]; an adapter with a
    /// cheaper count overrides it.
    async fn count_schedules(&self) -> StoreResult<u64> {
        let mut filter = ScheduleFilter { status: None, target_type: None, limit: 100, cursor: None };
        let mut n = 0u64;
        loop {
            let page = self.list_schedules(&filter).await?;
            n += page.items.len() as u64;
            match page.next_cursor {
                Some(c) => filter.cursor = Some(c),
                None => return Ok(n),
            }
        }
    }
    /// Store `schedule` as version `expected_version + 1` if the stored version is still
    /// `expected_version`; `Conflict` otherwise.
    async fn update_schedule(&self, schedule: &Schedule, expected_version: u64) -> StoreResult<Schedule>;
    /// Active schedules whose due time (next fire + flexible-window offset) is at or
    /// before `now`, earliest first.
    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>>;
    /// The earliest due time of any active schedule.
    async fn next_due(&self) -> StoreResult<Option<Timestamp>>;
    /// Apply one firing atomically (see [`Firing`]).
    async fn fire(&self, firing: &Firing) -> StoreResult<FireOutcome>;
    /// Apply several firings, each atomically and independently of the others: one that
    /// is stale or fails leaves the rest applied. The outcomes are in the order of
    /// `firings`, one per firing. An adapter may fold the batch into one transaction
    /// (each firing under its own savepoint); the default runs [`Self::fire`] for each,
    /// concurrently.
    async fn fire_many(&self, firings: &[Firing]) -> Vec<StoreResult<FireOutcome>> {
        futures::future::join_all(firings.iter().map(|f| self.fire(f))).await
    }
    /// [`Self::fire_many`], with nothing applied before `gate` resolves. An adapter may
    /// prepare the batch (encode it) while it waits, so that once the gate opens only the
    /// writes remain. The engine uses it to fire a batch planned ahead of its due instant
    /// exactly at that instant. The default awaits the gate, then calls `fire_many`.
    async fn fire_many_after(&self, firings: &[Firing], gate: Gate) -> Vec<StoreResult<FireOutcome>> {
        gate.await;
        self.fire_many(firings).await
    }
    /// For in-process engines: take or renew the right to fire schedules for `ttl`.
    /// At most one owner holds it at a time. AWS has no use for it (EventBridge fires).
    async fn acquire_engine_lease(&self, owner: &str, ttl: Duration) -> StoreResult<bool>;
}

/// Where schedules are evaluated: the in-process engine locally, EventBridge Scheduler on
/// AWS. The management service tells the engine about every change.
#[async_trait]
pub trait ScheduleEngine: Send + Sync + 'static {
    /// A schedule was created or changed (including pause/resume).
    async fn sync(&self, schedule: &Schedule) -> StoreResult<()>;
    /// A schedule was deleted.
    async fn remove(&self, id: &ScheduleId) -> StoreResult<()>;
}

/// A secret value. Its `Debug` and `Display` never show the content.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is used (an outbound request), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// What listing secrets shows: names and dates, never values.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub name: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_date: Timestamp,
}

/// Secrets (golf credentials per course, tokens). Locally: encrypted at rest in the
/// database; on AWS: Secrets Manager. Names are `[a-z0-9_./-]{1,128}`, e.g. `golf/birdsfoot`.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretValue>>;
    async fn put_secret(&self, name: &str, value: &SecretValue) -> StoreResult<()>;
    /// False if there was no such secret.
    async fn delete_secret(&self, name: &str) -> StoreResult<bool>;
    async fn list_secrets(&self) -> StoreResult<Vec<SecretInfo>>;
}

/// Stored web-action results, expiring after [`crate::web_action::RESULT_TTL`].
#[async_trait]
pub trait ResultStore: Send + Sync + 'static {
    async fn put_result(&self, result: &WebActionResult) -> StoreResult<()>;
    /// Results of one message, oldest first.
    async fn results_for(&self, message_id: &MessageId) -> StoreResult<Vec<WebActionResult>>;
    /// Delete results whose `ttl` is before `now`; returns how many.
    async fn purge_expired_results(&self, now: Timestamp) -> StoreResult<u64>;
}

/// One kind of web action (`weather`, `golf`), with its operations.
#[async_trait]
pub trait WebActionHandler: Send + Sync + 'static {
    /// The `payload.action` this handler serves.
    fn action(&self) -> &'static str;
    /// The operations it knows; the first is the default when none is given.
    fn operations(&self) -> &'static [&'static str];
    async fn execute(&self, request: &WebActionRequest) -> Result<WebActionOutput, WebActionError>;
}
