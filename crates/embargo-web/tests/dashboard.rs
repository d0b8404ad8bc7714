//! The metrics dashboard through the router, on SQLite and PostgreSQL: exact counts,
//! medians, percentiles and SLA shares from hand-set milestones and deadlines, the
//! responder's narrower view, the CSV export (with a product name that is a spreadsheet
//! formula), the audit entry of each read, and pages without inline script or style.

use crate::common;

use axum::http::StatusCode;
use common::*;
use embargo_app::reports::{self, Channel, Submission};
use embargo_app::{accounts, audit};
use embargo_domain::{Actor, ReportId, Role, Timestamp};
use embargo_store::sla::{self, SlaRecord};
use embargo_test_support::both_backends;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A product name a spreadsheet would run as a formula.
const FORMULA: &str = "=cmd|' /C calc'!A0";

fn submission(title: &str, product_id: Option<i64>) -> Submission {
    Submission { product_id, ..Submission::new(Channel::Email, "reporter@example.net", title, "body") }
}

/// Submits a report now, and returns it with its receipt time.
async fn report(web: &Web, title: &str, product: Option<i64>) -> (ReportId, i64) {
    let submitted = reports::submit(&web.app, &Actor::System("test"), submission(title, product)).await.unwrap();
    (submitted.id, web.app.now().as_millisecond())
}

/// Milestones and deadlines, in hours after receipt.
#[derive(Default)]
struct Hours {
    acknowledged: Option<i64>,
    ack_due: Option<i64>,
    assessed: Option<i64>,
    analyse_due: Option<i64>,
    fixed: Option<i64>,
    fix_due: Option<i64>,
    disclosed: Option<i64>,
}

async fn set_clocks(web: &Web, (id, received): (ReportId, i64), hours: Hours) {
    let at = |h: Option<i64>| h.map(|h| Timestamp::from_millisecond(received + h * HOUR).unwrap());
    let record = SlaRecord {
        acknowledged_at: at(hours.acknowledged),
        ack_due_at: at(hours.ack_due),
        assessed_at: at(hours.assessed),
        analyse_due_at: at(hours.analyse_due),
        fixed_at: at(hours.fixed),
        fix_due_at: at(hours.fix_due),
        disclosed_at: at(hours.disclosed),
        ..SlaRecord::default()
    };
    let mut tx = web.app.store.begin().await.unwrap();
    sla::set(&mut tx, id, &record).await.unwrap();
    tx.commit().await.unwrap();
}

struct World {
    web: Web,
    admin: String,
    on: String,
    off: String,
}

/// Three products' worth of reports: Widget (the responder "on" is responsible for it),
/// a product named like a formula, and none. One older report falls outside the window.
async fn world(db: &embargo_test_support::TestDb) -> World {
    let web = web(db).await;
    let local = Actor::LocalAdmin { os_user: "test".into() };
    let widget = accounts::create_product(&web.app, &local, "Widget").await.unwrap();
    let formula = accounts::create_product(&web.app, &local, FORMULA).await.unwrap();
    create_user(&web, "admin@team.test", Role::Admin).await;
    create_user(&web, "on@team.test", Role::Responder).await;
    create_user(&web, "off@team.test", Role::Responder).await;
    accounts::add_product_responder(&web.app, &local, widget, "on@team.test").await.unwrap();

    // 100 days before the others: outside the 90-day window.
    let old = report(&web, "old", Some(widget)).await;
    set_clocks(&web, old, Hours { acknowledged: Some(1), ack_due: Some(24), ..Hours::default() }).await;
    web.clock.advance_secs(100 * DAY / 1000);

    // Friday 2026-06-12 12:00 UTC (ISO week 2026-W24).
    let r1 = report(&web, "one", Some(widget)).await;
    set_clocks(
        &web,
        r1,
        Hours {
            acknowledged: Some(2),
            ack_due: Some(24),
            assessed: Some(48),
            analyse_due: Some(72),
            fixed: Some(120),
            fix_due: Some(720),
            disclosed: Some(144),
        },
    )
    .await;
    let r2 = report(&web, "two", Some(widget)).await;
    set_clocks(
        &web,
        r2,
        Hours {
            acknowledged: Some(30),
            ack_due: Some(24),
            assessed: Some(96),
            analyse_due: Some(72),
            fix_due: Some(72),
            ..Hours::default()
        },
    )
    .await;
    let r3 = report(&web, "three", Some(widget)).await;
    set_clocks(
        &web,
        r3,
        Hours { acknowledged: Some(4), ack_due: Some(24), analyse_due: Some(480), ..Hours::default() },
    )
    .await;
    let r4 = report(&web, "four", Some(formula)).await;
    // Its analysis is due 10 hours after "now" (ten days on): pending, and at risk.
    set_clocks(&web, r4, Hours { ack_due: Some(24), analyse_due: Some(250), ..Hours::default() }).await;
    let r5 = report(&web, "five", None).await;
    set_clocks(&web, r5, Hours { acknowledged: Some(10), ack_due: Some(24), ..Hours::default() }).await;

    // Ten days later (Monday 2026-06-22, W26), everyone signs in.
    web.clock.advance_secs(10 * DAY / 1000);
    let admin = first_sign_in(&web, "admin@team.test").await;
    let on = first_sign_in(&web, "on@team.test").await;
    let off = first_sign_in(&web, "off@team.test").await;
    World { web, admin, on, off }
}

/// Askama's escaping of text.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;").replace('\'', "&#39;")
}

/// The cells of the row headed `name` in the table with id `table`.
fn cells(body: &str, table: &str, name: &str) -> Option<Vec<String>> {
    let table = between(body, &format!("<table class=\"metrics\" id=\"{table}\">"), "</table>")?;
    let row = between(table, &format!("<th scope=\"row\">{}</th>", escaped(name)), "</tr>")?;
    Some(row.split("<td>").skip(1).map(|cell| cell.trim_end_matches("</td>").to_owned()).collect())
}

/// Whether an attribute like `onclick=` appears.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let name: String = html[i + 3..].chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && html[i + 3 + name.len()..].starts_with('=')
    })
}

fn strings(cells: &[&str]) -> Option<Vec<String>> {
    Some(cells.iter().map(|c| (*c).to_owned()).collect())
}

#[tokio::test]
async fn the_dashboard_shows_exact_times_and_sla_shares_per_product_and_overall() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let reply = send(router, get("/dashboard", Some(&w.admin))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {}", db.backend, reply.body);
        let body = &reply.body;
        assert!(body.contains("<a href=\"/dashboard\" aria-current=\"page\">Dashboard</a>"), "{body}");

        // Time from receipt: count, median, 90th percentile for each step.
        let dash = "—";
        assert_eq!(
            cells(body, "times", "Widget"),
            strings(&[
                "3",
                "3",
                "4.0 hours",
                "30.0 hours",
                "2",
                "3.0 days",
                "4.0 days",
                "1",
                "5.0 days",
                "5.0 days",
                "1",
                "6.0 days",
                "6.0 days"
            ]),
            "{}",
            db.backend
        );
        assert_eq!(
            cells(body, "times", FORMULA),
            strings(&["1", "0", dash, dash, "0", dash, dash, "0", dash, dash, "0", dash, dash])
        );
        assert_eq!(
            cells(body, "times", "No product"),
            strings(&["1", "1", "10.0 hours", "10.0 hours", "0", dash, dash, "0", dash, dash, "0", dash, dash])
        );
        assert_eq!(
            cells(body, "times", "All products"),
            strings(&[
                "5",
                "4",
                "7.0 hours",
                "30.0 hours",
                "2",
                "3.0 days",
                "4.0 days",
                "1",
                "5.0 days",
                "5.0 days",
                "1",
                "6.0 days",
                "6.0 days"
            ])
        );

        // SLA: met, missed, pending, share met, for acknowledge, analyse, fix.
        assert_eq!(
            cells(body, "sla", "Widget"),
            strings(&["2", "1", "0", "0", "66.7%", "1", "1", "1", "0", "50.0%", "1", "1", "0", "0", "50.0%"])
        );
        assert_eq!(
            cells(body, "sla", FORMULA),
            strings(&["0", "1", "0", "0", "0.0%", "0", "0", "1", "1", dash, "0", "0", "0", "0", dash])
        );
        assert_eq!(
            cells(body, "sla", "No product"),
            strings(&["1", "0", "0", "0", "100.0%", "0", "0", "0", "0", dash, "0", "0", "0", "0", dash])
        );
        assert_eq!(
            cells(body, "sla", "All products"),
            strings(&["3", "2", "0", "0", "60.0%", "1", "1", "2", "1", "50.0%", "1", "1", "0", "0", "50.0%"])
        );
        // Beside each share met: what is still open, and what is due within a day.
        let clocks = between(body, "<ul class=\"clocks\" id=\"clocks\">", "</ul>").unwrap();
        let analyse = between(clocks, "<h3>Analyse</h3>", "</li>").unwrap();
        assert!(analyse.contains("<strong class=\"share\">50.0%</strong> met"), "{analyse}");
        assert!(
            analyse.contains(
                "<strong class=\"pending\">2</strong> pending, <strong class=\"at-risk\">1</strong> due within a day"
            ),
            "{analyse}"
        );
        let acknowledge = between(clocks, "<h3>Acknowledge</h3>", "</li>").unwrap();
        assert!(
            acknowledge.contains("<strong class=\"pending\">0</strong> pending, none due within a day"),
            "{acknowledge}"
        );

        // Week by week: every ISO week of the window, the reports in the one they came in.
        let weeks = between(body, "<table class=\"metrics\" id=\"weeks\">", "</table>").unwrap();
        assert_eq!(weeks.matches("<tr><th scope=\"row\">").count(), 14, "{weeks}");
        assert!(weeks.contains("<th scope=\"row\">2026-W13</th>") && weeks.contains("<th scope=\"row\">2026-W26</th>"));
        assert_eq!(cells(body, "weeks", "2026-W24"), strings(&["8 Jun 2026", "5", "3", "2", "0"]));
        assert_eq!(cells(body, "weeks", "2026-W23"), strings(&["1 Jun 2026", "0", "0", "0", "0"]));

        // The charts: inline SVG with titles, styled by class only.
        assert_eq!(body.matches("<svg ").count(), 2);
        assert!(body.contains("<title>2026-W24 (from 8 Jun): 5 received</title>"), "{body}");
        assert!(body.contains("<title>2026-W24 (from 8 Jun): 3 acknowledged within SLA</title>"));
        assert!(body.contains("<title>Acknowledge: 3 met, 2 missed, 0 pending (60.0% met)</title>"));
        assert!(body.contains("<title>Fix: 1 met, 1 missed, 0 pending (50.0% met)</title>"));
        for inline in ["<script", "<style", "style=", "javascript:"] {
            assert!(!body.contains(inline), "the page has {inline:?}");
        }
        assert!(!has_event_handler(body), "the page has an inline event handler");
        let csp = reply.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("style-src 'self';") && !csp.contains("unsafe-inline"), "{csp}");

        // A narrower window leaves the reports of 10 days ago out.
        let week = send(router, get("/dashboard?days=7", Some(&w.admin))).await;
        assert!(week.body.contains("No reports were received in this window."), "{}", week.body);
        assert_eq!(cells(&week.body, "times", "All products").unwrap()[0], "0");
        let bad = send(router, get("/dashboard?days=0", Some(&w.admin))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn responders_see_only_their_products_and_outsiders_nothing() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let reply = send(router, get("/dashboard", Some(&w.on))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", db.backend);
        let body = &reply.body;
        assert!(body.contains("in the products you are responsible for"));
        assert!(cells(body, "times", "Widget").is_some());
        assert_eq!(cells(body, "times", FORMULA), None, "another product's row leaks");
        assert_eq!(cells(body, "times", "No product"), None, "reports without a product leak");
        assert!(!body.contains("cmd|"), "another product's name leaks");
        // Overall is over their product alone.
        assert_eq!(cells(body, "times", "All products").unwrap()[..4], ["3", "3", "4.0 hours", "30.0 hours"]);
        assert_eq!(
            cells(body, "sla", "All products"),
            strings(&["2", "1", "0", "0", "66.7%", "1", "1", "1", "0", "50.0%", "1", "1", "0", "0", "50.0%"])
        );
        assert_eq!(cells(body, "weeks", "2026-W24"), strings(&["8 Jun 2026", "3", "2", "1", "0"]));

        // A responder without products sees an empty dashboard, not an error.
        let reply = send(router, get("/dashboard", Some(&w.off))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("No reports were received in this window."));
        assert_eq!(cells(&reply.body, "times", "All products").unwrap()[0], "0");
        assert_eq!(cells(&reply.body, "weeks", "2026-W24"), strings(&["8 Jun 2026", "0", "0", "0", "0"]));
        let csv = send(router, get("/dashboard.csv", Some(&w.off))).await;
        assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);

        // Signed out: sent to sign in, for the page and the export.
        for path in ["/dashboard", "/dashboard.csv"] {
            let reply = send(router, get(path, None)).await;
            let back = format!("/login?next={}", path.replace('/', "%2F"));
            assert_eq!((reply.status, reply.location()), (StatusCode::SEE_OTHER, back.as_str()), "{path}");
        }

        // Every read is on the record, with its scope.
        let local = Actor::LocalAdmin { os_user: "test".into() };
        let entries = audit::list(&w.web.app, &local, 0, 10_000).await.unwrap();
        let reads: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "metrics.read")
            .map(|e| (e.actor.as_str(), e.details.as_str()))
            .collect();
        assert_eq!(reads.len(), 3, "{reads:?}");
        assert!(reads[0].1.contains("scope=responsible-products reports=3"), "{reads:?}");
        assert!(reads[1].1.contains("scope=responsible-products reports=0"), "{reads:?}");
    }
}

#[tokio::test]
async fn the_csv_export_is_an_attachment_with_formulas_neutralised() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let reply = send(router, get("/dashboard.csv", Some(&w.admin))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", db.backend);
        let header = |name: &str| reply.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "text/csv; charset=utf-8");
        assert_eq!(header("content-disposition"), "attachment; filename=\"embargo-metrics-2026-06-22.csv\"");
        let lines: Vec<&str> = reply.body.split("\r\n").collect();
        assert_eq!(lines.len(), 6, "header, three rows, overall, and the final line end: {:?}", reply.body);
        assert_eq!(lines[5], "");
        assert!(lines[0].starts_with("window_from,window_to,row,product,reports,acknowledge_count,"), "{}", lines[0]);
        assert!(lines[0].ends_with(",fix_sla_met,fix_sla_missed,fix_sla_pending,fix_sla_met_percent"));
        let after = |line: &str, marker: &str| line.split_once(marker).map(|(_, rest)| rest.to_owned());
        // Products by name ('=' sorts before 'W'), then no product, then overall.
        assert_eq!(
            after(lines[1], ",product,"),
            Some("\"'=cmd|' /C calc'!A0\",1,0,,,0,,,0,,,0,,,0,1,0,0.0,0,0,1,,0,0,0,".to_owned())
        );
        assert_eq!(
            after(lines[2], ",product,"),
            Some(
                "\"Widget\",3,3,4.00,30.00,2,72.00,96.00,1,120.00,120.00,1,144.00,144.00,2,1,0,66.7,1,1,1,50.0,1,1,0,50.0"
                    .to_owned()
            )
        );
        assert_eq!(
            after(lines[3], ",no-product,"),
            Some("\"\",1,1,10.00,10.00,0,,,0,,,0,,,1,0,0,100.0,0,0,0,,0,0,0,".to_owned())
        );
        assert_eq!(
            after(lines[4], ",overall,"),
            Some(
                "\"\",5,4,7.00,30.00,2,72.00,96.00,1,120.00,120.00,1,144.00,144.00,3,2,0,60.0,1,1,2,50.0,1,1,0,50.0"
                    .to_owned()
            )
        );
        assert!(!reply.body.contains(",=") && !reply.body.contains("\"="), "a cell starts with a formula");
        assert!(lines[1].starts_with("2026-03-24T12:01:30Z,2026-06-22T12:01:30Z,"), "{}", lines[1]);

        // The responder's export holds their product and its overall only.
        let reply = send(router, get("/dashboard.csv", Some(&w.on))).await;
        let lines: Vec<&str> = reply.body.lines().collect();
        assert_eq!(lines.len(), 3, "{}", reply.body);
        assert!(lines[1].contains(",product,\"Widget\",3,"));
        assert!(lines[2].contains(",overall,\"\",3,"));
        assert!(!reply.body.contains("cmd"));
    }
}
