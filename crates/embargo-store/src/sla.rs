//! SLA bookkeeping: each report's milestones and deadlines, the alerts already raised, and
//! the holidays of the team's business calendar.
//!
//! Milestones record when a clock stopped (acknowledged, assessed, fixed, disclosed, closed,
//! last reporter-visible update). Deadlines are kept after their clock stops, so a clock
//! was met when its milestone is at or before its deadline. `next_sla_at` is the next
//! instant the SLA sweep must look at the report.

use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A report's SLA columns (the domain's record: `embargo_domain::sla::SlaRecord`).
pub use embargo_domain::sla::SlaRecord;

pub(crate) const COLUMNS: &str = "acknowledged_at, assessed_at, fixed_at, disclosed_at, closed_at, last_update_at, \
     ack_due_at, analyse_due_at, update_due_at, fix_due_at, needs_info_since, next_sla_at, severity, paused_clocks";

fn opt(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?.map(ts).transpose()
}

pub(crate) fn sla_record(row: &sqlx::any::AnyRow) -> Result<SlaRecord, StoreError> {
    Ok(SlaRecord {
        acknowledged_at: opt(row, "acknowledged_at")?,
        assessed_at: opt(row, "assessed_at")?,
        fixed_at: opt(row, "fixed_at")?,
        disclosed_at: opt(row, "disclosed_at")?,
        closed_at: opt(row, "closed_at")?,
        last_update_at: opt(row, "last_update_at")?,
        ack_due_at: opt(row, "ack_due_at")?,
        analyse_due_at: opt(row, "analyse_due_at")?,
        update_due_at: opt(row, "update_due_at")?,
        fix_due_at: opt(row, "fix_due_at")?,
        needs_info_since: opt(row, "needs_info_since")?,
        next_sla_at: opt(row, "next_sla_at")?,
        severity: row.try_get("severity")?,
        paused_clocks: u8::try_from(row.try_get::<i64, _>("paused_clocks")?)
            .map_err(|_| StoreError::Corrupt("reports.paused_clocks".into()))?,
    })
}

/// A report's SLA columns.
pub async fn get(tx: &mut Tx, report: ReportId) -> Result<SlaRecord, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| format!("SELECT {COLUMNS} FROM reports WHERE id = $1"));
    let row = sqlx::query(sql.as_str()).bind(report.0).fetch_optional(tx.conn()).await?;
    row.map(|row| sla_record(&row)).transpose()?.ok_or_else(|| StoreError::Corrupt(format!("no report {}", report.0)))
}

/// Replaces a report's SLA columns.
pub async fn set(tx: &mut Tx, report: ReportId, sla: &SlaRecord) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE reports SET acknowledged_at = $2, assessed_at = $3, fixed_at = $4, disclosed_at = $5, \
         closed_at = $6, last_update_at = $7, ack_due_at = $8, analyse_due_at = $9, update_due_at = $10, \
         fix_due_at = $11, needs_info_since = $12, next_sla_at = $13, severity = $14, paused_clocks = $15 WHERE id = $1",
    )
    .bind(report.0)
    .bind(sla.acknowledged_at.map(ms))
    .bind(sla.assessed_at.map(ms))
    .bind(sla.fixed_at.map(ms))
    .bind(sla.disclosed_at.map(ms))
    .bind(sla.closed_at.map(ms))
    .bind(sla.last_update_at.map(ms))
    .bind(sla.ack_due_at.map(ms))
    .bind(sla.analyse_due_at.map(ms))
    .bind(sla.update_due_at.map(ms))
    .bind(sla.fix_due_at.map(ms))
    .bind(sla.needs_info_since.map(ms))
    .bind(sla.next_sla_at.map(ms))
    .bind(sla.severity.as_deref())
    .bind(i64::from(sla.paused_clocks))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Reports whose next SLA instant has come, oldest first.
pub async fn due(tx: &mut Tx, now: Timestamp, limit: i64) -> Result<Vec<ReportId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM reports WHERE next_sla_at IS NOT NULL AND next_sla_at <= $1 ORDER BY next_sla_at, id LIMIT $2",
    )
    .bind(ms(now))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    Ok(ids.into_iter().map(ReportId).collect())
}

/// An SLA warning or escalation raised on a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The clock: `acknowledge`, `analyse`, `update` or `fix`.
    pub clock: String,
    /// `warning` or `breach`.
    pub kind: String,
    /// The deadline it was about.
    pub due_at: Timestamp,
    /// When it was raised.
    pub at: Timestamp,
}

/// Records an alert; false when this alert (same clock, kind and deadline) was raised
/// before, so each is raised once.
pub async fn record_alert(
    tx: &mut Tx,
    report: ReportId,
    clock: &str,
    kind: &str,
    due_at: Timestamp,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO sla_alerts (report_id, clock, kind, due_at, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (report_id, clock, kind, due_at) DO NOTHING",
    )
    .bind(report.0)
    .bind(clock)
    .bind(kind)
    .bind(ms(due_at))
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A report's alerts, oldest first.
pub async fn alerts(tx: &mut Tx, report: ReportId) -> Result<Vec<Alert>, StoreError> {
    let rows = sqlx::query("SELECT clock, kind, due_at, at FROM sla_alerts WHERE report_id = $1 ORDER BY at, clock")
        .bind(report.0)
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Alert {
                clock: row.try_get("clock")?,
                kind: row.try_get("kind")?,
                due_at: ts(row.try_get("due_at")?)?,
                at: ts(row.try_get("at")?)?,
            })
        })
        .collect()
}

/// A holiday of the business calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// The local date, `YYYY-MM-DD`.
    pub day: String,
    /// What it is.
    pub name: String,
}

/// Every holiday, by date.
pub async fn holidays(tx: &mut Tx) -> Result<Vec<Holiday>, StoreError> {
    let rows = sqlx::query("SELECT day, name FROM holidays ORDER BY day").fetch_all(tx.conn()).await?;
    rows.iter().map(|row| Ok(Holiday { day: row.try_get("day")?, name: row.try_get("name")? })).collect()
}

/// Adds holidays (a date already present keeps its first name); returns how many were new.
pub async fn add_holidays(tx: &mut Tx, days: &[Holiday], at: Timestamp) -> Result<u64, StoreError> {
    let mut added = 0;
    for day in days {
        added += sqlx::query(
            "INSERT INTO holidays (day, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (day) DO NOTHING",
        )
        .bind(&day.day)
        .bind(&day.name)
        .bind(ms(at))
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    Ok(added)
}

/// Removes a holiday; false when there was none on that date.
pub async fn remove_holiday(tx: &mut Tx, day: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM holidays WHERE day = $1").bind(day).execute(tx.conn()).await?.rows_affected() == 1)
}

/// A yearly holiday rule of the business calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayRule {
    /// The rule, as `embargo_domain::calendar::YearlyHoliday::to_text` writes it.
    pub rule: String,
    /// What it is.
    pub name: String,
}

/// Every yearly holiday rule, by rule text.
pub async fn holiday_rules(tx: &mut Tx) -> Result<Vec<HolidayRule>, StoreError> {
    let rows = sqlx::query("SELECT rule, name FROM holiday_rules ORDER BY rule").fetch_all(tx.conn()).await?;
    rows.iter().map(|row| Ok(HolidayRule { rule: row.try_get("rule")?, name: row.try_get("name")? })).collect()
}

/// Adds yearly holiday rules (a rule already present keeps its first name); returns how
/// many were new.
pub async fn add_holiday_rules(tx: &mut Tx, rules: &[HolidayRule], at: Timestamp) -> Result<u64, StoreError> {
    let mut added = 0;
    for rule in rules {
        added += sqlx::query(
            "INSERT INTO holiday_rules (rule, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (rule) DO NOTHING",
        )
        .bind(&rule.rule)
        .bind(&rule.name)
        .bind(ms(at))
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    Ok(added)
}

/// Removes a yearly holiday rule; false when there was none.
pub async fn remove_holiday_rule(tx: &mut Tx, rule: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM holiday_rules WHERE rule = $1").bind(rule).execute(tx.conn()).await?.rows_affected()
        == 1)
}

/// Asks the sweep to look at every open report at `at` (after a calendar change, deadlines
/// are recomputed there).
pub async fn schedule_open(tx: &mut Tx, at: Timestamp) -> Result<u64, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("UPDATE reports SET next_sla_at = $1 WHERE {}", *crate::rules::OPEN));
    Ok(sqlx::query(SQL.as_str()).bind(ms(at)).execute(tx.conn()).await?.rows_affected())
}
