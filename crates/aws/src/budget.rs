//! `BudgetLedger` on DynamoDB (the agent-budget table): spend that can never pass its cap,
//! however many runs reserve at once, because a reservation is one transaction whose
//! conditions DynamoDB checks atomically.
//!
//! Item layout (key `pk`, `sk`):
//! - `day#2026-05-01` / `total`: `committed` (settled spend plus open reservations) and
//!   `spent` (settled spend), nanodollars;
//! - `day#2026-05-01` / `model#<model>`: `calls`, `input_tokens`, `output_tokens`,
//!   `cache_read_tokens`, `cache_write_tokens`, `cost` (settled);
//! - `run#<run id>` / `total`: the run's `committed`;
//! - `run#<run id>` / `res#0000000012`: the reservation of the model call at that step
//!   (`amount`, `day`, `model`), and once settled `settled` and `actual`.
//!
//! `reserve` puts the reservation if absent AND adds the amount to the day's and the run's
//! `committed` on the condition `attribute_not_exists(committed) OR committed <= :room`,
//! `:room` being the cap minus the amount (conditions have no arithmetic, so it is computed
//! here; an amount above the cap is refused without a write). A cancelled transaction's
//! reasons say which part refused: the reservation existing is the same step reserved
//! again (granted, nothing added twice), the day or the run item is its cap. `settle` is
//! one transaction conditional on the reservation not being settled: it moves the day's
//! and the run's `committed` by `actual − amount`, adds `actual` to the day's `spent`, and
//! adds the call to the day's spend of its model.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{Days, NaiveDate};
use rez_core::agent::model::Usage;
use rez_core::agent::money::Nanodollars;
use rez_core::agent::store::{BudgetLedger, BudgetReservation, DayBudget, ModelSpend, Reserved};
use rez_core::id::RunId;
use rez_core::ports::{StoreError, StoreResult};

use crate::AwsStore;
use crate::codec::{Item, get_s, opt_n, s};
use crate::error::backend;
use crate::transact::{Transacted, build_error, transact};

const TOTAL_SK: &str = "total";
const MODEL_PREFIX: &str = "model#";
/// The longest range `spend` reads (one Query per day).
const MAX_SPEND_DAYS: u64 = 400;

fn day_pk(day: NaiveDate) -> String {
    format!("day#{}", day.format("%Y-%m-%d"))
}

fn run_pk(run: &RunId) -> String {
    format!("run#{run}")
}

fn reservation_sk(step: u32) -> String {
    format!("res#{step:010}")
}

/// A number attribute of a non-negative or signed amount (DynamoDB numbers have 38 digits).
fn num(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn amount(item: &Item, name: &str) -> StoreResult<Nanodollars> {
    let v = opt_n(item, name)?.unwrap_or(0);
    u64::try_from(v).map(Nanodollars).map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is negative: {v}")))
}

fn count(item: &Item, name: &str) -> StoreResult<u64> {
    Ok(amount(item, name)?.0)
}

/// The update of a `total` item adding `delta` to `committed` (and `spent`, if given),
/// conditional on `committed` staying within `cap` when a cap is given.
fn total_update(
    table: &str,
    pk: String,
    delta: i128,
    spent: Option<u64>,
    cap: Option<(Nanodollars, Nanodollars)>,
) -> StoreResult<Update> {
    let mut u = Update::builder()
        .table_name(table)
        .key("pk", s(&pk))
        .key("sk", s(TOTAL_SK))
        .expression_attribute_names("#committed", "committed")
        .expression_attribute_values(":delta", num(delta));
    u = match spent {
        Some(v) => u
            .update_expression("ADD #committed :delta, #spent :spent")
            .expression_attribute_names("#spent", "spent")
            .expression_attribute_values(":spent", num(v)),
        None => u.update_expression("ADD #committed :delta"),
    };
    if let Some((cap, amount)) = cap {
        // committed + amount <= cap  ⇔  committed <= cap − amount (amount <= cap here).
        u = u
            .condition_expression("attribute_not_exists(#committed) OR #committed <= :room")
            .expression_attribute_values(":room", num(cap.0 - amount.0));
    }
    u.build().map_err(|e| build_error("budget total update", e))
}

impl AwsStore {
    fn agent_budget(&self) -> &str {
        &self.names.agent_budget_table
    }

    async fn budget_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(self.agent_budget())
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item agent budget", e))?;
        Ok(out.item)
    }

    async fn committed(&self, pk: &str) -> StoreResult<Nanodollars> {
        match self.budget_item(pk, TOTAL_SK).await? {
            Some(item) => amount(&item, "committed"),
            None => Ok(Nanodollars::ZERO),
        }
    }

    async fn day_refusal(&self, r: &BudgetReservation, cap: Nanodollars) -> StoreResult<Reserved> {
        let committed = self.committed(&day_pk(r.day)).await?;
        tracing::info!(run_id = %r.run, step = r.step, day = %r.day, cap = cap.0, committed = committed.0, amount = r.amount.0, "model call refused: day budget");
        Ok(Reserved::DayExceeded { committed, cap })
    }

    async fn run_refusal(&self, r: &BudgetReservation, cap: Nanodollars) -> StoreResult<Reserved> {
        let committed = self.committed(&run_pk(&r.run)).await?;
        tracing::info!(run_id = %r.run, step = r.step, cap = cap.0, committed = committed.0, amount = r.amount.0, "model call refused: run budget");
        Ok(Reserved::RunExceeded { committed, cap })
    }

    async fn reservation_exists(&self, r: &BudgetReservation) -> StoreResult<bool> {
        Ok(self.budget_item(&run_pk(&r.run), &reservation_sk(r.step)).await?.is_some())
    }
}

#[async_trait]
impl BudgetLedger for AwsStore {
    async fn reserve(&self, r: &BudgetReservation) -> StoreResult<Reserved> {
        let day_cap = r.day_cap.filter(|cap| r.amount > *cap);
        let run_cap = r.run_cap.filter(|cap| r.amount > *cap);
        if day_cap.is_some() || run_cap.is_some() {
            // Above a cap by itself: it was never granted unless an earlier attempt at
            // this step was reserved under a larger cap.
            if self.reservation_exists(r).await? {
                return Ok(Reserved::Granted);
            }
            return match (day_cap, run_cap) {
                (Some(cap), _) => self.day_refusal(r, cap).await,
                (None, Some(cap)) => self.run_refusal(r, cap).await,
                (None, None) => Ok(Reserved::Granted),
            };
        }
        let mut item = Item::new();
        item.insert("pk".into(), s(&run_pk(&r.run)));
        item.insert("sk".into(), s(&reservation_sk(r.step)));
        item.insert("amount".into(), num(r.amount.0));
        item.insert("day".into(), s(&r.day.format("%Y-%m-%d").to_string()));
        item.insert("model".into(), s(&r.model));
        let put = Put::builder()
            .table_name(self.agent_budget())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#sk)")
            .expression_attribute_names("#sk", "sk")
            .build()
            .map_err(|e| build_error("reservation put", e))?;
        let delta = i128::from(r.amount.0);
        let day = total_update(self.agent_budget(), day_pk(r.day), delta, None, r.day_cap.map(|c| (c, r.amount)))?;
        let run = total_update(self.agent_budget(), run_pk(&r.run), delta, None, r.run_cap.map(|c| (c, r.amount)))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(day).build(),
            TransactWriteItem::builder().update(run).build(),
        ];
        let outcome = transact(&self.clients.dynamodb, items, "dynamodb transact budget reservation").await?;
        match (outcome, r.day_cap, r.run_cap) {
            (Transacted::Committed, _, _) => {
                tracing::info!(run_id = %r.run, step = r.step, day = %r.day, amount = r.amount.0, "model call reserved");
                Ok(Reserved::Granted)
            }
            (t, _, _) if t.failed(0) => Ok(Reserved::Granted),
            (t, Some(cap), _) if t.failed(1) => self.day_refusal(r, cap).await,
            (t, _, Some(cap)) if t.failed(2) => self.run_refusal(r, cap).await,
            (Transacted::Cancelled(codes), _, _) => {
                Err(StoreError::Unavailable(format!("reservation transaction cancelled: {}", codes.join(","))))
            }
        }
    }

    async fn settle(&self, r: &BudgetReservation, actual: Nanodollars, usage: &Usage) -> StoreResult<()> {
        let reservation = Update::builder()
            .table_name(self.agent_budget())
            .key("pk", s(&run_pk(&r.run)))
            .key("sk", s(&reservation_sk(r.step)))
            .update_expression("SET #settled = :yes, #actual = :actual")
            .condition_expression("attribute_exists(#sk) AND attribute_not_exists(#settled)")
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_names("#actual", "actual")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":actual", num(actual.0))
            .build()
            .map_err(|e| build_error("reservation settle", e))?;
        // The reservation as stored counts (the same step reserved again keeps the first
        // amount), so read it before moving the totals by the difference.
        let Some(stored) = self.budget_item(&run_pk(&r.run), &reservation_sk(r.step)).await? else {
            return Err(StoreError::NotFound(format!("no reservation for step {} of run {}", r.step, r.run)));
        };
        if matches!(stored.get("settled"), Some(AttributeValue::Bool(true))) {
            return Ok(());
        }
        let reserved = amount(&stored, "amount")?;
        let day: NaiveDate = NaiveDate::parse_from_str(get_s(&stored, "day")?, "%Y-%m-%d")
            .map_err(|e| StoreError::Corrupt(format!("reservation day: {e}")))?;
        let model = get_s(&stored, "model")?.to_owned();
        let delta = i128::from(actual.0) - i128::from(reserved.0);
        let day_total = total_update(self.agent_budget(), day_pk(day), delta, Some(actual.0), None)?;
        let run_total = total_update(self.agent_budget(), run_pk(&r.run), delta, None, None)?;
        let spend = Update::builder()
            .table_name(self.agent_budget())
            .key("pk", s(&day_pk(day)))
            .key("sk", s(&format!("{MODEL_PREFIX}{model}")))
            .update_expression("ADD #calls :one, #in :in, #out :out, #cr :cr, #cw :cw, #cost :cost")
            .expression_attribute_names("#calls", "calls")
            .expression_attribute_names("#in", "input_tokens")
            .expression_attribute_names("#out", "output_tokens")
            .expression_attribute_names("#cr", "cache_read_tokens")
            .expression_attribute_names("#cw", "cache_write_tokens")
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":in", num(usage.input_tokens))
            .expression_attribute_values(":out", num(usage.output_tokens))
            .expression_attribute_values(":cr", num(usage.cache_read_tokens))
            .expression_attribute_values(":cw", num(usage.cache_write_tokens))
            .expression_attribute_values(":cost", num(actual.0))
            .build()
            .map_err(|e| build_error("model spend update", e))?;
        let items = vec![
            TransactWriteItem::builder().update(reservation).build(),
            TransactWriteItem::builder().update(day_total).build(),
            TransactWriteItem::builder().update(run_total).build(),
            TransactWriteItem::builder().update(spend).build(),
        ];
        match transact(&self.clients.dynamodb, items, "dynamodb transact budget settle").await? {
            Transacted::Committed => {
                tracing::info!(run_id = %r.run, step = r.step, %day, reserved = reserved.0, actual = actual.0, "model call settled");
                Ok(())
            }
            // Settled meanwhile by another attempt: once is enough.
            t if t.failed(0) => Ok(()),
            Transacted::Cancelled(codes) => {
                Err(StoreError::Unavailable(format!("settle transaction cancelled: {}", codes.join(","))))
            }
        }
    }

    async fn day(&self, day: NaiveDate) -> StoreResult<DayBudget> {
        match self.budget_item(&day_pk(day), TOTAL_SK).await? {
            Some(item) => Ok(DayBudget { spent: amount(&item, "spent")?, committed: amount(&item, "committed")? }),
            None => Ok(DayBudget::default()),
        }
    }

    async fn spend(&self, from: NaiveDate, to: NaiveDate) -> StoreResult<Vec<ModelSpend>> {
        let mut out = Vec::new();
        let mut day = from;
        let mut days = 0;
        while day <= to && days < MAX_SPEND_DAYS {
            let mut start: Option<Item> = None;
            loop {
                let page = self
                    .clients
                    .dynamodb
                    .query()
                    .table_name(self.agent_budget())
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", "pk")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":pk", s(&day_pk(day)))
                    .expression_attribute_values(":prefix", s(MODEL_PREFIX))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| backend("dynamodb query agent spend", e))?;
                for item in page.items.unwrap_or_default() {
                    let model = get_s(&item, "sk")?.trim_start_matches(MODEL_PREFIX).to_owned();
                    out.push(ModelSpend {
                        day,
                        model,
                        calls: count(&item, "calls")?,
                        usage: Usage {
                            input_tokens: count(&item, "input_tokens")?,
                            output_tokens: count(&item, "output_tokens")?,
                            cache_read_tokens: count(&item, "cache_read_tokens")?,
                            cache_write_tokens: count(&item, "cache_write_tokens")?,
                        },
                        cost: amount(&item, "cost")?,
                    });
                }
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            days += 1;
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => break,
            }
        }
        Ok(out)
    }
}
