//! The metrics dashboard: time to acknowledge, assess, fix and disclose (median and 90th
//! percentile), and the share of each SLA clock met, over the reports received in a rolling
//! window (90 days by default), per product and overall, with a weekly series; and its CSV
//! export.
//!
//! Need-to-know: admins (and local administrators, and the system) see every report.
//! A responder sees only the products they are responsible for: their products' rows, and
//! an "overall" computed over those rows alone. Reports without a product, and reports of
//! other products (even ones assigned to them), are left out, so that no count reveals
//! reports they cannot list by product. Reading the dashboard is audited (`metrics.read`).

use embargo_domain::{Actor, Timestamp};
pub use embargo_store::metrics::Tally;
use embargo_store::metrics::{self as sm, Window};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// The window, in days, unless asked otherwise.
pub const DEFAULT_DAYS: i64 = 90;

/// What to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardQuery {
    /// The window: reports received in the last this many days (1 to 366).
    pub days: i64,
}

impl Default for DashboardQuery {
    fn default() -> Self {
        Self { days: DEFAULT_DAYS }
    }
}

/// Whose reports the figures cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every report.
    All,
    /// Only the reports of the products the reader is responsible for.
    ResponsibleProducts,
}

/// How long reports took to reach a milestone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeStat {
    /// How many reports reached it.
    pub count: i64,
    /// The median time, in milliseconds (the mean of the two middle values for an even
    /// count).
    pub median_ms: Option<i64>,
    /// The 90th percentile (nearest rank), in milliseconds.
    pub p90_ms: Option<i64>,
}

/// The figures of one product, of reports without a product, or of all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The product's id and name; `None` for reports without a product (and the overall
    /// row).
    pub product: Option<(i64, String)>,
    /// Reports received in the window.
    pub reports: i64,
    /// To acknowledgement.
    pub acknowledge: TimeStat,
    /// To assessment (accepted or closed).
    pub assess: TimeStat,
    /// To the fix (ready for disclosure).
    pub fix: TimeStat,
    /// To disclosure.
    pub disclose: TimeStat,
    /// The acknowledgement clock.
    pub acknowledge_sla: Tally,
    /// The analysis clock.
    pub analyse_sla: Tally,
    /// The fix clock.
    pub fix_sla: Tally,
}

/// One week of the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    /// Its Monday, in the team's time zone.
    pub monday: jiff::civil::Date,
    /// The ISO week, `2026-W24`.
    pub label: String,
    /// Reports received.
    pub received: i64,
    /// Their acknowledgement clocks.
    pub acknowledge_sla: Tally,
}

/// The dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Reports received at or after this time...
    pub from: Timestamp,
    /// ...and before this one ("now": open clocks are judged at this time).
    pub to: Timestamp,
    /// The window in days.
    pub days: i64,
    /// Whose reports.
    pub scope: Scope,
    /// One row per product with reports in the window, by name, then reports without a
    /// product (if any, and only for [`Scope::All`]).
    pub products: Vec<Row>,
    /// Every report of the rows above.
    pub overall: Row,
    /// Week by week, oldest first, every week of the window (empty ones too).
    pub weeks: Vec<Week>,
}

/// The dashboard over the last `query.days` days, as `actor` may see it (see the module
/// documentation for the need-to-know rule). The read is audited.
pub async fn dashboard(app: &App, actor: &Actor, query: &DashboardQuery) -> Result<Dashboard, AppError> {
    if !(1..=366).contains(&query.days) {
        return Err(AppError::Invalid(format!("the window must be 1 to 366 days, not {}", query.days)));
    }
    let now = app.now();
    let from = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * query.days))
        .map_err(|e| AppError::Invalid(format!("window: {e}")))?;
    // Weeks start on Monday in the business calendar's time zone, as every date shown.
    let tz = crate::sla::time_zone(app).await?;
    let first_monday = monday_of(from.to_zoned_datetime(tz.clone()).date());
    // Each week starts at Monday midnight in that zone (7 days, not always 168 hours).
    let mut week_starts = Vec::new();
    let mut monday = first_monday;
    loop {
        let start = monday
            .to_zoned_datetime(tz.clone())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("week start: {e}")))?
            .timestamp();
        if start >= now && !week_starts.is_empty() {
            break;
        }
        week_starts.push(start);
        monday = monday.checked_add(jiff::Span::new().days(7)).map_err(|e| AppError::Internal(e.into()))?;
    }
    let responsible = authz::narrowed_to(actor, Permission::ReadMetrics);
    let scope = if responsible.is_some() { Scope::ResponsibleProducts } else { Scope::All };
    let week_count = week_starts.len() as i64;
    let window = Window { from, to: now, now, week_starts, responsible };

    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ReadMetrics).await?;
    let buckets = sm::buckets(&mut tx, &window).await?;
    let durations = sm::durations(&mut tx, &window).await?;
    let products = embargo_store::products::list(&mut tx).await?;
    tx.rollback().await?;

    let mut rows: Vec<Row> = Vec::new();
    let mut product_ids: Vec<Option<i64>> = buckets.iter().map(|b| b.product_id).collect();
    product_ids.sort();
    product_ids.dedup();
    for product_id in product_ids {
        let product = product_id
            .map(|id| (id, products.iter().find(|p| p.id == id).map_or_else(String::new, |p| p.name.clone())));
        rows.push(row(
            product,
            buckets.iter().filter(|b| b.product_id == product_id),
            durations.iter().filter(|d| d.product_id == product_id),
        ));
    }
    // Products by name, reports without a product last.
    rows.sort_by(|a, b| match (&a.product, &b.product) {
        (Some(a), Some(b)) => a.1.cmp(&b.1),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let overall = row(None, buckets.iter(), durations.iter());

    let mut weeks = Vec::new();
    for index in 0..week_count.max(1) {
        let monday = first_monday
            .checked_add(jiff::Span::new().days(7 * index))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("week {index}: {e}")))?;
        let iso = monday.iso_week_date();
        let mut week = Week {
            monday,
            label: format!("{:04}-W{:02}", iso.year(), iso.week()),
            received: 0,
            acknowledge_sla: Tally::default(),
        };
        for bucket in buckets.iter().filter(|b| b.week == index) {
            week.received += bucket.reports;
            week.acknowledge_sla.add(bucket.acknowledge);
        }
        weeks.push(week);
    }

    audit::record_read(
        app,
        actor,
        "metrics.read",
        "metrics",
        &format!(
            "days={} scope={} reports={}",
            query.days,
            match scope {
                Scope::All => "all",
                Scope::ResponsibleProducts => "responsible-products",
            },
            overall.reports
        ),
    )
    .await?;
    Ok(Dashboard { from, to: now, days: query.days, scope, products: rows, overall, weeks })
}

/// The Monday of the ISO week holding `date`.
fn monday_of(date: jiff::civil::Date) -> jiff::civil::Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(jiff::Span::new().days(back)).unwrap_or(date)
}

fn row<'a>(
    product: Option<(i64, String)>,
    buckets: impl Iterator<Item = &'a sm::Bucket>,
    durations: impl Iterator<Item = &'a sm::Durations>,
) -> Row {
    let mut row = Row { product, ..Row::default() };
    for bucket in buckets {
        row.reports += bucket.reports;
        row.acknowledge_sla.add(bucket.acknowledge);
        row.analyse_sla.add(bucket.analyse);
        row.fix_sla.add(bucket.fix);
    }
    let (mut acknowledge, mut assess, mut fix, mut disclose) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in durations {
        // A milestone recorded before receipt (a clock set by hand) counts as immediate.
        acknowledge.extend(d.acknowledge.map(|ms| ms.max(0)));
        assess.extend(d.assess.map(|ms| ms.max(0)));
        fix.extend(d.fix.map(|ms| ms.max(0)));
        disclose.extend(d.disclose.map(|ms| ms.max(0)));
    }
    row.acknowledge = time_stat(acknowledge);
    row.assess = time_stat(assess);
    row.fix = time_stat(fix);
    row.disclose = time_stat(disclose);
    row
}

fn time_stat(mut values: Vec<i64>) -> TimeStat {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return TimeStat::default();
    }
    let median = if n % 2 == 1 { values[n / 2] } else { values[n / 2 - 1] + (values[n / 2] - values[n / 2 - 1]) / 2 };
    // Nearest rank: the smallest value with at least 90% of the values at or below it.
    let rank = (n * 9).div_ceil(10);
    TimeStat { count: n as i64, median_ms: Some(median), p90_ms: Some(values[rank - 1]) }
}

/// The per-product and overall figures as CSV (RFC 4180: CRLF line ends, fields with a
/// comma, quote or line break quoted, product names always quoted). Text that a
/// spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'`. Times are in hours, shares in percent; empty when
/// there is nothing to measure.
pub fn csv(dashboard: &Dashboard) -> String {
    let mut out = String::new();
    let mut columns: Vec<String> = ["window_from", "window_to", "row", "product", "reports"].map(String::from).into();
    for milestone in ["acknowledge", "assess", "fix", "disclose"] {
        columns.extend(["count", "median_hours", "p90_hours"].map(|c| format!("{milestone}_{c}")));
    }
    for clock in ["acknowledge", "analyse", "fix"] {
        columns.extend(["met", "missed", "pending", "met_percent"].map(|c| format!("{clock}_sla_{c}")));
    }
    line(&mut out, columns.iter().map(|c| Cell::Plain(c.clone())));
    let rows = dashboard.products.iter().map(|r| (if r.product.is_some() { "product" } else { "no-product" }, r));
    for (kind, row) in rows.chain(std::iter::once(("overall", &dashboard.overall))) {
        let mut cells = vec![
            Cell::Plain(dashboard.from.to_string()),
            Cell::Plain(dashboard.to.to_string()),
            Cell::Plain(kind.to_owned()),
            Cell::Text(row.product.as_ref().map_or_else(String::new, |p| p.1.clone())),
            Cell::Plain(row.reports.to_string()),
        ];
        for stat in [row.acknowledge, row.assess, row.fix, row.disclose] {
            cells.push(Cell::Plain(stat.count.to_string()));
            cells.push(Cell::Plain(stat.median_ms.map_or_else(String::new, hours)));
            cells.push(Cell::Plain(stat.p90_ms.map_or_else(String::new, hours)));
        }
        for tally in [row.acknowledge_sla, row.analyse_sla, row.fix_sla] {
            cells.push(Cell::Plain(tally.met.to_string()));
            cells.push(Cell::Plain(tally.missed.to_string()));
            cells.push(Cell::Plain(tally.pending.to_string()));
            cells.push(Cell::Plain(tally.met_share().map_or_else(String::new, |s| format!("{:.1}", s * 100.0))));
        }
        line(&mut out, cells.into_iter());
    }
    out
}

enum Cell {
    /// Written as is unless it needs quoting.
    Plain(String),
    /// Always quoted (team-entered text).
    Text(String),
}

fn hours(ms: i64) -> String {
    format!("{:.2}", ms as f64 / 3_600_000.0)
}

fn line(out: &mut String, cells: impl Iterator<Item = Cell>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (text, always) = match cell {
            Cell::Plain(text) => (text, false),
            Cell::Text(text) => (text, true),
        };
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text };
        if always || text.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_average_the_middle_pair_and_p90_is_the_nearest_rank() {
        assert_eq!(time_stat(vec![]), TimeStat::default());
        assert_eq!(time_stat(vec![5]), TimeStat { count: 1, median_ms: Some(5), p90_ms: Some(5) });
        assert_eq!(time_stat(vec![30, 2, 4]), TimeStat { count: 3, median_ms: Some(4), p90_ms: Some(30) });
        assert_eq!(time_stat(vec![10, 4, 30, 2]), TimeStat { count: 4, median_ms: Some(7), p90_ms: Some(30) });
        let hundred: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(time_stat(hundred), TimeStat { count: 100, median_ms: Some(50), p90_ms: Some(90) });
    }

    #[test]
    fn weeks_start_on_monday() {
        let friday = jiff::civil::date(2026, 6, 12);
        assert_eq!(monday_of(friday), jiff::civil::date(2026, 6, 8));
        assert_eq!(monday_of(jiff::civil::date(2026, 6, 8)), jiff::civil::date(2026, 6, 8));
        assert_eq!(monday_of(jiff::civil::date(2026, 6, 14)), jiff::civil::date(2026, 6, 8));
    }

    #[test]
    fn csv_quotes_text_and_neutralises_formulas() {
        let mut out = String::new();
        line(
            &mut out,
            [
                Cell::Plain("1".into()),
                Cell::Text("=cmd|' /C calc'!A0".into()),
                Cell::Text("a \"b\", c".into()),
                Cell::Text("+1".into()),
                Cell::Text("-1".into()),
                Cell::Text("@SUM(A1)".into()),
                Cell::Plain("x\ny".into()),
                Cell::Text("plain".into()),
            ]
            .into_iter(),
        );
        assert_eq!(
            out,
            "1,\"'=cmd|' /C calc'!A0\",\"a \"\"b\"\", c\",\"'+1\",\"'-1\",\"'@SUM(A1)\",\"x\ny\",\"plain\"\r\n"
        );
    }
}
