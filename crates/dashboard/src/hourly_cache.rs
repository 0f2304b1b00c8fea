//! The overview chart's counts without a 24-hour aggregate on every page view: the
//! current hour is counted live (a small range), the 23 hours before it come from a copy
//! at most [`FRESH_FOR`] old, refreshed in the background when it ages (a page is never
//! made to wait for it, except the very first when there is no copy yet).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta};
use rez_core::ports::{HourOutcomes, MessageStore, StoreResult};
use rez_core::time::Timestamp;

/// How old the copy of the earlier hours may be before it is refreshed.
pub const FRESH_FOR: Duration = Duration::from_secs(60);
/// Hours in the chart, the current one included.
pub const HOURS: u32 = 24;

#[derive(Clone)]
struct Copy {
    taken: Instant,
    /// Start of the first hour; the copy holds `HOURS - 1` hours from it.
    since: Timestamp,
    hours: Vec<HourOutcomes>,
}

#[derive(Clone, Default)]
pub struct HourlyCache {
    copy: Arc<Mutex<Option<Copy>>>,
    refreshing: Arc<std::sync::atomic::AtomicBool>,
}

/// The start of the hour `now` is in.
fn hour_of(now: Timestamp) -> Timestamp {
    now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now)
}

impl HourlyCache {
    /// The last [`HOURS`] hours up to the current one, oldest first.
    pub async fn last_day(&self, store: &Arc<dyn MessageStore>, now: Timestamp) -> StoreResult<Vec<HourOutcomes>> {
        let current = hour_of(now);
        let since = current - TimeDelta::hours(i64::from(HOURS - 1));
        let copy = self.copy.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let earlier = match copy {
            Some(c) => {
                if c.since != since || c.taken.elapsed() > FRESH_FOR {
                    self.refresh_in_background(store.clone(), since);
                }
                // The copy's hours that fall in this window; an hour it does not have is
                // empty until the refresh lands.
                HourOutcomes::empty(since, HOURS - 1)
                    .into_iter()
                    .map(|h| c.hours.iter().find(|x| x.hour_start == h.hour_start).copied().unwrap_or(h))
                    .collect()
            }
            None => self.refresh(store, since).await?,
        };
        let mut hours: Vec<HourOutcomes> = earlier;
        hours.extend(store.hourly_outcomes(current, 1).await?);
        Ok(hours)
    }

    /// Take the first copy now, in the background, so no page waits for it.
    pub fn warm(&self, store: Arc<dyn MessageStore>, now: Timestamp) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.refresh_in_background(store, hour_of(now) - TimeDelta::hours(i64::from(HOURS - 1)));
        }
    }

    async fn refresh(&self, store: &Arc<dyn MessageStore>, since: Timestamp) -> StoreResult<Vec<HourOutcomes>> {
        let hours = store.hourly_outcomes(since, HOURS - 1).await?;
        *self.copy.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Copy { taken: Instant::now(), since, hours: hours.clone() });
        Ok(hours)
    }

    fn refresh_in_background(&self, store: Arc<dyn MessageStore>, since: Timestamp) {
        use std::sync::atomic::Ordering;
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.refresh(&store, since).await {
                tracing::warn!(error = %e, "refreshing the overview chart's counts failed");
            }
            this.refreshing.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_whole() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-06T15:42:10Z").expect("t").to_utc();
        assert_eq!(hour_of(t).to_rfc3339(), "2026-12-06T15:00:00+00:00");
    }
}
