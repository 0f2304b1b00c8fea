//! `BudgetLedger` on SQLite: what each day and each run has committed (settled spend plus
//! open reservations), every reservation by (run, step), and settled spend per day and
//! model.
//!
//! A reservation reads both committed amounts, compares them with the caps and records
//! itself in one job of the single writer, so parallel runs are ordered by the writer and
//! can never commit a day past its cap. Money is whole nanodollars in SQLite's `INTEGER`
//! (`i64`): an amount or a sum above `i64::MAX` is refused, never wrapped, and a stored
//! negative amount is `StoreError::Corrupt`.

use async_trait::async_trait;
use chrono::NaiveDate;
use rez_core::agent::model::Usage;
use rez_core::agent::money::Nanodollars;
use rez_core::agent::store::{BudgetLedger, BudgetReservation, DayBudget, ModelSpend, Reserved};
use rez_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::db::sql;

/// How a day is keyed: ISO 8601 (`2026-12-06`), which sorts by date.
fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn parse_day(raw: &str) -> StoreResult<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|e| StoreError::Corrupt(format!("budget day `{raw}`: {e}")))
}

/// A count or an amount as SQLite holds it.
fn to_sql(what: &str, v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Conflict(format!("{what} {v} is more than the budget ledger can hold")))
}

/// A stored count or amount: never negative.
fn from_sql(what: &str, v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative ({v})")))
}

fn sum(what: &str, a: i64, b: i64) -> StoreResult<i64> {
    a.checked_add(b).ok_or_else(|| StoreError::Conflict(format!("{what} would pass what the budget ledger can hold")))
}

/// `committed` without a reservation of `amount` it includes.
fn release(of: &str, committed: i64, amount: i64) -> StoreResult<i64> {
    match committed.checked_sub(amount) {
        Some(left) if left >= 0 => Ok(left),
        _ => Err(StoreError::Corrupt(format!(
            "committed of {of} ({committed}) is less than a reservation in it ({amount})"
        ))),
    }
}

fn day_committed(c: &Connection, day: &str) -> StoreResult<(i64, i64)> {
    let row: Option<(i64, i64)> = c
        .prepare_cached("SELECT committed, spent FROM budget_days WHERE day = ?1")
        .map_err(sql)?
        .query_row([day], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)?;
    let (committed, spent) = row.unwrap_or((0, 0));
    from_sql(&format!("committed of {day}"), committed)?;
    from_sql(&format!("spend of {day}"), spent)?;
    Ok((committed, spent))
}

fn run_committed(c: &Connection, run: &str) -> StoreResult<i64> {
    let committed: Option<i64> = c
        .prepare_cached("SELECT committed FROM budget_runs WHERE run_id = ?1")
        .map_err(sql)?
        .query_row([run], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    let committed = committed.unwrap_or(0);
    from_sql(&format!("committed of run {run}"), committed)?;
    Ok(committed)
}

/// Whether `committed + amount` passes `cap`: the refusal's committed amount and cap.
/// (Both are checked non-negative `i64`s, so the sum is exact in `i128`.)
fn passes(committed: i64, amount: i64, cap: Option<Nanodollars>) -> Option<(Nanodollars, Nanodollars)> {
    let cap = cap?;
    if i128::from(committed) + i128::from(amount) <= i128::from(cap.0) {
        return None;
    }
    Some((Nanodollars(u64::try_from(committed).unwrap_or_default()), cap))
}

/// A stored reservation: its day, model, amount and the actual cost once settled.
struct Stored {
    day: String,
    model: String,
    amount: i64,
    actual: Option<i64>,
}

fn load_reservation(c: &Connection, run: &str, step: u32) -> StoreResult<Option<Stored>> {
    c.prepare_cached("SELECT day, model, amount, actual FROM budget_reservations WHERE run_id = ?1 AND step = ?2")
        .map_err(sql)?
        .query_row(rusqlite::params![run, step], |r| {
            Ok(Stored { day: r.get(0)?, model: r.get(1)?, amount: r.get(2)?, actual: r.get(3)? })
        })
        .optional()
        .map_err(sql)
}

#[async_trait]
impl BudgetLedger for LocalStore {
    async fn reserve(&self, reservation: &BudgetReservation) -> StoreResult<Reserved> {
        let r = reservation.clone();
        let amount = to_sql("the reservation", r.amount.0)?;
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let (run, day) = (r.run.as_str(), day_key(r.day));
                if load_reservation(tx, run, r.step)?.is_some() {
                    return Ok(Reserved::Granted);
                }
                let (day_now, _) = day_committed(tx, &day)?;
                if let Some((committed, cap)) = passes(day_now, amount, r.day_cap) {
                    let step = r.step;
                    tracing::info!(run_id = %r.run, step, %day, %committed, %cap, "day budget refused a call");
                    return Ok(Reserved::DayExceeded { committed, cap });
                }
                let run_now = run_committed(tx, run)?;
                if let Some((committed, cap)) = passes(run_now, amount, r.run_cap) {
                    let step = r.step;
                    tracing::info!(run_id = %r.run, step, %committed, %cap, "run budget refused a call");
                    return Ok(Reserved::RunExceeded { committed, cap });
                }
                let day_after = sum("the day's committed", day_now, amount)?;
                let run_after = sum("the run's committed", run_now, amount)?;
                tx.prepare_cached(
                    "INSERT INTO budget_reservations (run_id, step, day, model, amount, actual) \
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                )
                .map_err(sql)?
                .execute(rusqlite::params![run, r.step, day, r.model, amount])
                .map_err(sql)?;
                tx.prepare_cached(
                    "INSERT INTO budget_days (day, committed, spent) VALUES (?1, ?2, 0) \
                     ON CONFLICT(day) DO UPDATE SET committed = ?2",
                )
                .map_err(sql)?
                .execute(rusqlite::params![day, day_after])
                .map_err(sql)?;
                tx.prepare_cached(
                    "INSERT INTO budget_runs (run_id, committed) VALUES (?1, ?2) \
                     ON CONFLICT(run_id) DO UPDATE SET committed = ?2",
                )
                .map_err(sql)?
                .execute(rusqlite::params![run, run_after])
                .map_err(sql)?;
                Ok(Reserved::Granted)
            })
            .await
    }

    async fn settle(&self, reservation: &BudgetReservation, actual: Nanodollars, usage: &Usage) -> StoreResult<()> {
        let (run, step) = (reservation.run.clone(), reservation.step);
        let actual = to_sql("the actual cost", actual.0)?;
        let tokens = [
            to_sql("input tokens", usage.input_tokens)?,
            to_sql("output tokens", usage.output_tokens)?,
            to_sql("cache read tokens", usage.cache_read_tokens)?,
            to_sql("cache write tokens", usage.cache_write_tokens)?,
        ];
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let stored = load_reservation(tx, run.as_str(), step)?.ok_or_else(|| {
                    StoreError::NotFound(format!("budget reservation of step {step} of agent run {run}"))
                })?;
                if stored.actual.is_some() {
                    return Ok(());
                }
                from_sql("a reservation", stored.amount)?;
                let (day_now, spent) = day_committed(tx, &stored.day)?;
                let run_now = run_committed(tx, run.as_str())?;
                let day_after = sum("the day's committed", release(&stored.day, day_now, stored.amount)?, actual)?;
                let run_after = sum("the run's committed", release(run.as_str(), run_now, stored.amount)?, actual)?;
                let spent_after = sum("the day's spend", spent, actual)?;
                tx.prepare_cached("UPDATE budget_reservations SET actual = ?3 WHERE run_id = ?1 AND step = ?2")
                    .map_err(sql)?
                    .execute(rusqlite::params![run.as_str(), step, actual])
                    .map_err(sql)?;
                tx.prepare_cached("UPDATE budget_days SET committed = ?2, spent = ?3 WHERE day = ?1")
                    .map_err(sql)?
                    .execute(rusqlite::params![stored.day, day_after, spent_after])
                    .map_err(sql)?;
                tx.prepare_cached("UPDATE budget_runs SET committed = ?2 WHERE run_id = ?1")
                    .map_err(sql)?
                    .execute(rusqlite::params![run.as_str(), run_after])
                    .map_err(sql)?;
                let before: Option<[i64; 6]> = tx
                    .prepare_cached(
                        "SELECT calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost \
                         FROM budget_spend WHERE day = ?1 AND model = ?2",
                    )
                    .map_err(sql)?
                    .query_row([&stored.day, &stored.model], |r| {
                        Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])
                    })
                    .optional()
                    .map_err(sql)?;
                let before = before.unwrap_or_default();
                let added = [1, tokens[0], tokens[1], tokens[2], tokens[3], actual];
                let mut after = [0i64; 6];
                for (i, slot) in after.iter_mut().enumerate() {
                    *slot = sum("the spend of a model", before[i], added[i])?;
                }
                tx.prepare_cached(
                    "INSERT INTO budget_spend \
                     (day, model, calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT(day, model) DO UPDATE SET calls = ?3, input_tokens = ?4, output_tokens = ?5, \
                     cache_read_tokens = ?6, cache_write_tokens = ?7, cost = ?8",
                )
                .map_err(sql)?
                .execute(rusqlite::params![
                    stored.day,
                    stored.model,
                    after[0],
                    after[1],
                    after[2],
                    after[3],
                    after[4],
                    after[5]
                ])
                .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn day(&self, day: NaiveDate) -> StoreResult<DayBudget> {
        let day = day_key(day);
        self.db
            .read(move |c| {
                let (committed, spent) = day_committed(c, &day)?;
                Ok(DayBudget {
                    spent: Nanodollars(from_sql("spend", spent)?),
                    committed: Nanodollars(from_sql("committed", committed)?),
                })
            })
            .await
    }

    async fn spend(&self, from: NaiveDate, to: NaiveDate) -> StoreResult<Vec<ModelSpend>> {
        let (from, to) = (day_key(from), day_key(to));
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT day, model, calls, input_tokens, output_tokens, cache_read_tokens, \
                         cache_write_tokens, cost FROM budget_spend WHERE day >= ?1 AND day <= ?2 \
                         ORDER BY day, model",
                    )
                    .map_err(sql)?;
                let mut rows = stmt.query([&from, &to]).map_err(sql)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let day: String = r.get(0).map_err(sql)?;
                    let model: String = r.get(1).map_err(sql)?;
                    let n = |i: usize, what: &str| -> StoreResult<u64> {
                        from_sql(&format!("{what} of {model} on {day}"), r.get(i).map_err(sql)?)
                    };
                    out.push(ModelSpend {
                        calls: n(2, "calls")?,
                        usage: Usage {
                            input_tokens: n(3, "input tokens")?,
                            output_tokens: n(4, "output tokens")?,
                            cache_read_tokens: n(5, "cache read tokens")?,
                            cache_write_tokens: n(6, "cache write tokens")?,
                        },
                        cost: Nanodollars(n(7, "cost")?),
                        day: parse_day(&day)?,
                        model,
                    });
                }
                Ok(out)
            })
            .await
    }
}
