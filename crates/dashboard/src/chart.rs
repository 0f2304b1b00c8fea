//! The overview's chart, drawn on the server as SVG: one pair of bars per hour
//! (completed, failed), with a text alternative listing the totals.

use maud::{Markup, html};
use rez_core::ports::HourOutcomes;
use rez_core::time::Timestamp;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 180;
const LEFT: u32 = 36;
const BOTTOM: u32 = 24;

pub fn hourly(hours: &[HourOutcomes], now: Timestamp) -> Markup {
    let max = hours.iter().map(|h| h.completed.max(h.failed)).max().unwrap_or(0).max(1);
    let (done, failed): (u64, u64) = hours.iter().fold((0, 0), |(d, f), h| (d + h.completed, f + h.failed));
    let n = u32::try_from(hours.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / n;
    let bar = (slot.saturating_sub(4) / 2).max(1);
    let plot = HEIGHT - BOTTOM;
    let scale = |v: u64| -> u32 { u32::try_from(v * u64::from(plot - 10) / max).unwrap_or(plot) };
    let summary = format!("{done} completed and {failed} failed in the last 24 hours (busiest hour: {max}).");
    html! {
        figure {
            svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby="chart-title chart-desc" {
                desc #chart-desc { (summary) }
                line.axis x1=(LEFT) y1=(plot) x2=(WIDTH) y2=(plot) {}
                line.axis x1=(LEFT) y1="0" x2=(LEFT) y2=(plot) {}
                text x="2" y="12" { (max) }
                text x="2" y=(plot) { "0" }
                @for (i, h) in hours.iter().enumerate() {
                    @let x = LEFT + u32::try_from(i).unwrap_or(0) * slot + 2;
                    @let (hd, hf) = (scale(h.completed), scale(h.failed));
                    rect.delivered x=(x) y=(plot - hd) width=(bar) height=(hd) {
                        title { (h.hour_start.format("%H:00 UTC")) ": " (h.completed) " completed" }
                    }
                    rect.failed x=(x + bar) y=(plot - hf) width=(bar) height=(hf) {
                        title { (h.hour_start.format("%H:00 UTC")) ": " (h.failed) " failed" }
                    }
                    @if i % 6 == 0 {
                        text x=(x) y=(HEIGHT - 6) { (h.hour_start.format("%H:00")) }
                    }
                }
            }
            figcaption {
                span.legend {
                    span { span.swatch.delivered {} "completed" }
                    span { span.swatch.failed {} "failed or dead-lettered" }
                }
                span.muted { (summary) " Hours in UTC, up to " (crate::time::at(now)) "; the hours before this one as of up to a minute ago." }
            }
        }
    }
}
