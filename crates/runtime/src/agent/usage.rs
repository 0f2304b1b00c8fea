//! Spend reports: today, the last 7 days and each model, in the user's zone (the days the
//! budget counts), for `GET /api/agent/usage` and `rez agent usage`.

use chrono::{Days, NaiveDate};
use rez_core::agent::store::ModelSpend;
use rez_core::agent::{Nanodollars, Usage};
use rez_core::ports::StoreResult;
use serde::Serialize;

use super::AgentPorts;
use crate::Services;

/// Spend over a span of days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpendTotal {
    pub calls: u64,
    #[schema(value_type = Object)]
    pub usage: Usage,
    /// Settled spend, USD.
    pub cost_usd: f64,
    /// Nanodollars (exact).
    pub cost_nanodollars: u64,
}

impl SpendTotal {
    fn add(&mut self, s: &ModelSpend) {
        self.calls += s.calls;
        self.usage.add(&s.usage);
        self.cost_nanodollars += s.cost.0;
        self.cost_usd = Nanodollars(self.cost_nanodollars).usd();
    }
}

/// One model's spend over the 7 days.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelTotal {
    pub model: String,
    #[serde(flatten)]
    pub total: SpendTotal,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    #[schema(value_type = String, format = Date)]
    pub today: NaiveDate,
    /// The user's zone the days are counted in.
    pub zone: String,
    pub today_total: SpendTotal,
    /// Spend and open reservations today: what the cap is compared with.
    pub today_committed_usd: f64,
    /// `REZ_AGENT_DAILY_BUDGET_USD`, if set.
    pub daily_budget_usd: Option<f64>,
    pub last_7_days: SpendTotal,
    pub by_model: Vec<ModelTotal>,
    /// Per day and model, oldest first.
    pub days: Vec<ModelSpend>,
}

/// The report as of now.
pub async fn report(services: &Services, ports: &AgentPorts) -> StoreResult<UsageReport> {
    let zone = ports.settings.as_ref().map_or(chrono_tz::Tz::UTC, |s| s.zone);
    let today = services.clock.now().with_timezone(&zone).date_naive();
    let from = today.checked_sub_days(Days::new(6)).unwrap_or(today);
    let mut days = ports.budget.spend(from, today).await?;
    days.sort_by(|a, b| (a.day, &a.model).cmp(&(b.day, &b.model)));
    let committed = ports.budget.day(today).await?.committed;
    let mut today_total = SpendTotal::default();
    let mut week = SpendTotal::default();
    let mut by_model: Vec<ModelTotal> = vec![];
    for d in &days {
        if d.day == today {
            today_total.add(d);
        }
        week.add(d);
        match by_model.iter_mut().find(|m| m.model == d.model) {
            Some(m) => m.total.add(d),
            None => {
                let mut total = SpendTotal::default();
                total.add(d);
                by_model.push(ModelTotal { model: d.model.clone(), total });
            }
        }
    }
    Ok(UsageReport {
        today,
        zone: zone.name().to_owned(),
        today_total,
        today_committed_usd: committed.usd(),
        daily_budget_usd: ports.settings.as_ref().and_then(|s| s.day_cap).map(Nanodollars::usd),
        last_7_days: week,
        by_model,
        days,
    })
}
