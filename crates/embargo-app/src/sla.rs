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
use std::time::{Duration, Instant};

use embargo_domain::calendar::BusinessCalendar;
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

/// How long the business calendar is cached in one process.
const CALENDAR_TTL: Duration = Duration::from_secs(60);

/// The time zone and weekend days, as stored in `instance_meta` under [`SETTINGS_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSettings {
    /// IANA time zone.
    pub time_zone: String,
    /// Weekend days, lowercase English names (`saturday`, `sunday`).
    pub weekend: Vec<String>,
}

const SETTINGS_KEY: &str = "calendar";

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
async fn load_in(tx: &mut Tx, app: &App) -> Result<(CalendarSettings, Vec<embargo_store::sla::Holiday>), AppError> {
    let settings = match embargo_store::meta::get(tx, SETTINGS_KEY).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| AppError::Internal(e.into()))?,
        None => CalendarSettings {
            time_zone: app.config.sla.time_zone.clone(),
            weekend: vec!["saturday".into(), "sunday".into()],
        },
    };
    Ok((settings, embargo_store::sla::holidays(tx).await?))
}

fn build(settings: &CalendarSettings, holidays: &[embargo_store::sla::Holiday]) -> BusinessCalendar {
    let mut calendar = BusinessCalendar::new(TimeZone::get(&settings.time_zone).unwrap_or(TimeZone::UTC));
    calendar.weekend = settings.weekend.iter().filter_map(|d| weekday(d)).collect();
    calendar.holidays = holidays.iter().filter_map(|h| h.day.parse::<Date>().ok()).collect();
    calendar
}

/// The business calendar, from the cache or read in the caller's transaction.
pub(crate) async fn calendar_in(tx: &mut Tx, app: &App) -> Result<Arc<BusinessCalendar>, AppError> {
    if let Some(cached) =
        app.calendar.lock().map_err(|_| AppError::Internal(anyhow::anyhow!("calendar lock")))?.as_ref()
        && cached.loaded.elapsed() < CALENDAR_TTL
    {
        return Ok(cached.calendar.clone());
    }
    let (settings, holidays) = load_in(tx, app).await?;
    let calendar = Arc::new(build(&settings, &holidays));
    if let Ok(mut slot) = app.calendar.lock() {
        *slot = Some(CachedCalendar { loaded: Instant::now(), calendar: calendar.clone() });
    }
    Ok(calendar)
}

fn forget_calendar(app: &App) {
    if let Ok(mut slot) = app.calendar.lock() {
        *slot = None;
    }
}

/// The SLA policy in effect (from the configuration).
pub fn policy(app: &App) -> SlaPolicy {
    let sla = &app.config.sla;
    let fix = &sla.fix_working_days;
    SlaPolicy {
        acknowledge_days: sla.acknowledge_working_days,
        first_response_days: None,
        analyse_days: sla.analyse_working_days,
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
}

/// The business calendar (admins).
pub async fn calendar(app: &App, actor: &Actor) -> Result<CalendarView, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    let (settings, holidays) = load_in(&mut tx, app).await?;
    tx.rollback().await?;
    Ok(CalendarView { settings, holidays })
}

/// After a calendar change every open report's deadlines are recomputed by the next sweep.
async fn recompute_all_in(tx: &mut Tx, app: &App) -> Result<(), AppError> {
    embargo_store::sla::schedule_open(tx, app.now()).await?;
    forget_calendar(app);
    Ok(())
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
    forget_calendar(app);
    Ok(())
}

/// Adds holidays (admins); returns how many dates were new.
pub async fn add_holidays(app: &App, actor: &Actor, days: &[(Date, String)]) -> Result<u64, AppError> {
    let holidays: Vec<_> = days
        .iter()
        .map(|(day, name)| {
            let name: String = name.trim().chars().filter(|c| !c.is_control()).take(200).collect();
            embargo_store::sla::Holiday {
                day: day.to_string(),
                name: if name.is_empty() { "Holiday".into() } else { name },
            }
        })
        .collect();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    let added = embargo_store::sla::add_holidays(&mut tx, &holidays, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "calendar.holidays.add",
        "calendar",
        &format!("given={} new={added}", holidays.len()),
    )
    .await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    forget_calendar(app);
    Ok(added)
}

/// Imports the all-day events of an iCalendar file as holidays (admins).
pub async fn import_ics(app: &App, actor: &Actor, text: &str) -> Result<u64, AppError> {
    let days = embargo_domain::calendar::parse_ics_holidays(text).map_err(|e| AppError::Invalid(e.to_string()))?;
    if days.is_empty() {
        return Err(AppError::Invalid("the file has no all-day events".into()));
    }
    add_holidays(app, actor, &days).await
}

/// Removes a holiday (admins).
pub async fn remove_holiday(app: &App, actor: &Actor, day: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCalendar).await?;
    if !embargo_store::sla::remove_holiday(&mut tx, day).await? {
        return Err(AppError::NotFound(format!("holiday on {day}")));
    }
    audit::record(&mut tx, app, actor, "calendar.holidays.remove", "calendar", &format!("day={day}")).await?;
    recompute_all_in(&mut tx, app).await?;
    tx.commit().await?;
    forget_calendar(app);
    Ok(())
}
