//! `cron(minutes hours day-of-month month day-of-week year)` — EventBridge Scheduler's cron
//! dialect, parsed and matched against local wall-clock time.
//!
//! AWS cron is not Unix cron: it has six fields (with a year), numbers days of the week
//! 1-7 = SUN-SAT, demands `?` in exactly one of the two day fields and has the Quartz
//! extras `L`, `W` and `#`. No crate implements exactly that, so it is written out here.
//!
//! This file knows nothing about time zones: it answers "does this local minute match?"
//! and "which is the first matching local minute at or after this one?", the latter by
//! skipping whole years, months, days and hours rather than scanning minute by minute.
//! How local minutes become instants (DST) is `occurrences.rs`' concern.
//!
//! Accepted syntax, per field (names and letters are case-insensitive):
//!
//! | field | values | also |
//! | --- | --- | --- |
//! | minutes | 0-59 | `, - * /` |
//! | hours | 0-23 | `, - * /` |
//! | day-of-month | 1-31 | `, - * / ?`, `L` (last day), `LW` (last weekday), `<n>W` (weekday nearest day n) |
//! | month | 1-12, JAN-DEC | `, - * /` |
//! | day-of-week | 1-7, SUN-SAT | `, - * / ?`, `L` (= 7, Saturday), `<d>L` (last d-day), `<d>#<n>` (nth d-day, n 1-5) |
//! | year | 1970-2199 | `, - * /` |
//!
//! Choices where the AWS documentation is silent (all on the strict side, so an expression
//! accepted here is not refused by AWS for these reasons):
//! * `L`, `LW`, `nW`, `dL`, `d#n` and `?` must be the whole field: they cannot be list items;
//! * ranges must not wrap around (`FRI-MON`, `22-2` are refused);
//! * an increment must be at least 1 and at most the field's largest value (59 for minutes,
//!   23 for hours, 31, 12 and 7 for the day, month and weekday fields, as in Quartz), or 229
//!   for years;
//! * `nW` for a day that the month does not have (`31W` in April) does not fire that month,
//!   like the plain day `31` would not.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::ScheduleKind;
use super::error::ExpressionError;
use super::syntax::{Token, call_body, tokens};

/// First year a cron expression can name.
pub const MIN_YEAR: i32 = 1970;
/// Last year a cron expression can name; searches for a next fire time stop here.
pub const MAX_YEAR: i32 = 2199;

/// A parsed `cron(...)` expression.
///
/// Equality compares the canonical field texts (upper-cased, as written); two expressions
/// that fire at the same times but are spelled differently (`*/15` and `0/15`) are not equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronExpr {
    /// The six canonical field texts, separated by single spaces.
    text: String,
    minutes: SmallSet,
    hours: SmallSet,
    months: SmallSet,
    /// Indexed by `year - 1970`.
    years: ValueSet,
    days: DaySpec,
}

/// Which of the two day fields is in charge (the other one is `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DaySpec {
    Month(DomSpec),
    Week(DowSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DomSpec {
    /// Bit `d` set for day `d`.
    Days(SmallSet),
    /// `L`
    Last,
    /// `LW`
    LastWeekday,
    /// `<n>W`
    NearestWeekday(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DowSpec {
    /// Bit `d` set for weekday `d` (1 = Sunday ... 7 = Saturday).
    Days(SmallSet),
    /// `<d>L`: the last d-day of the month.
    Last(u32),
    /// `<d>#<n>`: the nth d-day of the month.
    Nth(u32, u32),
}

/// A set of values below 64: every field but the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct SmallSet(u64);

impl SmallSet {
    fn contains(self, i: u32) -> bool {
        i < 64 && (self.0 >> i) & 1 == 1
    }

    /// The smallest member `>= i`.
    fn next_at_or_after(self, i: u32) -> Option<u32> {
        let bits = self.0 & u64::MAX.checked_shl(i)?;
        (bits != 0).then(|| bits.trailing_zeros())
    }
}

/// A bit set of field values (up to 256 of them; years are stored as `year - 1970`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct ValueSet([u64; 4]);

impl ValueSet {
    /// The members below 64.
    fn small(self) -> SmallSet {
        SmallSet(self.0[0])
    }

    fn insert(&mut self, i: u32) {
        if let Some(word) = self.0.get_mut((i / 64) as usize) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: u32) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    /// The smallest member `>= i`.
    fn next_at_or_after(&self, i: u32) -> Option<u32> {
        let mut w = (i / 64) as usize;
        let mut bits = *self.0.get(w)? & (u64::MAX << (i % 64));
        loop {
            if bits != 0 {
                return Some(w as u32 * 64 + bits.trailing_zeros());
            }
            w += 1;
            bits = *self.0.get(w)?;
        }
    }
}

/// Static description of one field.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, ... (months and days of the week start at 1).
    names: &'static [&'static str],
    /// Subtracted from values before they go into a `ValueSet` (1970 for years).
    offset: u32,
    /// Largest increment after `/`: the largest value, as in Quartz; for years, 229.
    max_step: u32,
}

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const MINUTES: Field = Field { name: "minutes", min: 0, max: 59, names: &[], offset: 0, max_step: 59 };
const HOURS: Field = Field { name: "hours", min: 0, max: 23, names: &[], offset: 0, max_step: 23 };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[], offset: 0, max_step: 31 };
const MONTH: Field = Field { name: "month", min: 1, max: 12, names: &MONTH_NAMES, offset: 0, max_step: 12 };
const DAY_OF_WEEK: Field = Field { name: "day-of-week", min: 1, max: 7, names: &DAY_NAMES, offset: 0, max_step: 7 };
const YEAR: Field = Field {
    name: "year",
    min: MIN_YEAR as u32,
    max: MAX_YEAR as u32,
    names: &[],
    offset: MIN_YEAR as u32,
    max_step: 229,
};

/// The six field names, in order.
pub const FIELD_NAMES: [&str; 6] =
    [MINUTES.name, HOURS.name, DAY_OF_MONTH.name, MONTH.name, DAY_OF_WEEK.name, YEAR.name];

impl Field {
    fn err(&self, position: usize, message: impl Into<String>) -> ExpressionError {
        ExpressionError::at(position, Some(ScheduleKind::Cron), Some(self.name), message)
    }

    /// `0-59`, `1-12 (JAN-DEC)`, ...
    fn range_text(&self) -> String {
        match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => format!("{}-{} ({first}-{last})", self.min, self.max),
            _ => format!("{}-{}", self.min, self.max),
        }
    }

    /// A single value: a number or a name.
    fn value(&self, tok: &str, pos: usize) -> Result<u32, ExpressionError> {
        if tok.is_empty() {
            return Err(self.err(pos, format!("missing value: expected a value {}", self.range_text())));
        }
        if tok.bytes().all(|b| b.is_ascii_digit()) {
            return match tok.parse::<u32>() {
                Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
                _ => Err(self.err(pos, format!("value {tok} is out of range {}", self.range_text()))),
            };
        }
        if let Some(i) = self.names.iter().position(|n| *n == tok) {
            return Ok(self.min + i as u32);
        }
        let is_day_field = self.name == DAY_OF_MONTH.name || self.name == DAY_OF_WEEK.name;
        let day_special = tok == "L" || tok == "LW" || digits_then(tok, 'L') || digits_then(tok, 'W');
        let message = if tok.contains('?') {
            if is_day_field {
                "`?` must be the whole field, it cannot be combined with other values".to_owned()
            } else {
                "`?` is only allowed in the day-of-month and day-of-week fields".to_owned()
            }
        } else if !is_day_field && (day_special || tok.contains('#')) {
            "`L`, `W` and `#` are only allowed in the day-of-month and day-of-week fields".to_owned()
        } else if self.name == DAY_OF_WEEK.name && (tok == "LW" || digits_then(tok, 'W')) {
            "`W` is only allowed in the day-of-month field".to_owned()
        } else if !self.names.is_empty() && tok.bytes().all(|b| b.is_ascii_alphabetic()) {
            format!("unknown name `{tok}`: expected {}", self.range_text())
        } else {
            format!("invalid value `{tok}`: expected a value {}", self.range_text())
        };
        Err(self.err(pos, message))
    }

    /// The increment after `/`.
    fn step(&self, tok: &str, pos: usize) -> Result<u32, ExpressionError> {
        let max_step = self.max_step;
        if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(pos, format!("invalid increment `{tok}`: expected a number 1-{max_step} after `/`")));
        }
        match tok.parse::<u32>() {
            Ok(0) => Err(self.err(pos, "increment must be at least 1")),
            Ok(v) if v <= max_step => Ok(v),
            _ => Err(self.err(pos, format!("increment {tok} is out of range 1-{max_step}"))),
        }
    }

    /// One list item: `*`, `v`, `a-b`, each optionally followed by `/step`.
    fn item(&self, item: &str, pos: usize, set: &mut ValueSet) -> Result<(), ExpressionError> {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some((step, pos + base.len() + 1))),
            None => (item, None),
        };
        if let Some((step, step_pos)) = step
            && let Some(i) = step.find('/')
        {
            return Err(self.err(step_pos + i, "only one `/` is allowed in an item"));
        }
        let (lo, hi) = if base == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let lo = self.value(a, pos)?;
            let hi = self.value(b, pos + a.len() + 1)?;
            if lo > hi {
                return Err(self
                    .err(pos, format!("range {a}-{b} is reversed: ranges cannot wrap around, write it as two items")));
            }
            (lo, hi)
        } else {
            let v = self.value(base, pos)?;
            (v, if step.is_some() { self.max } else { v })
        };
        let step = match step {
            Some((step, step_pos)) => self.step(step, step_pos)?,
            None => 1,
        };
        let mut v = lo;
        while v <= hi {
            set.insert(v - self.offset);
            v += step;
        }
        Ok(())
    }

    /// A comma-separated list of items.
    fn list(&self, text: &str, pos: usize) -> Result<ValueSet, ExpressionError> {
        let mut set = ValueSet::default();
        let mut offset = 0;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(self.err(pos + offset, "empty item in list"));
            }
            self.item(item, pos + offset, &mut set)?;
            offset += item.len() + 1;
        }
        Ok(set)
    }

    /// Refuses the day-field specials inside a list (`1,L`, `2#1,3`, `?,1`).
    fn no_specials_in_list(
        &self,
        text: &str,
        pos: usize,
        is_special: impl Fn(&str) -> bool,
    ) -> Result<(), ExpressionError> {
        if !text.contains(',') {
            return Ok(());
        }
        let mut offset = 0;
        for item in text.split(',') {
            if is_special(item) {
                return Err(self.err(
                    pos + offset,
                    format!(
                        "`{item}` cannot be combined with other values in a list: `?`, `L`, `W` and `#` must be the whole field"
                    ),
                ));
            }
            offset += item.len() + 1;
        }
        Ok(())
    }
}

/// `tok` is one or more digits followed by `c`, e.g. `15W`.
fn digits_then(tok: &str, c: char) -> bool {
    tok.strip_suffix(c).is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_dom(text: &str, pos: usize) -> Result<Option<DomSpec>, ExpressionError> {
    let f = &DAY_OF_MONTH;
    if text == "?" {
        return Ok(None);
    }
    f.no_specials_in_list(text, pos, |item| item == "?" || item.contains('L') || item.contains('W'))?;
    match text {
        "L" => return Ok(Some(DomSpec::Last)),
        "LW" => return Ok(Some(DomSpec::LastWeekday)),
        _ => {}
    }
    if let Some(day) = text.strip_suffix('W')
        && !text.contains(',')
    {
        if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
            return Err(f.err(pos, "`W` must follow a single day number, e.g. `15W`, or `L` (`LW`)"));
        }
        return Ok(Some(DomSpec::NearestWeekday(f.value(day, pos)?)));
    }
    if let Some(i) = text.find('L') {
        return Err(
            f.err(pos + i, "`L` in day-of-month must be the whole field (`L`, last day) or `LW` (last weekday)")
        );
    }
    if let Some(i) = text.find('W') {
        return Err(f.err(pos + i, "`W` must follow a single day number, e.g. `15W`"));
    }
    if let Some(i) = text.find('#') {
        return Err(f.err(pos + i, "`#` is only allowed in the day-of-week field"));
    }
    Ok(Some(DomSpec::Days(f.list(text, pos)?.small())))
}

fn parse_dow(text: &str, pos: usize) -> Result<Option<DowSpec>, ExpressionError> {
    let f = &DAY_OF_WEEK;
    if text == "?" {
        return Ok(None);
    }
    f.no_specials_in_list(text, pos, |item| item == "?" || item.contains('#') || item.ends_with('L'))?;
    if text == "L" {
        return Ok(Some(DowSpec::Days(SmallSet(1 << 7))));
    }
    if let Some((day, nth)) = text.split_once('#') {
        let weekday = f.value(day, pos)?;
        let nth_pos = pos + day.len() + 1;
        return match nth.parse::<u32>() {
            Ok(n @ 1..=5) if nth.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(DowSpec::Nth(weekday, n))),
            _ => Err(f.err(nth_pos, format!("`#{nth}`: the occurrence after `#` must be 1-5"))),
        };
    }
    if let Some(day) = text.strip_suffix('L') {
        // A list ending in `L` was refused above, and `L` alone handled: `day` is one value.
        return Ok(Some(DowSpec::Last(f.value(day, pos)?)));
    }
    Ok(Some(DowSpec::Days(f.list(text, pos)?.small())))
}

impl CronExpr {
    /// Parses a full `cron(...)` expression. Error positions are character offsets into
    /// `input`.
    pub fn parse(input: &str) -> Result<Self, ExpressionError> {
        Self::parse_bytes(input).map_err(|e| e.in_chars(input))
    }

    /// Same as [`CronExpr::parse`] with byte positions in the error.
    pub(super) fn parse_bytes(input: &str) -> Result<Self, ExpressionError> {
        let (body, base) = call_body(input, "cron", ScheduleKind::Cron)?;
        let toks = tokens(body, base, ScheduleKind::Cron)?;
        let err = |pos: usize, msg: String| ExpressionError::at(pos, Some(ScheduleKind::Cron), None, msg);
        let expected = "expected 6 fields: minutes hours day-of-month month day-of-week year";
        let fields: [Token<'_>; 6] = match <[Token<'_>; 6]>::try_from(toks.as_slice()) {
            Ok(fields) => fields,
            Err(_) => {
                return Err(match toks.get(6) {
                    Some(extra) => err(extra.position, format!("too many fields ({}): {expected}", toks.len())),
                    None if toks.is_empty() => err(base, format!("empty cron expression: {expected}")),
                    None => err(base + body.len(), format!("too few fields ({}): {expected}", toks.len())),
                });
            }
        };
        let text = fields.map(|t| t.text.to_ascii_uppercase());
        let pos = fields.map(|t| t.position);

        let minutes = MINUTES.list(&text[0], pos[0])?.small();
        let hours = HOURS.list(&text[1], pos[1])?.small();
        let dom = parse_dom(&text[2], pos[2])?;
        let months = MONTH.list(&text[3], pos[3])?.small();
        let dow = parse_dow(&text[4], pos[4])?;
        let years = YEAR.list(&text[5], pos[5])?;

        let days = match (dom, dow) {
            (Some(d), None) => DaySpec::Month(d),
            (None, Some(w)) => DaySpec::Week(w),
            (None, None) => {
                return Err(DAY_OF_WEEK.err(
                    pos[4],
                    "you can't use `?` in both the day-of-month and day-of-week fields: use `?` in exactly one of them",
                ));
            }
            (Some(_), Some(_)) if text[2] == "*" && text[4] == "*" => {
                return Err(DAY_OF_WEEK.err(
                    pos[4],
                    "you can't use `*` in both the day-of-month and day-of-week fields: if you use it in one, you must use `?` in the other",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(DAY_OF_WEEK
                    .err(pos[4], "you can't specify both day-of-month and day-of-week: one of them must be `?`"));
            }
        };
        Ok(Self { text: text.join(" "), minutes, hours, months, years, days })
    }

    /// The six canonical (upper-cased) field texts, in order.
    pub fn fields(&self) -> [&str; 6] {
        let mut it = self.text.split(' ');
        std::array::from_fn(|_| it.next().unwrap_or_default())
    }

    /// Does this local wall-clock time (at second 0) match every field?
    pub fn matches_local(&self, local: NaiveDateTime) -> bool {
        if local.second() != 0 || local.nanosecond() != 0 {
            return false;
        }
        let Some(year) = year_index(local.year()) else {
            return false;
        };
        self.years.contains(year)
            && self.months.contains(local.month())
            && self.hours.contains(local.hour())
            && self.minutes.contains(local.minute())
            && self.day_mask(local.year(), local.month()) & (1u64 << local.day()) != 0
    }

    /// The first local minute at or after `from` (rounded up to a whole minute) that
    /// matches, or `None` if there is none up to the end of [`MAX_YEAR`].
    ///
    /// Skips by field: a non-matching year, month, day or hour is skipped whole, so the
    /// number of steps is bounded by a few per month of the searched range.
    pub fn next_local_at_or_after(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let truncated = from.with_second(0)?.with_nanosecond(0)?;
        let from = if truncated < from { truncated.checked_add_signed(chrono::TimeDelta::minutes(1))? } else { from };
        let (mut y, mut mo, mut d, mut h, mut mi) = (from.year(), from.month(), from.day(), from.hour(), from.minute());
        if y < MIN_YEAR {
            (y, mo, d, h, mi) = (MIN_YEAR, 1, 1, 0, 0);
        }
        loop {
            let yi = self.years.next_at_or_after(year_index(y)?)?;
            let next_year = MIN_YEAR + yi as i32;
            if next_year != y {
                (y, mo, d, h, mi) = (next_year, 1, 1, 0, 0);
            }
            let Some(m) = self.months.next_at_or_after(mo).filter(|m| *m <= 12) else {
                (y, mo, d, h, mi) = (y + 1, 1, 1, 0, 0);
                continue;
            };
            if m != mo {
                (mo, d, h, mi) = (m, 1, 0, 0);
            }
            let days = self.day_mask(y, mo) & (u64::MAX << d.min(63));
            if days == 0 {
                (mo, d, h, mi) = (mo + 1, 1, 0, 0);
                continue;
            }
            let day = days.trailing_zeros();
            if day != d {
                (d, h, mi) = (day, 0, 0);
            }
            let Some(hour) = self.hours.next_at_or_after(h).filter(|h| *h <= 23) else {
                (d, h, mi) = (d + 1, 0, 0);
                continue;
            };
            if hour != h {
                (h, mi) = (hour, 0);
            }
            let Some(minute) = self.minutes.next_at_or_after(mi).filter(|m| *m <= 59) else {
                (h, mi) = (h + 1, 0);
                continue;
            };
            return NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, minute, 0);
        }
    }

    /// The days of month `month` of `year` that match the day fields: bit `d` for day `d`.
    fn day_mask(&self, year: i32, month: u32) -> u64 {
        let Some(last) = days_in_month(year, month) else {
            return 0;
        };
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return 0;
        };
        // Weekday of day 1, 1 = Sunday ... 7 = Saturday.
        let wd1 = first.weekday().num_days_from_sunday() + 1;
        let weekday = |day: u32| (wd1 - 1 + day - 1) % 7 + 1;
        let all_days = (u64::MAX >> (63 - last)) & !1;
        let bit = |day: u32| 1u64 << day;
        match self.days {
            DaySpec::Month(DomSpec::Days(set)) => set.0 & all_days,
            DaySpec::Month(DomSpec::Last) => bit(last),
            DaySpec::Month(DomSpec::LastWeekday) => match weekday(last) {
                7 => bit(last - 1),
                1 => bit(last - 2),
                _ => bit(last),
            },
            DaySpec::Month(DomSpec::NearestWeekday(n)) if n > last => 0,
            DaySpec::Month(DomSpec::NearestWeekday(n)) => match weekday(n) {
                7 if n == 1 => bit(3),
                7 => bit(n - 1),
                1 if n == last => bit(n - 2),
                1 => bit(n + 1),
                _ => bit(n),
            },
            DaySpec::Week(DowSpec::Days(set)) => {
                (1..=last).filter(|d| set.contains(weekday(*d))).fold(0, |acc, d| acc | bit(d))
            }
            DaySpec::Week(DowSpec::Last(wd)) => bit(last - (weekday(last) + 7 - wd) % 7),
            DaySpec::Week(DowSpec::Nth(wd, n)) => {
                let day = 1 + (wd + 7 - wd1) % 7 + 7 * (n - 1);
                if day <= last { bit(day) } else { 0 }
            }
        }
    }
}

fn year_index(year: i32) -> Option<u32> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) { u32::try_from(year - MIN_YEAR).ok() } else { None }
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::time::{Duration, Instant};

    fn ok(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Parses and checks the error's field, position and message.
    #[track_caller]
    fn bad(s: &str, field: Option<&str>, position: usize, needle: &str) -> ExpressionError {
        let e = match CronExpr::parse(s) {
            Ok(c) => panic!("{s} parsed as {c}"),
            Err(e) => e,
        };
        assert_eq!(e.kind, Some(ScheduleKind::Cron), "{s}: {e}");
        assert_eq!(e.field, field, "{s}: {e}");
        assert_eq!(e.position, position, "{s}: {e}");
        assert!(e.message.contains(needle), "{s}: `{e}` does not contain `{needle}`");
        if let Some(field) = field {
            assert!(e.to_string().starts_with(&format!("cron {field} field at column {}: ", position + 1)), "{e}");
        }
        e
    }

    fn members(set: &ValueSet, offset: u32) -> Vec<u32> {
        (0..256).filter(|i| set.contains(*i)).map(|i| i + offset).collect()
    }

    fn small_members(set: SmallSet) -> Vec<u32> {
        (0..64).filter(|i| set.contains(*i)).collect()
    }

    /// A cron with one field replaced (index 0..6), day fields kept valid.
    fn with_field(i: usize, text: &str) -> String {
        let mut f = ["0", "0", "*", "*", "?", "*"];
        f[i] = text;
        if i == 2 && text != "?" {
            f[4] = "?";
        }
        if i == 4 && text != "?" {
            f[2] = "?";
        }
        format!("cron({})", f.join(" "))
    }

    fn field_values(i: usize, text: &str) -> Vec<u32> {
        let c = ok(&with_field(i, text));
        match i {
            0 => small_members(c.minutes),
            1 => small_members(c.hours),
            2 => match c.days {
                DaySpec::Month(DomSpec::Days(s)) => small_members(s),
                other => panic!("{other:?}"),
            },
            3 => small_members(c.months),
            4 => match c.days {
                DaySpec::Week(DowSpec::Days(s)) => small_members(s),
                other => panic!("{other:?}"),
            },
            _ => members(&c.years, MIN_YEAR as u32),
        }
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, 0).unwrap()
    }

    /// The first `n` matches at or after `from`, as `YYYY-MM-DD HH:MM`.
    fn next_n(expr: &str, from: NaiveDateTime, n: usize) -> Vec<String> {
        let c = ok(expr);
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < n {
            let Some(t) = c.next_local_at_or_after(cursor) else { break };
            assert!(c.matches_local(t), "{expr}: {t} does not match");
            out.push(t.format("%Y-%m-%d %H:%M").to_string());
            cursor = t + chrono::TimeDelta::minutes(1);
        }
        out
    }

    /// The days of a month matched by the day fields.
    fn days_of(expr: &str, y: i32, m: u32) -> Vec<u32> {
        let c = ok(expr);
        (1..=31).filter(|d| c.day_mask(y, m) & (1u64 << d) != 0).collect()
    }

    // ---- value sets -------------------------------------------------------------------

    #[test]
    fn value_set_operations() {
        let mut s = ValueSet::default();
        for i in [0, 5, 63, 64, 200, 255] {
            s.insert(i);
        }
        s.insert(256); // ignored, not a panic
        assert_eq!(members(&s, 0), vec![0, 5, 63, 64, 200, 255]);
        assert_eq!(s.next_at_or_after(0), Some(0));
        assert_eq!(s.next_at_or_after(6), Some(63));
        assert_eq!(s.next_at_or_after(64), Some(64));
        assert_eq!(s.next_at_or_after(65), Some(200));
        assert_eq!(s.next_at_or_after(255), Some(255));
        assert_eq!(s.next_at_or_after(256), None);
        assert_eq!(s.next_at_or_after(u32::MAX), None);
        assert!(!s.contains(1) && !s.contains(256) && !s.contains(u32::MAX));
        let small = s.small();
        assert_eq!(small_members(small), vec![0, 5, 63]);
        assert_eq!(small.next_at_or_after(1), Some(5));
        assert_eq!(small.next_at_or_after(63), Some(63));
        assert_eq!(small.next_at_or_after(64), None);
        assert_eq!(small.next_at_or_after(u32::MAX), None);
        assert!(!small.contains(64) && !small.contains(u32::MAX));
    }

    #[test]
    fn expressions_stay_small() {
        // Schedules are stored and copied a lot; the cron variant must not bloat the enum.
        assert!(std::mem::size_of::<CronExpr>() <= 128, "{}", std::mem::size_of::<CronExpr>());
    }

    // ---- minutes ----------------------------------------------------------------------

    #[test]
    fn minutes_syntax() {
        assert_eq!(field_values(0, "*"), (0..60).collect::<Vec<_>>());
        assert_eq!(field_values(0, "0"), vec![0]);
        assert_eq!(field_values(0, "59"), vec![59]);
        assert_eq!(field_values(0, "00"), vec![0]);
        assert_eq!(field_values(0, "0/15"), vec![0, 15, 30, 45]);
        assert_eq!(field_values(0, "*/15"), vec![0, 15, 30, 45]);
        assert_eq!(field_values(0, "*/5"), (0..60).step_by(5).collect::<Vec<_>>());
        assert_eq!(field_values(0, "5-30/5"), vec![5, 10, 15, 20, 25, 30]);
        assert_eq!(field_values(0, "7/20"), vec![7, 27, 47]);
        assert_eq!(field_values(0, "0/59"), vec![0, 59]);
        bad("cron(0/60 0 * * ? *)", Some("minutes"), 7, "increment 60 is out of range 1-59");
        assert_eq!(field_values(0, "1,2,3"), vec![1, 2, 3]);
        assert_eq!(field_values(0, "58-59"), vec![58, 59]);
        assert_eq!(field_values(0, "10-10"), vec![10]);
        assert_eq!(field_values(0, "0-4,10-12/2,50/5,3"), vec![0, 1, 2, 3, 4, 10, 12, 50, 55]);
    }

    #[test]
    fn minutes_errors() {
        bad("cron(60 0 * * ? *)", Some("minutes"), 5, "value 60 is out of range 0-59");
        bad("cron(0/0 0 * * ? *)", Some("minutes"), 7, "increment must be at least 1");
        bad("cron(*/0 0 * * ? *)", Some("minutes"), 7, "increment must be at least 1");
        bad("cron(0/61 0 * * ? *)", Some("minutes"), 7, "increment 61 is out of range 1-59");
        bad("cron(0/ 0 * * ? *)", Some("minutes"), 7, "invalid increment ``");
        bad("cron(/5 0 * * ? *)", Some("minutes"), 5, "missing value");
        bad("cron(0/5/5 0 * * ? *)", Some("minutes"), 8, "only one `/`");
        bad("cron(0/x 0 * * ? *)", Some("minutes"), 7, "invalid increment `X`");
        bad("cron(30-10 0 * * ? *)", Some("minutes"), 5, "range 30-10 is reversed");
        bad("cron(1- 0 * * ? *)", Some("minutes"), 7, "missing value");
        bad("cron(-1 0 * * ? *)", Some("minutes"), 5, "missing value");
        bad("cron(1-2-3 0 * * ? *)", Some("minutes"), 7, "invalid value `2-3`");
        bad("cron(1,,2 0 * * ? *)", Some("minutes"), 7, "empty item in list");
        bad("cron(1, 0 * * ? *)", Some("minutes"), 7, "empty item in list");
        bad("cron(,1 0 * * ? *)", Some("minutes"), 5, "empty item in list");
        bad("cron(1,99 0 * * ? *)", Some("minutes"), 7, "value 99 is out of range");
        bad("cron(? 0 * * ? *)", Some("minutes"), 5, "`?` is only allowed in the day-of-month and day-of-week");
        bad("cron(L 0 * * ? *)", Some("minutes"), 5, "`L`, `W` and `#` are only allowed");
        bad("cron(5W 0 * * ? *)", Some("minutes"), 5, "`L`, `W` and `#` are only allowed");
        bad("cron(1#2 0 * * ? *)", Some("minutes"), 5, "`L`, `W` and `#` are only allowed");
        bad("cron(abc 0 * * ? *)", Some("minutes"), 5, "invalid value `ABC`: expected a value 0-59");
        bad("cron(JAN 0 * * ? *)", Some("minutes"), 5, "invalid value `JAN`");
        bad("cron(4294967296 0 * * ? *)", Some("minutes"), 5, "out of range 0-59");
        bad("cron(99999999999999999999999 0 * * ? *)", Some("minutes"), 5, "out of range 0-59");
        bad("cron(1.5 0 * * ? *)", Some("minutes"), 5, "invalid value `1.5`");
    }

    // ---- hours ------------------------------------------------------------------------

    #[test]
    fn hours_syntax_and_errors() {
        assert_eq!(field_values(1, "*"), (0..24).collect::<Vec<_>>());
        assert_eq!(field_values(1, "23"), vec![23]);
        assert_eq!(field_values(1, "*/6"), vec![0, 6, 12, 18]);
        assert_eq!(field_values(1, "9-17"), (9..=17).collect::<Vec<_>>());
        assert_eq!(field_values(1, "8-18/4"), vec![8, 12, 16]);
        assert_eq!(field_values(1, "0,12"), vec![0, 12]);
        assert_eq!(field_values(1, "0/23"), vec![0, 23]);
        bad("cron(0 0/24 * * ? *)", Some("hours"), 9, "increment 24 is out of range 1-23");
        bad("cron(0 24 * * ? *)", Some("hours"), 7, "value 24 is out of range 0-23");
        bad("cron(0 22-2 * * ? *)", Some("hours"), 7, "cannot wrap around");
        bad("cron(0 0/25 * * ? *)", Some("hours"), 9, "increment 25 is out of range 1-23");
        bad("cron(0 ? * * ? *)", Some("hours"), 7, "`?` is only allowed");
    }

    // ---- day of month -----------------------------------------------------------------

    #[test]
    fn day_of_month_syntax() {
        assert_eq!(field_values(2, "*"), (1..=31).collect::<Vec<_>>());
        assert_eq!(field_values(2, "1"), vec![1]);
        assert_eq!(field_values(2, "31"), vec![31]);
        assert_eq!(field_values(2, "*/10"), vec![1, 11, 21, 31]);
        assert_eq!(field_values(2, "1,15"), vec![1, 15]);
        assert_eq!(field_values(2, "10-12"), vec![10, 11, 12]);
        assert_eq!(field_values(2, "5/7"), vec![5, 12, 19, 26]);
        assert_eq!(ok("cron(0 0 L * ? *)").days, DaySpec::Month(DomSpec::Last));
        assert_eq!(ok("cron(0 0 l * ? *)").days, DaySpec::Month(DomSpec::Last));
        assert_eq!(ok("cron(0 0 LW * ? *)").days, DaySpec::Month(DomSpec::LastWeekday));
        assert_eq!(ok("cron(0 0 lw * ? *)").days, DaySpec::Month(DomSpec::LastWeekday));
        assert_eq!(ok("cron(0 0 15W * ? *)").days, DaySpec::Month(DomSpec::NearestWeekday(15)));
        assert_eq!(ok("cron(0 0 1w * ? *)").days, DaySpec::Month(DomSpec::NearestWeekday(1)));
        assert_eq!(ok("cron(0 0 31W * ? *)").days, DaySpec::Month(DomSpec::NearestWeekday(31)));
    }

    #[test]
    fn day_of_month_errors() {
        bad("cron(0 0 0 * ? *)", Some("day-of-month"), 9, "value 0 is out of range 1-31");
        bad("cron(0 0 32 * ? *)", Some("day-of-month"), 9, "value 32 is out of range 1-31");
        bad("cron(0 0 0W * ? *)", Some("day-of-month"), 9, "value 0 is out of range");
        bad("cron(0 0 32W * ? *)", Some("day-of-month"), 9, "value 32 is out of range");
        bad("cron(0 0 W * ? *)", Some("day-of-month"), 9, "`W` must follow a single day number");
        bad("cron(0 0 1-5W * ? *)", Some("day-of-month"), 9, "`W` must follow a single day number");
        bad("cron(0 0 W5 * ? *)", Some("day-of-month"), 9, "`W` must follow a single day number");
        bad("cron(0 0 L-3 * ? *)", Some("day-of-month"), 9, "`L` in day-of-month must be the whole field");
        bad("cron(0 0 5L * ? *)", Some("day-of-month"), 10, "`L` in day-of-month must be the whole field");
        bad("cron(0 0 WL * ? *)", Some("day-of-month"), 10, "`L` in day-of-month must be the whole field");
        bad("cron(0 0 1,L * ? *)", Some("day-of-month"), 11, "`L` cannot be combined with other values in a list");
        bad("cron(0 0 LW,1 * ? *)", Some("day-of-month"), 9, "cannot be combined");
        bad("cron(0 0 15W,20 * ? *)", Some("day-of-month"), 9, "cannot be combined");
        bad("cron(0 0 ?,1 * ? *)", Some("day-of-month"), 9, "cannot be combined");
        bad("cron(0 0 1#2 * ? *)", Some("day-of-month"), 10, "`#` is only allowed in the day-of-week field");
        bad("cron(0 0 ?/2 * * *)", Some("day-of-month"), 9, "`?` must be the whole field");
        bad("cron(0 0 MON * ? *)", Some("day-of-month"), 9, "invalid value `MON`");
    }

    // ---- month ------------------------------------------------------------------------

    #[test]
    fn month_syntax_and_names() {
        assert_eq!(field_values(3, "*"), (1..=12).collect::<Vec<_>>());
        assert_eq!(field_values(3, "1"), vec![1]);
        assert_eq!(field_values(3, "12"), vec![12]);
        for (i, name) in MONTH_NAMES.iter().enumerate() {
            assert_eq!(field_values(3, name), vec![i as u32 + 1], "{name}");
            assert_eq!(field_values(3, &name.to_lowercase()), vec![i as u32 + 1], "{name}");
        }
        assert_eq!(field_values(3, "Jan-Mar"), vec![1, 2, 3]);
        assert_eq!(field_values(3, "JAN,MAR,DEC"), vec![1, 3, 12]);
        assert_eq!(field_values(3, "JAN/3"), vec![1, 4, 7, 10]);
        assert_eq!(field_values(3, "*/2"), vec![1, 3, 5, 7, 9, 11]);
        assert_eq!(field_values(3, "FEB-11/3"), vec![2, 5, 8, 11]);
        assert_eq!(field_values(3, "1/12"), vec![1]);
        bad("cron(0 0 * 13 ? *)", Some("month"), 11, "value 13 is out of range 1-12 (JAN-DEC)");
        bad("cron(0 0 * 0 ? *)", Some("month"), 11, "value 0 is out of range 1-12 (JAN-DEC)");
        bad("cron(0 0 * JANUARY ? *)", Some("month"), 11, "unknown name `JANUARY`: expected 1-12 (JAN-DEC)");
        bad("cron(0 0 * MON ? *)", Some("month"), 11, "unknown name `MON`");
        bad("cron(0 0 * DEC-JAN ? *)", Some("month"), 11, "reversed");
        bad("cron(0 0 * JAN-XYZ ? *)", Some("month"), 15, "unknown name `XYZ`");
        bad("cron(0 0 * 1/13 ? *)", Some("month"), 13, "increment 13 is out of range 1-12");
        bad("cron(0 0 * L ? *)", Some("month"), 11, "`L`, `W` and `#` are only allowed");
    }

    // ---- day of week ------------------------------------------------------------------

    #[test]
    fn day_of_week_syntax_and_names() {
        assert_eq!(field_values(4, "*"), (1..=7).collect::<Vec<_>>());
        for (i, name) in DAY_NAMES.iter().enumerate() {
            assert_eq!(field_values(4, name), vec![i as u32 + 1], "{name}");
            assert_eq!(field_values(4, &name.to_lowercase()), vec![i as u32 + 1], "{name}");
        }
        assert_eq!(field_values(4, "1"), vec![1]);
        assert_eq!(field_values(4, "7"), vec![7]);
        assert_eq!(field_values(4, "MON-FRI"), vec![2, 3, 4, 5, 6]);
        assert_eq!(field_values(4, "mon-fri"), vec![2, 3, 4, 5, 6]);
        assert_eq!(field_values(4, "2-6"), vec![2, 3, 4, 5, 6]);
        assert_eq!(field_values(4, "SUN,SAT"), vec![1, 7]);
        assert_eq!(field_values(4, "1/2"), vec![1, 3, 5, 7]);
        assert_eq!(field_values(4, "WED,FRI"), vec![4, 6]);
        assert_eq!(field_values(4, "L"), vec![7]);
        assert_eq!(ok("cron(0 0 ? * 6L *)").days, DaySpec::Week(DowSpec::Last(6)));
        assert_eq!(ok("cron(0 0 ? * FRIL *)").days, DaySpec::Week(DowSpec::Last(6)));
        assert_eq!(ok("cron(0 0 ? * 1L *)").days, DaySpec::Week(DowSpec::Last(1)));
        assert_eq!(ok("cron(0 0 ? * 3#2 *)").days, DaySpec::Week(DowSpec::Nth(3, 2)));
        assert_eq!(ok("cron(0 0 ? * tue#2 *)").days, DaySpec::Week(DowSpec::Nth(3, 2)));
        assert_eq!(ok("cron(0 0 ? * 2#1 *)").days, DaySpec::Week(DowSpec::Nth(2, 1)));
        assert_eq!(ok("cron(0 0 ? * 7#5 *)").days, DaySpec::Week(DowSpec::Nth(7, 5)));
    }

    #[test]
    fn day_of_week_errors() {
        let e = bad("cron(0 12 ? * 8 *)", Some("day-of-week"), 14, "value 8 is out of range 1-7 (SUN-SAT)");
        assert_eq!(e.to_string(), "cron day-of-week field at column 15: value 8 is out of range 1-7 (SUN-SAT)");
        bad("cron(0 12 ? * 0 *)", Some("day-of-week"), 14, "value 0 is out of range 1-7 (SUN-SAT)");
        bad("cron(0 12 ? * 2#6 *)", Some("day-of-week"), 16, "`#6`: the occurrence after `#` must be 1-5");
        bad("cron(0 12 ? * 2#0 *)", Some("day-of-week"), 16, "must be 1-5");
        bad("cron(0 12 ? * 2# *)", Some("day-of-week"), 16, "must be 1-5");
        bad("cron(0 12 ? * 2#1#1 *)", Some("day-of-week"), 16, "must be 1-5");
        bad("cron(0 12 ? * 2#x *)", Some("day-of-week"), 16, "must be 1-5");
        bad("cron(0 12 ? * #2 *)", Some("day-of-week"), 14, "missing value");
        bad("cron(0 12 ? * 8#1 *)", Some("day-of-week"), 14, "value 8 is out of range");
        bad("cron(0 12 ? * 8L *)", Some("day-of-week"), 14, "value 8 is out of range");
        bad("cron(0 12 ? * 1,3#2 *)", Some("day-of-week"), 16, "cannot be combined");
        bad("cron(0 12 ? * 6L,1 *)", Some("day-of-week"), 14, "cannot be combined");
        bad("cron(0 12 ? * L,1 *)", Some("day-of-week"), 14, "cannot be combined");
        bad("cron(0 12 ? * JAN *)", Some("day-of-week"), 14, "unknown name `JAN`: expected 1-7 (SUN-SAT)");
        bad("cron(0 12 ? * 5W *)", Some("day-of-week"), 14, "`W` is only allowed in the day-of-month field");
        bad("cron(0 12 ? * LW *)", Some("day-of-week"), 14, "`W` is only allowed in the day-of-month field");
        bad("cron(0 12 ? * FRI-MON *)", Some("day-of-week"), 14, "reversed");
        bad("cron(0 12 ? * 1/8 *)", Some("day-of-week"), 16, "increment 8 is out of range 1-7");
        bad("cron(0 12 ? * MON-FRI/0 *)", Some("day-of-week"), 22, "increment must be at least 1");
    }

    // ---- year -------------------------------------------------------------------------

    #[test]
    fn year_bounds() {
        assert_eq!(field_values(5, "1970"), vec![1970]);
        assert_eq!(field_values(5, "2199"), vec![2199]);
        assert_eq!(field_values(5, "*").len(), 230);
        assert_eq!(field_values(5, "*").first(), Some(&1970));
        assert_eq!(field_values(5, "*").last(), Some(&2199));
        assert_eq!(field_values(5, "2026-2028"), vec![2026, 2027, 2028]);
        assert_eq!(field_values(5, "2026,2030"), vec![2026, 2030]);
        assert_eq!(field_values(5, "2190/5"), vec![2190, 2195]);
        assert_eq!(field_values(5, "1970/229"), vec![1970, 2199]);
        bad("cron(0 0 * * ? 1970/230)", Some("year"), 20, "increment 230 is out of range 1-229");
        bad("cron(0 0 * * ? 1969)", Some("year"), 15, "value 1969 is out of range 1970-2199");
        bad("cron(0 0 * * ? 2200)", Some("year"), 15, "value 2200 is out of range 1970-2199");
        bad("cron(0 0 * * ? 26)", Some("year"), 15, "value 26 is out of range 1970-2199");
        bad("cron(0 0 * * ? 2026-2020)", Some("year"), 15, "reversed");
        bad("cron(0 0 * * ? */231)", Some("year"), 17, "increment 231 is out of range 1-229");
        bad("cron(0 0 * * ? ?)", Some("year"), 15, "`?` is only allowed");
    }

    // ---- whole expression -------------------------------------------------------------

    #[test]
    fn field_count() {
        bad("cron(0 12 * * ?)", None, 15, "too few fields (5)");
        bad("cron(0 12 * * ? * *)", None, 18, "too many fields (7)");
        bad("cron(0 12 * * ? * 2026 1)", None, 18, "too many fields (8)");
        bad("cron(0)", None, 6, "too few fields (1)");
        bad("cron()", None, 5, "empty cron expression");
        // Unix cron (5 fields) is the classic mistake.
        let e = bad("cron(*/5 * * * *)", None, 16, "expected 6 fields");
        assert!(e.to_string().starts_with("cron expression at column 17"), "{e}");
    }

    #[test]
    fn question_mark_rules() {
        bad("cron(0 12 ? * ? *)", Some("day-of-week"), 14, "can't use `?` in both");
        bad("cron(0 12 * * * *)", Some("day-of-week"), 14, "can't use `*` in both");
        bad("cron(0 12 1 * MON *)", Some("day-of-week"), 14, "one of them must be `?`");
        bad("cron(0 12 * * MON *)", Some("day-of-week"), 14, "one of them must be `?`");
        bad("cron(0 12 1 * * *)", Some("day-of-week"), 14, "one of them must be `?`");
        assert!(matches!(ok("cron(0 12 ? * * *)").days, DaySpec::Week(DowSpec::Days(_))));
        assert!(matches!(ok("cron(0 12 * * ? *)").days, DaySpec::Month(DomSpec::Days(_))));
        // Field errors are reported before the `?` rule.
        bad("cron(0 12 * * 9 *)", Some("day-of-week"), 14, "out of range");
    }

    #[test]
    fn envelope_and_garbage() {
        bad("cron(foo bar baz qux quux corge)", Some("minutes"), 5, "invalid value `FOO`");
        bad("cron(0 12 * * ? *", None, 17, "missing closing `)`");
        bad("cron(0 12 * * ? *))", None, 18, "unexpected text after the closing `)`");
        bad("cron(0 12 * * ? *) ", None, 18, "unexpected text");
        bad("cron(0 12 * * ? *;)", Some("year"), 16, "invalid value `*;`");
        bad("cron(0 12 * * ? (*))", None, 19, "unexpected text");
        bad("cron( 0 12 * * ? *)", None, 5, "unexpected space after `(`");
        bad("cron(0 12 * * ? * )", None, 17, "unexpected space before `)`");
        bad("cron(0\t12 * * ? *)", None, 6, "invalid character");
        bad("cron(0 12 * * ? *)\n", None, 18, "unexpected text");
        bad("rate(0 12 * * ? *)", None, 0, "expected `cron(`");
        bad("cron[0 12 * * ? *]", None, 0, "expected `cron(`");
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (input, canonical) in [
            ("cron(0 12 * * ? *)", "cron(0 12 * * ? *)"),
            ("cron(0/15   9-17 ? jan-mar mon-fri 2026-2030)", "cron(0/15 9-17 ? JAN-MAR MON-FRI 2026-2030)"),
            ("cron(0 0 lw * ? *)", "cron(0 0 LW * ? *)"),
            ("cron(0 0 15w * ? *)", "cron(0 0 15W * ? *)"),
            ("cron(0 0 ? * fril *)", "cron(0 0 ? * FRIL *)"),
            ("cron(0 0 ? * tue#2 *)", "cron(0 0 ? * TUE#2 *)"),
        ] {
            let c = ok(input);
            assert_eq!(c.to_string(), canonical);
            assert_eq!(ok(canonical), c);
            assert_eq!(ok(&c.to_string()).to_string(), canonical);
        }
        assert_eq!(ok("cron(0/15 9-17 ? JAN MON *)").fields(), ["0/15", "9-17", "?", "JAN", "MON", "*"]);
        assert_eq!(ok("cron(0 12 ? * mon *)"), ok("cron(0 12 ? * MON *)"));
        // Same fire times, different spelling: not equal (equality is textual).
        assert_ne!(ok("cron(*/15 * * * ? *)"), ok("cron(0/15 * * * ? *)"));
        assert_eq!(FIELD_NAMES, ["minutes", "hours", "day-of-month", "month", "day-of-week", "year"]);
    }

    // ---- matching on the wall clock ---------------------------------------------------

    #[test]
    fn matches_local_requires_whole_minutes() {
        let c = ok("cron(30 9 * * ? *)");
        assert!(c.matches_local(local(2026, 5, 1, 9, 30)));
        assert!(!c.matches_local(local(2026, 5, 1, 9, 31)));
        assert!(!c.matches_local(local(2026, 5, 1, 10, 30)));
        let with_seconds = local(2026, 5, 1, 9, 30).with_second(1).unwrap();
        assert!(!c.matches_local(with_seconds));
        assert!(!c.matches_local(local(2026, 5, 1, 9, 30).with_nanosecond(1).unwrap()));
        assert!(!c.matches_local(local(1969, 5, 1, 9, 30)));
        assert!(!c.matches_local(local(2200, 5, 1, 9, 30)));
    }

    #[test]
    fn next_local_basics() {
        let from = local(2026, 5, 1, 9, 30);
        assert_eq!(next_n("cron(30 9 * * ? *)", from, 2), ["2026-05-01 09:30", "2026-05-02 09:30"]);
        // Rounds up to a whole minute.
        let later = from.with_second(1).unwrap();
        assert_eq!(next_n("cron(30 9 * * ? *)", later, 1), ["2026-05-02 09:30"]);
        assert_eq!(
            next_n("cron(*/20 * * * ? *)", local(2026, 12, 31, 23, 1), 4),
            ["2026-12-31 23:20", "2026-12-31 23:40", "2027-01-01 00:00", "2027-01-01 00:20"]
        );
        assert_eq!(
            next_n("cron(0 9-17/4 ? * MON-FRI *)", local(2026, 5, 1, 14, 0), 4),
            ["2026-05-01 17:00", "2026-05-04 09:00", "2026-05-04 13:00", "2026-05-04 17:00"]
        );
        assert_eq!(
            next_n("cron(59 23 31 12 ? *)", local(2026, 1, 1, 0, 0), 2),
            ["2026-12-31 23:59", "2027-12-31 23:59"]
        );
        assert_eq!(
            next_n("cron(0 0 1 JAN,JUL ? 2027/2)", local(2026, 3, 1, 0, 0), 3),
            ["2027-01-01 00:00", "2027-07-01 00:00", "2029-01-01 00:00"]
        );
        // Before 1970 the search starts at 1970.
        assert_eq!(next_n("cron(0 0 * * ? *)", local(1900, 6, 1, 0, 0), 1), ["1970-01-01 00:00"]);
        // The last representable minute, and nothing after 2199.
        assert_eq!(next_n("cron(* * * * ? *)", local(2199, 12, 31, 23, 59), 2), ["2199-12-31 23:59"]);
        assert_eq!(next_n("cron(* * * * ? *)", local(2200, 1, 1, 0, 0), 1), Vec::<String>::new());
    }

    #[test]
    fn last_day_of_month() {
        let l = "cron(0 0 L * ? *)";
        assert_eq!(days_of(l, 2028, 2), [29]);
        assert_eq!(days_of(l, 2027, 2), [28]);
        assert_eq!(days_of(l, 2000, 2), [29]);
        assert_eq!(days_of(l, 2100, 2), [28]);
        assert_eq!(days_of(l, 2026, 4), [30]);
        assert_eq!(days_of(l, 2026, 1), [31]);
        assert_eq!(days_of(l, 2026, 12), [31]);
        assert_eq!(
            next_n(l, local(2027, 12, 15, 0, 0), 4),
            ["2027-12-31 00:00", "2028-01-31 00:00", "2028-02-29 00:00", "2028-03-31 00:00"]
        );
    }

    #[test]
    fn last_weekday_of_month() {
        let lw = "cron(0 0 LW * ? *)";
        assert_eq!(days_of(lw, 2026, 1), [30]); // 31st is a Saturday
        assert_eq!(days_of(lw, 2026, 5), [29]); // 31st is a Sunday
        assert_eq!(days_of(lw, 2026, 2), [27]); // 28th is a Saturday
        assert_eq!(days_of(lw, 2027, 2), [26]); // 28th is a Sunday
        assert_eq!(days_of(lw, 2028, 2), [29]); // 29th is a Tuesday
        assert_eq!(days_of(lw, 2026, 12), [31]); // Thursday
        assert_eq!(days_of(lw, 2028, 4), [28]); // 30th is a Sunday
        assert_eq!(days_of(lw, 2028, 9), [29]); // 30th is a Saturday
    }

    #[test]
    fn nearest_weekday() {
        let w15 = "cron(0 0 15W * ? *)";
        assert_eq!(days_of(w15, 2026, 8), [14]); // Saturday -> Friday
        assert_eq!(days_of(w15, 2026, 3), [16]); // Sunday -> Monday
        assert_eq!(days_of(w15, 2026, 12), [15]); // Tuesday
        let w1 = "cron(0 0 1W * ? *)";
        assert_eq!(days_of(w1, 2026, 8), [3]); // Saturday 1st -> Monday 3rd, not the previous month
        assert_eq!(days_of(w1, 2026, 2), [2]); // Sunday -> Monday 2nd
        assert_eq!(days_of(w1, 2026, 12), [1]); // Tuesday
        let w31 = "cron(0 0 31W * ? *)";
        assert_eq!(days_of(w31, 2026, 5), [29]); // Sunday 31st -> Friday 29th, not next month
        assert_eq!(days_of(w31, 2026, 1), [30]); // Saturday -> Friday
        assert_eq!(days_of(w31, 2026, 12), [31]); // Thursday
        assert_eq!(days_of(w31, 2026, 4), Vec::<u32>::new()); // April has no 31st
        assert_eq!(days_of("cron(0 0 30W * ? *)", 2028, 2), Vec::<u32>::new());
        assert_eq!(days_of("cron(0 0 29W * ? *)", 2028, 2), [29]);
        assert_eq!(days_of("cron(0 0 30W * ? *)", 2028, 9), [29]); // Saturday 30th (last) -> Friday
        assert_eq!(days_of("cron(0 0 30W * ? *)", 2028, 4), [28]); // Sunday 30th (last) -> Friday 28th
        assert_eq!(
            next_n(w31, local(2026, 1, 1, 0, 0), 7),
            [
                "2026-01-30 00:00",
                "2026-03-31 00:00",
                "2026-05-29 00:00",
                "2026-07-31 00:00",
                "2026-08-31 00:00",
                "2026-10-30 00:00",
                "2026-12-31 00:00"
            ]
        );
    }

    #[test]
    fn nth_and_last_weekday_of_month() {
        // 6L: last Friday.
        assert_eq!(days_of("cron(0 0 ? * 6L *)", 2026, 1), [30]);
        assert_eq!(days_of("cron(0 0 ? * 6L *)", 2026, 7), [31]);
        assert_eq!(days_of("cron(0 0 ? * 6L *)", 2026, 2), [27]);
        // 1L: last Sunday (the European DST days).
        assert_eq!(days_of("cron(0 0 ? * 1L *)", 2026, 3), [29]);
        assert_eq!(days_of("cron(0 0 ? * 1L *)", 2026, 10), [25]);
        // 2#1: first Monday.
        assert_eq!(days_of("cron(0 0 ? * 2#1 *)", 2026, 6), [1]);
        assert_eq!(days_of("cron(0 0 ? * 2#1 *)", 2026, 3), [2]);
        assert_eq!(days_of("cron(0 0 ? * MON#1 *)", 2026, 8), [3]);
        // 3#2: second Tuesday.
        assert_eq!(days_of("cron(0 0 ? * 3#2 *)", 2026, 5), [12]);
        assert_eq!(days_of("cron(0 0 ? * 3#2 *)", 2026, 12), [8]);
        // 5th occurrence only in months that have one.
        assert_eq!(days_of("cron(0 0 ? * 5#5 *)", 2026, 4), [30]); // fifth Thursday
        assert_eq!(days_of("cron(0 0 ? * 5#5 *)", 2026, 5), Vec::<u32>::new());
        // L in day-of-week alone is Saturday.
        assert_eq!(days_of("cron(0 0 ? * L *)", 2026, 2), [7, 14, 21, 28]);
        assert_eq!(days_of("cron(0 0 ? * MON-FRI *)", 2026, 2).len(), 20);
        assert_eq!(days_of("cron(0 0 ? * SUN,SAT *)", 2026, 2), [1, 7, 8, 14, 15, 21, 22, 28]);
        // A 5th Monday in February happens only in a leap year starting on a Monday.
        assert_eq!(
            next_n("cron(0 0 ? FEB 2#5 *)", local(2026, 1, 1, 0, 0), 3),
            ["2044-02-29 00:00", "2072-02-29 00:00", "2112-02-29 00:00"]
        );
    }

    #[test]
    fn leap_day() {
        assert_eq!(
            next_n("cron(0 0 29 2 ? *)", local(2027, 1, 1, 0, 0), 3),
            ["2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"]
        );
        // 2100 is not a leap year.
        assert_eq!(next_n("cron(0 0 29 FEB ? *)", local(2097, 1, 1, 0, 0), 1), ["2104-02-29 00:00"]);
    }

    #[test]
    fn searches_are_fast_and_end() {
        let started = Instant::now();
        let c = ok("cron(0 0 29 2 ? *)");
        assert_eq!(c.next_local_at_or_after(local(2028, 3, 1, 0, 0)), Some(local(2032, 2, 29, 0, 0)));
        for never in [
            "cron(0 0 30 2 ? *)",
            "cron(0 0 31 4,6,9,11 ? *)",
            "cron(0 0 * * ? 2020)",
            "cron(0 0 30W FEB ? *)",
            "cron(0 0 ? FEB 2#5 2197-2199)",
            "cron(* * 31 FEB ? *)",
        ] {
            assert_eq!(ok(never).next_local_at_or_after(local(2026, 1, 1, 0, 0)), None, "{never}");
        }
        // Every minute of 2199: still found immediately.
        let every = ok("cron(* * * * ? 2199)");
        assert_eq!(every.next_local_at_or_after(local(1970, 1, 1, 0, 0)), Some(local(2199, 1, 1, 0, 0)));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}
