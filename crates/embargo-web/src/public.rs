//! Public pages: home, policy, the report form and the reporter's status page.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::portal::{self, FormErrors, FormRejection, ReportForm, StatusEvent};
use embargo_app::reports::Upload;
use embargo_app::{App, AppError};

use crate::error::WebError;
use crate::extract::Path;
use crate::render::{self, Layout, page};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    promise: String,
    address: String,
}

pub(crate) async fn home(State(app): State<App>) -> Response {
    page(
        StatusCode::OK,
        &HomePage {
            layout: Layout::public(&app, "Security", "home"),
            promise: embargo_app::mail::promise(&app, embargo_app::mail::Person::First),
            address: app.config.organisation.security_address.clone(),
        },
    )
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    layout: Layout,
    promise: String,
    update_days: u32,
    address: String,
    tracker: String,
    /// The configured scope, or empty for the list of products.
    scope: String,
    products: Vec<String>,
    out_of_scope: String,
    safe_harbour: String,
    /// The instance key's fingerprint, in groups of four.
    fingerprint: String,
}

pub(crate) async fn policy(State(app): State<App>) -> Response {
    let products = match portal::products(&app).await {
        Ok(list) => list.into_iter().map(|p| p.name).collect(),
        Err(err) => return WebError::from(err).into_response(),
    };
    let fingerprint = match embargo_app::openpgp::instance_key(&app).await {
        Ok(key) => grouped(&key.fingerprint().to_string()),
        Err(err) => return WebError::from(err).into_response(),
    };
    let policy = &app.config.policy;
    page(
        StatusCode::OK,
        &PolicyPage {
            layout: Layout::public(&app, "Security policy", "policy"),
            promise: embargo_app::mail::promise(&app, embargo_app::mail::Person::First),
            update_days: app.config.sla.reporter_update_working_days,
            address: app.config.organisation.security_address.clone(),
            tracker: app.config.organisation.public_issue_tracker.clone(),
            scope: policy.scope.trim().to_owned(),
            products,
            out_of_scope: policy.out_of_scope.trim().to_owned(),
            safe_harbour: policy.safe_harbour.trim().to_owned(),
            fingerprint,
        },
    )
}

/// A fingerprint in groups of four characters, as people compare them.
fn grouped(fingerprint: &str) -> String {
    let clean: Vec<char> = fingerprint.chars().filter(char::is_ascii_alphanumeric).collect();
    clean.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

#[derive(Template)]
#[template(path = "report_form.html")]
struct FormPage {
    layout: Layout,
    form: ReportForm,
    errors: FormErrors,
    products: Vec<(i64, String)>,
    challenge: String,
    bits: u32,
    delay: u32,
}

impl FormPage {
    /// The attributes of a field with an error: marked, described by its message, and the
    /// first one focused.
    fn invalid(&self, name: &str) -> String {
        match self.errors.get(name) {
            Some(_) => {
                let focus = if self.errors.first() == Some(name) { " autofocus" } else { "" };
                format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\"{focus}")
            }
            None => String::new(),
        }
    }
}

async fn form_page(app: &App, status: StatusCode, form: ReportForm, errors: FormErrors) -> Response {
    let products = match portal::products(app).await {
        Ok(list) => list.into_iter().map(|p| (p.id, p.name)).collect(),
        Err(err) => return WebError::from(err).into_response(),
    };
    let challenge = portal::challenge(app);
    page(
        status,
        &FormPage {
            layout: Layout { script: true, ..Layout::public(app, "Report a vulnerability", "report") },
            form,
            errors,
            products,
            challenge: challenge.token,
            bits: challenge.bits,
            delay: app.config.web.no_script_delay_seconds,
        },
    )
}

pub(crate) async fn report_form(State(app): State<App>) -> Response {
    let form = ReportForm { credit: "name".into(), ai_used: "no".into(), ..ReportForm::default() };
    form_page(&app, StatusCode::OK, form, FormErrors::default()).await
}

/// Uploads being read at once, at most: each may hold up to the message limit in memory.
static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

/// Why a multipart form could not be read: too large (413) or malformed (400).
struct Unreadable(StatusCode);

/// Reads a multipart form: text fields by name, and files from `attachments`.
async fn read_multipart(mut multipart: Multipart) -> Result<(Vec<(String, String)>, Vec<Upload>), Unreadable> {
    let _permit = UPLOADS.acquire().await.map_err(|_| Unreadable(StatusCode::SERVICE_UNAVAILABLE))?;
    let mut fields = Vec::new();
    let mut uploads = Vec::new();
    let unreadable = |e: axum::extract::multipart::MultipartError| Unreadable(e.status());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "attachments" {
            let filename = field.file_name().unwrap_or("attachment").to_owned();
            let media_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
            let data = field.bytes().await.map_err(unreadable)?;
            if !data.is_empty() {
                uploads.push(Upload { filename, media_type, data: Vec::from(data) });
            }
        } else if fields.len() < 64 {
            fields.push((name, field.text().await.map_err(unreadable)?));
        }
    }
    Ok((fields, uploads))
}

fn unreadable(app: &App, Unreadable(status): Unreadable) -> Response {
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "The form is too large: files may total at most {} MB.",
            app.config.limits.max_message_bytes / 1_000_000
        )
    } else {
        "The form could not be read. Please try again.".to_owned()
    };
    render::message(status, Layout::public(app, "Not sent", "report"), "Not sent", &text, Some(("/report", "Back")))
}

#[derive(Template)]
#[template(path = "report_done.html")]
struct DonePage {
    layout: Layout,
    reference: String,
    status_path: String,
    status_url: String,
    promise: String,
}

pub(crate) async fn submit_report(
    State(app): State<App>,
    crate::auth::ClientAddress(address): crate::auth::ClientAddress,
    multipart: Multipart,
) -> Response {
    let (fields, uploads) = match read_multipart(multipart).await {
        Ok(read) => read,
        Err(err) => return unreadable(&app, err),
    };
    let mut form = ReportForm::default();
    for (name, value) in fields {
        let slot = match name.as_str() {
            "title" => &mut form.title,
            "product" => &mut form.product,
            "product_other" => &mut form.product_other,
            "version" => &mut form.version,
            "description" => &mut form.description,
            "steps" => &mut form.steps,
            "impact" => &mut form.impact,
            "email" => &mut form.email,
            "name" => &mut form.name,
            "openpgp_key" => &mut form.openpgp_key,
            "credit_name" => &mut form.credit_name,
            "credit" => &mut form.credit,
            "ai_used" => &mut form.ai_used,
            "challenge" => &mut form.challenge,
            "nonce" => &mut form.nonce,
            _ => continue,
        };
        *slot = value;
    }
    match portal::submit_form(&app, &form, uploads, &address).await {
        Ok(received) => {
            let status_path = format!("/status/{}", received.status_token);
            page(
                StatusCode::CREATED,
                &DonePage {
                    layout: Layout::public(&app, "Report received", "report"),
                    reference: received.reference.to_string(),
                    status_url: format!("{}{status_path}", app.config.base_url()),
                    status_path,
                    promise: embargo_app::mail::promise(&app, embargo_app::mail::Person::First),
                },
            )
        }
        Err(FormRejection::Errors(errors)) => {
            let status =
                if errors.fields.is_empty() && errors.form.as_deref().is_some_and(|f| f.starts_with("Too many")) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
            form.nonce.clear();
            form_page(&app, status, form, errors).await
        }
        Err(FormRejection::App(err)) => WebError::from(err).into_response(),
    }
}

enum StatusItem {
    State { label: String, class: &'static str, at: String },
    Message { from_reporter: bool, subject: String, body_html: String, attachments: Vec<String>, at: String },
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    reference: String,
    report_title: String,
    state_label: String,
    state_class: &'static str,
    received: String,
    /// The "what happens next" panel: (what, when or what to expect).
    next: Vec<(String, String)>,
    needs_info: Option<NeedsInfoView>,
    events: Vec<StatusItem>,
    path: String,
    /// A reply that was refused, kept.
    reply_body: String,
    reply_error: Option<String>,
}

struct NeedsInfoView {
    asked_html: Option<String>,
    closes: Option<String>,
}

fn status_error(app: &App, err: AppError) -> Response {
    match err {
        AppError::NotFound(_) => render::message(
            StatusCode::NOT_FOUND,
            Layout::public(app, "Link not valid", ""),
            "This link is not valid",
            "The link may have been replaced or revoked. Check your latest mail from the security team, or write to them.",
            None,
        ),
        other => WebError::from(other).into_response(),
    }
}

/// A stored message as the reporter sees it: the placeholder of their status link (mailed to
/// them only) reads as this page.
fn reporter_text(body: &str) -> String {
    body.replace(embargo_app::mail::STATUS_LINK_PLACEHOLDER, "[the link to this page]")
}

/// The lines of the "what happens next" panel.
fn next_steps(app: &App, view: &portal::StatusView) -> Vec<(String, String)> {
    use embargo_domain::ReportState as S;
    let date = |t| render::date(app, t);
    let mut next = Vec::new();
    if let Some(due) = view.ack_due_at {
        next.push(("Acknowledgement".to_owned(), format!("by {} at the latest", date(due))));
    }
    if let Some(info) = &view.needs_info {
        next.push((
            "Your answer".to_owned(),
            match info.closes_at {
                Some(t) => format!("needed by {}, or the report is closed", date(t)),
                None => "needed to continue".to_owned(),
            },
        ));
    }
    if let Some(due) = view.update_due_at {
        next.push(("Next update from the team".to_owned(), format!("by {}", date(due))));
    }
    match view.fix_due_at {
        Some(due) => next.push(("Fix target".to_owned(), date(due))),
        None if matches!(view.state, S::New | S::Acknowledged | S::Triaging | S::NeedsInfo) => {
            next.push(("Fix target".to_owned(), "set once the team confirms the vulnerability".to_owned()))
        }
        None => {}
    }
    match view.disclose_at {
        Some(at) => next.push(("Planned disclosure".to_owned(), date(at))),
        None if !matches!(view.state, S::Closed(_) | S::Disclosed) => {
            next.push(("Planned disclosure".to_owned(), "not set yet; agreed with you before it is".to_owned()))
        }
        None => {}
    }
    match view.state {
        S::Disclosed => next.push(("Disclosure".to_owned(), "done: the fix and the advisory are public".to_owned())),
        S::Closed(_) => {
            next.push(("Report".to_owned(), "closed; reply below if you disagree or have more to add".to_owned()))
        }
        _ => {}
    }
    next
}

pub(crate) async fn status(State(app): State<App>, Path(token): Path<String>) -> Response {
    status_page(&app, &token, StatusCode::OK, String::new(), None).await
}

async fn status_page(
    app: &App,
    token: &str,
    code: StatusCode,
    reply_body: String,
    reply_error: Option<String>,
) -> Response {
    let view = match portal::status(app, token).await {
        Ok(view) => view,
        Err(err) => return status_error(app, err),
    };
    // Dates are shown in the business calendar's time zone, as of now.
    if let Err(err) = embargo_app::sla::time_zone(app).await {
        return WebError::from(err).into_response();
    }
    let next = next_steps(app, &view);
    let needs_info = view.needs_info.as_ref().map(|n| NeedsInfoView {
        asked_html: n.asked.as_deref().map(|a| render::text(&reporter_text(a))),
        closes: n.closes_at.map(|t| render::date(app, t)),
    });
    let events = view
        .events
        .into_iter()
        .map(|e| match e {
            StatusEvent::State { state, at } => {
                let (label, class) = render::state(state);
                StatusItem::State { label, class, at: render::time(app, at) }
            }
            StatusEvent::Message { from_reporter, subject, body, attachments, at } => StatusItem::Message {
                from_reporter,
                subject: subject.unwrap_or_default(),
                body_html: render::text(&reporter_text(&body)),
                attachments,
                at: render::time(app, at),
            },
        })
        .collect();
    let (state_label, state_class) = render::state(view.state);
    let title = if reply_error.is_some() {
        format!("Error: Report {}", view.reference)
    } else {
        format!("Report {}", view.reference)
    };
    page(
        code,
        &StatusPage {
            layout: Layout::public(app, title, ""),
            reference: view.reference.to_string(),
            report_title: view.title,
            state_label,
            state_class,
            received: render::time(app, view.received_at),
            next,
            needs_info,
            events,
            path: format!("/status/{token}"),
            reply_body,
            reply_error,
        },
    )
}

pub(crate) async fn status_reply(State(app): State<App>, Path(token): Path<String>, multipart: Multipart) -> Response {
    // The link is checked before the body is read: nobody uploads to a link they lack.
    match portal::link_valid(&app, &token).await {
        Ok(true) => {}
        Ok(false) => return status_error(&app, AppError::NotFound("status page".into())),
        Err(err) => return status_error(&app, err),
    }
    let (fields, uploads) = match read_multipart(multipart).await {
        Ok(read) => read,
        Err(err) => return unreadable(&app, err),
    };
    let body = fields.into_iter().find(|(n, _)| n == "body").map(|(_, v)| v).unwrap_or_default();
    match portal::status_reply(&app, &token, &body, uploads).await {
        Ok(_) => Redirect::to(&format!("/status/{token}")).into_response(),
        // The same page, the reply kept and marked.
        Err(AppError::Invalid(message)) => {
            status_page(&app, &token, StatusCode::UNPROCESSABLE_ENTITY, body, Some(message)).await
        }
        Err(err) => status_error(&app, err),
    }
}

pub(crate) async fn status_rotate(State(app): State<App>, Path(token): Path<String>) -> Response {
    match portal::rotate_link(&app, &token).await {
        Ok(new) => {
            let path = format!("/status/{new}");
            render::message(
                StatusCode::OK,
                Layout::public(&app, "Link replaced", ""),
                "Your link was replaced",
                &format!("The old link no longer works. Bookmark the new one: {}{path}", app.config.base_url()),
                Some((&path, "Open the new link")),
            )
        }
        Err(err) => status_error(&app, err),
    }
}
