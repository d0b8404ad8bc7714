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
}

pub(crate) async fn policy(State(app): State<App>) -> Response {
    page(
        StatusCode::OK,
        &PolicyPage {
            layout: Layout::public(&app, "Security policy", "policy"),
            promise: embargo_app::mail::promise(&app, embargo_app::mail::Person::First),
            update_days: app.config.sla.reporter_update_working_days,
            address: app.config.organisation.security_address.clone(),
            tracker: app.config.organisation.public_issue_tracker.clone(),
        },
    )
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
    ack_due: Option<String>,
    events: Vec<StatusItem>,
    path: String,
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

pub(crate) async fn status(State(app): State<App>, Path(token): Path<String>) -> Response {
    let view = match portal::status(&app, &token).await {
        Ok(view) => view,
        Err(err) => return status_error(&app, err),
    };
    // Dates are shown in the business calendar's time zone, as of now.
    if let Err(err) = embargo_app::sla::time_zone(&app).await {
        return WebError::from(err).into_response();
    }
    let events = view
        .events
        .into_iter()
        .map(|e| match e {
            StatusEvent::State { state, at } => {
                let (label, class) = render::state(state);
                StatusItem::State { label, class, at: render::time(&app, at) }
            }
            StatusEvent::Message { from_reporter, subject, body, attachments, at } => StatusItem::Message {
                from_reporter,
                subject: subject.unwrap_or_default(),
                body_html: render::text(&body),
                attachments,
                at: render::time(&app, at),
            },
        })
        .collect();
    let (state_label, state_class) = render::state(view.state);
    page(
        StatusCode::OK,
        &StatusPage {
            layout: Layout::public(&app, format!("Report {}", view.reference), ""),
            reference: view.reference.to_string(),
            report_title: view.title,
            state_label,
            state_class,
            received: render::time(&app, view.received_at),
            ack_due: view.ack_due_at.map(|t| render::date(&app, t)),
            events,
            path: format!("/status/{token}"),
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
