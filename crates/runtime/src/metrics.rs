//! Metrics, in the Prometheus data model (`prometheus-client`): intake counters,
//! handler latency histograms and outcomes per queue, push outcomes, and queue gauges
//! (depth, in flight, age of the oldest message, DLQ size) refreshed at scrape time, and
//! the embedded store's commit times (the disk's share of every write's latency).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rez_core::MessageType;
use rez_core::ports::QueueStats;
use rez_core::routing::QueueName;
use serde::Serialize;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub message_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub queue: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabel {
    pub model: String,
    /// `input`, `output`, `cache_read`, `cache_write`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    /// `model_turn` or `tool_call`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabel {
    pub outcome: String,
}

/// How a handled delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Retrying,
    /// Handed back to be delivered again later (`Queues::defer`), not a failure.
    Deferred,
    DeadLettered,
    /// The receipt went stale (redelivered elsewhere) before we could settle it.
    Stale,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retrying => "retrying",
            Outcome::Deferred => "deferred",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Stale => "stale",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    accepted: Family<TypeLabel, Counter>,
    handled: Family<OutcomeLabel, Counter>,
    latency: Family<QueueLabel, Histogram>,
    pushes: Family<PushLabel, Counter>,
    depth: Family<QueueLabel, Gauge>,
    in_flight: Family<QueueLabel, Gauge>,
    oldest: Family<QueueLabel, Gauge<f64, AtomicU64>>,
    dlq: Family<QueueLabel, Gauge>,
    fires: Counter,
    lateness: Histogram,
    missed: Counter,
    failed_fires: Counter,
    commits: Histogram,
    agent_runs: Family<PushLabel, Counter>,
    agent_tokens: Family<TokenLabel, Counter>,
    agent_cost: Family<ModelLabel, Counter>,
    agent_steps: Family<StepLabel, Histogram>,
    agent_overhead: Histogram,
}

/// 100 µs .. ~13 s: for times that are usually well under a millisecond.
fn fine_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18))
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rez");
        let accepted = Family::<TypeLabel, Counter>::default();
        let handled = Family::<OutcomeLabel, Counter>::default();
        let latency = Family::<QueueLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let pushes = Family::<PushLabel, Counter>::default();
        let depth = Family::<QueueLabel, Gauge>::default();
        let in_flight = Family::<QueueLabel, Gauge>::default();
        let oldest = Family::<QueueLabel, Gauge<f64, AtomicU64>>::default();
        let dlq = Family::<QueueLabel, Gauge>::default();
        registry.register("messages_accepted", "Messages accepted, by type", accepted.clone());
        registry.register("deliveries_handled", "Queue deliveries handled, by queue and outcome", handled.clone());
        registry.register("handler_duration_seconds", "Time from receive to settle, by queue", latency.clone());
        registry.register("notifications_pushed", "Push attempts, by outcome", pushes.clone());
        registry.register("queue_depth", "Messages waiting in a queue", depth.clone());
        registry.register("queue_in_flight", "Messages received and not yet settled", in_flight.clone());
        registry.register("queue_oldest_age_seconds", "Age of the oldest message in a queue", oldest.clone());
        registry.register("dlq_depth", "Messages in a queue's dead-letter queue", dlq.clone());
        let fires = Counter::default();
        let lateness = fine_histogram();
        let missed = Counter::default();
        let failed_fires = Counter::default();
        registry.register("schedule_fires", "Schedule firings that created a message", fires.clone());
        registry.register(
            "schedule_lateness_seconds",
            "Time from a firing's due instant to its message being queued",
            lateness.clone(),
        );
        registry.register(
            "schedule_missed",
            "Occurrences not fired (downtime beyond the catch-up window)",
            missed.clone(),
        );
        registry.register(
            "schedule_failed_fires",
            "Firings that failed (invalid target, or retries exhausted)",
            failed_fires.clone(),
        );
        let commits = fine_histogram();
        registry.register(
            "store_commit_seconds",
            "Time a group commit of the embedded store took to write and sync its WAL; every write waits for one",
            commits.clone(),
        );
        let agent_runs = Family::<PushLabel, Counter>::default();
        let agent_tokens = Family::<TokenLabel, Counter>::default();
        let agent_cost = Family::<ModelLabel, Counter>::default();
        let agent_steps = Family::<StepLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let agent_overhead = fine_histogram();
        registry.register("agent_runs", "Agent runs ended, by outcome", agent_runs.clone());
        registry.register("agent_tokens", "Tokens agent runs used, by model and kind", agent_tokens.clone());
        registry.register("agent_cost_nanodollars", "What agent runs' model calls cost, by model", agent_cost.clone());
        registry.register(
            "agent_step_seconds",
            "Wall time of an agent step (a model turn with its retries, or a tool call)",
            agent_steps.clone(),
        );
        registry.register(
            "agent_step_overhead_seconds",
            "rez's own time per agent step: the step's wall time less the model call or tool it waited for",
            agent_overhead.clone(),
        );
        Self {
            registry,
            agent_runs,
            agent_tokens,
            agent_cost,
            agent_steps,
            agent_overhead,
            accepted,
            handled,
            latency,
            pushes,
            depth,
            in_flight,
            oldest,
            dlq,
            fires,
            lateness,
            missed,
            failed_fires,
            commits,
        }
    }

    /// An agent run ended with `outcome` (its final status).
    pub fn agent_run_ended(&self, outcome: &str) {
        self.agent_runs.get_or_create(&PushLabel { outcome: outcome.to_owned() }).inc();
    }

    /// A model turn of `model` used `usage` and cost `cost_nanodollars`.
    pub fn agent_model_turn(&self, model: &str, usage: &rez_core::agent::Usage, cost_nanodollars: u64) {
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            self.agent_tokens.get_or_create(&TokenLabel { model: model.to_owned(), kind: kind.to_owned() }).inc_by(n);
        }
        self.agent_cost.get_or_create(&ModelLabel { model: model.to_owned() }).inc_by(cost_nanodollars);
    }

    /// A step of `kind` took `seconds`, of which `overhead_seconds` were rez's own.
    pub fn agent_step(&self, kind: &str, seconds: f64, overhead_seconds: f64) {
        self.agent_steps.get_or_create(&StepLabel { kind: kind.to_owned() }).observe(seconds);
        self.agent_overhead.observe(overhead_seconds);
    }

    /// A group commit of the embedded store took `seconds` (see `rez_local::Db::on_commit`).
    pub fn store_committed(&self, seconds: f64) {
        self.commits.observe(seconds);
    }

    pub fn accepted(&self, t: MessageType) {
        self.accepted.get_or_create(&TypeLabel { message_type: t.as_str().into() }).inc();
    }

    pub fn handled(&self, queue: QueueName, outcome: Outcome, seconds: f64) {
        self.handled
            .get_or_create(&OutcomeLabel { queue: queue.as_str().into(), outcome: outcome.as_str().into() })
            .inc();
        self.latency.get_or_create(&QueueLabel { queue: queue.as_str().into() }).observe(seconds);
    }

    pub fn schedule_fired(&self, lateness_seconds: f64) {
        self.fires.inc();
        self.lateness.observe(lateness_seconds);
    }

    pub fn schedule_missed(&self, n: u64) {
        self.missed.inc_by(n);
    }

    pub fn schedule_failed(&self) {
        self.failed_fires.inc();
    }

    pub fn pushed(&self, outcome: &str) {
        self.pushes.get_or_create(&PushLabel { outcome: outcome.into() }).inc();
    }

    /// Prometheus text exposition, with queue gauges set from `stats`.
    pub fn render(&self, stats: &[QueueStats]) -> String {
        for s in stats {
            let l = QueueLabel { queue: s.queue.as_str().into() };
            self.depth.get_or_create(&l).set(s.depth as i64);
            self.in_flight.get_or_create(&l).set(s.in_flight as i64);
            self.oldest.get_or_create(&l).set(s.oldest_age_seconds);
            self.dlq.get_or_create(&l).set(s.dlq_depth as i64);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// A JSON summary of the counters.
    pub fn summary(&self) -> MetricsSummary {
        let accepted = rez_core::MessageType::ALL
            .iter()
            .map(|t| {
                (
                    t.as_str().to_owned(),
                    self.accepted.get_or_create(&TypeLabel { message_type: t.as_str().into() }).get(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let mut handled = Vec::new();
        for q in QueueName::ALL {
            for o in [Outcome::Completed, Outcome::Retrying, Outcome::Deferred, Outcome::DeadLettered, Outcome::Stale] {
                let n = self
                    .handled
                    .get_or_create(&OutcomeLabel { queue: q.as_str().into(), outcome: o.as_str().into() })
                    .get();
                if n > 0 {
                    handled.push(HandledCount { queue: q, outcome: o.as_str(), count: n });
                }
            }
        }
        let schedules =
            ScheduleCounts { fired: self.fires.get(), missed: self.missed.get(), failed: self.failed_fires.get() };
        MetricsSummary { accepted, handled, schedules }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HandledCount {
    pub queue: QueueName,
    pub outcome: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsSummary {
    /// Messages accepted since start, by type.
    pub accepted: std::collections::BTreeMap<String, u64>,
    pub handled: Vec<HandledCount>,
    pub schedules: ScheduleCounts,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleCounts {
    pub fired: u64,
    pub missed: u64,
    pub failed: u64,
}
