//! The team's advisory editor: the list of advisories, a draft's form with the validation
//! of every output (why it cannot go to review yet), the review steps, publication, and
//! each output computed from the current record.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_advisory::{Credit, CreditType, Reference, ReferenceType, Status, Weakness};
use embargo_app::{App, AppError, advisories};
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::{Form, Path, Query, ReportPath};
use crate::render::{Layout, page};

#[derive(Template)]
#[template(path = "team_advisories.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<(String, String, String, String, String)>,
    admin: bool,
}

/// `GET /team/advisories`.
pub(crate) async fn list(State(app): State<App>, who: Team) -> Response {
    let layout = Layout::team(&app, "Advisories", "advisories", &who);
    match advisories::list(&app, &who.actor, None).await {
        Ok(list) => page(
            StatusCode::OK,
            &ListPage {
                rows: list
                    .into_iter()
                    .map(|a| {
                        let public_id = a.public_id.unwrap_or_default();
                        (a.id, a.state.code().to_owned(), a.cve_id.unwrap_or_default(), a.title, public_id)
                    })
                    .collect(),
                admin: who.session.is_admin(),
                layout,
            },
        ),
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateInput {
    #[serde(default)]
    title: String,
}

/// `POST /team/advisories`: a new empty draft (admins).
pub(crate) async fn create(State(app): State<App>, who: Team, Form(input): Form<CreateInput>) -> Response {
    match advisories::create(&app, &who.actor, &input.title, None).await {
        Ok(id) => Redirect::to(&format!("/team/advisories/{id}")).into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `POST /reports/{reference}/advisory`: a draft covering the report, prefilled from its
/// assessment.
pub(crate) async fn create_from_report(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
) -> Response {
    match advisories::create(&app, &who.actor, "", Some(&reference)).await {
        Ok(id) => Redirect::to(&format!("/team/advisories/{id}")).into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Template)]
#[template(path = "team_advisory.html")]
struct EditPage {
    layout: Layout,
    id: String,
    public_id: String,
    state: String,
    /// Whether the viewer holds the publication permission.
    may_publish: bool,
    reports: Vec<String>,
    checks: Vec<(String, &'static str, &'static str, Vec<String>)>,
    /// The CSAF optional tests' warnings (they do not block publication).
    warnings: Vec<String>,
    publishable: bool,
    published_revisions: i64,
    submitted_by: String,
    approved_by: String,
    title: String,
    cve_id: String,
    aliases: String,
    summary: String,
    details: String,
    workarounds: String,
    cvss_v3: String,
    cvss_v4: String,
    cwe: String,
    references: String,
    credits: String,
    affected: String,
    error: Option<String>,
}

fn upper(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

async fn edit_page(
    app: &App,
    who: &Team,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    flash: Option<&str>,
) -> Response {
    let mut layout = Layout::team(app, format!("Advisory {id}"), "advisories", who);
    let advisory = match advisories::get(app, &who.actor, id).await {
        Ok(a) => a,
        Err(err) => return WebError::from(err).into_response(),
    };
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    let r = &advisory.record;
    let checks = advisory
        .validation
        .formats
        .iter()
        .map(|(format, status)| match status {
            Status::Valid => (format.to_string(), "valid", "check-valid", Vec::new()),
            Status::NotApplicable(why) => (format.to_string(), "not produced", "check-not-produced", vec![why.clone()]),
            Status::Invalid(problems) => (format.to_string(), "invalid", "check-invalid", problems.clone()),
        })
        .collect();
    page(
        status,
        &EditPage {
            layout,
            id: advisory.id.clone(),
            public_id: advisory.public_id.clone().unwrap_or_default(),
            state: advisory.state.code().to_owned(),
            may_publish: embargo_app::authz::grant(&who.actor, embargo_app::authz::Permission::PublishAdvisory)
                != embargo_domain::Grant::No,
            reports: advisory.reports.iter().map(ToString::to_string).collect(),
            checks,
            warnings: advisory.validation.warnings.clone(),
            publishable: advisory.validation.is_publishable(),
            published_revisions: advisory.published_revisions,
            submitted_by: advisory.submitted_by.clone().unwrap_or_default(),
            approved_by: advisory.approved_by.clone().unwrap_or_default(),
            title: r.title.clone(),
            cve_id: r.cve_id.clone().unwrap_or_default(),
            aliases: r.aliases.join(", "),
            summary: r.summary.clone(),
            details: r.details.clone(),
            workarounds: r.workarounds.clone(),
            cvss_v3: r.severity.cvss_v3_1.clone().unwrap_or_default(),
            cvss_v4: r.severity.cvss_v4_0.clone().unwrap_or_default(),
            cwe: r.weaknesses.iter().map(|w| w.id.clone()).collect::<Vec<_>>().join(", "),
            references: r
                .references
                .iter()
                .map(|x| format!("{} {}", upper(&x.kind), x.url))
                .collect::<Vec<_>>()
                .join("\n"),
            credits: r
                .credits
                .iter()
                .map(|c| format!("{} {}", c.kind.as_ref().map(upper).unwrap_or_else(|| "OTHER".into()), c.name))
                .collect::<Vec<_>>()
                .join("\n"),
            affected: serde_json::to_string_pretty(&r.affected).unwrap_or_default(),
            error,
        },
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    #[serde(default)]
    done: String,
}

/// `GET /team/advisories/{id}`.
pub(crate) async fn show(
    State(app): State<App>,
    who: Team,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let message = match flash.done.as_str() {
        "saved" => Some("Saved."),
        "submitted" => Some("Sent for review: someone else approves it."),
        "approved" => Some("Approved: it can be published."),
        "changes" => Some("Back to draft."),
        "published" => Some("Published: it is now on the public advisory pages and feeds."),
        "withdrawn" => Some("Withdrawn: every public format now says so."),
        _ => None,
    };
    edit_page(&app, &who, &id, StatusCode::OK, None, message).await
}

#[derive(Deserialize)]
pub(crate) struct EditInput {
    title: String,
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    workarounds: String,
    #[serde(default)]
    cvss_v3: String,
    #[serde(default)]
    cvss_v4: String,
    #[serde(default)]
    cwe: String,
    #[serde(default)]
    references: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    affected: String,
}

fn parse_kind<T: serde::de::DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(word.to_uppercase())).ok()
}

/// Writes the form into the record; bad input is an error in the field it came from.
fn apply(record: &mut embargo_advisory::AdvisoryRecord, input: EditInput) -> Result<(), WebError> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    record.title = input.title.trim().to_owned();
    record.aliases = input.aliases.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    record.summary = input.summary.trim().to_owned();
    record.details = input.details.replace("\r\n", "\n").trim().to_owned();
    record.workarounds = input.workarounds.replace("\r\n", "\n").trim().to_owned();
    record.severity.cvss_v3_1 = opt(&input.cvss_v3);
    record.severity.cvss_v4_0 = opt(&input.cvss_v4);
    let old_names = std::mem::take(&mut record.weaknesses);
    record.weaknesses = input
        .cwe
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|id| Weakness {
            id: id.to_owned(),
            name: old_names.iter().find(|w| w.id == id).and_then(|w| w.name.clone()),
        })
        .collect();
    let mut references = Vec::new();
    for line in input.references.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (kind, url) = line.split_once(char::is_whitespace).unwrap_or(("WEB", line));
        let kind: ReferenceType = parse_kind(kind).ok_or_else(|| {
            WebError::invalid(
                "references",
                format!("reference {line:?}: start with a type such as FIX, ADVISORY or WEB"),
            )
        })?;
        references.push(Reference { url: url.trim().to_owned(), kind });
    }
    record.references = references;
    let mut credits = Vec::new();
    for line in input.credits.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (kind, name) = line.split_once(char::is_whitespace).unwrap_or(("OTHER", line));
        let kind: CreditType = parse_kind(kind).ok_or_else(|| {
            WebError::invalid("credits", format!("credit {line:?}: start with a type such as FINDER or REPORTER"))
        })?;
        credits.push(Credit { name: name.trim().to_owned(), contact: Vec::new(), kind: Some(kind) });
    }
    record.credits = credits;
    record.affected = if input.affected.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&input.affected)
            .map_err(|e| WebError::invalid("affected", format!("affected products (JSON): {e}")))?
    };
    Ok(())
}

/// `POST /team/advisories/{id}`: saves the form.
pub(crate) async fn save(
    State(app): State<App>,
    who: Team,
    Path(id): Path<String>,
    Form(input): Form<EditInput>,
) -> Response {
    let result: Result<_, WebError> = async {
        let mut record = advisories::get(&app, &who.actor, &id).await?.record;
        apply(&mut record, input)?;
        Ok(advisories::update(&app, &who.actor, &id, record).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/team/advisories/{id}?done=saved")).into_response(),
        // The same form, the field marked and the input kept (`refill`).
        Err(err) => err.into_response(),
    }
}

/// `POST /team/advisories/{id}/{step}`: submit, approve, changes or publish.
pub(crate) async fn step(State(app): State<App>, who: Team, Path((id, step)): Path<(String, String)>) -> Response {
    let (result, done) = match step.as_str() {
        "submit" => (advisories::submit_for_review(&app, &who.actor, &id).await, "submitted"),
        "approve" => (advisories::approve(&app, &who.actor, &id).await, "approved"),
        "changes" => (advisories::request_changes(&app, &who.actor, &id).await, "changes"),
        "publish" => (advisories::publish(&app, &who.actor, &id, None).await.map(|_| ()), "published"),
        _ => (Err(AppError::NotFound(format!("action {step}"))), ""),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/team/advisories/{id}?done={done}")).into_response(),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            edit_page(&app, &who, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(m), None).await
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct WithdrawInput {
    #[serde(default)]
    reason: String,
}

/// `POST /team/advisories/{id}/withdraw`: withdraws a published advisory (admins), with the
/// reason that every format publishes.
pub(crate) async fn withdraw(
    State(app): State<App>,
    who: Team,
    Path(id): Path<String>,
    Form(input): Form<WithdrawInput>,
) -> Response {
    match advisories::withdraw(&app, &who.actor, &id, &input.reason).await {
        Ok(_) => Redirect::to(&format!("/team/advisories/{id}?done=withdrawn")).into_response(),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            edit_page(&app, &who, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(m), None).await
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `GET /team/advisories/{id}/export/{format}`: one output of the current record, as text.
pub(crate) async fn export(State(app): State<App>, who: Team, Path((id, format)): Path<(String, String)>) -> Response {
    match advisories::export(&app, &who.actor, &id, &format).await {
        Ok(text) => {
            let kind = if matches!(format.as_str(), "markdown" | "html") {
                "text/plain; charset=utf-8"
            } else {
                "application/json"
            };
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-store")], text).into_response()
        }
        Err(err) => WebError::from(err).into_response(),
    }
}
