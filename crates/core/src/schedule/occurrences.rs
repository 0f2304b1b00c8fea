//! When does a schedule fire? Turns an expression, a time zone and the schedule's date
//! bounds into UTC fire instants.
//!
//! * cron: evaluated on the zone's wall clock. A local minute that does not exist (spring
//!   forward) is skipped; one that happens twice (fall back) fires once, at its first
//!   occurrence — so during a fall-back overlap a cron that fires every minute is silent
//!   for the repeated hour, because each of those wall-clock minutes already fired.
//! * rate: `anchor + k × interval`, k ≥ 0, in absolute time; the anchor is `start_date`
//!   when there is one, otherwise [`Bounds::anchor`] (the schedule's creation time). It
//!   therefore fires at the anchor itself, like AWS, which starts a rate schedule
//!   "immediately" without a start date.
//! * at: once, at the local time (see `at.rs` for DST); `start_date` and `end_date` are
//!   ignored, as EventBridge Scheduler ignores them for one-time schedules.
//!
//! Start and end dates are inclusive. The cron search starts from the local time of
//! `after` and jumps by fields (see `cron.rs`), so an expression that never fires again
//! costs a few thousand cheap steps at most (the search stops at the end of year 2199).
//!
//! Why starting at the local time of `after` is enough: the map from an existing local
//! minute to its first instant is strictly increasing (in an overlap the first instants are
//! the earlier offset's; in a gap there is none), so no local time earlier than that of
//! `after` can have its first instant after `after`.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

use super::cron::{CronExpr, MIN_YEAR};
use super::expression::ScheduleExpression;
use super::rate::Rate;
use super::timezone::Timezone;

/// The date window of a schedule and the anchor of its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// No fire before this instant (inclusive bound). Also the anchor of a rate.
    pub start_date: Option<DateTime<Utc>>,
    /// No fire after this instant (inclusive bound).
    pub end_date: Option<DateTime<Utc>>,
    /// The anchor of a rate without a start date: the schedule's creation time.
    pub anchor: DateTime<Utc>,
}

impl Bounds {
    /// No start or end date; rates are anchored at `anchor`.
    pub fn new(anchor: DateTime<Utc>) -> Self {
        Self { start_date: None, end_date: None, anchor }
    }

    /// Is `t` inside `[start_date, end_date]`?
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start_date.is_none_or(|s| t >= s) && self.end_date.is_none_or(|e| t <= e)
    }

    fn rate_anchor(&self) -> DateTime<Utc> {
        self.start_date.unwrap_or(self.anchor)
    }
}

/// The first fire instant strictly after `after`, or `None` if the schedule never fires
/// again (within its bounds, and for cron up to the end of 2199).
pub fn next_after(
    expr: &ScheduleExpression,
    tz: Timezone,
    after: DateTime<Utc>,
    bounds: &Bounds,
) -> Option<DateTime<Utc>> {
    let next = match expr {
        ScheduleExpression::At(at) => return at.instant(tz).filter(|t| *t > after),
        ScheduleExpression::Rate(rate) => rate_next_after(*rate, bounds.rate_anchor(), after)?,
        ScheduleExpression::Cron(cron) => {
            // Fire times at or after the start date: search strictly after the instant
            // just before it.
            let after = match bounds.start_date {
                Some(start) if start > after => start.checked_sub_signed(TimeDelta::nanoseconds(1))?,
                _ => after,
            };
            cron_next_after(cron, tz, after)?
        }
    };
    bounds.end_date.is_none_or(|end| next <= end).then_some(next)
}

/// Is `t` a fire instant of the schedule?
pub fn matches(expr: &ScheduleExpression, tz: Timezone, t: DateTime<Utc>, bounds: &Bounds) -> bool {
    match expr {
        ScheduleExpression::At(at) => at.instant(tz) == Some(t),
        ScheduleExpression::Rate(rate) => {
            let anchor = bounds.rate_anchor();
            bounds.contains(t) && t >= anchor && (nanos(t) - nanos(anchor)) % rate.interval_nanos() == 0
        }
        ScheduleExpression::Cron(cron) => bounds.contains(t) && cron_matches(cron, tz, t),
    }
}

/// The fire instants strictly after `after`, in order.
pub fn occurrences<'a>(
    expr: &'a ScheduleExpression,
    tz: Timezone,
    after: DateTime<Utc>,
    bounds: &Bounds,
) -> Occurrences<'a> {
    Occurrences { expr, tz, bounds: *bounds, cursor: Some(after) }
}

/// Iterator returned by [`occurrences`]; ends when the schedule never fires again.
#[derive(Debug, Clone)]
pub struct Occurrences<'a> {
    expr: &'a ScheduleExpression,
    tz: Timezone,
    bounds: Bounds,
    cursor: Option<DateTime<Utc>>,
}

impl Iterator for Occurrences<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        let next = next_after(self.expr, self.tz, self.cursor?, &self.bounds);
        self.cursor = next;
        next
    }
}

impl std::iter::FusedIterator for Occurrences<'_> {}

/// Cron matching on the wall clock, with the DST rule: `t` must be the *first* instant of
/// its local minute.
fn cron_matches(cron: &CronExpr, tz: Timezone, t: DateTime<Utc>) -> bool {
    tz.local_time(t).is_some_and(|local| cron.matches_local(local) && tz.first_instant(local) == Some(t))
}

fn cron_next_after(cron: &CronExpr, tz: Timezone, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut from = match tz.local_time(after) {
        Some(local) => local,
        // Only for instants near chrono's limits: before 1970 any start before the first
        // possible fire will do, after 2199 nothing fires.
        None if after.year() < MIN_YEAR => NaiveDate::from_ymd_opt(MIN_YEAR - 1, 1, 1)?.and_hms_opt(0, 0, 0)?,
        None => return None,
    };
    loop {
        let candidate = cron.next_local_at_or_after(from)?;
        match tz.first_instant(candidate) {
            Some(t) if t > after => return Some(t),
            // In a gap, or the first occurrence of a repeated time is not after `after`.
            _ => from = candidate.checked_add_signed(TimeDelta::minutes(1))?,
        }
    }
}

fn rate_next_after(rate: Rate, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (a, x, step) = (nanos(anchor), nanos(after), rate.interval_nanos());
    let k = if x < a { 0 } else { (x - a) / step + 1 };
    from_nanos(a + k * step)
}

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(n: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(n.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> ScheduleExpression {
        ScheduleExpression::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn tz(name: &str) -> Timezone {
        Timezone::parse(name).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).with_timezone(&Utc)
    }

    fn fmt(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// The first `n` fire instants of a schedule without bounds, strictly after `after`.
    fn fires(e: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let e = expr(e);
        let after = utc(after);
        let out: Vec<_> = occurrences(&e, tz(zone), after, &Bounds::new(after)).take(n).collect();
        for t in &out {
            assert!(matches(&e, tz(zone), *t, &Bounds::new(after)), "{e} in {zone}: {t} does not match");
        }
        out.into_iter().map(fmt).collect()
    }

    /// Every UTC minute in `[from, to)` at which the cron matches.
    fn matching_minutes(e: &str, zone: &str, from: &str, to: &str) -> Vec<String> {
        let e = expr(e);
        let (mut t, to) = (utc(from), utc(to));
        let mut out = Vec::new();
        while t < to {
            if matches(&e, tz(zone), t, &Bounds::new(t)) {
                out.push(fmt(t));
            }
            t += TimeDelta::minutes(1);
        }
        out
    }

    // ---- America/New_York -------------------------------------------------------------

    #[test]
    fn new_york_spring_forward_skips_the_missing_time() {
        // 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist that day.
        let got = fires("cron(30 2 * * ? *)", "America/New_York", "2026-03-06T12:00:00Z", 3);
        assert_eq!(got, ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]);
        assert_eq!(
            matching_minutes("cron(30 2 * * ? *)", "America/New_York", "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"),
            Vec::<String>::new()
        );
        let got = fires("cron(0/15 * * * ? *)", "America/New_York", "2026-03-08T06:00:00Z", 5);
        assert_eq!(
            got,
            [
                "2026-03-08T06:15:00Z",
                "2026-03-08T06:30:00Z",
                "2026-03-08T06:45:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T07:15:00Z"
            ]
        );
    }

    #[test]
    fn new_york_fall_back_fires_once_at_the_first_occurrence() {
        // 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens at 05:30Z and 06:30Z.
        let got = fires("cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", 2);
        assert_eq!(got, ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
        let e = expr("cron(30 1 * * ? *)");
        let ny = tz("America/New_York");
        let b = Bounds::new(utc("2026-01-01T00:00:00Z"));
        assert!(matches(&e, ny, utc("2026-11-01T05:30:00Z"), &b));
        assert!(!matches(&e, ny, utc("2026-11-01T06:30:00Z"), &b));
        // Asked during the second pass of the repeated hour: no second fire.
        assert_eq!(next_after(&e, ny, utc("2026-11-01T06:00:00Z"), &b), Some(utc("2026-11-02T06:30:00Z")));
        assert_eq!(next_after(&e, ny, utc("2026-11-01T05:30:00Z"), &b), Some(utc("2026-11-02T06:30:00Z")));
        assert_eq!(next_after(&e, ny, utc("2026-11-01T05:29:59Z"), &b), Some(utc("2026-11-01T05:30:00Z")));
        // Every half hour: the repeated 01:00 and 01:30 EST do not fire again.
        let got = fires("cron(0/30 * * * ? *)", "America/New_York", "2026-11-01T04:45:00Z", 4);
        assert_eq!(
            got,
            ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z"]
        );
        assert_eq!(
            matching_minutes("cron(30 1 * * ? *)", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
            ["2026-11-01T05:30:00Z"]
        );
    }

    // ---- Europe/London ----------------------------------------------------------------

    #[test]
    fn london_both_transitions() {
        // Spring: 2026-03-29 01:00 GMT -> 02:00 BST, 01:30 does not exist.
        let got = fires("cron(30 1 * * ? *)", "Europe/London", "2026-03-27T12:00:00Z", 3);
        assert_eq!(got, ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]);
        // Autumn: 2026-10-25 02:00 BST -> 01:00 GMT, 01:30 happens twice: first one (BST).
        let got = fires("cron(30 1 * * ? *)", "Europe/London", "2026-10-24T12:00:00Z", 2);
        assert_eq!(got, ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]);
        // On the last Sunday of March and October (the transition days) at 01:30: never in
        // March (always missing), once in October.
        let got = fires("cron(30 1 ? MAR,OCT 1L *)", "Europe/London", "2026-01-01T00:00:00Z", 3);
        assert_eq!(got, ["2026-10-25T00:30:00Z", "2027-10-31T00:30:00Z", "2028-10-29T00:30:00Z"]);
        // Midnight is unaffected.
        let got = fires("cron(0 0 ? * 1L *)", "Europe/London", "2026-03-01T00:00:00Z", 1);
        assert_eq!(got, ["2026-03-29T00:00:00Z"]);
    }

    // ---- Australia/Lord_Howe: 30-minute DST ---------------------------------------------

    #[test]
    fn lord_howe_half_hour_shift() {
        let lh = tz("Australia/Lord_Howe");
        // The transitions of 2026 according to chrono-tz.
        assert_eq!(lh.local_time(utc("2026-04-04T14:59:00Z")).unwrap().to_string(), "2026-04-05 01:59:00");
        assert_eq!(lh.local_time(utc("2026-04-04T15:00:00Z")).unwrap().to_string(), "2026-04-05 01:30:00");
        assert_eq!(lh.local_time(utc("2026-10-03T15:29:00Z")).unwrap().to_string(), "2026-10-04 01:59:00");
        assert_eq!(lh.local_time(utc("2026-10-03T15:30:00Z")).unwrap().to_string(), "2026-10-04 02:30:00");
        // 2026-04-05: 01:30-01:59 happens twice (+11:00 then +10:30); 01:45 fires once.
        let got = fires("cron(45 1 * * ? *)", "Australia/Lord_Howe", "2026-04-03T12:00:00Z", 3);
        assert_eq!(got, ["2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]);
        assert!(!matches(
            &expr("cron(45 1 * * ? *)"),
            lh,
            utc("2026-04-04T15:15:00Z"),
            &Bounds::new(utc("2026-01-01T00:00:00Z"))
        ));
        // 01:15 is before the overlap: one fire, nothing special.
        let got = fires("cron(15 1 * * ? *)", "Australia/Lord_Howe", "2026-04-04T12:00:00Z", 1);
        assert_eq!(got, ["2026-04-04T14:15:00Z"]);
        // 2026-10-04: 02:00-02:29 does not exist; 02:15 is skipped, 02:45 fires.
        let got = fires("cron(15 2 * * ? *)", "Australia/Lord_Howe", "2026-10-02T12:00:00Z", 2);
        assert_eq!(got, ["2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"]);
        let got = fires("cron(45 2 * * ? *)", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", 1);
        assert_eq!(got, ["2026-10-03T15:45:00Z"]);
        // Every 10 minutes through the gap.
        let got = fires("cron(0/10 * * * ? *)", "Australia/Lord_Howe", "2026-10-03T15:05:00Z", 4);
        assert_eq!(
            got,
            ["2026-10-03T15:10:00Z", "2026-10-03T15:20:00Z", "2026-10-03T15:30:00Z", "2026-10-03T15:40:00Z"]
        );
        // Every 10 minutes through the overlap: the repeated 01:30-01:50 are silent.
        let got = fires("cron(0/10 * * * ? *)", "Australia/Lord_Howe", "2026-04-04T14:35:00Z", 4);
        assert_eq!(
            got,
            ["2026-04-04T14:40:00Z", "2026-04-04T14:50:00Z", "2026-04-04T15:30:00Z", "2026-04-04T15:40:00Z"]
        );
    }

    // ---- other zones ------------------------------------------------------------------

    #[test]
    fn santiago_midnight_transitions() {
        // 2026-09-06 00:00 -04 -> 01:00 -03: midnight does not exist that day.
        let got = fires("cron(0 0 * * ? *)", "America/Santiago", "2026-09-04T12:00:00Z", 3);
        assert_eq!(got, ["2026-09-05T04:00:00Z", "2026-09-07T03:00:00Z", "2026-09-08T03:00:00Z"]);
        // 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04: 23:30 on the 4th happens twice.
        let got = fires("cron(30 23 * * ? *)", "America/Santiago", "2026-04-04T12:00:00Z", 2);
        assert_eq!(got, ["2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"]);
    }

    #[test]
    fn zones_without_dst() {
        let got = fires("cron(0 9 * * ? *)", "Asia/Tokyo", "2026-03-07T12:00:00Z", 3);
        assert_eq!(got, ["2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z"]);
        // Phoenix does not observe DST: 02:30 exists on 2026-03-08.
        let got = fires("cron(30 2 * * ? *)", "America/Phoenix", "2026-03-07T12:00:00Z", 2);
        assert_eq!(got, ["2026-03-08T09:30:00Z", "2026-03-09T09:30:00Z"]);
        let got = fires("cron(30 1 * * ? *)", "America/Phoenix", "2026-10-31T12:00:00Z", 2);
        assert_eq!(got, ["2026-11-01T08:30:00Z", "2026-11-02T08:30:00Z"]);
        let got = fires("cron(0 0 * * ? *)", "Asia/Kathmandu", "2026-01-01T00:00:00Z", 1);
        assert_eq!(got, ["2026-01-01T18:15:00Z"]);
        let got = fires("cron(0 12 ? * MON-FRI *)", "UTC", "2026-05-01T12:00:00Z", 2);
        assert_eq!(got, ["2026-05-04T12:00:00Z", "2026-05-05T12:00:00Z"]);
    }

    // ---- bounds -----------------------------------------------------------------------

    #[test]
    fn cron_start_and_end_dates_are_inclusive() {
        let e = expr("cron(0 * * * ? *)");
        let mut b = Bounds::new(utc("2026-01-01T00:00:00Z"));
        b.start_date = Some(utc("2026-06-01T10:00:00Z"));
        b.end_date = Some(utc("2026-06-01T12:00:00Z"));
        let after = utc("2026-01-01T00:00:00Z");
        let all: Vec<_> = occurrences(&e, Timezone::UTC, after, &b).map(fmt).collect();
        assert_eq!(all, ["2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z"]);
        assert!(matches(&e, Timezone::UTC, utc("2026-06-01T10:00:00Z"), &b));
        assert!(!matches(&e, Timezone::UTC, utc("2026-06-01T09:00:00Z"), &b));
        assert!(!matches(&e, Timezone::UTC, utc("2026-06-01T13:00:00Z"), &b));
        // A start date between fire times.
        b.start_date = Some(utc("2026-06-01T10:00:01Z"));
        assert_eq!(next_after(&e, Timezone::UTC, after, &b), Some(utc("2026-06-01T11:00:00Z")));
        // `after` past the start date wins.
        assert_eq!(next_after(&e, Timezone::UTC, utc("2026-06-01T11:00:00Z"), &b), Some(utc("2026-06-01T12:00:00Z")));
        assert_eq!(next_after(&e, Timezone::UTC, utc("2026-06-01T12:00:00Z"), &b), None);
        assert!(b.contains(utc("2026-06-01T12:00:00Z")) && !b.contains(utc("2026-06-01T12:00:00.001Z")));
    }

    #[test]
    fn cron_that_never_fires_again_returns_none_quickly() {
        let started = std::time::Instant::now();
        let after = utc("2026-01-01T00:00:00Z");
        let b = Bounds::new(after);
        for (e, zone) in [
            ("cron(0 0 30 2 ? *)", "UTC"),
            ("cron(0 0 30 FEB ? *)", "America/New_York"),
            ("cron(0 0 * * ? 2020)", "Europe/London"),
            ("cron(0 0 31 4,6,9,11 ? *)", "Australia/Lord_Howe"),
            ("cron(30 2 8 3 ? 2026)", "America/New_York"), // only in the gap
        ] {
            assert_eq!(next_after(&expr(e), tz(zone), after, &b), None, "{e} in {zone}");
        }
        let leap = expr("cron(0 0 29 2 ? *)");
        assert_eq!(
            next_after(&leap, Timezone::UTC, utc("2027-01-01T00:00:00Z"), &b),
            Some(utc("2028-02-29T00:00:00Z"))
        );
        assert_eq!(next_after(&leap, Timezone::UTC, utc("2196-03-01T00:00:00Z"), &b), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    // ---- rate -------------------------------------------------------------------------

    #[test]
    fn rate_is_anchored_at_creation_or_start() {
        let e = expr("rate(5 minutes)");
        let created = utc("2026-01-01T10:00:30Z");
        let b = Bounds::new(created);
        // Fires at the anchor itself, then every 5 minutes.
        assert_eq!(next_after(&e, Timezone::UTC, utc("2026-01-01T10:00:29Z"), &b), Some(created));
        assert_eq!(next_after(&e, Timezone::UTC, created, &b), Some(utc("2026-01-01T10:05:30Z")));
        assert_eq!(next_after(&e, Timezone::UTC, utc("2026-01-01T10:07:00Z"), &b), Some(utc("2026-01-01T10:10:30Z")));
        assert_eq!(next_after(&e, Timezone::UTC, utc("2026-01-01T10:10:30Z"), &b), Some(utc("2026-01-01T10:15:30Z")));
        assert_eq!(next_after(&e, Timezone::UTC, utc("1999-01-01T00:00:00Z"), &b), Some(created));
        assert!(matches(&e, Timezone::UTC, utc("2026-01-01T11:00:30Z"), &b));
        assert!(!matches(&e, Timezone::UTC, utc("2026-01-01T11:00:31Z"), &b));
        assert!(!matches(&e, Timezone::UTC, utc("2026-01-01T09:55:30Z"), &b));
        // A start date replaces the anchor; the end date is inclusive.
        let mut b = Bounds::new(created);
        b.start_date = Some(utc("2026-02-01T00:00:00Z"));
        b.end_date = Some(utc("2026-02-01T00:10:00Z"));
        let all: Vec<_> = occurrences(&e, Timezone::UTC, created, &b).map(fmt).collect();
        assert_eq!(all, ["2026-02-01T00:00:00Z", "2026-02-01T00:05:00Z", "2026-02-01T00:10:00Z"]);
        assert!(!matches(&e, Timezone::UTC, utc("2026-02-01T00:15:00Z"), &b));
    }

    #[test]
    fn rate_ignores_dst_and_time_zone() {
        let e = expr("rate(1 day)");
        let b = Bounds::new(utc("2026-03-07T17:00:00Z")); // 12:00 EST
        let ny: Vec<_> =
            occurrences(&e, tz("America/New_York"), utc("2026-03-07T17:00:00Z"), &b).take(2).map(fmt).collect();
        assert_eq!(ny, ["2026-03-08T17:00:00Z", "2026-03-09T17:00:00Z"]); // 13:00 EDT: absolute time
        let utc_zone: Vec<_> =
            occurrences(&e, Timezone::UTC, utc("2026-03-07T17:00:00Z"), &b).take(2).map(fmt).collect();
        assert_eq!(ny, utc_zone);
        let e = expr("rate(1 hour)");
        let b = Bounds::new(utc("2026-11-01T04:00:00Z"));
        let got: Vec<_> =
            occurrences(&e, tz("America/New_York"), utc("2026-11-01T04:30:00Z"), &b).take(3).map(fmt).collect();
        assert_eq!(got, ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]);
    }

    #[test]
    fn rate_with_sub_second_anchor_and_huge_interval() {
        let e = expr("rate(1 minute)");
        let b = Bounds::new(utc("2026-01-01T00:00:00.250Z"));
        assert_eq!(
            next_after(&e, Timezone::UTC, utc("2026-01-01T00:00:00.250Z"), &b),
            Some(utc("2026-01-01T00:01:00.250Z"))
        );
        let huge = expr("rate(4294967295 days)");
        let b = Bounds::new(utc("2026-01-01T00:00:00Z"));
        assert_eq!(
            next_after(&huge, Timezone::UTC, utc("2025-01-01T00:00:00Z"), &b),
            Some(utc("2026-01-01T00:00:00Z"))
        );
        // The second fire would be millions of years away: out of range, so none.
        assert_eq!(next_after(&huge, Timezone::UTC, utc("2026-01-01T00:00:00Z"), &b), None);
    }

    // ---- at ---------------------------------------------------------------------------

    #[test]
    fn at_fires_once_and_ignores_bounds() {
        let e = expr("at(2026-12-24T18:30:00)");
        let ny = tz("America/New_York");
        let mut b = Bounds::new(utc("2026-01-01T00:00:00Z"));
        let all: Vec<_> = occurrences(&e, ny, utc("2026-01-01T00:00:00Z"), &b).map(fmt).collect();
        assert_eq!(all, ["2026-12-24T23:30:00Z"]);
        assert_eq!(next_after(&e, ny, utc("2026-12-24T23:30:00Z"), &b), None);
        assert_eq!(next_after(&e, ny, utc("2027-01-01T00:00:00Z"), &b), None);
        // EventBridge Scheduler ignores start and end dates for one-time schedules.
        b.start_date = Some(utc("2027-01-01T00:00:00Z"));
        b.end_date = Some(utc("2026-06-01T00:00:00Z"));
        assert_eq!(next_after(&e, ny, utc("2026-01-01T00:00:00Z"), &b), Some(utc("2026-12-24T23:30:00Z")));
        assert!(matches(&e, ny, utc("2026-12-24T23:30:00Z"), &b));
        assert!(!matches(&e, ny, utc("2026-12-24T23:30:01Z"), &b));
        // DST: in the gap, shifted forward; in the overlap, the first occurrence.
        let gap = expr("at(2026-03-08T02:30:00)");
        assert_eq!(next_after(&gap, ny, utc("2026-01-01T00:00:00Z"), &b), Some(utc("2026-03-08T07:30:00Z")));
        let overlap = expr("at(2026-11-01T01:30:00)");
        assert_eq!(next_after(&overlap, ny, utc("2026-01-01T00:00:00Z"), &b), Some(utc("2026-11-01T05:30:00Z")));
        assert_eq!(next_after(&overlap, ny, utc("2026-11-01T05:30:00Z"), &b), None);
    }

    // ---- robustness -------------------------------------------------------------------

    #[test]
    fn extreme_instants_do_not_panic() {
        let exprs = [
            "cron(0 0 * * ? *)",
            "cron(* * * * ? 2199)",
            "rate(1 minute)",
            "rate(4294967295 days)",
            "at(9999-12-31T23:59:59)",
        ];
        let zones = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York"];
        let instants = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            utc("2199-12-31T23:59:00Z"),
            utc("1970-01-01T00:00:00Z"),
        ];
        for e in exprs {
            let e = expr(e);
            for zone in zones {
                for after in instants {
                    for anchor in instants {
                        let mut b = Bounds::new(anchor);
                        let _ = next_after(&e, tz(zone), after, &b);
                        let _ = matches(&e, tz(zone), after, &b);
                        b.start_date = Some(anchor);
                        b.end_date = Some(after);
                        let _ = occurrences(&e, tz(zone), after, &b).take(2).count();
                    }
                }
            }
        }
        // Far in the past, cron still finds its first fire in 1970.
        let e = expr("cron(0 0 * * ? *)");
        let first =
            next_after(&e, tz("America/New_York"), DateTime::<Utc>::MIN_UTC, &Bounds::new(DateTime::<Utc>::MIN_UTC));
        assert_eq!(first, Some(utc("1970-01-01T05:00:00Z")));
        let last = expr("cron(59 23 31 12 ? 2199)");
        let t = next_after(
            &last,
            tz("Pacific/Kiritimati"),
            utc("2199-01-01T00:00:00Z"),
            &Bounds::new(utc("2026-01-01T00:00:00Z")),
        );
        assert_eq!(t, Some(utc("2199-12-31T09:59:00Z")));
    }

    #[test]
    fn occurrences_iterator_is_fused() {
        let e = expr("cron(0 0 1 1 ? 2026-2027)");
        let mut it =
            occurrences(&e, Timezone::UTC, utc("2025-01-01T00:00:00Z"), &Bounds::new(utc("2025-01-01T00:00:00Z")));
        assert_eq!(it.next(), Some(utc("2026-01-01T00:00:00Z")));
        assert_eq!(it.next(), Some(utc("2027-01-01T00:00:00Z")));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }
}
