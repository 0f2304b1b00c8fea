//! Property tests of the schedule module as a whole.
//!
//! The unit tests next to each file pin down single behaviours; these check the pieces
//! against an independent, deliberately naive reference model (brute-force day rules,
//! minute-by-minute scanning, "first occurrence" found by looking back in time rather
//! than through chrono's local-time resolution) over randomly generated expressions,
//! time zones with unusual DST rules, and start instants biased towards DST transitions.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use proptest::prelude::*;

use super::*;

/// Zones with interesting rules; all have whole-minute offsets since 2000.
const ZONES: [&str; 14] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Tokyo",
    "America/Phoenix",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "Pacific/Apia",
    "Africa/Casablanca",
];

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

// ---- reference model ------------------------------------------------------------------

/// One generated field: its text and the values it stands for.
#[derive(Debug, Clone)]
struct GenField {
    text: String,
    values: BTreeSet<u32>,
}

/// The day rule of a generated expression, evaluated by brute force.
#[derive(Debug, Clone)]
enum RefDay {
    Dom(BTreeSet<u32>),
    Last,
    LastWeekday,
    Nearest(u32),
    Dow(BTreeSet<u32>),
    LastOf(u32),
    Nth(u32, u32),
}

#[derive(Debug, Clone)]
struct Model {
    text: String,
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    months: BTreeSet<u32>,
    years: BTreeSet<u32>,
    day: RefDay,
}

fn days_in_month(y: i32, m: u32) -> u32 {
    (28..=31).filter(|d| NaiveDate::from_ymd_opt(y, m, *d).is_some()).max().unwrap_or(28)
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn ref_day(day: &RefDay, date: NaiveDate) -> bool {
    let (y, m, d) = (date.year(), date.month(), date.day());
    let dim = days_in_month(y, m);
    let wd = date.weekday().num_days_from_sunday() + 1;
    let month_days = || (1..=dim).filter_map(move |d| NaiveDate::from_ymd_opt(y, m, d));
    match day {
        RefDay::Dom(s) => s.contains(&d),
        RefDay::Last => d == dim,
        RefDay::LastWeekday => month_days().filter(|x| is_weekday(*x)).map(|x| x.day()).max() == Some(d),
        RefDay::Nearest(n) => {
            *n <= dim
                && month_days().filter(|x| is_weekday(*x)).min_by_key(|x| x.day().abs_diff(*n)).map(|x| x.day())
                    == Some(d)
        }
        RefDay::Dow(s) => s.contains(&wd),
        RefDay::LastOf(w) => wd == *w && d + 7 > dim,
        RefDay::Nth(w, n) => wd == *w && (d - 1) / 7 + 1 == *n,
    }
}

impl Model {
    fn matches_date(&self, date: NaiveDate) -> bool {
        u32::try_from(date.year()).is_ok_and(|y| self.years.contains(&y))
            && self.months.contains(&date.month())
            && ref_day(&self.day, date)
    }

    fn matches_local(&self, local: NaiveDateTime) -> bool {
        local.second() == 0
            && local.nanosecond() == 0
            && self.minutes.contains(&local.minute())
            && self.hours.contains(&local.hour())
            && self.matches_date(local.date())
    }

    fn expr(&self) -> ScheduleExpression {
        ScheduleExpression::parse(&self.text).unwrap_or_else(|e| panic!("{}: {e}", self.text))
    }
}

fn offset_secs(tz: Timezone, t: DateTime<Utc>) -> i32 {
    tz.tz().offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()
}

/// Did the local time of `t` already happen in the 3 hours before `t`? Found by looking
/// back minute by minute, not through chrono's local-time resolution.
fn repeated_local_time(tz: Timezone, t: DateTime<Utc>, local: NaiveDateTime) -> bool {
    if offset_secs(tz, t - TimeDelta::hours(3)) == offset_secs(tz, t) {
        return false;
    }
    (1..=180).any(|m| tz.local_time(t - TimeDelta::minutes(m)) == Some(local))
}

/// Reference answer to "does the cron fire at `t`?".
fn ref_fires(model: &Model, tz: Timezone, t: DateTime<Utc>) -> bool {
    let Some(local) = tz.local_time(t) else { return false };
    model.matches_local(local) && !repeated_local_time(tz, t, local)
}

/// Is there a fire instant strictly between `a` and `b` (`b = None`: up to the end of
/// 2199)? Scans the reference model day by day, and every time of a matching day.
fn ref_fire_between(model: &Model, tz: Timezone, a: DateTime<Utc>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let first = tz.local_time(a)?.date().max(NaiveDate::from_ymd_opt(1970, 1, 1)?);
    let last = match b {
        Some(b) => tz.local_time(b)?.date(),
        None => NaiveDate::from_ymd_opt(2199, 12, 31)?,
    };
    let mut date = first;
    while date <= last {
        if !u32::try_from(date.year()).is_ok_and(|y| model.years.contains(&y)) || !model.months.contains(&date.month())
        {
            // Skip to the first day of the next month.
            let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
            date = NaiveDate::from_ymd_opt(y, m, 1)?;
            continue;
        }
        if ref_day(&model.day, date) {
            for h in &model.hours {
                for m in &model.minutes {
                    let local = date.and_hms_opt(*h, *m, 0)?;
                    if let Some(t) = tz.first_instant(local)
                        && t > a
                        && b.is_none_or(|b| t < b)
                    {
                        return Some(t);
                    }
                }
            }
        }
        date = date.succ_opt()?;
    }
    None
}

// ---- generators ---------------------------------------------------------------------

fn render(v: u32, min: u32, names: &'static [&'static str], use_name: bool) -> String {
    match names.get((v - min) as usize) {
        Some(name) if use_name => (*name).to_owned(),
        _ => v.to_string(),
    }
}

fn field(min: u32, max: u32, names: &'static [&'static str]) -> BoxedStrategy<GenField> {
    // The largest increment the parser accepts (the field's largest value; for years 229).
    let span = if max > 1000 { max - min } else { max };
    let r = move |v: u32, n: bool| render(v, min, names, n);
    let pair = move |a: u32, b: u32| (a.min(b), a.max(b));
    prop_oneof![
        Just(GenField { text: "*".into(), values: (min..=max).collect() }),
        (min..=max, any::<bool>()).prop_map(move |(v, n)| GenField { text: r(v, n), values: [v].into() }),
        (min..=max, min..=max, any::<bool>()).prop_map(move |(a, b, n)| {
            let (lo, hi) = pair(a, b);
            GenField { text: format!("{}-{}", r(lo, n), r(hi, n)), values: (lo..=hi).collect() }
        }),
        (1..=span)
            .prop_map(move |k| GenField { text: format!("*/{k}"), values: (min..=max).step_by(k as usize).collect() }),
        (min..=max, 1..=span, any::<bool>()).prop_map(move |(a, k, n)| GenField {
            text: format!("{}/{k}", r(a, n)),
            values: (a..=max).step_by(k as usize).collect()
        }),
        (min..=max, min..=max, 1..=span, any::<bool>()).prop_map(move |(a, b, k, n)| {
            let (lo, hi) = pair(a, b);
            GenField { text: format!("{}-{}/{k}", r(lo, n), r(hi, n)), values: (lo..=hi).step_by(k as usize).collect() }
        }),
        (prop::collection::vec(min..=max, 1..5), any::<bool>()).prop_map(move |(vs, n)| GenField {
            text: vs.iter().map(|v| r(*v, n)).collect::<Vec<_>>().join(","),
            values: vs.into_iter().collect()
        }),
    ]
    .boxed()
}

/// (day-of-month text, day-of-week text, reference rule)
fn day_rule() -> BoxedStrategy<(String, String, RefDay)> {
    let q = || "?".to_owned();
    prop_oneof![
        field(1, 31, &[]).prop_map(move |f| (f.text, q(), RefDay::Dom(f.values))),
        Just(("L".to_owned(), q(), RefDay::Last)),
        Just(("LW".to_owned(), q(), RefDay::LastWeekday)),
        (1..=31u32).prop_map(move |n| (format!("{n}W"), q(), RefDay::Nearest(n))),
        field(1, 7, &DAYS).prop_map(move |f| (q(), f.text, RefDay::Dow(f.values))),
        Just((q(), "L".to_owned(), RefDay::Dow([7].into()))),
        (1..=7u32, any::<bool>()).prop_map(move |(d, n)| (
            q(),
            format!("{}L", render(d, 1, &DAYS, n)),
            RefDay::LastOf(d)
        )),
        (1..=7u32, 1..=5u32, any::<bool>()).prop_map(move |(d, k, n)| (
            q(),
            format!("{}#{k}", render(d, 1, &DAYS, n)),
            RefDay::Nth(d, k)
        )),
    ]
    .boxed()
}

/// Lower-cases some of the letters (everything in a cron body is case-insensitive).
fn scramble_case(text: &str, flips: &[bool]) -> String {
    text.chars()
        .enumerate()
        .map(
            |(i, c)| {
                if flips.get(i % flips.len().max(1)).copied().unwrap_or(false) { c.to_ascii_lowercase() } else { c }
            },
        )
        .collect()
}

fn model_from(
    (minutes, hours, (dom, dow, day), months, years, flips): (
        GenField,
        GenField,
        (String, String, RefDay),
        GenField,
        GenField,
        Vec<bool>,
    ),
) -> Model {
    let body = format!("{} {} {} {} {} {}", minutes.text, hours.text, dom, months.text, dow, years.text);
    Model {
        text: format!("cron({})", scramble_case(&body, &flips)),
        minutes: minutes.values,
        hours: hours.values,
        months: months.values,
        years: years.values,
        day,
    }
}

/// Any cron expression the grammar allows.
fn any_model() -> impl Strategy<Value = Model> {
    (
        field(0, 59, &[]),
        field(0, 23, &[]),
        day_rule(),
        field(1, 12, &MONTHS),
        field(1970, 2199, &[]),
        prop::collection::vec(any::<bool>(), 1..8),
    )
        .prop_map(model_from)
}

/// Expressions that fire most days, so that a two-day window usually holds several fires.
fn dense_model() -> impl Strategy<Value = Model> {
    let every_day = prop_oneof![
        Just(("*".to_owned(), "?".to_owned(), RefDay::Dom((1..=31).collect()))),
        Just(("?".to_owned(), "*".to_owned(), RefDay::Dow((1..=7).collect()))),
    ];
    let days = prop_oneof![3 => every_day, 1 => day_rule()];
    // DST transitions happen between local midnight and 03:00: make those hours common.
    let night = (0u32..4, 0u32..4).prop_map(|(a, len)| {
        let hi = (a + len).min(23);
        GenField { text: format!("{a}-{hi}"), values: (a..=hi).collect() }
    });
    let hours = prop_oneof![2 => field(0, 23, &[]), 1 => night];
    (
        field(0, 59, &[]),
        hours,
        days,
        Just(GenField { text: "*".into(), values: (1..=12).collect() }),
        Just(GenField { text: "*".into(), values: (1970..=2199).collect() }),
        prop::collection::vec(any::<bool>(), 1..8),
    )
        .prop_map(model_from)
}

/// Offset changes of a zone in a year, to the minute.
fn transitions(tz: Timezone, year: i32) -> Vec<DateTime<Utc>> {
    let Some(mut t) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else { return vec![] };
    let mut out = Vec::new();
    while t.year() == year {
        let next = t + TimeDelta::days(1);
        if offset_secs(tz, t) != offset_secs(tz, next) {
            // Bisect on whole minutes: `lo` has the old offset, `hi` the new one.
            let (mut lo, mut hi) = (0i64, 24 * 60);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if offset_secs(tz, t + TimeDelta::minutes(mid)) == offset_secs(tz, t) { lo = mid } else { hi = mid }
            }
            out.push(t + TimeDelta::minutes(hi));
        }
        t = next;
    }
    out
}

/// A zone and a start instant; three times out of four less than two days before one of
/// the zone's offset changes (so a two-day window contains it) or just after it.
fn zone_and_start(years: std::ops::Range<i32>) -> impl Strategy<Value = (Timezone, DateTime<Utc>)> {
    let near = prop_oneof![1 => Just(false), 3 => Just(true)];
    (0..ZONES.len(), years, near, any::<usize>(), -2870i64..120, 0i64..365 * 86_400, 0u32..1_000_000_000).prop_map(
        |(zi, year, near, pick, around, uniform, nanos)| {
            let tz = Timezone::parse(ZONES[zi]).unwrap();
            let trans = if near { transitions(tz, year) } else { vec![] };
            let base = match trans.get(pick % trans.len().max(1)) {
                Some(t) => *t + TimeDelta::minutes(around),
                None => Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(uniform),
            };
            // Sometimes on a whole minute, sometimes not.
            let start = if nanos % 3 == 0 { base } else { base + TimeDelta::nanoseconds(i64::from(nanos)) * 59 };
            (tz, start)
        },
    )
}

fn next_whole_minute_after(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t.with_second(0).and_then(|x| x.with_nanosecond(0)).unwrap();
    floor + TimeDelta::minutes(1)
}

// ---- properties ---------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over a two-day window, minute by minute: `matches` agrees with the reference model,
    /// and the occurrences are exactly the matching minutes, in increasing order.
    #[test]
    fn dense_window_equals_reference(model in dense_model(), (tz, start) in zone_and_start(2000..2040)) {
        let expr = model.expr();
        let end = start + TimeDelta::days(2);
        let bounds = Bounds::new(start);
        let occ: Vec<_> = occurrences(&expr, tz, start, &bounds).take_while(|t| *t <= end).collect();
        let mut expected = Vec::new();
        let mut t = next_whole_minute_after(start);
        while t <= end {
            let want = ref_fires(&model, tz, t);
            prop_assert_eq!(matches(&expr, tz, t, &bounds), want, "{} in {} at {}", model.text, tz, t);
            if want {
                expected.push(t);
            }
            t += TimeDelta::minutes(1);
        }
        prop_assert_eq!(&occ, &expected, "{} in {} after {}", model.text, tz, start);
        for pair in occ.windows(2) {
            prop_assert!(pair[0] < pair[1]);
        }
    }

    /// Any expression: occurrences strictly increase, each matches (and matches the
    /// reference), `next_after` lands on them from just before, and the reference model
    /// finds no fire in any gap (nor after the last one, when the schedule ends).
    #[test]
    fn sparse_occurrences_agree_with_reference(model in any_model(), (tz, start) in zone_and_start(1990..2150)) {
        let expr = model.expr();
        let bounds = Bounds::new(start);
        let occ: Vec<_> = occurrences(&expr, tz, start, &bounds).take(5).collect();
        let mut prev = start;
        for t in &occ {
            prop_assert!(*t > prev, "{}: {} not after {}", model.text, t, prev);
            prop_assert!(matches(&expr, tz, *t, &bounds), "{}: {} does not match", model.text, t);
            prop_assert!(ref_fires(&model, tz, *t), "{}: reference disagrees at {}", model.text, t);
            prop_assert_eq!(next_after(&expr, tz, *t - TimeDelta::nanoseconds(1), &bounds), Some(*t));
            prop_assert_eq!(ref_fire_between(&model, tz, prev, Some(*t)), None, "{} in {}: missed a fire between {} and {}", model.text, tz, prev, t);
            prev = *t;
        }
        if occ.len() < 5 {
            prop_assert_eq!(next_after(&expr, tz, prev, &bounds), None);
            prop_assert_eq!(ref_fire_between(&model, tz, prev, None), None, "{} in {}: the search ended too early after {}", model.text, tz, prev);
        }
    }

    /// `matches(t)` is exactly "`t` is the next fire after the instant just before `t`".
    #[test]
    fn matches_iff_next_after_lands_on_it(model in dense_model(), (tz, start) in zone_and_start(2000..2040), step in 0i64..3000) {
        let expr = model.expr();
        let bounds = Bounds::new(start);
        let t = next_whole_minute_after(start) + TimeDelta::minutes(step);
        let lands = next_after(&expr, tz, t - TimeDelta::nanoseconds(1), &bounds) == Some(t);
        prop_assert_eq!(matches(&expr, tz, t, &bounds), lands, "{} in {} at {}", model.text, tz, t);
    }

    /// Canonical text: parse(display(e)) == e, display is a fixed point, serde round-trips.
    #[test]
    fn cron_display_round_trips(model in any_model()) {
        let e = model.expr();
        let shown = e.to_string();
        let again = ScheduleExpression::parse(&shown).unwrap();
        prop_assert_eq!(&again, &e);
        prop_assert_eq!(again.to_string(), shown.clone());
        prop_assert_eq!(shown.clone(), shown.to_uppercase().replacen("CRON(", "cron(", 1));
        let json = serde_json::to_string(&e).unwrap();
        prop_assert_eq!(serde_json::from_str::<ScheduleExpression>(&json).unwrap(), e);
    }

    #[test]
    fn rate_and_at_display_round_trip(value in 1u32..=u32::MAX, unit in 0usize..3, secs in 0i64..(2199 - 1970) * 365 * 86_400) {
        let unit = [RateUnit::Minutes, RateUnit::Hours, RateUnit::Days][unit];
        let e = ScheduleExpression::from(Rate::new(value, unit).unwrap());
        prop_assert_eq!(ScheduleExpression::parse(&e.to_string()).unwrap(), e.clone());
        let local = DateTime::from_timestamp(secs, 0).unwrap().naive_utc();
        let at = ScheduleExpression::from(At::new(local));
        prop_assert_eq!(ScheduleExpression::parse(&at.to_string()).unwrap(), at);
    }

    /// Rate fires are `anchor + k × interval`, whatever the zone.
    #[test]
    fn rate_fires_on_the_grid(value in 1u32..200, unit in 0usize..3, anchor_secs in 0i64..4_000_000_000, after_offset in -1_000_000i64..10_000_000, zi in 0..ZONES.len()) {
        let unit = [RateUnit::Minutes, RateUnit::Hours, RateUnit::Days][unit];
        let rate = Rate::new(value, unit).unwrap();
        let e = ScheduleExpression::from(rate);
        let tz = Timezone::parse(ZONES[zi]).unwrap();
        let anchor = DateTime::from_timestamp(anchor_secs, 0).unwrap();
        let after = anchor + TimeDelta::seconds(after_offset);
        let bounds = Bounds::new(anchor);
        let fires: Vec<_> = occurrences(&e, tz, after, &bounds).take(4).collect();
        prop_assert_eq!(fires.len(), 4);
        prop_assert!(fires[0] > after && fires[0] - rate.interval() <= after.max(anchor - rate.interval()));
        for (i, t) in fires.iter().enumerate() {
            prop_assert!(matches(&e, tz, *t, &bounds));
            prop_assert!(!matches(&e, tz, *t + TimeDelta::seconds(1), &bounds));
            prop_assert_eq!((*t - anchor).num_seconds() % rate.interval().num_seconds(), 0);
            if i > 0 {
                prop_assert_eq!(*t - fires[i - 1], rate.interval());
            }
        }
        prop_assert_eq!(occurrences(&e, Timezone::UTC, after, &bounds).take(4).collect::<Vec<_>>(), fires);
    }

    /// An `at` fires once, at its instant, if that is after `after`.
    #[test]
    fn at_fires_once(secs in 0i64..(2199 - 1970) * 365 * 86_400, delta in -200_000i64..200_000, zi in 0..ZONES.len()) {
        let tz = Timezone::parse(ZONES[zi]).unwrap();
        let at = At::new(DateTime::from_timestamp(secs, 0).unwrap().naive_utc());
        let e = ScheduleExpression::from(at);
        let instant = at.instant(tz).unwrap();
        let after = instant + TimeDelta::seconds(delta);
        let all: Vec<_> = occurrences(&e, tz, after, &Bounds::new(after)).collect();
        if delta < 0 {
            prop_assert_eq!(all, vec![instant]);
        } else {
            prop_assert!(all.is_empty());
        }
    }

    /// `at` around DST changes: an existing local time fires at its first instant; a
    /// missing one fires shifted forward by exactly the length of the gap.
    #[test]
    fn at_around_transitions(zi in 0..ZONES.len(), year in 1990i32..2100, pick in any::<usize>(), minutes in 0i64..360, secs in 0i64..60) {
        let tz = Timezone::parse(ZONES[zi]).unwrap();
        let trans = transitions(tz, year);
        prop_assume!(!trans.is_empty());
        let change = trans[pick % trans.len()];
        let local = tz.local_time(change - TimeDelta::hours(3)).unwrap() + TimeDelta::minutes(minutes) + TimeDelta::seconds(secs);
        let at = At::new(local);
        let instant = at.instant(tz).unwrap();
        let shown = tz.local_time(instant).unwrap();
        // Does `local` exist? Look for an instant within a day that shows it.
        let exists = (-26 * 60..=26 * 60).any(|m| tz.local_time(change + TimeDelta::minutes(m) + TimeDelta::seconds(secs)) == Some(local));
        if exists {
            prop_assert_eq!(shown, local);
            // ... at the first instant that shows it, not at its repeat after a fall back.
            prop_assert!(!repeated_local_time(tz, instant, local), "{} {}: {} is not the first occurrence", tz, local, instant);
        } else {
            let gap = offset_secs(tz, change) - offset_secs(tz, change - TimeDelta::days(1));
            prop_assert!(gap > 0);
            prop_assert_eq!(shown - local, TimeDelta::seconds(i64::from(gap)), "{} {}", tz, local);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No input makes a parser panic; what parses round-trips and can be evaluated.
    #[test]
    fn parsers_never_panic(
        input in prop_oneof![
            any::<String>(),
            "(cron|rate|at|CRON)\\([-0-9A-Za-z*?/,# ]{0,40}\\)",
            "cron\\(([-0-9LW#/,*?]{1,6} ){5}[-0-9*/,]{1,6}\\)",
            "cron\\([0-9*/,-]{1,5} [0-9*/,-]{1,5} [0-9LW?*/,-]{1,4} [0-9A-Za-z*/,-]{1,7} [0-9A-Za-z#L?*/,-]{1,7} [0-9*/,-]{1,9}\\)",
            "rate\\([-+0-9]{0,25} [a-zA-Z]{0,8}\\)",
            "at\\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[Z+.0-9:-]{0,6}\\)",
            ".{0,300}",
        ],
        after in -2_000_000_000i64..8_000_000_000,
        zi in 0..ZONES.len(),
    ) {
        let tz = Timezone::parse(ZONES[zi]).unwrap();
        let _ = CronExpr::parse(&input);
        let _ = Rate::parse(&input);
        let _ = At::parse(&input);
        let _ = Timezone::parse(&input);
        match ScheduleExpression::parse(&input) {
            Ok(e) => {
                prop_assert_eq!(ScheduleExpression::parse(&e.to_string()).unwrap(), e.clone());
                let after = DateTime::from_timestamp(after, 0).unwrap();
                let fires: Vec<_> = occurrences(&e, tz, after, &Bounds::new(after)).take(3).collect();
                for t in &fires {
                    prop_assert!(matches(&e, tz, *t, &Bounds::new(after)));
                }
            }
            Err(err) => {
                prop_assert!(err.position <= input.chars().count(), "{err} for {input:?}");
                prop_assert!(!err.to_string().is_empty());
            }
        }
    }
}

/// Every special day rule, in every month of 28 consecutive years (all 14 calendar
/// layouts, leap and not), against the brute-force reference.
#[test]
fn every_day_rule_in_every_month_layout() {
    let mut rules: Vec<(String, String, RefDay)> = vec![
        ("L".into(), "?".into(), RefDay::Last),
        ("LW".into(), "?".into(), RefDay::LastWeekday),
        ("?".into(), "L".into(), RefDay::Dow([7].into())),
    ];
    rules.extend((1..=31).map(|n| (format!("{n}W"), "?".to_owned(), RefDay::Nearest(n))));
    rules.extend((1..=31).map(|n| (n.to_string(), "?".to_owned(), RefDay::Dom([n].into()))));
    rules.extend((1..=7).map(|d| ("?".to_owned(), format!("{d}L"), RefDay::LastOf(d))));
    rules.extend((1..=7).map(|d| ("?".to_owned(), d.to_string(), RefDay::Dow([d].into()))));
    rules.extend((1..=7).flat_map(|d| (1..=5).map(move |n| ("?".to_owned(), format!("{d}#{n}"), RefDay::Nth(d, n)))));
    for (dom, dow, rule) in &rules {
        let cron = CronExpr::parse(&format!("cron(0 0 {dom} * {dow} *)")).unwrap();
        for year in 2020..2048 {
            for month in 1..=12 {
                let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
                let mut got = Vec::new();
                let mut cursor = first.and_hms_opt(0, 0, 0).unwrap();
                while let Some(t) = cron.next_local_at_or_after(cursor) {
                    if t.month() != month || t.year() != year {
                        break;
                    }
                    got.push(t.day());
                    cursor = t + TimeDelta::minutes(1);
                }
                let want: Vec<u32> = first
                    .iter_days()
                    .take_while(|d| d.month() == month)
                    .filter(|d| ref_day(rule, *d))
                    .map(|d| d.day())
                    .collect();
                assert_eq!(got, want, "{dom} {dow} in {year}-{month:02}");
            }
        }
    }
}

#[test]
fn transitions_helper_finds_known_changes() {
    let ny = Timezone::parse("America/New_York").unwrap();
    let got: Vec<_> = transitions(ny, 2026).into_iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(got, ["2026-03-08T07:00:00+00:00", "2026-11-01T06:00:00+00:00"]);
    assert!(transitions(Timezone::parse("Asia/Tokyo").unwrap(), 2026).is_empty());
}

#[test]
fn reference_model_spot_checks() {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    assert!(ref_day(&RefDay::Nearest(1), d(2026, 8, 3)));
    assert!(ref_day(&RefDay::Nearest(31), d(2026, 5, 29)));
    assert!(!ref_day(&RefDay::Nearest(31), d(2026, 4, 30)));
    assert!(ref_day(&RefDay::LastWeekday, d(2026, 1, 30)));
    assert!(ref_day(&RefDay::Nth(3, 2), d(2026, 5, 12)));
    assert!(ref_day(&RefDay::LastOf(6), d(2026, 1, 30)));
    assert!(ref_day(&RefDay::Last, d(2028, 2, 29)));
}
