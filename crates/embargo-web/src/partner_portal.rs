//! The partner portal (ADR 21): a partner contact's own pages. `/partner` lists the notices
//! shared with their organisation; a notice's page shows its whole text (escaped by
//! `render::text`, nothing dropped), the instant in UTC and in the partner's zone, the patch
//! files with their SHA-256 and size, and takes the acknowledgement and reports of a
//! suspected leak; its patches and its calendar file download; `/partner/organisation`
//! keeps the organisation's contacts and keys current; `/partner/welcome/{token}` sets a
//! new contact's first password.
//!
//! Every route but the welcome link takes a [`PartnerContact`]: any other account gets the
//! same 404 as a path that does not exist, and so does a partner contact on a notice that
//! was not shared with them (another partner's, one of a suspended partner, a number that
//! was never a notice).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::partners::{self, PartnerView, SharedNotice};
use embargo_app::{App, AppError, accounts};
use serde::Deserialize;

use crate::auth::PartnerContact;
use crate::error::WebError;
use crate::extract::{Form, Path, Query};
use crate::render::{self, Layout, page};

/// A refusal or an unknown notice is the same 404 as a path that does not exist.
fn scoped(err: AppError) -> WebError {
    match err {
        AppError::NotFound(_) | AppError::Forbidden(_) => WebError::nothing_here(),
        e => e.into(),
    }
}

/// A notice ID from the path; anything else is a path that does not exist.
fn notice_id(text: &str) -> Result<i64, WebError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(WebError::nothing_here)
}

#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    #[serde(default)]
    done: String,
}

#[derive(Template)]
#[template(path = "partner_notices.html")]
struct NoticesPage {
    layout: Layout,
    notices: Vec<SharedNotice>,
}

/// `GET /partner`: the notices shared with the contact's organisation, newest first.
pub(crate) async fn home(State(app): State<App>, who: PartnerContact) -> Result<Response, WebError> {
    let notices = partners::shared(&app, &who.actor).await.map_err(scoped)?;
    Ok(page(StatusCode::OK, &NoticesPage { layout: Layout::partner(&app, "Notices", "notices", &who), notices }))
}

/// A patch file's line on the notice page.
struct PatchRow {
    file: String,
    line: String,
    sha256: String,
    size: usize,
}

#[derive(Template)]
#[template(path = "partner_notice.html")]
struct NoticePage {
    layout: Layout,
    notice: SharedNotice,
    /// The whole text through `render::text`: every character escaped, nothing dropped.
    text_html: String,
    patches: Vec<PatchRow>,
    leak_details: String,
    leak_error: Option<String>,
    ack_error: Option<String>,
}

async fn notice_page(
    app: &App,
    who: &PartnerContact,
    id: i64,
    status: StatusCode,
    leak: (String, Option<String>),
    ack_error: Option<String>,
    flash: Option<&str>,
) -> Result<Response, WebError> {
    let notice = partners::read_shared(app, &who.actor, id).await.map_err(scoped)?;
    let patches = notice
        .patches
        .iter()
        .map(|(file, line, sha256, size)| PatchRow {
            file: file.clone(),
            line: line.clone(),
            sha256: sha256.clone(),
            size: *size,
        })
        .collect();
    let mut layout = Layout::partner(app, format!("Notice N-{id}"), "notices", who);
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    Ok(page(
        status,
        &NoticePage {
            layout,
            text_html: render::text(&notice.text),
            notice,
            patches,
            leak_details: leak.0,
            leak_error: leak.1,
            ack_error,
        },
    ))
}

/// `GET /partner/notices/{id}`: reads a shared notice (recorded as seen).
pub(crate) async fn notice(
    State(app): State<App>,
    who: PartnerContact,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, WebError> {
    let id = notice_id(&id)?;
    let message = match flash.done.as_str() {
        "acknowledged" => Some("Thank you: your acknowledgement is recorded."),
        "leak" => Some("Thank you: the security team is told of the suspected leak."),
        _ => None,
    };
    notice_page(&app, &who, id, StatusCode::OK, (String::new(), None), None, message).await
}

/// `POST /partner/notices/{id}/acknowledge`.
pub(crate) async fn acknowledge(
    State(app): State<App>,
    who: PartnerContact,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = notice_id(&id)?;
    match partners::acknowledge(&app, &who.actor, id).await {
        Ok(()) => Ok(Redirect::to(&format!("/partner/notices/{id}?done=acknowledged")).into_response()),
        Err(AppError::Conflict(m)) => {
            notice_page(&app, &who, id, StatusCode::CONFLICT, (String::new(), None), Some(m), None).await
        }
        Err(e) => Err(scoped(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct LeakInput {
    #[serde(default)]
    details: String,
}

/// `POST /partner/notices/{id}/leak`: reports a suspected leak of this notice's embargo.
pub(crate) async fn leak(
    State(app): State<App>,
    who: PartnerContact,
    Path(id): Path<String>,
    Form(input): Form<LeakInput>,
) -> Result<Response, WebError> {
    let id = notice_id(&id)?;
    match partners::record_leak(&app, &who.actor, &id.to_string(), None, &input.details).await {
        Ok(_) => Ok(Redirect::to(&format!("/partner/notices/{id}?done=leak")).into_response()),
        Err(AppError::Invalid(m)) => {
            notice_page(&app, &who, id, StatusCode::UNPROCESSABLE_ENTITY, (input.details, Some(m)), None, None).await
        }
        Err(e) => Err(scoped(e)),
    }
}

/// `GET /partner/notices/{id}/files/{name}`: a patch series, as an attachment.
pub(crate) async fn patch_file(
    State(app): State<App>,
    who: PartnerContact,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = notice_id(&id)?;
    let (file, data) = partners::shared_patch(&app, &who.actor, id, &name).await.map_err(scoped)?;
    // The name is the use case's own (`fix-<line>.patch`, line characters other than
    // letters, digits, `.`, `-` and `_` replaced): safe in a quoted header value.
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"fix.patch\""));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/x-patch; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        data,
    )
        .into_response())
}

/// `GET /partner/notices/{id}/disclosure.ics`: the instant as a calendar event (no detail).
pub(crate) async fn calendar(
    State(app): State<App>,
    who: PartnerContact,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = notice_id(&id)?;
    let text = partners::calendar_file(&app, &who.actor, id).await.map_err(scoped)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8; method=PUBLISH")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"disclosure.ics\"")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response())
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct ContactInput {
    #[serde(default)]
    email: String,
    #[serde(default)]
    key: String,
}

#[derive(Template)]
#[template(path = "partner_organisation.html")]
struct OrganisationPage {
    layout: Layout,
    organisation: PartnerView,
    me: String,
    form: ContactInput,
    error: Option<String>,
}

async fn organisation_page(
    app: &App,
    who: &PartnerContact,
    status: StatusCode,
    form: ContactInput,
    error: Option<String>,
    flash: Option<&str>,
) -> Result<Response, WebError> {
    let organisation = partners::my_organisation(app, &who.actor).await.map_err(scoped)?;
    let mut layout = Layout::partner(app, "Your organisation", "organisation", who);
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    let me = who.session.email().to_owned();
    Ok(page(status, &OrganisationPage { layout, organisation, me, form, error }))
}

/// `GET /partner/organisation`: the organisation's contacts and their keys.
pub(crate) async fn organisation(
    State(app): State<App>,
    who: PartnerContact,
    Query(flash): Query<Flash>,
) -> Result<Response, WebError> {
    let message = match flash.done.as_str() {
        "contact" => Some("The contact is saved."),
        "removed" => Some("The contact is removed."),
        _ => None,
    };
    organisation_page(&app, &who, StatusCode::OK, ContactInput::default(), None, message).await
}

async fn after_contact(
    app: &App,
    who: &PartnerContact,
    result: Result<(), AppError>,
    done: &str,
    form: ContactInput,
) -> Result<Response, WebError> {
    let (status, message) = match result {
        Ok(()) => return Ok(Redirect::to(&format!("/partner/organisation?done={done}")).into_response()),
        Err(AppError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(AppError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(AppError::NotFound(m)) if done == "removed" => (StatusCode::NOT_FOUND, format!("not found: {m}")),
        Err(e) => return Err(scoped(e)),
    };
    organisation_page(app, who, status, form, Some(message), None).await
}

/// `POST /partner/organisation/contacts`: adds a contact, or sets a contact's key (an
/// empty key removes it).
pub(crate) async fn set_contact(
    State(app): State<App>,
    who: PartnerContact,
    Form(input): Form<ContactInput>,
) -> Result<Response, WebError> {
    let result = partners::set_my_contact(&app, &who.actor, &input.email, Some(input.key.as_str())).await;
    after_contact(&app, &who, result, "contact", input).await
}

#[derive(Deserialize)]
pub(crate) struct RemoveInput {
    email: String,
}

/// `POST /partner/organisation/contacts/remove`.
pub(crate) async fn remove_contact(
    State(app): State<App>,
    who: PartnerContact,
    Form(input): Form<RemoveInput>,
) -> Result<Response, WebError> {
    let result = partners::remove_my_contact(&app, &who.actor, &input.email).await;
    after_contact(&app, &who, result, "removed", ContactInput::default()).await
}

#[derive(Template)]
#[template(path = "partner_welcome.html")]
struct WelcomePage {
    layout: Layout,
    token: String,
    email: String,
    error: Option<String>,
    min: usize,
    /// Single sign-on's name, when configured (accept through it instead).
    sso: Option<String>,
}

fn welcome_gone(app: &App) -> Response {
    render::message(
        StatusCode::NOT_FOUND,
        Layout::public(app, "Link not valid", ""),
        "This link is not valid",
        "It was used already, has expired, or was never issued. Ask the security team for a new invitation.",
        None,
    )
}

async fn welcome_page(app: &App, token: &str, status: StatusCode, error: Option<String>) -> Response {
    match partners::invitation(app, token).await {
        Ok(Some(email)) => page(
            status,
            &WelcomePage {
                layout: Layout::public(app, "Partner access", ""),
                token: token.to_owned(),
                email,
                error,
                min: accounts::MIN_PASSWORD_LEN,
                sso: embargo_app::oidc::display_name(app).map(str::to_owned),
            },
        ),
        Ok(None) => welcome_gone(app),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /partner/welcome/{token}`: a new partner contact sets their first password.
pub(crate) async fn welcome(State(app): State<App>, Path(token): Path<String>) -> Response {
    welcome_page(&app, &token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub(crate) struct WelcomeInput {
    password: String,
    confirm: String,
}

/// `POST /partner/welcome/{token}`: sets the password, then on to sign in.
pub(crate) async fn accept(
    State(app): State<App>,
    Path(token): Path<String>,
    Form(input): Form<WelcomeInput>,
) -> Response {
    if input.password != input.confirm {
        return welcome_page(
            &app,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("The passwords do not match.".into()),
        )
        .await;
    }
    match partners::accept_invitation(&app, &token, &input.password).await {
        Ok(_) => render::message(
            StatusCode::OK,
            Layout::public(&app, "Password set", ""),
            "Your password is set",
            "Sign in now: you will set up two-factor sign-in with an authenticator app, then find the notices shared \
             with your organisation.",
            Some(("/login", "Sign in")),
        ),
        Err(AppError::Invalid(message)) => {
            welcome_page(&app, &token, StatusCode::UNPROCESSABLE_ENTITY, Some(message)).await
        }
        Err(AppError::NotFound(_)) => welcome_gone(&app),
        Err(e) => WebError::from(e).into_response(),
    }
}
