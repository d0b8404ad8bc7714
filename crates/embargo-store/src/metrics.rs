//! Disclosure metrics: how fast reports are acknowledged, assessed, fixed and disclosed,
//! and how often each SLA clock was met, over the reports received in a window.
//!
//! Two statements, each one range scan of `reports_created` over the window: [`buckets`]
//! aggregates counts and SLA outcomes per product and week, and [`durations`] returns each
//! report's milestone durations as integers, for medians and percentiles computed by the
//! caller (neither is portable SQL). Nothing sealed is read.
//!
//! The clocks, as of `now` (see [`Window`]):
//! * *met*: the milestone is at or before its deadline;
//! * *missed*: the milestone came after its deadline, or there is no milestone yet and the
//!   deadline has passed, whatever the report's state now (a deadline missed before the
//!   report moved to needs-info stays missed: a paused clock with time left has no deadline);
//! * *pending*: no milestone yet and the deadline is still ahead, or the clock is paused
//!   with time left while the report waits on the reporter (`paused_clocks`);
//! * a clock without a deadline that is not paused has not started and is not counted, and
//!   neither is the fix clock of a report closed without a fix (there is nothing left to be
//!   late for).

use embargo_domain::sla::ClockKind;
use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// A week of seven 24-hour days, in milliseconds (a local week across a DST change is an
/// hour shorter or longer: weeks are given by their starts, [`Window::week_starts`]).
pub const WEEK_MS: i64 = 7 * 24 * 3_600_000;

/// The most weeks a window may span (366 days starting on a Sunday touch 54 weeks).
pub const MAX_WEEKS: usize = 54;

/// Which reports to measure, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Reports received at or after this time...
    pub from: Timestamp,
    /// ...and before this one.
    pub to: Timestamp,
    /// The time at which open clocks are judged (usually `to`).
    pub now: Timestamp,
    /// The start of each week, in order: the first at or before `from`, each later one the
    /// instant a new week begins (local Monday midnight in the team's zone, so not always
    /// [`WEEK_MS`] apart). [`Bucket::week`] is the index of the week a report was received in.
    /// At most [`MAX_WEEKS`].
    pub week_starts: Vec<Timestamp>,
    /// Need-to-know: only reports of the products this responder is responsible for.
    pub responsible: Option<UserId>,
}

/// Met, missed and pending counts of one SLA clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// The milestone came at or before the deadline.
    pub met: i64,
    /// The milestone came late, or has not come and the deadline passed.
    pub missed: i64,
    /// No milestone yet, and the deadline is ahead or the clock is paused with time left.
    pub pending: i64,
    /// Of the pending: the deadline is within [`AT_RISK_MS`] from now.
    pub at_risk: i64,
}

/// How close a pending clock's deadline must be for it to count as at risk: one day.
pub const AT_RISK_MS: i64 = 24 * 60 * 60 * 1000;

impl Tally {
    /// Adds another tally.
    pub fn add(&mut self, other: Tally) {
        self.met += other.met;
        self.missed += other.missed;
        self.pending += other.pending;
        self.at_risk += other.at_risk;
    }

    /// The share of decided clocks that were met, from 0 to 1; `None` when none is decided
    /// yet (pending clocks are left out).
    pub fn met_share(&self) -> Option<f64> {
        let decided = self.met + self.missed;
        (decided > 0).then(|| self.met as f64 / decided as f64)
    }
}

/// Counts over the reports of one product received in one week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// The product; `None` for reports without one.
    pub product_id: Option<i64>,
    /// The week of receipt: an index into [`Window::week_starts`].
    pub week: i64,
    /// Reports received.
    pub reports: i64,
    /// Of those, acknowledged.
    pub acknowledged: i64,
    /// Assessed (accepted or closed).
    pub assessed: i64,
    /// Fixed (ready for disclosure).
    pub fixed: i64,
    /// Disclosed.
    pub disclosed: i64,
    /// The acknowledgement clock.
    pub acknowledge: Tally,
    /// The analysis clock.
    pub analyse: Tally,
    /// The fix clock.
    pub fix: Tally,
}

/// One report's times from receipt to each milestone reached, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durations {
    /// The product; `None` for reports without one.
    pub product_id: Option<i64>,
    /// To acknowledgement.
    pub acknowledge: Option<i64>,
    /// To assessment.
    pub assess: Option<i64>,
    /// To the fix.
    pub fix: Option<i64>,
    /// To disclosure.
    pub disclose: Option<i64>,
}

/// Which reports are measured: `$1` from, `$2` to, `$3` the responder (or NULL). The
/// need-to-know filter is an `OR` on a parameter, so the planner keeps the range scan of
/// `reports_created` rather than the product index.
const WINDOW_WHERE: &str = "WHERE created_at >= $1 AND created_at < $2 \
     AND ($3 IS NULL OR product_id IN (SELECT product_id FROM product_responders WHERE user_id = $3))";

/// The `CASE` expressions that classify one clock: met, missed, pending (and of those, at
/// risk: due within [`AT_RISK_MS`]). `$4` is now; `bit`
/// is the clock's bit in `paused_clocks`.
fn clock(milestone: &str, due: &str, bit: u8, stopped_without: &str) -> String {
    let counted = format!("NOT ({stopped_without})");
    format!(
        "SUM(CASE WHEN {counted} AND {due} IS NOT NULL AND {milestone} IS NOT NULL AND {milestone} <= {due} \
             THEN 1 ELSE 0 END) AS {due}_met, \
         SUM(CASE WHEN {counted} AND {due} IS NOT NULL AND ({milestone} > {due} OR ({milestone} IS NULL AND {due} < $4)) \
             THEN 1 ELSE 0 END) AS {due}_missed, \
         SUM(CASE WHEN {counted} AND {milestone} IS NULL AND (({due} IS NOT NULL AND {due} >= $4) \
             OR ({due} IS NULL AND (paused_clocks & {bit}) <> 0)) THEN 1 ELSE 0 END) AS {due}_pending, \
         SUM(CASE WHEN {counted} AND {milestone} IS NULL AND {due} IS NOT NULL AND {due} >= $4 \
             AND {due} < $4 + {AT_RISK_MS} THEN 1 ELSE 0 END) AS {due}_at_risk"
    )
}

/// The week of receipt as a `CASE` over the week starts after the first, `$5` to `$58`
/// (unused ones are bound to the largest instant, so the statement's text is always the same).
fn week_case() -> String {
    let mut case = String::from("CASE");
    for index in 1..MAX_WEEKS {
        case.push_str(&format!(" WHEN created_at < ${} THEN {}", index + 4, index - 1));
    }
    case.push_str(&format!(" ELSE {} END", MAX_WEEKS - 1));
    case
}

fn buckets_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT product_id, {} AS week, COUNT(*) AS reports, \
             COUNT(acknowledged_at) AS acknowledged, COUNT(assessed_at) AS assessed, \
             COUNT(fixed_at) AS fixed, COUNT(disclosed_at) AS disclosed, {}, {}, {} \
             FROM reports {WINDOW_WHERE} GROUP BY product_id, week",
            week_case(),
            clock("acknowledged_at", "ack_due_at", ClockKind::Acknowledge.bit(), "1 = 0"),
            clock("assessed_at", "analyse_due_at", ClockKind::Analyse.bit(), "1 = 0"),
            clock(
                "fixed_at",
                "fix_due_at",
                ClockKind::Fix.bit(),
                &format!("fixed_at IS NULL AND {}", *crate::rules::CLOSED)
            ),
        )
    })
}

fn durations_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT product_id, acknowledged_at - created_at AS acknowledge, assessed_at - created_at AS assess, \
             fixed_at - created_at AS fix, disclosed_at - created_at AS disclose FROM reports {WINDOW_WHERE}"
        )
    })
}

fn tally(row: &sqlx::any::AnyRow, due: &str) -> Result<Tally, StoreError> {
    Ok(Tally {
        met: row.try_get(format!("{due}_met").as_str())?,
        missed: row.try_get(format!("{due}_missed").as_str())?,
        pending: row.try_get(format!("{due}_pending").as_str())?,
        at_risk: row.try_get(format!("{due}_at_risk").as_str())?,
    })
}

/// Counts and SLA outcomes per product and week of receipt, over the window's reports.
/// Only non-empty groups are returned, in no particular order.
pub async fn buckets(tx: &mut Tx, window: &Window) -> Result<Vec<Bucket>, StoreError> {
    if window.week_starts.is_empty() || window.week_starts.len() > MAX_WEEKS {
        return Err(StoreError::Corrupt(format!("a window of {} weeks", window.week_starts.len())));
    }
    let mut query = sqlx::query(buckets_sql())
        .bind(ms(window.from))
        .bind(ms(window.to))
        .bind(window.responsible.map(|u| u.0))
        .bind(ms(window.now));
    for index in 1..MAX_WEEKS {
        query = query.bind(window.week_starts.get(index).map_or(i64::MAX, |start| ms(*start)));
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter()
        .map(|row| {
            Ok(Bucket {
                product_id: row.try_get("product_id")?,
                week: row.try_get("week")?,
                reports: row.try_get("reports")?,
                acknowledged: row.try_get("acknowledged")?,
                assessed: row.try_get("assessed")?,
                fixed: row.try_get("fixed")?,
                disclosed: row.try_get("disclosed")?,
                acknowledge: tally(row, "ack_due_at")?,
                analyse: tally(row, "analyse_due_at")?,
                fix: tally(row, "fix_due_at")?,
            })
        })
        .collect()
}

/// Each of the window's reports with its durations from receipt to each milestone (for
/// medians and percentiles). Integers only; one row per report, in no particular order.
pub async fn durations(tx: &mut Tx, window: &Window) -> Result<Vec<Durations>, StoreError> {
    let rows = sqlx::query(durations_sql())
        .bind(ms(window.from))
        .bind(ms(window.to))
        .bind(window.responsible.map(|u| u.0))
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Durations {
                product_id: row.try_get("product_id")?,
                acknowledge: row.try_get("acknowledge")?,
                assess: row.try_get("assess")?,
                fix: row.try_get("fix")?,
                disclose: row.try_get("disclose")?,
            })
        })
        .collect()
}

/// The product ids a responder is responsible for.
pub async fn products_of(tx: &mut Tx, user: UserId) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT product_id FROM product_responders WHERE user_id = $1 ORDER BY product_id")
        .bind(user.0)
        .fetch_all(tx.conn())
        .await?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The plan of a statement on SQLite, one line per step.
    async fn plan(tx: &mut Tx, sql: &str, parameters: usize) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..parameters {
            query = query.bind(Option::<i64>::None);
        }
        let rows = query.fetch_all(tx.conn()).await.unwrap();
        rows.iter().map(|row| row.try_get::<String, _>("detail").unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[tokio::test]
    async fn both_statements_scan_the_window_through_reports_created() {
        let db = embargo_test_support::sqlite();
        let store = crate::Store::connect(&db.url, Arc::new(embargo_crypto::Keyring::generate())).await.unwrap();
        store.migrate().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        for (sql, parameters) in [(buckets_sql(), 4 + MAX_WEEKS - 1), (durations_sql(), 3)] {
            let plan = plan(&mut tx, sql, parameters).await;
            assert!(plan.contains("USING INDEX reports_created (created_at>? AND created_at<?)"), "{plan}");
        }
    }
}
