//! The overview: queue depths, dead letters waiting, the next ten fires, the agent's
//! spend today against its cap, and deliveries and failures over the last 24 hours.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use rez_core::ports::ScheduleFilter;
use rez_core::schedules::ScheduleStatus;

use super::PageResult;
use crate::guard::Viewer;
use crate::{Dash, chart, layout, time};

/// Active schedules read to find the next fires (they are listed newest first, so the
/// ten soonest are found among this many).
const SCHEDULES_SCANNED: usize = 100;

pub async fn show(State(dash): State<Dash>, Extension(viewer): Extension<Viewer>) -> PageResult<Response> {
    let s = &dash.services;
    let now = s.clock.now();
    let (stats, schedules, hours) = tokio::join!(
        s.queues.stats(),
        s.schedules.list(&ScheduleFilter {
            status: Some(ScheduleStatus::Active),
            target_type: None,
            limit: SCHEDULES_SCANNED,
            cursor: None,
        }),
        dash.hourly.last_day(&s.messages, now),
    );
    let stats = stats?;
    let mut upcoming: Vec<_> = schedules?.items.into_iter().filter(|s| s.next_fire_at.is_some()).collect();
    upcoming.sort_by_key(|s| s.next_fire_at);
    upcoming.truncate(10);
    let hours = hours?;
    let dead: u64 = stats.iter().map(|q| q.dlq_depth).sum();
    let spend = match &s.agent {
        Some(p) => Some(rez_runtime::agent::usage::report(s, p).await?),
        None => None,
    };
    let body = html! {
        section.cards aria-label="Summary" {
            div.card { span.n { (stats.iter().map(|q| q.depth).sum::<u64>()) } "waiting in queues" }
            div.card { span.n { (stats.iter().map(|q| q.in_flight).sum::<u64>()) } "in flight" }
            div.card {
                span.n { (dead) }
                a href="/dead-letters" { "dead letters waiting" }
            }
            @if let Some(r) = &spend {
                div.card {
                    span.n { "$" (format!("{:.2}", r.today_committed_usd)) }
                    "agent spend today"
                    @match r.daily_budget_usd {
                        Some(cap) => { " of $" (format!("{cap:.2}")) " cap" }
                        None => { " (no daily cap)" }
                    }
                }
            }
        }
        h2 #chart-title { "Deliveries and failures, last 24 hours" }
        (chart::hourly(&hours, now))
        h2 { "Queues" }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Queue" } th.num scope="col" { "Waiting" } th.num scope="col" { "In flight" }
                    th.num scope="col" { "Oldest (s)" } th.num scope="col" { "Dead letters" } } }
                tbody {
                    @for q in &stats {
                        tr {
                            td { (q.queue) }
                            td.num { (q.depth) }
                            td.num { (q.in_flight) }
                            td.num { (format!("{:.0}", q.oldest_age_seconds)) }
                            td.num { (q.dlq_depth) }
                        }
                    }
                }
            }
        }
        h2 { "Next fires" }
        @if upcoming.is_empty() {
            p.muted { "No active schedule will fire." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Schedule" } th scope="col" { "Expression" } } }
                    tbody {
                        @for sc in &upcoming {
                            tr {
                                td { (time::maybe(sc.next_fire_at)) }
                                td { a href=(format!("/schedules/{}", sc.id)) { (sc.name) } }
                                td { code { (sc.schedule_expression.to_string()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, "/", "Overview", body))
}
