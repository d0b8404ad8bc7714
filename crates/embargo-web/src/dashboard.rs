//! The metrics dashboard (`/dashboard`) and its CSV export (`/dashboard.csv`): tables of
//! times and SLA shares per product, and two charts drawn here as inline SVG (styled by
//! class from the stylesheet, since the CSP allows no inline style), each with a `<title>`
//! and a table that says the same in text.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::App;
use embargo_app::metrics::{self, Dashboard, DashboardQuery, Row, Scope, Tally, TimeStat};
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::Query;
use crate::render::{self, Layout, page};

#[derive(Deserialize, Default)]
pub(crate) struct DashboardParams {
    #[serde(default)]
    days: Option<i64>,
}

impl DashboardParams {
    fn query(&self) -> DashboardQuery {
        DashboardQuery { days: self.days.unwrap_or(metrics::DEFAULT_DAYS) }
    }
}

/// The windows offered in the form.
const WINDOWS: [i64; 4] = [30, 90, 180, 365];

struct TimeView {
    count: i64,
    median: String,
    p90: String,
}

struct SlaView {
    share: String,
    met: i64,
    missed: i64,
    pending: i64,
    /// Pending and due within a day.
    at_risk: i64,
}

struct RowView {
    name: String,
    class: &'static str,
    reports: i64,
    /// Acknowledge, assess, fix, disclose.
    times: Vec<TimeView>,
    /// Acknowledge, analyse, fix.
    slas: Vec<SlaView>,
}

struct WeekView {
    label: String,
    monday: String,
    received: i64,
    met: i64,
    missed: i64,
    pending: i64,
}

/// A bar of a chart, in the chart's user units.
struct Bar {
    class: &'static str,
    x: String,
    y: String,
    width: String,
    height: String,
    title: String,
}

/// A text label of a chart.
struct Label {
    x: String,
    y: String,
    anchor: &'static str,
    text: String,
}

/// The weekly chart: received and acknowledged within SLA, side by side per week.
struct WeeklyChart {
    width: i64,
    height: i64,
    bars: Vec<Bar>,
    labels: Vec<Label>,
    /// Horizontal grid lines: (y, label).
    grid: Vec<(String, Label)>,
    plot_left: i64,
    plot_right: i64,
    baseline: String,
}

/// One horizontal bar per SLA clock: the share met.
struct SlaChart {
    width: i64,
    height: i64,
    bars: Vec<Bar>,
    labels: Vec<Label>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    days: i64,
    windows: Vec<i64>,
    from: String,
    to: String,
    responder: bool,
    rows: Vec<RowView>,
    overall: RowView,
    weeks: Vec<WeekView>,
    weekly: WeeklyChart,
    sla: SlaChart,
    /// The column groups of the times table.
    steps: [&'static str; 4],
    /// The column groups of the SLA table.
    clocks: [&'static str; 3],
}

pub(crate) async fn dashboard(State(app): State<App>, who: Team, Query(params): Query<DashboardParams>) -> Response {
    let layout = Layout::team(&app, "Dashboard", "dashboard", &who);
    let dashboard = match metrics::dashboard(&app, &who.actor, &params.query()).await {
        Ok(dashboard) => dashboard,
        Err(err) => return WebError::from(err).into_response(),
    };
    let rows = dashboard.products.iter().map(|r| row_view(r, false)).collect();
    page(
        StatusCode::OK,
        &DashboardPage {
            layout,
            days: dashboard.days,
            windows: WINDOWS.into(),
            from: render::date(&app, dashboard.from),
            to: render::date(&app, dashboard.to),
            responder: dashboard.scope == Scope::ResponsibleProducts,
            rows,
            overall: row_view(&dashboard.overall, true),
            weeks: dashboard
                .weeks
                .iter()
                .map(|w| WeekView {
                    label: w.label.clone(),
                    monday: w.monday.strftime("%-d %b %Y").to_string(),
                    received: w.received,
                    met: w.acknowledge_sla.met,
                    missed: w.acknowledge_sla.missed,
                    pending: w.acknowledge_sla.pending,
                })
                .collect(),
            weekly: weekly_chart(&dashboard),
            sla: sla_chart(&dashboard.overall),
            steps: ["Acknowledge", "Assess", "Fix", "Disclose"],
            clocks: ["Acknowledge", "Analyse", "Fix"],
        },
    )
}

pub(crate) async fn dashboard_csv(
    State(app): State<App>,
    who: Team,
    Query(params): Query<DashboardParams>,
) -> Response {
    let dashboard = match metrics::dashboard(&app, &who.actor, &params.query()).await {
        Ok(dashboard) => dashboard,
        Err(err) => return WebError::from(err).into_response(),
    };
    let day = dashboard.to.to_zoned_datetime(app.time_zone()).strftime("%Y-%m-%d").to_string();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"embargo-metrics-{day}.csv\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        metrics::csv(&dashboard),
    )
        .into_response()
}

/// A duration for people: minutes under an hour, hours under two days, then days.
fn duration(ms: i64) -> String {
    const HOUR: f64 = 3_600_000.0;
    let hours = ms as f64 / HOUR;
    if hours < 1.0 {
        let minutes = (ms as f64 / 60_000.0).round() as i64;
        if minutes == 1 { "1 minute".to_owned() } else { format!("{minutes} minutes") }
    } else if hours < 48.0 {
        format!("{hours:.1} hours")
    } else {
        format!("{:.1} days", hours / 24.0)
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

fn time_view(stat: TimeStat) -> TimeView {
    let show = |ms: Option<i64>| ms.map_or_else(|| "—".to_owned(), duration);
    TimeView { count: stat.count, median: show(stat.median_ms), p90: show(stat.p90_ms) }
}

fn sla_view(tally: Tally) -> SlaView {
    SlaView {
        share: percent(tally.met_share()),
        met: tally.met,
        missed: tally.missed,
        pending: tally.pending,
        at_risk: tally.at_risk,
    }
}

fn row_view(row: &Row, overall: bool) -> RowView {
    let (name, class) = match (&row.product, overall) {
        (_, true) => ("All products".to_owned(), "overall"),
        (Some((_, name)), false) => (name.clone(), "product"),
        (None, false) => ("No product".to_owned(), "no-product"),
    };
    RowView {
        name,
        class,
        reports: row.reports,
        times: [row.acknowledge, row.assess, row.fix, row.disclose].into_iter().map(time_view).collect(),
        slas: [row.acknowledge_sla, row.analyse_sla, row.fix_sla].into_iter().map(sla_view).collect(),
    }
}

fn num(value: f64) -> String {
    format!("{value:.1}")
}

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above `value`.
fn nice_step(value: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for factor in [1.0, 2.0, 5.0] {
            if step * factor >= value {
                return step * factor;
            }
        }
        step *= 10.0;
    }
}

fn weekly_chart(dashboard: &Dashboard) -> WeeklyChart {
    let (width, height) = (480_i64, 240_i64);
    let (left, right, top, bottom) = (36.0, 472.0, 12.0, 212.0);
    let max = dashboard.weeks.iter().map(|w| w.received).max().unwrap_or(0).max(1) as f64;
    let step = nice_step(max / 4.0).max(1.0);
    let top_value = (max / step).ceil() * step;
    let y_of = |value: f64| bottom - (bottom - top) * value / top_value;
    let mut grid = Vec::new();
    let mut tick = 0.0;
    while tick <= top_value {
        let y = y_of(tick);
        grid.push((num(y), Label { x: num(left - 6.0), y: num(y + 4.0), anchor: "end", text: format!("{tick}") }));
        tick += step;
    }
    let count = dashboard.weeks.len().max(1) as f64;
    let slot = (right - left) / count;
    let bar_width = (slot * 0.38).max(1.0);
    let every = (dashboard.weeks.len() as f64 / 6.0).ceil().max(1.0) as usize;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, week) in dashboard.weeks.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.1;
        let monday = week.monday.strftime("%-d %b").to_string();
        for (offset, class, value, what) in [
            (0.0, "bar-received", week.received, "received"),
            (bar_width, "bar-met", week.acknowledge_sla.met, "acknowledged within SLA"),
        ] {
            let y = y_of(value as f64);
            bars.push(Bar {
                class,
                x: num(x + offset),
                y: num(y),
                width: num(bar_width),
                height: num(bottom - y),
                title: format!("{} (from {monday}): {value} {what}", week.label),
            });
        }
        if i % every == 0 {
            labels.push(Label {
                x: num(x + bar_width),
                y: num(bottom + 16.0),
                anchor: "middle",
                text: week.label.split_once('-').map_or_else(|| week.label.clone(), |(_, w)| w.to_owned()),
            });
        }
    }
    WeeklyChart {
        width,
        height,
        bars,
        labels,
        grid,
        plot_left: left as i64,
        plot_right: right as i64,
        baseline: num(bottom),
    }
}

fn sla_chart(overall: &Row) -> SlaChart {
    let (label_width, track, row_height) = (110.0, 300.0, 36.0);
    let clocks = [("Acknowledge", overall.acknowledge_sla), ("Analyse", overall.analyse_sla), ("Fix", overall.fix_sla)];
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (name, tally)) in clocks.iter().enumerate() {
        let y = 6.0 + row_height * i as f64;
        let summary = format!(
            "{name}: {} met, {} missed, {} pending ({} met)",
            tally.met,
            tally.missed,
            tally.pending,
            percent(tally.met_share())
        );
        labels.push(Label { x: "0".into(), y: num(y + 17.0), anchor: "start", text: (*name).to_owned() });
        bars.push(Bar {
            class: "bar-track",
            x: num(label_width),
            y: num(y),
            width: num(track),
            height: "24".into(),
            title: summary.clone(),
        });
        if let Some(share) = tally.met_share() {
            let met = track * share;
            if met > 0.0 {
                bars.push(Bar {
                    class: "bar-met",
                    x: num(label_width),
                    y: num(y),
                    width: num(met),
                    height: "24".into(),
                    title: summary.clone(),
                });
            }
            if met < track {
                bars.push(Bar {
                    class: "bar-missed",
                    x: num(label_width + met),
                    y: num(y),
                    width: num(track - met),
                    height: "24".into(),
                    title: summary,
                });
            }
        }
        labels.push(Label {
            x: num(label_width + track + 8.0),
            y: num(y + 17.0),
            anchor: "start",
            text: percent(tally.met_share()),
        });
    }
    SlaChart { width: 480, height: (6.0 + row_height * clocks.len() as f64) as i64, bars, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_minutes_hours_or_days() {
        assert_eq!(duration(60_000), "1 minute");
        assert_eq!(duration(25 * 60_000), "25 minutes");
        assert_eq!(duration(4 * 3_600_000), "4.0 hours");
        assert_eq!(duration(30 * 3_600_000), "30.0 hours");
        assert_eq!(duration(72 * 3_600_000), "3.0 days");
        assert_eq!(duration(77 * 3_600_000), "3.2 days");
    }

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(nice_step(0.25), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(26.0), 50.0);
    }
}
