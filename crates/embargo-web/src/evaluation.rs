//! Evaluation on the report page and for admins: SLA clocks, the CVSS calculator, CWE and
//! SSVC, affected versions, the business calendar and the product catalogue details.
//!
//! The calculator works without JavaScript (metric radio buttons, or a pasted vector, sent
//! to the server, which validates and scores with `embargo_domain::cvss`); with the page
//! script, the score is shown live from `GET /cvss/score`, scored by the same code.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::assessment::{self, Affected};
use embargo_app::reports::ReportDetail;
use embargo_app::sla::{self, Clock};
use embargo_app::{App, AppError, accounts};
use embargo_domain::Timestamp;
use embargo_domain::cvss::Vector;
use embargo_domain::ssvc::{
    DecisionPoint, Exploitation, PublicSafetyImpact, SupplierDecision, TechnicalImpact, Utility,
};
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::{Form, Path, Query};
use crate::render::{Layout, page};

/// One row of the SLA panel.
pub(crate) struct ClockRow {
    pub label: &'static str,
    pub status: String,
    pub class: &'static str,
}

/// A metric of the calculator with its choices (value, label, checked).
pub(crate) struct MetricRow {
    pub name: &'static str,
    pub label: &'static str,
    pub options: Vec<(&'static str, &'static str, bool)>,
}

/// One version's calculator.
pub(crate) struct CvssView {
    pub version: &'static str,
    pub id: &'static str,
    pub vector: String,
    pub score: String,
    pub metrics: Vec<MetricRow>,
    /// Metrics of the stored vector beyond the base ones (kept when the buttons are used).
    pub extra: String,
}

/// An SSVC decision point as a select (key, label, options (key, name, selected)).
pub(crate) struct SsvcRow {
    pub field: &'static str,
    pub label: &'static str,
    pub options: Vec<(&'static str, &'static str, bool)>,
}

/// An affected range row.
pub(crate) struct AffectedRow {
    pub product_id: i64,
    pub introduced: String,
    pub fixed: String,
    pub last_affected: String,
}

/// Everything the evaluation part of the report page shows.
pub(crate) struct EvalView {
    pub clocks: Vec<ClockRow>,
    pub alerts: Vec<(String, String)>,
    pub severity: String,
    pub cvss: Vec<CvssView>,
    pub cwe: String,
    pub ssvc: Vec<SsvcRow>,
    pub ssvc_outcome: String,
    pub affected: Vec<AffectedRow>,
    pub products: Vec<(i64, String)>,
}

fn metric_label(version: &str, name: &str) -> &'static str {
    match (version, name) {
        (_, "AV") => "Attack Vector",
        (_, "AC") => "Attack Complexity",
        (_, "AT") => "Attack Requirements",
        (_, "PR") => "Privileges Required",
        (_, "UI") => "User Interaction",
        (_, "S") => "Scope",
        (_, "C") => "Confidentiality",
        (_, "I") => "Integrity",
        (_, "A") => "Availability",
        (_, "VC") => "Confidentiality (vulnerable system)",
        (_, "VI") => "Integrity (vulnerable system)",
        (_, "VA") => "Availability (vulnerable system)",
        (_, "SC") => "Confidentiality (subsequent systems)",
        (_, "SI") => "Integrity (subsequent systems)",
        (_, "SA") => "Availability (subsequent systems)",
        _ => "Metric",
    }
}

fn value_label(version: &str, name: &str, value: &str) -> &'static str {
    match (version, name, value) {
        (_, "AV", "N") => "Network",
        (_, "AV", "A") => "Adjacent",
        (_, "AV", "L") => "Local",
        (_, "AV", "P") => "Physical",
        (_, "S", "U") => "Unchanged",
        (_, "S", "C") => "Changed",
        ("3.1", "UI", "R") => "Required",
        ("4.0", "UI", "P") => "Passive",
        ("4.0", "UI", "A") => "Active",
        ("4.0", "AT", "P") => "Present",
        (_, _, "N") => "None",
        (_, _, "L") => "Low",
        (_, _, "H") => "High",
        _ => "?",
    }
}

fn score_text(vector: &Vector) -> String {
    match vector {
        Vector::V31(v) => {
            let s = v.scores();
            format!("{} {} (base {})", vector.score(), vector.severity(), s.base)
        }
        Vector::V40(v) => {
            let s = v.score();
            format!("{} {} ({})", s.score, s.score.severity(), s.nomenclature)
        }
    }
}

fn cvss_view(version: &'static str, stored: Option<&str>) -> CvssView {
    let parsed = stored.and_then(|v| Vector::parse(v).ok());
    let base = embargo_domain::cvss::base_metrics(version).unwrap_or_default();
    let metrics = base
        .iter()
        .map(|(name, values)| MetricRow {
            name,
            label: metric_label(version, name),
            options: values
                .iter()
                .map(|v| (*v, value_label(version, name, v), parsed.as_ref().and_then(|p| p.get(name)) == Some(*v)))
                .collect(),
        })
        .collect();
    let extra = parsed
        .as_ref()
        .map(|p| {
            p.iter()
                .filter(|(n, _)| !base.iter().any(|(b, _)| b == n))
                .map(|(n, v)| format!("{n}:{v}"))
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default();
    CvssView {
        version,
        id: if version == "3.1" { "v31" } else { "v40" },
        vector: parsed.as_ref().map(ToString::to_string).unwrap_or_default(),
        score: parsed.as_ref().map(score_text).unwrap_or_else(|| "not scored".into()),
        metrics,
        extra,
    }
}

fn ssvc_row<P: DecisionPoint>(field: &'static str, selected: Option<P>) -> SsvcRow {
    SsvcRow {
        field,
        label: P::NAME,
        options: P::ALL.iter().map(|v| (v.key(), v.name(), selected.is_some_and(|s| s.key() == v.key()))).collect(),
    }
}

fn when(at: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    at.to_zoned_datetime(tz.clone()).strftime("%a %Y-%m-%d %H:%M %Z").to_string()
}

fn clock_label(name: &str) -> &'static str {
    match name {
        "acknowledge" => "Acknowledge",
        "analyse" => "Analysis",
        "update" => "Next update to the reporter",
        "fix" => "Fix",
        _ => "Clock",
    }
}

fn clock_row(clock: &Clock, now: Timestamp, tz: &jiff::tz::TimeZone) -> ClockRow {
    let label = clock_label(clock.name);
    let budget = format!("{} working days", clock.budget_days);
    let (status, class) = match (clock.stopped, clock.due) {
        (Some(stopped), Some(due)) if stopped <= due => {
            (format!("met: done {} (due {})", when(stopped, tz), when(due, tz)), "met")
        }
        (Some(stopped), Some(due)) => {
            (format!("missed: done {} (due {})", when(stopped, tz), when(due, tz)), "overdue")
        }
        (Some(stopped), None) => (format!("done {}", when(stopped, tz)), "met"),
        (None, None) => (format!("paused while waiting on the reporter ({budget})"), "paused"),
        (None, Some(due)) if due <= now => (format!("overdue since {} ({budget})", when(due, tz)), "overdue"),
        (None, Some(due)) if clock.warn.is_some_and(|w| w <= now) => {
            (format!("due {} ({budget})", when(due, tz)), "soon")
        }
        (None, Some(due)) => (format!("due {} ({budget})", when(due, tz)), ""),
    };
    ClockRow { label, status, class }
}

/// Builds the evaluation part of the report page.
pub(crate) fn view(app: &App, detail: &ReportDetail, products: &[(i64, String)]) -> EvalView {
    let tz = &detail.time_zone;
    let now = app.now();
    let a = &detail.assessment;
    let decision = a.ssvc_decision();
    let mut affected: Vec<AffectedRow> = a
        .affected
        .iter()
        .map(|r| AffectedRow {
            product_id: r.product_id,
            introduced: r.introduced.clone(),
            fixed: r.fixed.clone(),
            last_affected: r.last_affected.clone(),
        })
        .collect();
    // One empty row to add a range.
    affected.push(AffectedRow {
        product_id: detail.report.product_id.unwrap_or(0),
        introduced: String::new(),
        fixed: String::new(),
        last_affected: String::new(),
    });
    EvalView {
        clocks: detail.clocks.iter().map(|c| clock_row(c, now, tz)).collect(),
        alerts: detail
            .alerts
            .iter()
            .map(|al| {
                let text = format!(
                    "{} {}: deadline {}",
                    clock_label(&al.clock),
                    if al.kind == "breach" { "breached (admins told)" } else { "warning sent" },
                    when(al.due_at, tz)
                );
                (when(al.at, tz), text)
            })
            .collect(),
        severity: a.severity().map_or_else(|| "unrated".to_owned(), |s| s.as_str().to_owned()),
        cvss: vec![cvss_view("3.1", a.cvss_v3.as_deref()), cvss_view("4.0", a.cvss_v4.as_deref())],
        cwe: a.cwe.join(", "),
        ssvc: vec![
            ssvc_row::<Exploitation>("ssvc_e", decision.map(|d| d.exploitation)),
            ssvc_row::<Utility>("ssvc_u", decision.map(|d| d.utility)),
            ssvc_row::<TechnicalImpact>("ssvc_ti", decision.map(|d| d.technical_impact)),
            ssvc_row::<PublicSafetyImpact>("ssvc_psi", decision.map(|d| d.public_safety_impact)),
        ],
        ssvc_outcome: decision.map_or_else(String::new, |d| format!("{} ({d})", d.priority().name())),
        affected,
        products: products.to_vec(),
    }
}

pub(crate) fn to_report(reference: &embargo_domain::ReferenceId, done: &str) -> Response {
    Redirect::to(&format!("/reports/{reference}?done={done}#assessment")).into_response()
}

fn fail(err: AppError) -> Response {
    WebError::from(err).into_response()
}

/// `POST /reports/{reference}/cvss`: `version`, and either `vector` (pasted) or one
/// `m_<metric>` field per base metric (the buttons) plus `extra`; `clear` removes it.
/// (The handler is `team::set_cvss`, which shows a refused form again on the report page.)
pub(crate) async fn save_cvss(
    app: &App,
    who: &Team,
    reference: &embargo_domain::ReferenceId,
    fields: &[(String, String)],
) -> Result<(), AppError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let version = get("version");
    let result = async {
        let vector = if !get("clear").is_empty() {
            None
        } else if !get("vector").is_empty() {
            Some(get("vector"))
        } else {
            let base = embargo_domain::cvss::base_metrics(&version)
                .ok_or_else(|| AppError::Invalid(format!("CVSS version {version:?}: expected 3.1 or 4.0")))?;
            let mut parts = vec![format!("CVSS:{version}")];
            for (name, _) in &base {
                let value = get(&format!("m_{name}"));
                if value.is_empty() {
                    return Err(AppError::Invalid(format!(
                        "choose a value for {} or paste a vector",
                        metric_label(&version, name)
                    )));
                }
                parts.push(format!("{name}:{value}"));
            }
            let extra = get("extra");
            if !extra.is_empty() {
                parts.push(extra);
            }
            Some(parts.join("/"))
        };
        assessment::set_cvss(app, &who.actor, reference, &version, vector.as_deref()).await
    }
    .await;
    result.map(|_| ())
}

#[derive(Deserialize)]
pub(crate) struct ScoreParams {
    #[serde(default)]
    vector: String,
}

/// `GET /cvss/score?vector=`: the live score for the calculator (team members only; the
/// vector is not stored or logged).
pub(crate) async fn score(_who: Team, Query(params): Query<ScoreParams>) -> Response {
    let body = match Vector::parse(params.vector.trim()) {
        Ok(v) => serde_json::json!({
            "vector": v.to_string(),
            "version": v.version(),
            "score": v.score().value(),
            "severity": v.severity().as_str(),
            "text": score_text(&v),
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ClassificationInput {
    #[serde(default)]
    pub(crate) cwe: String,
    #[serde(default)]
    ssvc_e: String,
    #[serde(default)]
    ssvc_u: String,
    #[serde(default)]
    ssvc_ti: String,
    #[serde(default)]
    ssvc_psi: String,
}

/// `POST /reports/{reference}/classification`: CWE identifiers and the SSVC decision.
/// (The handler is `team::set_classification`.)
pub(crate) async fn save_classification(
    app: &App,
    who: &Team,
    reference: &embargo_domain::ReferenceId,
    input: &ClassificationInput,
) -> Result<(), AppError> {
    let result = async {
        let picked = [&input.ssvc_e, &input.ssvc_u, &input.ssvc_ti, &input.ssvc_psi];
        let decision = if picked.iter().all(|v| v.is_empty()) {
            None
        } else {
            let missing = || AppError::Invalid("an SSVC decision needs all four decision points".into());
            Some(SupplierDecision {
                exploitation: Exploitation::from_key(&input.ssvc_e).ok_or_else(missing)?,
                utility: Utility::from_key(&input.ssvc_u).ok_or_else(missing)?,
                technical_impact: TechnicalImpact::from_key(&input.ssvc_ti).ok_or_else(missing)?,
                public_safety_impact: PublicSafetyImpact::from_key(&input.ssvc_psi).ok_or_else(missing)?,
            })
        };
        assessment::set_classification(app, &who.actor, reference, &input.cwe, decision).await
    }
    .await;
    result.map(|_| ())
}

/// `POST /reports/{reference}/affected`: rows `product_N`, `introduced_N`, `fixed_N`,
/// `last_affected_N`; a row without an introduced version is dropped. (The handler is
/// `team::set_affected`.)
pub(crate) async fn save_affected(
    app: &App,
    who: &Team,
    reference: &embargo_domain::ReferenceId,
    fields: &[(String, String)],
) -> Result<(), AppError> {
    let get = |k: String| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let mut rows = Vec::new();
    for i in 0..=50 {
        let product = get(format!("product_{i}"));
        if product.is_empty() {
            continue;
        }
        let row = Affected {
            product_id: product.parse().unwrap_or(0),
            introduced: get(format!("introduced_{i}")),
            fixed: get(format!("fixed_{i}")),
            last_affected: get(format!("last_affected_{i}")),
        };
        if row.introduced.is_empty() && row.fixed.is_empty() && row.last_affected.is_empty() {
            continue;
        }
        rows.push(row);
    }
    assessment::set_affected(app, &who.actor, reference, &rows).await.map(|_| ())
}

// ---- Business calendar (admins) --------------------------------------------------------

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    layout: Layout,
    error: Option<String>,
    time_zone: String,
    weekdays: Vec<(&'static str, bool)>,
    holidays: Vec<(String, String)>,
    /// (rule as stored, in words, name)
    yearly: Vec<(String, String, String)>,
}

async fn calendar_page(
    app: &App,
    who: &Team,
    status: StatusCode,
    error: Option<String>,
    flash: Option<&str>,
) -> Response {
    let mut layout = Layout::team(app, "Business calendar", "admin", who);
    match sla::calendar(app, &who.actor).await {
        Ok(view) => {
            layout.flashes = flash.map(str::to_owned).into_iter().collect();
            page(
                status,
                &CalendarPage {
                    layout,
                    error,
                    time_zone: view.settings.time_zone.clone(),
                    weekdays: sla::WEEKDAYS
                        .iter()
                        .map(|(_, name)| (*name, view.settings.weekend.iter().any(|d| d == name)))
                        .collect(),
                    holidays: view.holidays.iter().map(|h| (h.day.clone(), h.name.clone())).collect(),
                    yearly: view
                        .yearly
                        .iter()
                        .map(|y| (y.rule.clone(), y.description.clone(), y.name.clone()))
                        .collect(),
                },
            )
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CalendarFlash {
    #[serde(default)]
    done: String,
}

/// `GET /admin/calendar`.
pub(crate) async fn calendar(State(app): State<App>, who: Team, Query(flash): Query<CalendarFlash>) -> Response {
    let message = match flash.done.as_str() {
        "settings" => Some("Calendar saved; open reports' deadlines are being recomputed."),
        "holiday" => Some("Holidays saved; open reports' deadlines are being recomputed."),
        "removed" => Some("Holiday removed."),
        _ => None,
    };
    calendar_page(&app, &who, StatusCode::OK, None, message).await
}

async fn calendar_result(app: &App, who: &Team, result: Result<(), AppError>, done: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/admin/calendar?done={done}")).into_response(),
        // The same form, the field marked and the input kept (`refill`).
        Err(err @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let _ = (app, who);
            let field = match done {
                "holiday" | "holiday-added" => Some("day"),
                "settings" => Some("time_zone"),
                "imported" | "import" => Some("ics"),
                _ => None,
            };
            let text = match err {
                AppError::Invalid(m) | AppError::Conflict(m) => m,
                _ => String::new(),
            };
            match field {
                Some(field) => WebError::invalid(field, text).into_response(),
                None => WebError::request(StatusCode::UNPROCESSABLE_ENTITY, text).into_response(),
            }
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `POST /admin/calendar`: `time_zone` and one `weekend` field per weekend day.
pub(crate) async fn save_calendar(
    State(app): State<App>,
    who: Team,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let time_zone = fields.iter().find(|(k, _)| k == "time_zone").map(|(_, v)| v.clone()).unwrap_or_default();
    let weekend: Vec<String> = fields.iter().filter(|(k, _)| k == "weekend").map(|(_, v)| v.clone()).collect();
    let result = sla::set_calendar(&app, &who.actor, &time_zone, &weekend).await;
    calendar_result(&app, &who, result, "settings").await
}

#[derive(Deserialize)]
pub(crate) struct HolidayInput {
    day: String,
    #[serde(default)]
    name: String,
}

/// `POST /admin/calendar/holidays`: one date.
pub(crate) async fn add_holiday(State(app): State<App>, who: Team, Form(input): Form<HolidayInput>) -> Response {
    let result = match input.day.trim().parse::<jiff::civil::Date>() {
        Ok(day) => sla::add_holidays(&app, &who.actor, &[(day, input.name)]).await.map(|_| ()),
        Err(_) => Err(AppError::Invalid(format!("{:?} is not a date such as 2026-12-25", input.day))),
    };
    calendar_result(&app, &who, result, "holiday").await
}

/// `POST /admin/calendar/import`: an iCalendar file (`ics`, multipart).
pub(crate) async fn import_holidays(State(app): State<App>, who: Team, mut multipart: Multipart) -> Response {
    let mut text = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                // The form's file field (`ics`); any uploaded file is taken.
                if field.name() == Some("ics") || field.file_name().is_some() {
                    // Read as the CLI reads a file: UTF-8 only, at most 1 MiB.
                    text = Some(match field.bytes().await {
                        Ok(bytes) => sla::ics_text(bytes.to_vec()),
                        Err(err) => Err(upload_error(&err)),
                    });
                    break;
                }
            }
            Ok(None) => break,
            Err(err) => {
                text = Some(Err(upload_error(&err)));
                break;
            }
        }
    }
    let result = match text {
        Some(Ok(text)) => sla::import_ics(&app, &who.actor, &text).await.map(|_| ()),
        Some(Err(err)) => Err(err),
        None => Err(AppError::Invalid("choose an .ics file to import".into())),
    };
    calendar_result(&app, &who, result, "holiday").await
}

/// Why an upload could not be read: too large (the body limit), or broken.
fn upload_error(err: &axum::extract::multipart::MultipartError) -> AppError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::Invalid(format!(
            "the file is too large; an iCalendar file may be at most {} bytes (1 MiB)",
            sla::ICS_MAX_BYTES
        ))
    } else {
        AppError::Invalid("the upload could not be read; try again".into())
    }
}

#[derive(Deserialize)]
pub(crate) struct RuleInput {
    rule: String,
}

/// `POST /admin/calendar/yearly/remove`: `rule`, as stored.
pub(crate) async fn remove_holiday_rule(State(app): State<App>, who: Team, Form(input): Form<RuleInput>) -> Response {
    let result = sla::remove_holiday_rule(&app, &who.actor, &input.rule).await;
    calendar_result(&app, &who, result, "removed").await
}

/// `POST /admin/calendar/holidays/{day}/remove`.
pub(crate) async fn remove_holiday(State(app): State<App>, who: Team, Path(day): Path<String>) -> Response {
    let result = sla::remove_holiday(&app, &who.actor, &day).await;
    calendar_result(&app, &who, result, "removed").await
}

#[derive(Deserialize)]
pub(crate) struct ProductInput {
    #[serde(default)]
    repository_url: String,
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    purl: String,
    #[serde(default)]
    release_lines: String,
}

/// `POST /admin/products/{id}`: catalogue details.
pub(crate) async fn update_product(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<ProductInput>,
) -> Response {
    let result = accounts::update_product(
        &app,
        &who.actor,
        id,
        &input.repository_url,
        &input.ecosystem,
        &input.purl,
        &input.release_lines,
    )
    .await;
    match result {
        Ok(()) => Redirect::to("/admin?done=product-details").into_response(),
        Err(err) => fail(err),
    }
}
