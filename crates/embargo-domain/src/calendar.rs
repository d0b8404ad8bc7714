//! Business calendars and working-time arithmetic for SLA deadlines.
//!
//! A [`BusinessCalendar`] is a team's time zone, its weekend days and its holidays. A local
//! date is a *working day* when it is neither a weekend day nor a holiday. Two kinds of
//! arithmetic build on it:
//!
//! - **Whole working days** ([`BusinessCalendar::add_working_days`]): the same local time of
//!   day on the Nth working day after the start's local date. This is what "acknowledge within
//!   10 working days" means to a person reading a deadline.
//! - **Working time** ([`BusinessCalendar::working_days_between`] and its exact inverse
//!   [`BusinessCalendar::add_working_duration`]): used to pause and resume SLA clocks, where
//!   what is left of a budget is a fraction of working days.
//!
//! # Working time, precisely
//!
//! Working time is counted in whole *working seconds* ([`WorkingDuration`]); a working day is
//! [`WORKING_DAY_SECONDS`] = 86 400 of them, whatever the real length of that local day (23 h,
//! 24 h or 25 h across a DST change). Every instant `x` has a working-clock position
//! `W(x) = 86 400 × (working days wholly before x's local date) + P(x)`, where `P(x)` is 0 on a
//! non-working day and, on a working day `D` whose local midnight-to-midnight span is `L`
//! nanoseconds long, `P(x) = floor((x − start(D)) × 86 400 / L)` with `x − start(D)` in
//! nanoseconds (so sub-second parts are truncated: working time has one-second resolution).
//! Then:
//!
//! - `working_days_between(a, b) = W(b) − W(a)` (zero when `b <= a`). It is additive:
//!   `between(a, b) + between(b, c) == between(a, c)` for `a <= b <= c`.
//! - `add_working_duration(s, d)` is the earliest instant `x >= s` with `W(x) = W(s) + d`.
//!   Because one working second is always longer than one nanosecond, every working-clock
//!   value is reached, so `between(s, add(s, d)) == d` exactly, for every `d`.
//!
//! On a 24-hour local day `P` is the wall-clock time of day, so adding whole working days
//! between two ordinary days keeps the local time, like `add_working_days`. On a DST-change
//! day that is a working day the working seconds are spread evenly over the day's real length
//! (23 or 25 hours), so an instant found by working time on such a day can be up to the size
//! of the change away from the wall-clock time it would have on an ordinary day: just under
//! an hour in most zones (55 minutes at 02:00 on the day New York's clocks go back, a working
//! day with a Friday–Saturday weekend), half an hour on Lord Howe Island. With a weekend that
//! holds every change day (Saturday–Sunday in Europe and North America) there is no drift.
//! That is the price of an exact inverse; whole working days
//! ([`BusinessCalendar::add_working_days`]) keep the wall clock always.
//!
//! A calendar with no working weekday at all (every weekday a weekend day) never reaches a
//! deadline: the additions then return [`Timestamp::MAX`]. So do results past jiff's range.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The working seconds in one working day.
pub const WORKING_DAY_SECONDS: u64 = 86_400;

/// How many days in a row without a working day mean that no deadline is ever reached
/// (yearly holidays covering every day): the additions then return [`Timestamp::MAX`].
pub const NO_WORKING_DAY_LIMIT: u32 = 4 * 366;

/// A holiday that recurs on the same date every `every` years from `start`
/// (`RRULE:FREQ=YEARLY`), for `days` days each time, up to `last` if the rule ends, except
/// the occurrences that start on an `except` date (`EXDATE`, and occurrences moved or
/// cancelled with `RECURRENCE-ID`). An occurrence on 29 February exists only in leap years.
/// Kept as a rule (not expanded to dates), so it covers every year deadlines can reach.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearlyHoliday {
    /// The first occurrence.
    pub start: Date,
    /// Every this many years (1 to 100).
    pub every: i16,
    /// No occurrence starts after this date.
    pub last: Option<Date>,
    /// How many days each occurrence lasts (1 to [`ICS_MAX_EVENT_DAYS`]).
    pub days: i32,
    /// Start dates of occurrences that do not happen.
    pub except: BTreeSet<Date>,
}

impl YearlyHoliday {
    /// The occurrence of this rule that starts in `year`, if there is one.
    pub fn occurrence_in(&self, year: i16) -> Option<Date> {
        let since = i32::from(year) - i32::from(self.start.year());
        if since < 0 || since % i32::from(self.every.max(1)) != 0 {
            return None;
        }
        let date = Date::new(year, self.start.month(), self.start.day()).ok()?;
        (self.last.is_none_or(|last| date <= last) && !self.except.contains(&date)).then_some(date)
    }

    /// Whether `date` falls in one of this rule's occurrences.
    pub fn covers(&self, date: Date) -> bool {
        // Occurrences last at most a year and a day, so only this year's and last year's can
        // reach `date`.
        [date.year(), date.year().saturating_sub(1)].into_iter().any(|year| {
            self.occurrence_in(year)
                .is_some_and(|first| first <= date && date.since(first).is_ok_and(|span| span.get_days() < self.days))
        })
    }

    /// The rule in the text form it is stored in: `DTSTART=20101111;INTERVAL=1;DAYS=1`, then
    /// `;UNTIL=YYYYMMDD` and `;EXDATE=YYYYMMDD,…` when they apply. Canonical: equal rules
    /// have equal texts. [`YearlyHoliday::from_text`] reads it back.
    pub fn to_text(&self) -> String {
        let ymd = |d: &Date| d.strftime("%Y%m%d").to_string();
        let mut text = format!("DTSTART={};INTERVAL={};DAYS={}", ymd(&self.start), self.every, self.days);
        if let Some(last) = &self.last {
            text.push_str(&format!(";UNTIL={}", ymd(last)));
        }
        if !self.except.is_empty() {
            text.push_str(";EXDATE=");
            text.push_str(&self.except.iter().map(ymd).collect::<Vec<_>>().join(","));
        }
        text
    }

    /// Reads the text of [`YearlyHoliday::to_text`]; `None` if it is not one.
    pub fn from_text(text: &str) -> Option<YearlyHoliday> {
        let date = |v: &str| ics_date(0, "", "", v).ok();
        let (mut start, mut every, mut days, mut last, mut except) = (None, None, None, None, BTreeSet::new());
        for part in text.split(';') {
            let (key, value) = part.split_once('=')?;
            match key {
                "DTSTART" => start = Some(date(value)?),
                "INTERVAL" => every = Some(value.parse::<i16>().ok().filter(|i| (1..=100).contains(i))?),
                "DAYS" => days = Some(value.parse::<i32>().ok().filter(|d| (1..=ICS_MAX_EVENT_DAYS).contains(d))?),
                "UNTIL" => last = Some(date(value)?),
                "EXDATE" => {
                    for d in value.split(',') {
                        except.insert(date(d)?);
                    }
                }
                _ => return None,
            }
        }
        let rule = YearlyHoliday { start: start?, every: every?, last, days: days?, except };
        (rule.to_text() == text).then_some(rule)
    }

    /// In words, for people: `every year on 11 November from 2010`, with the interval, the
    /// length, the end and the exceptions when they apply.
    pub fn describe(&self) -> String {
        let mut text = match self.every {
            1 => "every year".to_owned(),
            n => format!("every {n} years"),
        };
        text.push_str(&format!(" on {} from {}", self.start.strftime("%-d %B"), self.start.year()));
        if self.days > 1 {
            text.push_str(&format!(", {} days", self.days));
        }
        if let Some(last) = self.last {
            text.push_str(&format!(", until {last}"));
        }
        if !self.except.is_empty() {
            let except: Vec<String> = self.except.iter().map(Date::to_string).collect();
            text.push_str(&format!(", except {}", except.join(", ")));
        }
        text
    }
}

/// An amount of working time, in working seconds (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkingDuration(u64);

impl WorkingDuration {
    /// No working time.
    pub const ZERO: WorkingDuration = WorkingDuration(0);

    /// `seconds` working seconds.
    pub const fn from_seconds(seconds: u64) -> Self {
        WorkingDuration(seconds)
    }

    /// `days` whole working days.
    pub const fn from_days(days: u32) -> Self {
        WorkingDuration(days as u64 * WORKING_DAY_SECONDS)
    }

    /// The working seconds.
    pub const fn seconds(self) -> u64 {
        self.0
    }

    /// The working days, as a fraction (for display; the arithmetic uses seconds).
    pub fn days(self) -> f64 {
        self.0 as f64 / WORKING_DAY_SECONDS as f64
    }

    /// `self − other`, or zero if `other` is larger.
    pub const fn saturating_sub(self, other: WorkingDuration) -> Self {
        WorkingDuration(self.0.saturating_sub(other.0))
    }

    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: WorkingDuration) -> Self {
        WorkingDuration(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for WorkingDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} working days", self.days())
    }
}

/// A team's business calendar: time zone, weekend days and holidays.
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessCalendar {
    /// The zone in which local dates (and so working days) are reckoned.
    pub time_zone: TimeZone,
    /// The weekdays that are never working days.
    pub weekend: Vec<Weekday>,
    /// Local dates that are not working days.
    pub holidays: BTreeSet<Date>,
    /// Holidays that recur every year (or every few years), kept as rules so that they
    /// never run out.
    pub yearly: Vec<YearlyHoliday>,
}

impl BusinessCalendar {
    /// A calendar in `time_zone` with a Saturday–Sunday weekend and no holidays.
    pub fn new(time_zone: TimeZone) -> Self {
        BusinessCalendar {
            time_zone,
            weekend: vec![Weekday::Saturday, Weekday::Sunday],
            holidays: BTreeSet::new(),
            yearly: Vec::new(),
        }
    }

    /// Whether `date` (a local date in this calendar's zone) is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        !self.weekend.contains(&date.weekday())
            && !self.holidays.contains(&date)
            && !self.yearly.iter().any(|rule| rule.covers(date))
    }

    /// Whether any weekday at all is a working day (otherwise no deadline is ever reached).
    fn has_working_weekday(&self) -> bool {
        [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ]
        .iter()
        .any(|day| !self.weekend.contains(day))
    }

    /// The first working day strictly after `date`, if there is one in jiff's range.
    fn next_working_day(&self, date: Date) -> Option<Date> {
        if !self.has_working_weekday() {
            return None;
        }
        // Some weekday works, but yearly rules may cover every day: give up after
        // [`NO_WORKING_DAY_LIMIT`] days in a row without a working day.
        let mut date = date.tomorrow().ok()?;
        let mut searched = 0;
        while !self.is_working_day(date) {
            searched += 1;
            if searched > NO_WORKING_DAY_LIMIT {
                return None;
            }
            date = date.tomorrow().ok()?;
        }
        Some(date)
    }

    /// The local date of `instant`.
    fn local_date(&self, instant: Timestamp) -> Date {
        instant.to_zoned_datetime(self.time_zone.clone()).date()
    }

    /// The first instant of local date `date` (after the gap if midnight is skipped).
    fn start_of(&self, date: Date) -> Option<Timestamp> {
        self.time_zone.to_ambiguous_timestamp(date.to_datetime(Time::midnight())).compatible().ok()
    }

    /// The start of `date` and the length of that local day, in nanoseconds.
    fn day_span(&self, date: Date) -> Option<(i128, i128)> {
        let start = self.start_of(date)?.as_nanosecond();
        let end = self.start_of(date.tomorrow().ok()?)?.as_nanosecond();
        Some((start, end - start))
    }

    /// `P(x)` of the module documentation for an instant on working day `date`.
    fn position(&self, date: Date, instant: Timestamp) -> u64 {
        match self.day_span(date) {
            Some((start, length)) if length > 0 => {
                let offset = (instant.as_nanosecond() - start).clamp(0, length - 1);
                (offset * i128::from(WORKING_DAY_SECONDS) / length) as u64
            }
            _ => 0,
        }
    }

    /// The instant `days` working days after `start`: the same local time of day on the Nth
    /// working day after `start`'s local date. With 0 days, `start` itself. Across a DST
    /// change jiff picks the compatible instant (the later one in a gap, the earlier in a
    /// fold).
    pub fn add_working_days(&self, start: Timestamp, days: u32) -> Timestamp {
        if days == 0 {
            return start;
        }
        let zoned = start.to_zoned_datetime(self.time_zone.clone());
        let mut date = zoned.date();
        for _ in 0..days {
            match self.next_working_day(date) {
                Some(next) => date = next,
                None => return Timestamp::MAX,
            }
        }
        date.to_datetime(zoned.time())
            .to_zoned_datetime(self.time_zone.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }

    /// The working time elapsed from `from` to `to` (zero if `to <= from`); see the module
    /// documentation for the exact definition.
    pub fn working_days_between(&self, from: Timestamp, to: Timestamp) -> WorkingDuration {
        if to <= from {
            return WorkingDuration::ZERO;
        }
        let (first, last) = (self.local_date(from), self.local_date(to));
        if first == last {
            return if self.is_working_day(first) {
                WorkingDuration(self.position(last, to) - self.position(first, from))
            } else {
                WorkingDuration::ZERO
            };
        }
        let mut total = 0u64;
        if self.is_working_day(first) {
            total += WORKING_DAY_SECONDS - self.position(first, from);
        }
        let mut date = first;
        while let Some(next) = date.checked_add(1.day()).ok().filter(|d| *d < last) {
            if self.is_working_day(next) {
                total += WORKING_DAY_SECONDS;
            }
            date = next;
        }
        if self.is_working_day(last) {
            total += self.position(last, to);
        }
        WorkingDuration(total)
    }

    /// The earliest instant `x >= start` with `working_days_between(start, x) == amount`: the
    /// exact inverse of [`Self::working_days_between`]. [`Timestamp::MAX`] if no such instant
    /// is in range (or the calendar has no working weekday).
    pub fn add_working_duration(&self, start: Timestamp, amount: WorkingDuration) -> Timestamp {
        if amount == WorkingDuration::ZERO {
            return start;
        }
        let date = self.local_date(start);
        let (mut date, mut left) = if self.is_working_day(date) {
            (date, self.position(date, start) + amount.0)
        } else {
            match self.next_working_day(date) {
                Some(next) => (next, amount.0),
                None => return Timestamp::MAX,
            }
        };
        while left > WORKING_DAY_SECONDS {
            left -= WORKING_DAY_SECONDS;
            match self.next_working_day(date) {
                Some(next) => date = next,
                None => return Timestamp::MAX,
            }
        }
        // left is in 1..=86 400: the smallest offset whose position is `left`.
        let Some((day_start, length)) = self.day_span(date) else { return Timestamp::MAX };
        let numerator = i128::from(left) * length;
        let divisor = i128::from(WORKING_DAY_SECONDS);
        let offset = (numerator + divisor - 1) / divisor;
        Timestamp::from_nanosecond(day_start + offset).unwrap_or(Timestamp::MAX)
    }
}

/// The instant `days` working days after `start` in time zone `tz`, with a Saturday–Sunday
/// weekend and no holidays. A shorthand for [`BusinessCalendar::add_working_days`].
pub fn add_working_days(start: Timestamp, days: u32, tz: &TimeZone) -> Timestamp {
    BusinessCalendar::new(tz.clone()).add_working_days(start, days)
}

// ---------------------------------------------------------------------------------------------
// iCalendar holiday import
// ---------------------------------------------------------------------------------------------
//
// Hand-written on purpose: the maintained crates (icalendar 0.17, ical_rust, ikal) bring chrono
// (and uuid, nom, iso8601) next to jiff for a job that needs one component type, three
// properties and yearly recurrence. What is read is small and strict enough to do here, and
// anything outside it is an error that names the line rather than a silently lost holiday.

/// The longest unfolded content line accepted, in bytes.
pub const ICS_MAX_LINE: usize = 16 * 1024;
/// The most dates (and yearly rules) one import may produce.
pub const ICS_MAX_DATES: usize = 20_000;
/// The longest single event accepted, in days.
pub const ICS_MAX_EVENT_DAYS: i32 = 366;
/// The most components one file may nest.
pub const ICS_MAX_DEPTH: usize = 16;

/// Why an iCalendar file was rejected. `line` is the 1-based physical line on which the
/// offending (possibly folded) content line starts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    #[error("line {line}: a content line is longer than {ICS_MAX_LINE} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: not a content line (no `:`)")]
    Malformed { line: usize },
    #[error("line {line}: END:{name} without a matching BEGIN")]
    Unbalanced { line: usize, name: String },
    #[error("line {line}: END:{found} closes BEGIN:{open} (line {opened})")]
    Mismatched { line: usize, found: String, open: String, opened: usize },
    #[error("line {line}: components nested more than {ICS_MAX_DEPTH} deep")]
    TooDeep { line: usize },
    #[error("line {line}: an event without DTSTART")]
    MissingStart { line: usize },
    #[error("line {line}: {property} is not an all-day date (YYYYMMDD, year 0001 or later): {value:?}")]
    NotADate { line: usize, property: String, value: String },
    #[error("line {line}: the event ends before it starts")]
    EndBeforeStart { line: usize },
    #[error("line {line}: an event longer than {ICS_MAX_EVENT_DAYS} days")]
    TooLong { line: usize },
    #[error("line {line}: unsupported recurrence {rule:?} (only FREQ=YEARLY on the start date)")]
    UnsupportedRule { line: usize, rule: String },
    #[error("line {line}: unsupported DURATION {value:?} (only PnD or PnW)")]
    UnsupportedDuration { line: usize, value: String },
    #[error("line {line}: RECURRENCE-ID with RANGE=THISANDFUTURE is not supported")]
    UnsupportedRange { line: usize },
    #[error("more than {ICS_MAX_DATES} holiday dates")]
    TooManyDates,
    #[error("the file ends inside a component")]
    Unterminated,
}

/// The holidays of an iCalendar file: single dates, and yearly rules kept as rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcsHolidays {
    /// Every date covered by a one-off event, with its `SUMMARY`, sorted by date and then
    /// name, without exact duplicates.
    pub dates: Vec<(Date, String)>,
    /// The yearly events, with their `SUMMARY`, sorted, without exact duplicates.
    pub yearly: Vec<(YearlyHoliday, String)>,
}

/// Reads the holidays of an iCalendar file (RFC 5545, as Google Calendar, Outlook and
/// government holiday feeds write them).
///
/// Read: line unfolding (CRLF or LF, continuation lines start with a space or a tab);
/// property names case-insensitively, with parameters (quoted values may hold `:`);
/// components nest, and each `END` must name the component it closes. In each `VEVENT`
/// (not inside a nested component such as `VALARM`):
/// - `DTSTART` as a date (`;VALUE=DATE:YYYYMMDD`, or a bare 8-digit value, year 0001 or
///   later);
/// - `DTEND` as a date, exclusive, or `DURATION` as `PnD` / `PnW`; without either the event is
///   one day; multi-day events give every date;
/// - `SUMMARY`, unescaping `\,` `\;` `\\` `\n` `\N`;
/// - `RRULE:FREQ=YEARLY` (with optional `INTERVAL`, `COUNT`, `UNTIL`, and `BYMONTH` /
///   `BYMONTHDAY` only when they restate the start date) becomes a [`YearlyHoliday`] rule,
///   which never runs out (it is not expanded to a number of years); 29 February recurs only
///   in leap years;
/// - `EXDATE` dates remove occurrences;
/// - `STATUS:CANCELLED` events are not holidays;
/// - an event with `RECURRENCE-ID` (and the `UID` of another event of the file) moves that
///   occurrence: the original date is no longer a holiday and the event's own dates are
///   (or none, if it is cancelled). Without a matching event it stands alone.
///
/// Rejected with an error naming the line: timed events (a holiday is a whole local date),
/// any other recurrence (`FREQ=MONTHLY`, `BYDAY=…`), `RECURRENCE-ID;RANGE=THISANDFUTURE`,
/// events longer than [`ICS_MAX_EVENT_DAYS`] days, content lines over [`ICS_MAX_LINE`]
/// bytes, an `END` that does not close the open component, nesting deeper than
/// [`ICS_MAX_DEPTH`], and more than [`ICS_MAX_DATES`] dates overall. Everything else (other
/// components, other properties) is ignored. Never panics.
pub fn parse_ics_holidays(text: &str) -> Result<IcsHolidays, IcsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut events: Vec<IcsEvent> = Vec::new();
    // The open components: (name, line of BEGIN).
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut event_depth: Option<usize> = None; // depth of the open VEVENT
    let mut event = IcsEvent::default();
    for (line, content) in unfold(text) {
        let content = content?;
        if content.trim().is_empty() {
            continue;
        }
        let (name, params, value) = split_property(&content).ok_or(IcsError::Malformed { line })?;
        match name.as_str() {
            "BEGIN" => {
                if open.len() >= ICS_MAX_DEPTH {
                    return Err(IcsError::TooDeep { line });
                }
                let component = value.trim().to_ascii_uppercase();
                if event_depth.is_none() && component == "VEVENT" {
                    event_depth = Some(open.len() + 1);
                    event = IcsEvent { line, ..IcsEvent::default() };
                }
                open.push((component, line));
            }
            "END" => {
                let component = value.trim().to_ascii_uppercase();
                let Some((begun, opened)) = open.pop() else {
                    return Err(IcsError::Unbalanced { line, name: value.chars().take(40).collect() });
                };
                if begun != component {
                    return Err(IcsError::Mismatched {
                        line,
                        found: value.chars().take(40).collect(),
                        open: begun,
                        opened,
                    });
                }
                if event_depth == Some(open.len() + 1) {
                    event_depth = None;
                    events.push(std::mem::take(&mut event));
                }
            }
            _ if event_depth == Some(open.len()) => event.property(line, &name, &params, value)?,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(IcsError::Unterminated);
    }
    expand_events(events)
}

/// Applies moved and cancelled occurrences, then expands every event.
fn expand_events(mut events: Vec<IcsEvent>) -> Result<IcsHolidays, IcsError> {
    // Overrides (RECURRENCE-ID) take their occurrence away from the event they belong to.
    let overrides: Vec<(Option<String>, Date)> =
        events.iter().filter_map(|e| e.recurrence_id.map(|(_, id)| (e.uid.clone(), id))).collect();
    let mut cancelled_series = BTreeSet::new();
    for master in events.iter_mut().filter(|e| e.recurrence_id.is_none() && e.uid.is_some()) {
        if master.cancelled {
            cancelled_series.extend(master.uid.clone());
            continue;
        }
        for (uid, id) in &overrides {
            if *uid == master.uid {
                master.except.insert(*id);
            }
        }
    }
    let mut out = IcsHolidays::default();
    for event in &events {
        let of_cancelled_series =
            event.recurrence_id.is_some() && event.uid.as_ref().is_some_and(|u| cancelled_series.contains(u));
        if event.cancelled || of_cancelled_series {
            continue;
        }
        event.expand(&mut out)?;
    }
    out.dates.sort();
    out.dates.dedup();
    out.yearly.sort();
    out.yearly.dedup();
    Ok(out)
}

/// Unfolds `text` into (first physical line number, content line).
fn unfold(text: &str) -> impl Iterator<Item = (usize, Result<String, IcsError>)> + '_ {
    let mut lines = text.split('\n').enumerate().peekable();
    std::iter::from_fn(move || {
        let (index, first) = lines.next()?;
        let line = index + 1;
        let mut content = first.strip_suffix('\r').unwrap_or(first).to_string();
        let mut too_long = content.len() > ICS_MAX_LINE;
        while let Some((_, next)) = lines.next_if(|(_, l)| l.starts_with([' ', '\t'])) {
            let next = next.strip_suffix('\r').unwrap_or(next);
            if !too_long {
                content.push_str(&next[1..]);
                too_long = content.len() > ICS_MAX_LINE;
            }
        }
        Some((line, if too_long { Err(IcsError::LineTooLong { line }) } else { Ok(content) }))
    })
}

/// `NAME;PARAM=V;…:VALUE` into the upper-cased name, the upper-cased parameter text and the
/// value. The value starts at the first `:` outside double quotes.
fn split_property(content: &str) -> Option<(String, String, &str)> {
    let mut quoted = false;
    let colon = content.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        ':' if !quoted => Some(i),
        _ => None,
    })?;
    let head = &content[..colon];
    let (name, params) = head.split_once(';').unwrap_or((head, ""));
    Some((name.trim().to_ascii_uppercase(), params.to_ascii_uppercase(), &content[colon + 1..]))
}

#[derive(Default)]
struct IcsEvent {
    line: usize,
    start: Option<Date>,
    end: Option<(usize, Date)>,
    duration_days: Option<(usize, i32)>,
    summary: String,
    rule: Option<(usize, String)>,
    except: BTreeSet<Date>,
    uid: Option<String>,
    recurrence_id: Option<(usize, Date)>,
    cancelled: bool,
}

impl IcsEvent {
    fn property(&mut self, line: usize, name: &str, params: &str, value: &str) -> Result<(), IcsError> {
        match name {
            "DTSTART" => self.start = Some(ics_date(line, name, params, value)?),
            "DTEND" => self.end = Some((line, ics_date(line, name, params, value)?)),
            "DURATION" => self.duration_days = Some((line, ics_duration_days(line, value)?)),
            "SUMMARY" => self.summary = unescape_text(value),
            "RRULE" => self.rule = Some((line, value.trim().to_string())),
            "EXDATE" => {
                for part in value.split(',') {
                    self.except.insert(ics_date(line, name, params, part)?);
                }
            }
            "UID" => self.uid = Some(value.trim().to_string()),
            "STATUS" => self.cancelled = value.trim().eq_ignore_ascii_case("CANCELLED"),
            "RECURRENCE-ID" => {
                if params.split(';').any(|p| p.starts_with("RANGE=")) {
                    return Err(IcsError::UnsupportedRange { line });
                }
                self.recurrence_id = Some((line, ics_date(line, name, params, value)?));
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds this event's dates, or its yearly rule, to `out`.
    fn expand(&self, out: &mut IcsHolidays) -> Result<(), IcsError> {
        let start = self.start.ok_or(IcsError::MissingStart { line: self.line })?;
        let days = match (self.end, self.duration_days) {
            (Some((line, end)), _) => {
                let days = i64::from(end.since(start).map_err(|_| IcsError::TooLong { line })?.get_days());
                if days <= 0 {
                    return Err(IcsError::EndBeforeStart { line });
                }
                if days > i64::from(ICS_MAX_EVENT_DAYS) {
                    return Err(IcsError::TooLong { line });
                }
                days as i32
            }
            (None, Some((line, days))) if days > ICS_MAX_EVENT_DAYS => return Err(IcsError::TooLong { line }),
            (None, Some((line, days))) if days <= 0 => return Err(IcsError::EndBeforeStart { line }),
            (None, Some((_, days))) => days,
            (None, None) => 1,
        };
        // A moved occurrence is a one-off event, whatever rule it restates.
        match &self.rule {
            Some((line, rule)) if self.recurrence_id.is_none() => {
                let mut yearly = yearly_rule(*line, rule, start, days)?;
                yearly.except.extend(self.except.iter().copied());
                if out.dates.len() + out.yearly.len() >= ICS_MAX_DATES {
                    return Err(IcsError::TooManyDates);
                }
                out.yearly.push((yearly, self.summary.clone()));
            }
            _ => {
                if self.except.contains(&start) {
                    return Ok(());
                }
                for offset in 0..days {
                    let Ok(date) = start.checked_add(offset.days()) else { break };
                    if out.dates.len() + out.yearly.len() >= ICS_MAX_DATES {
                        return Err(IcsError::TooManyDates);
                    }
                    out.dates.push((date, self.summary.clone()));
                }
            }
        }
        Ok(())
    }
}

/// A `DATE` value (year 0001 or later); timed values are rejected.
fn ics_date(line: usize, property: &str, params: &str, value: &str) -> Result<Date, IcsError> {
    let bad = || IcsError::NotADate { line, property: property.to_string(), value: value.chars().take(40).collect() };
    let value = value.trim();
    let explicit_other = params.split(';').any(|p| p.starts_with("VALUE=") && p != "VALUE=DATE");
    if explicit_other || value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i16 = value[..4].parse().map_err(|_| bad())?;
    let month: i8 = value[4..6].parse().map_err(|_| bad())?;
    let day: i8 = value[6..].parse().map_err(|_| bad())?;
    if year < 1 {
        return Err(bad());
    }
    Date::new(year, month, day).map_err(|_| bad())
}

/// A `DURATION` of whole days or weeks, in days.
fn ics_duration_days(line: usize, value: &str) -> Result<i32, IcsError> {
    let bad = || IcsError::UnsupportedDuration { line, value: value.chars().take(40).collect() };
    let body = value.trim().strip_prefix('+').unwrap_or(value.trim()).strip_prefix('P').ok_or_else(bad)?;
    let (number, factor) = match body.as_bytes().last() {
        Some(b'D') => (&body[..body.len() - 1], 1),
        Some(b'W') => (&body[..body.len() - 1], 7),
        _ => return Err(bad()),
    };
    if number.is_empty() || number.len() > 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    number.parse::<i32>().map(|n| n * factor).map_err(|_| bad())
}

/// A yearly rule from its `RRULE` text. `COUNT` becomes the date of the last occurrence
/// (occurrences on a date that does not exist that year, 29 February, are not counted).
fn yearly_rule(line: usize, rule: &str, start: Date, days: i32) -> Result<YearlyHoliday, IcsError> {
    let unsupported = || IcsError::UnsupportedRule { line, rule: rule.chars().take(80).collect() };
    let (mut yearly, mut interval, mut count, mut until) = (false, 1i16, None::<u32>, None::<Date>);
    for part in rule.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(unsupported)?;
        match key.to_ascii_uppercase().as_str() {
            "FREQ" => yearly = value.eq_ignore_ascii_case("YEARLY"),
            "INTERVAL" => interval = value.parse().ok().filter(|i| (1..=100).contains(i)).ok_or_else(unsupported)?,
            "COUNT" => count = Some(value.parse().ok().filter(|c| *c >= 1).ok_or_else(unsupported)?),
            // UNTIL may be a date or a date-time; its date part bounds the occurrences.
            "UNTIL" => {
                until = Some(ics_date(line, "UNTIL", "", value.get(..8).unwrap_or(value)).map_err(|_| unsupported())?)
            }
            "BYMONTH" if value.parse::<i8>().ok() == Some(start.month()) => {}
            "BYMONTHDAY" if value.parse::<i8>().ok() == Some(start.day()) => {}
            "WKST" => {}
            _ => return Err(unsupported()),
        }
    }
    if !yearly {
        return Err(unsupported());
    }
    let mut rule = YearlyHoliday { start, every: interval, last: until, days, except: BTreeSet::new() };
    if let Some(count) = count {
        // The count-th occurrence that exists; the rule ends there (or earlier, by UNTIL).
        let (mut seen, mut year, mut last) = (0u32, start.year(), None);
        while seen < count {
            if let Ok(date) = Date::new(year, start.month(), start.day()) {
                if until.is_some_and(|u| date > u) {
                    break;
                }
                seen += 1;
                last = Some(date);
            }
            match year.checked_add(interval) {
                Some(next) if next <= Date::MAX.year() => year = next,
                _ => break,
            }
        }
        rule.last = last.or(Some(start));
    }
    Ok(rule)
}

/// Unescapes an RFC 5545 TEXT value.
fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn weekends_do_not_count() {
        let utc = TimeZone::UTC;
        // Friday + 1 working day = Monday.
        assert_eq!(add_working_days(at("2026-11-27T10:00:00Z"), 1, &utc), at("2026-11-30T10:00:00Z"));
        // Saturday + 1 = Monday; Wednesday + 10 = two weeks later.
        assert_eq!(add_working_days(at("2026-11-28T10:00:00Z"), 1, &utc), at("2026-11-30T10:00:00Z"));
        assert_eq!(add_working_days(at("2026-11-25T10:00:00Z"), 10, &utc), at("2026-12-09T10:00:00Z"));
        assert_eq!(add_working_days(at("2026-11-25T10:00:00Z"), 0, &utc), at("2026-11-25T10:00:00Z"));
    }

    #[test]
    fn local_time_is_kept_across_dst() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // Friday 2026-10-23 09:00 CEST (07:00Z) + 5 working days = Friday 2026-10-30 09:00 CET (08:00Z).
        assert_eq!(add_working_days(at("2026-10-23T07:00:00Z"), 5, &paris), at("2026-10-30T08:00:00Z"));
    }

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn paris() -> BusinessCalendar {
        BusinessCalendar::new(TimeZone::get("Europe/Paris").unwrap())
    }

    fn new_york() -> BusinessCalendar {
        BusinessCalendar::new(TimeZone::get("America/New_York").unwrap())
    }

    /// A UTC calendar with the 2026–27 Christmas and New Year holidays of a UK-style team.
    fn festive() -> BusinessCalendar {
        let mut cal = BusinessCalendar::new(TimeZone::UTC);
        cal.holidays.extend(["2026-12-25", "2026-12-28", "2027-01-01"].map(date));
        cal
    }

    const DAY: u64 = WORKING_DAY_SECONDS;

    #[test]
    fn holidays_and_custom_weekends_are_not_working_days() {
        let cal = festive();
        assert!(!cal.is_working_day(date("2026-12-25")));
        assert!(!cal.is_working_day(date("2026-12-26")));
        assert!(cal.is_working_day(date("2026-12-24")));
        let mut gulf = BusinessCalendar::new(TimeZone::get("Asia/Dubai").unwrap());
        gulf.weekend = vec![Weekday::Friday, Weekday::Saturday];
        assert!(gulf.is_working_day(date("2026-11-29"))); // a Sunday
        assert!(!gulf.is_working_day(date("2026-11-27"))); // a Friday
    }

    #[test]
    fn whole_days_skip_the_christmas_run_and_the_year_end() {
        let cal = festive();
        // Thu 24 Dec 15:00 + 1: Fri 25 (holiday), weekend, Mon 28 (substitute holiday) -> Tue 29.
        assert_eq!(cal.add_working_days(at("2026-12-24T15:00:00Z"), 1), at("2026-12-29T15:00:00Z"));
        // Tue 29 + 3: Wed 30, Thu 31, (Fri 1 Jan holiday, weekend) Mon 4 Jan 2027.
        assert_eq!(cal.add_working_days(at("2026-12-29T09:30:00Z"), 3), at("2027-01-04T09:30:00Z"));
        // Starting on a holiday or a weekend: the first working day after it counts as 1.
        assert_eq!(cal.add_working_days(at("2026-12-25T12:00:00Z"), 1), at("2026-12-29T12:00:00Z"));
        assert_eq!(cal.add_working_days(at("2027-01-02T12:00:00Z"), 1), at("2027-01-04T12:00:00Z"));
        // 10 working days from Mon 21 Dec: 22,23,24,29,30,31,4,5,6,7 Jan.
        assert_eq!(cal.add_working_days(at("2026-12-21T08:00:00Z"), 10), at("2027-01-07T08:00:00Z"));
    }

    #[test]
    fn whole_days_with_a_friday_saturday_weekend() {
        let mut cal = BusinessCalendar::new(TimeZone::get("Asia/Dubai").unwrap());
        cal.weekend = vec![Weekday::Friday, Weekday::Saturday];
        // Thu 26 Nov 2026 10:00 +04 + 1 = Sun 29 Nov; + 5 = Thu 3 Dec.
        assert_eq!(cal.add_working_days(at("2026-11-26T06:00:00Z"), 1), at("2026-11-29T06:00:00Z"));
        assert_eq!(cal.add_working_days(at("2026-11-26T06:00:00Z"), 5), at("2026-12-03T06:00:00Z"));
        // A full Friday + Saturday count nothing; Thursday-to-Sunday counts only Thursday's rest.
        assert_eq!(cal.working_days_between(at("2026-11-26T20:00:00Z"), at("2026-11-28T20:00:00Z")).seconds(), 0);
        assert_eq!(
            cal.working_days_between(at("2026-11-26T08:00:00Z"), at("2026-11-29T08:00:00Z")),
            WorkingDuration::from_seconds(DAY)
        );
    }

    #[test]
    fn whole_days_across_dst_in_new_york() {
        let cal = new_york();
        // Fri 6 Mar 2026 09:00 EST (14:00Z) + 1 = Mon 9 Mar 09:00 EDT (13:00Z); clocks sprang on Sun 8.
        assert_eq!(cal.add_working_days(at("2026-03-06T14:00:00Z"), 1), at("2026-03-09T13:00:00Z"));
        // Fri 30 Oct 09:00 EDT (13:00Z) + 1 = Mon 2 Nov 09:00 EST (14:00Z); clocks fell back on Sun 1.
        assert_eq!(cal.add_working_days(at("2026-10-30T13:00:00Z"), 1), at("2026-11-02T14:00:00Z"));
    }

    #[test]
    fn working_time_counts_only_working_days() {
        let cal = BusinessCalendar::new(TimeZone::UTC);
        // Friday noon to Monday noon: half of Friday and half of Monday.
        assert_eq!(cal.working_days_between(at("2026-11-27T12:00:00Z"), at("2026-11-30T12:00:00Z")).seconds(), DAY);
        // Within a day, and reversed or empty intervals.
        assert_eq!(cal.working_days_between(at("2026-11-27T06:00:00Z"), at("2026-11-27T12:00:00Z")).seconds(), 21_600);
        assert_eq!(cal.working_days_between(at("2026-11-27T12:00:00Z"), at("2026-11-27T06:00:00Z")).seconds(), 0);
        // Saturday to Sunday: nothing.
        assert_eq!(cal.working_days_between(at("2026-11-28T01:00:00Z"), at("2026-11-29T23:00:00Z")).seconds(), 0);
        // Friday 18:00 + 1 working day = Monday 18:00 (ordinary days keep the local time).
        assert_eq!(
            cal.add_working_duration(at("2026-11-27T18:00:00Z"), WorkingDuration::from_days(1)),
            at("2026-11-30T18:00:00Z")
        );
        // From a Saturday, working time starts on Monday's midnight.
        assert_eq!(
            cal.add_working_duration(at("2026-11-28T18:00:00Z"), WorkingDuration::from_seconds(DAY / 2)),
            at("2026-11-30T12:00:00Z")
        );
        // A whole working day from Monday midnight ends at Tuesday midnight (the earliest instant).
        assert_eq!(
            cal.add_working_duration(at("2026-11-30T00:00:00Z"), WorkingDuration::from_days(1)),
            at("2026-12-01T00:00:00Z")
        );
        // Friday's end is the earliest instant at which Friday's last working second is used.
        assert_eq!(
            cal.add_working_duration(at("2026-11-27T12:00:00Z"), WorkingDuration::from_seconds(DAY / 2)),
            at("2026-11-28T00:00:00Z")
        );
    }

    #[test]
    fn working_time_across_the_holiday_run() {
        let cal = festive();
        // Thu 24 Dec 12:00 to Tue 29 Dec 12:00: half of the 24th and half of the 29th.
        assert_eq!(cal.working_days_between(at("2026-12-24T12:00:00Z"), at("2026-12-29T12:00:00Z")).seconds(), DAY);
        // Thu 31 Dec 12:00 + 1.5 working days: Mon 4 Jan 2027 is the next working day -> Tue 5 Jan 00:00.
        assert_eq!(
            cal.add_working_duration(at("2026-12-31T12:00:00Z"), WorkingDuration::from_seconds(DAY + DAY / 2)),
            at("2027-01-05T00:00:00Z")
        );
    }

    #[test]
    fn working_time_on_dst_days_in_paris() {
        let cal = paris();
        // Mon 30 Mar 2026 is ordinary; Sun 29 Mar (the 23-hour day) is a weekend day. Choose a
        // calendar with a Monday–Friday weekend so that Sunday 29 March works.
        let mut sunday_works = cal.clone();
        sunday_works.weekend = vec![Weekday::Friday, Weekday::Saturday];
        // Sun 29 Mar 2026: 00:00 CET (28 Mar 23:00Z) to 24:00 CEST (29 Mar 22:00Z), 23 hours.
        let start = at("2026-03-28T23:00:00Z");
        let end = at("2026-03-29T22:00:00Z");
        assert_eq!(sunday_works.working_days_between(start, end).seconds(), DAY);
        // Half of the working day is half of the 23 real hours: 11:30 real hours after midnight,
        // which is 12:30 CEST on the wall clock.
        let half = sunday_works.add_working_duration(start, WorkingDuration::from_seconds(DAY / 2));
        assert_eq!(half, at("2026-03-29T10:30:00Z"));
        // The 25-hour day, Sun 25 Oct 2026: 00:00 CEST (24 Oct 22:00Z) to 24:00 CET (25 Oct 23:00Z).
        let start = at("2026-10-24T22:00:00Z");
        assert_eq!(sunday_works.working_days_between(start, at("2026-10-25T23:00:00Z")).seconds(), DAY);
        assert_eq!(
            sunday_works.add_working_duration(start, WorkingDuration::from_seconds(DAY / 2)),
            at("2026-10-25T10:30:00Z")
        );
        // With the usual weekend, those Sundays count nothing; Friday 09:00 CET + 1 working day
        // is Monday 09:00 CEST: the change happened on a non-working day.
        assert_eq!(
            cal.add_working_duration(at("2026-03-27T08:00:00Z"), WorkingDuration::from_days(1)),
            at("2026-03-30T07:00:00Z")
        );
    }

    #[test]
    fn working_time_on_dst_days_in_new_york() {
        let mut cal = new_york();
        cal.weekend = vec![Weekday::Friday, Weekday::Saturday];
        // Sun 1 Nov 2026 is 25 hours long: 00:00 EDT (04:00Z) to 24:00 EST (2 Nov 05:00Z).
        let start = at("2026-11-01T04:00:00Z");
        assert_eq!(cal.working_days_between(start, at("2026-11-02T05:00:00Z")).seconds(), DAY);
        // 01:30 happens twice; the first (05:30Z) is 1.5 real hours in, the second 2.5.
        assert_eq!(cal.working_days_between(start, at("2026-11-01T05:30:00Z")).seconds(), 5_184);
        assert_eq!(cal.working_days_between(start, at("2026-11-01T06:30:00Z")).seconds(), 8_640);
        // Whole days from an ordinary Thursday to the ordinary Monday keep the wall clock.
        assert_eq!(
            cal.add_working_duration(at("2026-10-29T13:00:00Z"), WorkingDuration::from_days(2)),
            at("2026-11-02T14:00:00Z")
        );
    }

    /// Issue 20: the drift on a DST-change day is bounded by the size of the change, and
    /// reaches almost all of it (the documentation used to say "a few minutes").
    #[test]
    fn drift_on_a_dst_day_is_under_the_size_of_the_change() {
        let mut cal = new_york();
        cal.weekend = vec![Weekday::Friday, Weekday::Saturday];
        // Sun 1 Nov 2026, 25 hours: every working position of the day, minute by minute,
        // against the wall-clock time with the same hours and minutes.
        let midnight = at("2026-11-01T04:00:00Z");
        let mut worst = 0i64;
        for minute in 0..24 * 60 {
            let position = WorkingDuration::from_seconds(minute * 60);
            let found = cal.add_working_duration(midnight, position);
            let found = if minute == 0 { midnight } else { found };
            let wall = found.to_zoned_datetime(cal.time_zone.clone());
            let wall_minutes = i64::from(wall.hour()) * 60 + i64::from(wall.minute());
            worst = worst.max((wall_minutes - minute as i64).abs());
        }
        assert!((50..60).contains(&worst), "{worst} minutes");
        // Sun 8 Mar 2026, 23 hours: the same, the other way.
        let midnight = at("2026-03-08T05:00:00Z");
        let mut worst = 0i64;
        for minute in 1..24 * 60 {
            let found = cal.add_working_duration(midnight, WorkingDuration::from_seconds(minute * 60));
            let wall = found.to_zoned_datetime(cal.time_zone.clone());
            let wall_minutes = i64::from(wall.hour()) * 60 + i64::from(wall.minute());
            worst = worst.max((wall_minutes - minute as i64).abs());
        }
        assert!((50..60).contains(&worst), "{worst} minutes");
    }

    #[test]
    fn a_calendar_without_working_days_never_reaches_a_deadline() {
        let mut cal = BusinessCalendar::new(TimeZone::UTC);
        cal.weekend = vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        assert_eq!(cal.add_working_days(at("2026-11-27T12:00:00Z"), 1), Timestamp::MAX);
        assert_eq!(cal.add_working_duration(at("2026-11-27T12:00:00Z"), WorkingDuration::from_days(1)), Timestamp::MAX);
        assert_eq!(cal.working_days_between(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")).seconds(), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn calendar(zone: usize, weekend: u8, holidays: Vec<u16>) -> BusinessCalendar {
            let zone = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"][zone];
            let mut cal = BusinessCalendar::new(TimeZone::get(zone).unwrap());
            let days = [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ];
            // Any weekend but an all-week one.
            cal.weekend = days.iter().enumerate().filter(|(i, _)| weekend & (1 << i) != 0).map(|(_, d)| *d).collect();
            if cal.weekend.len() == 7 {
                cal.weekend.pop();
            }
            let base = date("2025-01-01");
            cal.holidays = holidays.into_iter().map(|d| base.checked_add(i32::from(d).days()).unwrap()).collect();
            cal
        }

        fn instant() -> impl Strategy<Value = Timestamp> {
            // 2025-01-01 to about 2028, to the nanosecond.
            (1_735_689_600i64..1_830_000_000, 0i32..1_000_000_000).prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
        }

        fn any_calendar() -> impl Strategy<Value = BusinessCalendar> {
            (0usize..5, any::<u8>(), proptest::collection::vec(0u16..1200, 0..40))
                .prop_map(|(z, w, h)| calendar(z, w, h))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn adding_then_measuring_is_exact(cal in any_calendar(), start in instant(), amount in 0u64..40 * DAY) {
                let amount = WorkingDuration::from_seconds(amount);
                let end = cal.add_working_duration(start, amount);
                prop_assert!(end >= start);
                prop_assert_eq!(cal.working_days_between(start, end), amount);
                // And it is the earliest such instant.
                if amount > WorkingDuration::ZERO {
                    let before = Timestamp::from_nanosecond(end.as_nanosecond() - 1).unwrap();
                    prop_assert!(cal.working_days_between(start, before) < amount);
                }
            }

            #[test]
            fn measuring_is_additive_and_monotone(cal in any_calendar(), a in instant(), b in instant(), c in instant()) {
                let mut v = [a, b, c];
                v.sort();
                let [a, b, c] = v;
                let ab = cal.working_days_between(a, b);
                let bc = cal.working_days_between(b, c);
                let ac = cal.working_days_between(a, c);
                prop_assert_eq!(ab.seconds() + bc.seconds(), ac.seconds());
                prop_assert!(ab <= ac);
            }

            #[test]
            fn adding_is_monotone(cal in any_calendar(), start in instant(), x in 0u64..30 * DAY, y in 0u64..30 * DAY) {
                let (x, y) = (x.min(y), x.max(y));
                prop_assert!(
                    cal.add_working_duration(start, WorkingDuration::from_seconds(x))
                        <= cal.add_working_duration(start, WorkingDuration::from_seconds(y))
                );
            }

            #[test]
            fn whole_days_land_on_working_days(cal in any_calendar(), start in instant(), days in 0u32..60) {
                let end = cal.add_working_days(start, days);
                prop_assert!(end >= start);
                if days > 0 {
                    let local = end.to_zoned_datetime(cal.time_zone.clone()).date();
                    prop_assert!(cal.is_working_day(local));
                    // Exactly `days` working days after the start date, up to the end date.
                    let mut count = 0;
                    let mut d = start.to_zoned_datetime(cal.time_zone.clone()).date();
                    while d < local {
                        d = d.tomorrow().unwrap();
                        if cal.is_working_day(d) {
                            count += 1;
                        }
                    }
                    prop_assert_eq!(count, days);
                }
            }

            #[test]
            fn whole_days_and_working_time_agree_on_ordinary_days(start in instant(), days in 1u32..30) {
                // In UTC every day is 24 hours, so both notions give the same instant when the
                // start is a whole second (working time has one-second resolution) on a working day.
                let start = Timestamp::from_second(start.as_second()).unwrap();
                let cal = BusinessCalendar::new(TimeZone::UTC);
                prop_assume!(cal.is_working_day(start.to_zoned_datetime(TimeZone::UTC).date()));
                prop_assert_eq!(
                    cal.add_working_days(start, days),
                    cal.add_working_duration(start, WorkingDuration::from_days(days))
                );
            }

            #[test]
            fn ics_parsing_never_panics(text in "(BEGIN:VEVENT\r\n|END:VEVENT\r\n|DTSTART;VALUE=DATE:2026\\d{4}\r\n|RRULE:[A-Z=;0-9]{0,20}\r\n| [^\r\n]{0,10}\r\n|[A-Z;=:\"]{0,12}\r\n|DTEND:\\d{8}\r\n)*") {
                let _ = parse_ics_holidays(&text);
            }

            #[test]
            fn ics_parsing_of_garbage_never_panics(text in "\\PC{0,300}") {
                let _ = parse_ics_holidays(&text);
            }
        }
    }

    /// In the style of the UK government's bank-holidays.ics: CRLF, folded lines, escapes.
    const UK_STYLE: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
METHOD:PUBLISH\r\n\
PRODID:-//uk.gov/GOVUK calendars//EN\r\n\
CALSCALE:GREGORIAN\r\n\
X-WR-CALNAME:England and Wales bank holidays\r\n\
BEGIN:VEVENT\r\n\
DTEND;VALUE=DATE:20260102\r\n\
DTSTART;VALUE=DATE:20260101\r\n\
SUMMARY:New Year’s Day\r\n\
UID:ca6af7456b0088abad9a69f9f620f5ac-38@gov.uk\r\n\
SEQUENCE:0\r\n\
DTSTAMP:20260101T120000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTEND;VALUE=DATE:20260404\r\n\
DTSTART;VALUE=DATE:20260403\r\n\
SUMMARY:Good Friday\r\n\
UID:ca6af7456b0088abad9a69f9f620f5ac-39@gov.uk\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20261225\r\n\
DTEND;VALUE=DATE:20261226\r\n\
SUMMARY:Christmas Day\r\n\
RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25\r\n\
EXDATE;VALUE=DATE:20301225\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
DTSTART;VALUE=DATE:19990101\r\n\
SUMMARY:not a holiday\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20261228\r\n\
SUMMARY:Boxing Day (substitute day)\\, a very long summary that a generator has\r\n \
folded at seventy-five octets\\; as RFC 5545 says\\nsecond line\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20261230\r\n\
DURATION:P2D\r\n\
SUMMARY;LANGUAGE=\"en:GB\":Office closed\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART:20270531\r\n\
DTEND:20270601\r\n\
SUMMARY:Spring bank holiday\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn reads_a_uk_style_holiday_calendar() {
        let parsed = parse_ics_holidays(UK_STYLE).unwrap();
        let holidays = &parsed.dates;
        let find =
            |d: &str| holidays.iter().filter(|(x, _)| *x == date(d)).map(|(_, s)| s.as_str()).collect::<Vec<_>>();
        assert_eq!(find("2026-01-01"), ["New Year’s Day"]);
        assert_eq!(find("2026-04-03"), ["Good Friday"]);
        assert!(find("2026-04-04").is_empty(), "DTEND is exclusive");
        // Yearly: a rule from 2026 on, except 2030.
        let [(christmas, name)] = parsed.yearly.as_slice() else { panic!("{:?}", parsed.yearly) };
        assert_eq!(name, "Christmas Day");
        assert_eq!(christmas.to_text(), "DTSTART=20261225;INTERVAL=1;DAYS=1;EXDATE=20301225");
        assert_eq!(YearlyHoliday::from_text(&christmas.to_text()).as_ref(), Some(christmas));
        assert!(christmas.covers(date("2026-12-25")) && christmas.covers(date("2036-12-25")));
        assert!(christmas.covers(date("2099-12-25")), "a yearly rule never runs out");
        assert!(!christmas.covers(date("2030-12-25")) && !christmas.covers(date("2025-12-25")));
        assert!(!christmas.covers(date("2027-12-26")));
        assert_eq!(
            find("2026-12-28"),
            [
                "Boxing Day (substitute day), a very long summary that a generator hasfolded at seventy-five octets; as RFC 5545 says\nsecond line"
            ]
        );
        assert_eq!(find("2026-12-30"), ["Office closed"]);
        assert_eq!(find("2026-12-31"), ["Office closed"]);
        assert!(find("2027-01-01").is_empty());
        assert_eq!(find("2027-05-31"), ["Spring bank holiday"]);
        assert!(find("1999-01-01").is_empty(), "VALARM properties are not the event's");
        assert_eq!(holidays.len(), 2 + 1 + 2 + 1);
        // Sorted by date.
        assert!(holidays.windows(2).all(|w| w[0] <= w[1]));

        // The result feeds a calendar.
        let mut cal = BusinessCalendar::new(TimeZone::get("Europe/London").unwrap());
        cal.holidays.extend(holidays.iter().map(|(d, _)| *d));
        cal.yearly.extend(parsed.yearly.iter().map(|(r, _)| r.clone()));
        assert!(!cal.is_working_day(date("2026-12-28")));
        assert!(!cal.is_working_day(date("2041-12-25")));
        // Thu 24 Dec 2026 10:00 GMT + 2: Tue 29 Dec, then 30 and 31 are closed -> Fri 1 Jan 2027
        // (this file lists only 2026's New Year's Day).
        assert_eq!(cal.add_working_days(at("2026-12-24T10:00:00Z"), 2), at("2027-01-01T10:00:00Z"));
    }

    /// Issue 20: `DTSTART;VALUE=DATE:20101111` with `RRULE:FREQ=YEARLY` used to stop in 2020,
    /// so 11 November 2026 was a working day and deadlines came out early.
    #[test]
    fn yearly_holidays_do_not_stop_ten_years_after_their_start() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20101111\nRRULE:FREQ=YEARLY\n\
                   SUMMARY:Armistice Day\nEND:VEVENT\nEND:VCALENDAR\n";
        let parsed = parse_ics_holidays(ics).unwrap();
        let mut cal = BusinessCalendar::new(TimeZone::get("Europe/Paris").unwrap());
        cal.yearly.extend(parsed.yearly.iter().map(|(r, _)| r.clone()));
        for year in [2010, 2020, 2026, 2031, 2100, 2500] {
            let day = Date::new(year, 11, 11).unwrap();
            assert!(!cal.is_working_day(day), "{day}");
        }
        // Tue 10 Nov 2026 10:00 CET + 2 working days: Wed 11 is a holiday -> Fri 13.
        assert_eq!(cal.add_working_days(at("2026-11-10T09:00:00Z"), 2), at("2026-11-13T09:00:00Z"));
        // Yearly rules that cover every day never reach a deadline (and do not loop forever).
        let mut closed = BusinessCalendar::new(TimeZone::UTC);
        let rule =
            YearlyHoliday { start: date("2026-01-01"), every: 1, last: None, days: 366, except: BTreeSet::new() };
        closed.yearly.push(rule);
        assert_eq!(closed.add_working_days(at("2026-03-02T10:00:00Z"), 1), Timestamp::MAX);
        assert_eq!(
            closed.add_working_duration(at("2026-03-02T10:00:00Z"), WorkingDuration::from_days(1)),
            Timestamp::MAX
        );
    }

    #[test]
    fn multi_day_events_and_leap_days() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20270102\n\
                   SUMMARY:Winter closure\nEND:VEVENT\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20280229\n\
                   RRULE:FREQ=YEARLY;COUNT=3\nSUMMARY:Leap day\nEND:VEVENT\nBEGIN:VEVENT\n\
                   DTSTART;VALUE=DATE:20261231\nDURATION:P3D\nRRULE:FREQ=YEARLY\nSUMMARY:Year end\nEND:VEVENT\n\
                   END:VCALENDAR\n";
        let parsed = parse_ics_holidays(ics).unwrap();
        let closure: Vec<_> = parsed.dates.iter().filter(|(_, s)| s == "Winter closure").collect();
        assert_eq!(closure.len(), 9);
        assert_eq!(closure[0].0, date("2026-12-24"));
        assert_eq!(closure[8].0, date("2027-01-01"));
        // COUNT counts occurrences that exist: 2028, 2032 and 2036.
        let leap = &parsed.yearly.iter().find(|(_, s)| s == "Leap day").unwrap().0;
        assert_eq!(leap.last, Some(date("2036-02-29")));
        let covered: Vec<Date> =
            (2026..2045).filter_map(|y| Date::new(y, 2, 29).ok()).filter(|d| leap.covers(*d)).collect();
        assert_eq!(covered, [date("2028-02-29"), date("2032-02-29"), date("2036-02-29")]);
        assert!(!leap.covers(date("2029-03-01")));
        // A yearly event across the new year covers the next year's first days.
        let year_end = &parsed.yearly.iter().find(|(_, s)| s == "Year end").unwrap().0;
        assert!(year_end.covers(date("2031-01-02")) && !year_end.covers(date("2031-01-03")));
        assert!(!year_end.covers(date("2026-01-01")), "before the first occurrence");
    }

    #[test]
    fn yearly_interval_and_until() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260501\n\
                   RRULE:FREQ=YEARLY;INTERVAL=2;UNTIL=20301231T000000Z\nSUMMARY:May Day\nEND:VEVENT\nEND:VCALENDAR\n";
        let rule = parse_ics_holidays(ics).unwrap().yearly.remove(0).0;
        let covered: Vec<Date> =
            (2020..2040).map(|y| Date::new(y, 5, 1).unwrap()).filter(|d| rule.covers(*d)).collect();
        assert_eq!(covered, [date("2026-05-01"), date("2028-05-01"), date("2030-05-01")]);
        assert_eq!(rule.describe(), "every 2 years on 1 May from 2026, until 2030-12-31");
    }

    /// Issue 20: Google and Outlook exports move one occurrence of a yearly holiday with a
    /// second event that has the same UID and a RECURRENCE-ID, and cancel with STATUS.
    #[test]
    fn moved_and_cancelled_occurrences() {
        let ics = "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\nUID:xmas@example.org\r\nDTSTART;VALUE=DATE:20201225\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:xmas@example.org\r\nRECURRENCE-ID;VALUE=DATE:20261225\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Christmas (moved)\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:xmas@example.org\r\nRECURRENCE-ID;VALUE=DATE:20271225\r\nDTSTART;VALUE=DATE:20271225\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:party@example.org\r\nDTSTART;VALUE=DATE:20260612\r\nSTATUS:CANCELLED\r\nSUMMARY:Party\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:once@example.org\r\nDTSTART;VALUE=DATE:20260701\r\nSUMMARY:Outing\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:once@example.org\r\nRECURRENCE-ID;VALUE=DATE:20260701\r\nDTSTART;VALUE=DATE:20260703\r\nSUMMARY:Outing\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let parsed = parse_ics_holidays(ics).unwrap();
        let mut cal = BusinessCalendar::new(TimeZone::UTC);
        cal.weekend = vec![]; // only holidays are off (25 December 2027 is a Saturday)
        cal.holidays.extend(parsed.dates.iter().map(|(d, _)| *d));
        cal.yearly.extend(parsed.yearly.iter().map(|(r, _)| r.clone()));
        let off = |d: &str| !cal.is_working_day(date(d));
        assert!(off("2025-12-25") && off("2028-12-25"));
        assert!(off("2026-12-24") && !off("2026-12-25"), "moved, not added");
        assert!(!off("2027-12-25"), "cancelled occurrence");
        assert!(!off("2026-06-12"), "cancelled event");
        assert!(!off("2026-07-01") && off("2026-07-03"), "a one-off event moved");
        assert_eq!(parsed.dates.len(), 2);
        let range = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nRECURRENCE-ID;RANGE=THISANDFUTURE;VALUE=DATE:20261225\n\
                     DTSTART;VALUE=DATE:20261224\nEND:VEVENT\nEND:VCALENDAR\n";
        assert_eq!(parse_ics_holidays(range), Err(IcsError::UnsupportedRange { line: 4 }));
    }

    #[test]
    fn end_names_must_match_and_a_stray_end_is_blamed_on_its_line() {
        let todo = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nEND:VTODO\nEND:VCALENDAR\n";
        assert_eq!(
            parse_ics_holidays(todo),
            Err(IcsError::Mismatched { line: 4, found: "VTODO".into(), open: "VEVENT".into(), opened: 2 })
        );
        let stray = "BEGIN:VCALENDAR\nEND:VEVENT\nEND:VCALENDAR\n";
        assert_eq!(
            parse_ics_holidays(stray),
            Err(IcsError::Mismatched { line: 2, found: "VEVENT".into(), open: "VCALENDAR".into(), opened: 1 })
        );
        let extra = "BEGIN:VCALENDAR\nEND:VCALENDAR\nEND:VCALENDAR\n";
        assert!(matches!(parse_ics_holidays(extra), Err(IcsError::Unbalanced { line: 3, .. })));
        // Names are matched case-insensitively, as property names are.
        let lower = "BEGIN:VCALENDAR\nBEGIN:vevent\nDTSTART;VALUE=DATE:20261225\nEND:VEvent\nEND:VCALENDAR\n";
        assert_eq!(parse_ics_holidays(lower).unwrap().dates.len(), 1);
        let deep = format!("{}X", "BEGIN:X\n".repeat(ICS_MAX_DEPTH + 1));
        assert_eq!(parse_ics_holidays(&deep), Err(IcsError::TooDeep { line: ICS_MAX_DEPTH + 1 }));
    }

    #[test]
    fn year_zero_is_not_a_date() {
        let wrap = |body: &str| format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\n{body}\nEND:VEVENT\nEND:VCALENDAR\n");
        let zero = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:00001225"));
        assert!(matches!(zero, Err(IcsError::NotADate { line: 3, .. })), "{zero:?}");
        assert_eq!(parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:00011225")).unwrap().dates.len(), 1);
    }

    #[test]
    fn rejects_what_it_does_not_understand_naming_the_line() {
        let wrap = |body: &str| format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\n{body}\nEND:VEVENT\nEND:VCALENDAR\n");
        let monthly = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MONTHLY")).unwrap_err();
        assert!(matches!(monthly, IcsError::UnsupportedRule { line: 4, .. }), "{monthly:?}");
        assert!(monthly.to_string().starts_with("line 4: unsupported recurrence \"FREQ=MONTHLY\""), "{monthly}");
        let by_day = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:20260119\nRRULE:FREQ=YEARLY;BYMONTH=1;BYDAY=3MO"));
        assert!(matches!(by_day, Err(IcsError::UnsupportedRule { line: 4, .. })), "{by_day:?}");
        let timed = parse_ics_holidays(&wrap("DTSTART:20261225T090000Z")).unwrap_err();
        assert!(matches!(timed, IcsError::NotADate { line: 3, .. }), "{timed:?}");
        let tz = parse_ics_holidays(&wrap("DTSTART;TZID=Europe/Paris:20261225T090000"));
        assert!(matches!(tz, Err(IcsError::NotADate { line: 3, .. })), "{tz:?}");
        let backwards = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261225"));
        assert!(matches!(backwards, Err(IcsError::EndBeforeStart { line: 4 })), "{backwards:?}");
        let long = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:20260101\nDTEND;VALUE=DATE:20990101"));
        assert!(matches!(long, Err(IcsError::TooLong { line: 4 })), "{long:?}");
        let no_start = parse_ics_holidays(&wrap("SUMMARY:x"));
        assert!(matches!(no_start, Err(IcsError::MissingStart { line: 2 })), "{no_start:?}");
        let bad_date = parse_ics_holidays(&wrap("DTSTART;VALUE=DATE:20261345"));
        assert!(matches!(bad_date, Err(IcsError::NotADate { line: 3, .. })), "{bad_date:?}");
        assert_eq!(parse_ics_holidays("BEGIN:VCALENDAR\nBEGIN:VEVENT\n"), Err(IcsError::Unterminated));
        assert!(matches!(parse_ics_holidays("END:VEVENT\n"), Err(IcsError::Unbalanced { line: 1, .. })));
        assert!(matches!(parse_ics_holidays("BEGIN:VCALENDAR\nno colon here\n"), Err(IcsError::Malformed { line: 2 })));
    }

    #[test]
    fn hostile_input_is_bounded() {
        // A huge line, folded or not.
        let huge = format!("BEGIN:VCALENDAR\nX-JUNK:{}\nEND:VCALENDAR\n", "a".repeat(10 * ICS_MAX_LINE));
        assert_eq!(parse_ics_holidays(&huge), Err(IcsError::LineTooLong { line: 2 }));
        let folded = format!("BEGIN:VCALENDAR\nX-JUNK:a\n{}END:VCALENDAR\n", " aaaaaaaaaaaaaaaaaaaa\n".repeat(2_000));
        assert_eq!(parse_ics_holidays(&folded), Err(IcsError::LineTooLong { line: 2 }));
        // Too many dates.
        let event = "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nDURATION:P52W\nEND:VEVENT\n";
        let many = format!("BEGIN:VCALENDAR\n{}END:VCALENDAR\n", event.repeat(60));
        assert_eq!(parse_ics_holidays(&many), Err(IcsError::TooManyDates));
        // Binary junk, lone folds, empty input.
        assert_eq!(parse_ics_holidays("\u{0}\u{1}\u{7f}\n"), Err(IcsError::Malformed { line: 1 }));
        assert_eq!(parse_ics_holidays(":::\n\t\n;;:x\n"), Ok(IcsHolidays::default()));
        assert_eq!(parse_ics_holidays(""), Ok(IcsHolidays::default()));
        assert_eq!(parse_ics_holidays("\u{feff}BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), Ok(IcsHolidays::default()));
    }
}
