//! SLA clocks on reports: the business calendar, deadlines, warnings, escalations and the
//! needs-info auto-close.
//!
//! Clocks (budgets in working days on the team's business calendar, see
//! [`embargo_domain::sla`]):
//! * **acknowledge**: from receipt until the report leaves `new`;
//! * **analyse**: from the acknowledgement until the analysis ends (accepted, or closed);
//! * **update**: while an acknowledged report is open, from the last update the reporter
//!   could see (a reply or a state notice) or the acknowledgement;
//! * **fix**: from acceptance until the fix is ready (ready-for-disclosure), by severity.
//!
//! Every clock pauses while the report waits on the reporter (needs-info). Deadlines are
//! stored on the report ([`embargo_store::sla`]) whenever something that moves them
//! changes, in that change's transaction: [`refresh_in`]. A stopped clock keeps the deadline
//! it had, so "met" stays decidable after calendar edits.
//!
//! The sweep (`crate::sla_sweep`, run every minute by the `sla.sweep` job) looks at reports whose
//! `next_sla_at` has come: it raises a warning once [`crate::config::Sla::warn_at_percent`]
//! of a clock's time is used and an escalation when it runs out (each once, recorded in
//! `sla_alerts`, audited, and mailed to the people responsible through durable jobs), and
//! closes needs-info reports whose reporter did not answer in time.

use std::sync::Arc;

use embargo_domain::calendar::{BusinessCalendar, YearlyHoliday};
use embargo_domain::sla::{self as clocks, SlaPolicy};
/// A report's clocks and SLA record (the pure rules live in `embargo_domain::sla`).
pub use embargo_domain::sla::{Clock, SlaRecord};
use embargo_domain::{Actor, ReportId, Timestamp};
use embargo_store::Tx;
use embargo_store::reports::{ReportRecord, TransitionRecord};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::context::CachedCalendar;
use crate::{App, AppError, audit};

/// The time zone and weekend days, as stored in `instance_meta` under [`SETTINGS_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSettings {
    /// IANA time zone.
    pub time_zone: String,
    /// Weekend days, lowercase English names (`saturday`, `sunday`).
    pub weekend: Vec<String>,
}

const SETTINGS_KEY: &str = "calendar";

/// The calendar's version in `instance_meta`: a counter every calendar change increments in
/// its transaction, so that every process (the CLI, each server on one database) sees a
/// change at once. Absent until the first change.
const VERSION_KEY: &str = "calendar.version";

/// Every weekday, Monday first, with its lowercase name.
pub const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "monday"),
    (Weekday::Tuesday, "tuesday"),
    (Weekday::Wednesday, "wednesday"),
    (Weekday::Thursday, "thursday"),
    (Weekday::Friday, "friday"),
    (Weekday::Saturday, "saturday"),
    (Weekday::Sunday, "sunday"),
];

fn weekday(name: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
}

/// The business calendar as stored (falling back to the configured time zone and a
/// Saturday-Sunday weekend), read in the caller's transaction.
type Stored = (CalendarSettings, Vec<embargo_store::sla::Holiday>, Vec<embargo_store::sla::HolidayRule>);

async fn load_in(tx: &mut Tx, app: &App) -> Result<Stored, AppError> {
    let settings = match embargo_store::meta::get(tx, SETTINGS_KEY).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| AppError::Internal(e.into()))?,
        None => CalendarSettings {
            time_zone: app.config.sla.time_zone.clone(),
            weekend: vec!["saturday".into(), "sunday".into()],
        },
    };
    Ok((settings, embargo_store::sla::holidays(tx).await?, embargo_store::sla::holiday_rules(tx).await?))
}

fn build(
    settings: &CalendarSettings,
    holidays: &[embargo_store::sla::Holiday],
    rules: &[embargo_store::sla::HolidayRule],
) -> BusinessCalendar {
    let mut calendar = BusinessCalendar::new(TimeZone::get(&settings.time_zone).unwrap_or(TimeZone::UTC));
    calendar.weekend = settings.weekend.iter().filter_map(|d| weekday(d)).collect();
    calendar.holidays = holidays.iter().filter_map(|h| h.day.parse::<Date>().ok()).collect();
    calendar.yearly = rules.iter().filter_map(|r| YearlyHoliday::from_text(&r.rule)).collect();
    calendar
}

/// The business calendar, read in the caller's transaction: the cached one if the calendar
/// version in the database is still the one it was read at (one small read), otherwise
/// read afresh. No process ever works from a calendar older than the caller's transaction.
pub(crate) async fn calendar_in(tx: &mut Tx, app: &App) -> Result<Arc<BusinessCalendar>, AppError> {
    let version = embargo_store::meta::get(tx, VERSION_KEY).await?;
    calendar_in_at(tx, app, version).await
}

/// [`calendar_in`] with the calendar's version ([`CALENDAR_VERSION_KEY`]) already read in
/// the caller's snapshot: no read at all while this process holds that version.
pub(crate) async fn calendar_in_at(
    tx: &mut Tx,
    app: &App,
    version: Option<String>,
) -> Result<Arc<BusinessCalendar>, AppError> {
    // The version is read first: the calendar read after it is at least as new, so a cache
    // entry never pairs a version with an older calendar.
    if let Some(cached) =
        app.calendar.lock().map_err(|_| AppError::Internal(anyhow::anyhow!("calendar lock")))?.as_ref()
        && cached.version == version
    {
        return Ok(cached.calendar.clone());
    }
    let (settings, holidays, rules) = load_in(tx, app).await?;
    let calendar = Arc::new(build(&settings, &holidays, &rules));
    if let Ok(mut slot) = app.calendar.lock() {
        *slot = Some(CachedCalendar { version, calendar: calendar.clone() });
    }
    Ok(calendar)
}

/// The business calendar as of now (read if it changed since this process last read it).
pub async fn current_calendar(app: &App) -> Result<Arc<BusinessCalendar>, AppError> {
    // Every team page asks: the version alone is one statement, and a snapshot is taken
    // only when the calendar changed (ADR 32).
    let version = embargo_store::meta::get_now(&app.store, VERSION_KEY).await?;
    calendar_at_version(app, version).await
}

/// The `instance_meta` key of the business calendar's version, for a caller that reads it
/// with something else ([`crate::sessions::team_session`]).
pub(crate) const CALENDAR_VERSION_KEY: &str = VERSION_KEY;

/// [`current_calendar`] for a version the caller has just read.
pub(crate) async fn calendar_at_version(app: &App, version: Option<String>) -> Result<Arc<BusinessCalendar>, AppError> {
    if let Some(cached) =
        app.calendar.lock().map_err(|_| AppError::Internal(anyhow::anyhow!("calendar lock")))?.as_ref()
        && cached.version == version
    {
        return Ok(cached.calendar.clone());
    }
    let mut tx = app.store.snapshot().await?;
    let calendar = calendar_in(&mut tx, app).await?;
    tx.rollback().await?;
    Ok(calendar)
}

/// The business calendar as this process last read it (the configured time zone and a
/// Saturday–Sunday weekend before the first read), without a read: for display code that
/// has called [`current_calendar`] at the start of its request.
pub fn cached_calendar(app: &App) -> Arc<BusinessCalendar> {
    match app.calendar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
        Some(cached) => cached.calendar.clone(),
        None => Arc::new(BusinessCalendar::new(app.config.time_zone())),
    }
}

/// The business calendar's time zone as of now, in which every date and time is shown to
/// people; afterwards [`App::time_zone`] gives it without a read.
pub async fn time_zone(app: &App) -> Result<jiff::tz::TimeZone, AppError> {
    Ok(current_calendar(app).await?.time_zone.clone())
}

/// Marks the calendar changed, in the caller's transaction (see [`VERSION_KEY`]).
async fn bump_version_in(tx: &mut Tx) -> Result<(), AppError> {
    embargo_store::meta::increment(tx, VERSION_KEY).await?;
    Ok(())
}

/// The SLA policy in effect (from the configuration).
pub fn policy(app: &App) -> SlaPolicy {
    let sla = &app.config.sla;
    let fix = &sla.fix_working_days;
    SlaPolicy {
        acknowledge_days: sla.acknowledge_working_days,
        first_response_days: None,
        analyse_days: sla.analyse_working_days,
        analyse_from_receipt: sla.analyse_from == crate::config::AnalyseFrom::Receipt,
        update_every_days: Some(sla.reporter_update_working_days),
        fix_days: clocks::FixTargets {
            critical: Some(fix.critical),
            high: Some(fix.high),
            medium: Some(fix.medium),
            low: Some(fix.low),
        },
        warn_at_percent: sla.warn_at_percent,
    }
}

/// A report's clocks from its stored history, under the configured policy: the pure rule is
/// [`clocks::compute`]; this reads the policy from the configuration.
pub(crate) fn compute(
    app: &App,
    calendar: &BusinessCalendar,
    report: &ReportRecord,
    transitions: &[TransitionRecord],
    last_update_at: Option<Timestamp>,
    previous: &SlaRecord,
) -> (SlaRecord, Vec<Clock>) {
    let moves: Vec<_> = transitions.iter().map(TransitionRecord::as_move).collect();
    let input = clocks::ReportClocks {
        state: report.state,
        created_at: report.created_at,
        moves: &moves,
        last_update_at,
        previous,
    };
    clocks::compute(calendar, &policy(app), app.config.sla.needs_info_close_days, &input)
}

/// When the needs-info auto-close is due for a report waiting since `since`.
pub(crate) fn close_due(app: &App, since: Timestamp) -> Option<Timestamp> {
    since.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(app.config.sla.needs_info_close_days))).ok()
}

/// The deadlines of a new report: (acknowledgement due, next SLA instant). Used at intake,
/// where the full [`refresh_in`] would cost queries per message.
pub(crate) async fn new_report_in(
    tx: &mut Tx,
    app: &App,
    received: Timestamp,
) -> Result<(Timestamp, Timestamp), AppError> {
    let calendar = calendar_in(tx, app).await?;
    let days = app.config.sla.acknowledge_working_days;
    let due = clocks::deadline(&calendar, received, days, &[]).unwrap_or(received);
    let warn = clocks::warning_at(&calendar, received, days, app.config.sla.warn_at_percent, &[]).unwrap_or(due);
    Ok((due, warn.min(due)))
}

/// Recomputes and stores a report's SLA columns in the caller's transaction, after any
/// change that moves them (a state change, an update to the reporter, a new severity).
/// `last_update` records a reporter-visible update made now.
pub(crate) async fn refresh_in(
    tx: &mut Tx,
    app: &App,
    report: ReportId,
    last_update: Option<Timestamp>,
) -> Result<(SlaRecord, Vec<Clock>), AppError> {
    let record = embargo_store::reports::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let transitions = embargo_store::reports::transitions(tx, report).await?;
    let previous = embargo_store::sla::get(tx, report).await?;
    let calendar = calendar_in(tx, app).await?;
    let (sla, clocks) =
        compute(app, &calendar, &record, &transitions, last_update.or(previous.last_update_at), &previous);
    if sla != previous {
        embargo_store::sla::set(tx, report, &sla).await?;
    }
    Ok((sla, clocks))
}

/// The business calendar for display and editing.
#[derive(Debug, Clone)]
pub struct CalendarView {
    /// Time zone and weekend days.
    pub settings: CalendarSettings,
    /// Holidays by date.
    pub holidays: Vec<embargo_store::sla::Holiday>,
    /// Yearly holidays: the stored rule, its description in words, and its name.
    pub yearly: Vec<YearlyView>,
}

/// A yearly holiday for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearlyView {
    /// The rule as stored (what `remove_holiday_rule` takes).
    pub rule: String,
    /// The rule in words: `every year on 11 November from 2010`.
    pub description: String,
    /// What it is.
    pub name: String,
}

/// The business calendar (admins).
pub async fn calendar(app: &App, actor: &Actor) -> Result<CalendarView, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    let (settings, holidays, rules) = load_in(&mut tx, app).await?;
    tx.rollback().await?;
    let yearly = rules
        .into_iter()
        .map(|r| YearlyView {
            description: YearlyHoliday::from_text(&r.rule).map_or_else(|| r.rule.clone(), |y| y.describe()),
            rule: r.rule,
            name: r.name,
        })
        .collect();
    Ok(CalendarView { settings, holidays, yearly })
}

/// After a calendar change every open report's deadlines are recomputed by the next sweep.
async fn recompute_all_in(tx: &mut Tx, app: &App) -> Result<(), AppError> {
    embargo_store::sla::schedule_open(tx, app.now()).await?;
    bump_version_in(tx).await
}

/// Sets the time zone and weekend days (admins).
pub async fn set_calendar(app: &App, actor: &Actor, time_zone: &str, weekend: &[String]) -> Result<(), AppError> {
    let time_zone = time_zone.trim();
    if TimeZone::get(time_zone).is_err() {
        return Err(AppError::Invalid(format!(
            "unknown time zone {time_zone:?}; use an IANA name such as Europe/Paris"
        )));
    }
    let mut days: Vec<String> = Vec::new();
    for day in weekend {
        let day = day.trim().to_lowercase();
        if weekday(&day).is_none() {
            return Err(AppError::Invalid(format!("unknown weekday {day:?}")));
        }
        if !days.contains(&day) {
            days.push(day);
        }
    }
    if days.len() >= 7 {
        return Err(AppError::Invalid("at least one day of the week must be a working day".into()));
    }
    let settings = CalendarSettings { time_zone: time_zone.to_owned(), weekend: days };
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    let json = serde_json::to_string(&settings).map_err(|e| AppError::Internal(e.into()))?;
    embargo_store::meta::set(&mut tx, SETTINGS_KEY, &json).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "calendar.settings",
        "calendar",
        &format!("time_zone={} weekend={}", settings.time_zone, settings.weekend.join(",")),
    )
    .await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    Ok(())
}

fn holiday_name(name: &str) -> String {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).take(200).collect();
    if name.is_empty() { "Holiday".into() } else { name }
}

/// Adds holidays (admins); returns how many dates were new.
pub async fn add_holidays(app: &App, actor: &Actor, days: &[(Date, String)]) -> Result<u64, AppError> {
    add(app, actor, days, &[]).await
}

/// Adds holiday dates and yearly rules in one transaction; returns how many were new.
async fn add(
    app: &App,
    actor: &Actor,
    days: &[(Date, String)],
    yearly: &[(YearlyHoliday, String)],
) -> Result<u64, AppError> {
    let holidays: Vec<_> = days
        .iter()
        .map(|(day, name)| embargo_store::sla::Holiday { day: day.to_string(), name: holiday_name(name) })
        .collect();
    let rules: Vec<_> = yearly
        .iter()
        .map(|(rule, name)| embargo_store::sla::HolidayRule { rule: rule.to_text(), name: holiday_name(name) })
        .collect();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    let added = embargo_store::sla::add_holidays(&mut tx, &holidays, app.now()).await?;
    let added_rules = embargo_store::sla::add_holiday_rules(&mut tx, &rules, app.now()).await?;
    let mut details = format!("given={} new={added}", holidays.len());
    if !rules.is_empty() {
        details.push_str(&format!(" yearly_given={} yearly_new={added_rules}", rules.len()));
    }
    audit::record(&mut tx, app, actor, "calendar.holidays.add", "calendar", &details).await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    Ok(added + added_rules)
}

/// The largest iCalendar file accepted, in bytes.
pub const ICS_MAX_BYTES: usize = 1024 * 1024;

/// Reads an uploaded or named iCalendar file's bytes as text: UTF-8 only (a Latin-1 or
/// broken file would give mangled holiday names), at most [`ICS_MAX_BYTES`].
pub fn ics_text(bytes: Vec<u8>) -> Result<String, AppError> {
    if bytes.len() > ICS_MAX_BYTES {
        return Err(AppError::Invalid(format!(
            "the file is {} bytes; an iCalendar file may be at most {} bytes (1 MiB)",
            bytes.len(),
            ICS_MAX_BYTES
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        AppError::Invalid(format!(
            "the file is not UTF-8 (byte {} is not valid); iCalendar files are UTF-8: re-export it or convert it",
            e.utf8_error().valid_up_to() + 1
        ))
    })
}

/// Imports the all-day events of an iCalendar file as holidays (admins): one-off dates, and
/// yearly events as rules. Returns how many dates and rules were new.
pub async fn import_ics(app: &App, actor: &Actor, text: &str) -> Result<u64, AppError> {
    let parsed = embargo_domain::calendar::parse_ics_holidays(text).map_err(|e| AppError::Invalid(e.to_string()))?;
    if parsed.dates.is_empty() && parsed.yearly.is_empty() {
        return Err(AppError::Invalid("the file has no all-day events".into()));
    }
    add(app, actor, &parsed.dates, &parsed.yearly).await
}

/// Removes a holiday (admins). A date that is a holiday by a yearly rule is not removed
/// (the rule would still cover it): the error names the rule.
pub async fn remove_holiday(app: &App, actor: &Actor, day: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    if !embargo_store::sla::remove_holiday(&mut tx, day).await? {
        let date = day.parse::<Date>().ok();
        let rules = embargo_store::sla::holiday_rules(&mut tx).await?;
        if let Some(rule) =
            rules.iter().find(|r| date.is_some_and(|d| YearlyHoliday::from_text(&r.rule).is_some_and(|y| y.covers(d))))
        {
            return Err(AppError::Conflict(format!(
                "{day} is a holiday by the yearly rule \"{}\" ({}); remove the rule instead",
                rule.name, rule.rule
            )));
        }
        return Err(AppError::NotFound(format!("holiday on {day}")));
    }
    audit::record(&mut tx, app, actor, "calendar.holidays.remove", "calendar", &format!("day={day}")).await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a yearly holiday rule (admins), given as stored (see [`YearlyView::rule`]).
pub async fn remove_holiday_rule(app: &App, actor: &Actor, rule: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    if !embargo_store::sla::remove_holiday_rule(&mut tx, rule.trim()).await? {
        return Err(AppError::NotFound(format!("yearly holiday {:?}", rule.trim())));
    }
    audit::record(&mut tx, app, actor, "calendar.yearly.remove", "calendar", &format!("rule={}", rule.trim())).await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    Ok(())
}
