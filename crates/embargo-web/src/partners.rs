//! Partners and early disclosure, the team's side (ADR 21): the admins' Partners page
//! (organisations, their contacts and keys, products, terms, state; the lists' embargo
//! policies) and a report's disclosure page (the embargo, the draft pre-notice and its
//! edit, sending, the table of copies per contact, leaks and the decision on them, breaking
//! and lifting, the public pre-announcement). The partner contacts' own pages are
//! `partner_portal`'s.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::partners::{self, LeakDecision, NoticeStatus, PartnerView, PolicyView};
use embargo_app::{App, AppError, accounts};
use embargo_domain::partner::{EmbargoPolicy, PartnerState, parse_weekday};
use embargo_domain::{ReferenceId, Timestamp};
use jiff::SignedDuration;
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::{Form, Query, ReportPath};
use crate::render::{self, Layout, page};

/// The flash message after a redirect (`?done=`), only from a fixed list.
#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    #[serde(default)]
    done: String,
}

// ---- The Partners page (admins) --------------------------------------------------------

/// The add-partner form, kept as typed when it is refused.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct AddPartnerInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    more_contacts: String,
    #[serde(default)]
    products: String,
    #[serde(default)]
    list: String,
    #[serde(default)]
    terms_version: String,
    #[serde(default)]
    vouched_by: String,
    #[serde(default)]
    time_zone: String,
}

struct PolicyRow {
    list: String,
    max_days: String,
    min_notice_days: String,
    final_notice_hours: i64,
    days: String,
    hour: String,
}

fn days_text(days: f64) -> String {
    if days.fract() == 0.0 { format!("{days:.0}") } else { format!("{days:.2}") }
}

fn policy_row(p: &PolicyView) -> PolicyRow {
    PolicyRow {
        list: p.list.clone(),
        max_days: days_text(p.max_embargo_days),
        min_notice_days: days_text(p.min_notice_days),
        final_notice_hours: p.final_notice_hours,
        days: p.preferred_days.join(", "),
        hour: p.preferred_hour.map(|h| h.to_string()).unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "partners.html")]
struct PartnersPage {
    layout: Layout,
    partners: Vec<PartnerView>,
    policies: Vec<PolicyRow>,
    products: Vec<String>,
    add: AddPartnerInput,
    error: Option<String>,
}

async fn partners_page(
    app: &App,
    who: &Team,
    status: StatusCode,
    error: Option<String>,
    add: AddPartnerInput,
    flash: Option<&str>,
) -> Result<Response, WebError> {
    let partners = partners::list(app, &who.actor).await?;
    let policies = partners::policies(app, &who.actor).await?.iter().map(policy_row).collect();
    let products = accounts::products(app, &who.actor).await?.into_iter().map(|p| p.product.name).collect();
    let mut layout = Layout::team(app, "Partners", "admin", who);
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    Ok(page(status, &PartnersPage { layout, partners, policies, products, add, error }))
}

/// `GET /admin/partners`.
pub(crate) async fn admin(State(app): State<App>, who: Team, Query(flash): Query<Flash>) -> Result<Response, WebError> {
    let message = match flash.done.as_str() {
        "added" => Some("The partner is added; contacts without a password get an invitation by mail."),
        "state" => Some("The partner's state is changed."),
        "updated" => Some("The partner is updated."),
        "contact" => Some("The contact is added."),
        "contact-removed" => Some("The contact is removed: they see nothing shared any more."),
        "policy" => Some("The list's policy is saved."),
        _ => None,
    };
    partners_page(&app, &who, StatusCode::OK, None, AddPartnerInput::default(), message).await
}

fn words(text: &str, separator: char) -> Vec<String> {
    text.split(separator).map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Redirects after a change, or shows the page again with the refusal (and the add form
/// as typed).
async fn after_admin(
    app: &App,
    who: &Team,
    result: Result<(), AppError>,
    done: &str,
    add: AddPartnerInput,
) -> Result<Response, WebError> {
    let (status, message) = match result {
        Ok(()) => return Ok(Redirect::to(&format!("/admin/partners?done={done}")).into_response()),
        Err(AppError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(AppError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(AppError::NotFound(m)) => (StatusCode::NOT_FOUND, format!("not found: {m}")),
        Err(e) => return Err(e.into()),
    };
    partners_page(app, who, status, Some(message), add, None).await
}

/// `POST /admin/partners`: adds a partner with its first contact (and key), more contacts
/// without keys, its products and terms.
pub(crate) async fn add(
    State(app): State<App>,
    who: Team,
    Form(input): Form<AddPartnerInput>,
) -> Result<Response, WebError> {
    let mut contacts = Vec::new();
    if !input.email.trim().is_empty() {
        contacts.push(partners::NewContact { email: input.email.trim().to_owned(), key: optional(&input.key) });
    }
    for email in words(&input.more_contacts, '\n') {
        contacts.push(partners::NewContact { email, key: None });
    }
    let new = partners::NewPartnerInput {
        name: input.name.clone(),
        contacts,
        products: words(&input.products, ','),
        list: optional(&input.list),
        terms_version: optional(&input.terms_version),
        terms_accepted_at: None,
        vouched_by: optional(&input.vouched_by),
        time_zone: optional(&input.time_zone),
    };
    let result = partners::add(&app, &who.actor, new).await.map(drop);
    after_admin(&app, &who, result, "added", input).await
}

#[derive(Deserialize)]
pub(crate) struct StateInput {
    partner: String,
    state: String,
}

/// `POST /admin/partners/state`: suspends, activates or removes a partner.
pub(crate) async fn set_state(
    State(app): State<App>,
    who: Team,
    Form(input): Form<StateInput>,
) -> Result<Response, WebError> {
    let result = match PartnerState::parse(&input.state) {
        Some(state) => partners::set_state(&app, &who.actor, &input.partner, state).await,
        None => Err(AppError::Invalid(format!("{:?} is not a partner state", input.state))),
    };
    after_admin(&app, &who, result, "state", AddPartnerInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct UpdateInput {
    partner: String,
    #[serde(default)]
    products: String,
    #[serde(default)]
    list: String,
    #[serde(default)]
    terms_version: String,
    /// The version shown when the form was made: a new acceptance is recorded only when
    /// the version changes.
    #[serde(default)]
    terms_was: String,
    #[serde(default)]
    vouched_by: String,
    #[serde(default)]
    time_zone: String,
}

/// `POST /admin/partners/update`: products, list, terms, voucher, time zone.
pub(crate) async fn update(
    State(app): State<App>,
    who: Team,
    Form(input): Form<UpdateInput>,
) -> Result<Response, WebError> {
    let change = partners::PartnerChange {
        products: Some(words(&input.products, ',')),
        terms_version: (input.terms_version.trim() != input.terms_was.trim())
            .then(|| input.terms_version.trim().to_owned()),
        vouched_by: Some(input.vouched_by.trim().to_owned()),
        time_zone: Some(if input.time_zone.trim().is_empty() { "UTC".into() } else { input.time_zone.trim().into() }),
        list: optional(&input.list),
    };
    let result = partners::update(&app, &who.actor, &input.partner, change).await.map(drop);
    after_admin(&app, &who, result, "updated", AddPartnerInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct ContactInput {
    partner: String,
    email: String,
    #[serde(default)]
    key: String,
}

/// `POST /admin/partners/contacts`: adds a contact (with a key, preferably).
pub(crate) async fn add_contact(
    State(app): State<App>,
    who: Team,
    Form(input): Form<ContactInput>,
) -> Result<Response, WebError> {
    let contact = partners::NewContact { email: input.email.trim().to_owned(), key: optional(&input.key) };
    let result = partners::add_contact(&app, &who.actor, &input.partner, contact).await;
    after_admin(&app, &who, result, "contact", AddPartnerInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct RemoveContactInput {
    partner: String,
    email: String,
}

/// `POST /admin/partners/contacts/remove`.
pub(crate) async fn remove_contact(
    State(app): State<App>,
    who: Team,
    Form(input): Form<RemoveContactInput>,
) -> Result<Response, WebError> {
    let result = partners::remove_contact(&app, &who.actor, &input.partner, &input.email).await;
    after_admin(&app, &who, result, "contact-removed", AddPartnerInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct PolicyInput {
    list: String,
    max_days: String,
    min_notice_days: String,
    final_notice_hours: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    hour: String,
}

fn parse_policy(input: &PolicyInput) -> Result<EmbargoPolicy, AppError> {
    let number = |text: &str, what: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0 && *n <= 3650.0)
            .ok_or_else(|| AppError::Invalid(format!("the {what} is a number of days or hours, such as 14")))
    };
    let hours = |days: f64| SignedDuration::from_secs((days * 86_400.0).round() as i64);
    let mut preferred_days = Vec::new();
    for day in words(&input.days, ',') {
        preferred_days.push(
            parse_weekday(&day)
                .ok_or_else(|| AppError::Invalid(format!("{day:?} is not a day of the week (such as Tuesday)")))?,
        );
    }
    let preferred_hour = match input.hour.trim() {
        "" => None,
        hour => Some(
            hour.parse::<i8>()
                .ok()
                .filter(|h| (0..24).contains(h))
                .ok_or_else(|| AppError::Invalid("the preferred hour is 0 to 23 (UTC), or empty".into()))?,
        ),
    };
    Ok(EmbargoPolicy {
        max_embargo: hours(number(&input.max_days, "maximum embargo")?),
        min_notice: hours(number(&input.min_notice_days, "minimum notice")?),
        final_notice: SignedDuration::from_secs(
            (number(&input.final_notice_hours, "final notice")? * 3600.0).round() as i64
        ),
        preferred_days,
        preferred_hour,
    })
}

/// `POST /admin/partners/policies`: creates a list or replaces its policy.
pub(crate) async fn set_policy(
    State(app): State<App>,
    who: Team,
    Form(input): Form<PolicyInput>,
) -> Result<Response, WebError> {
    let result = match parse_policy(&input) {
        Ok(policy) => partners::set_policy(&app, &who.actor, &input.list, policy).await.map(drop),
        Err(e) => Err(e),
    };
    after_admin(&app, &who, result, "policy", AddPartnerInput::default()).await
}

// ---- A report's disclosure -------------------------------------------------------------

/// The draft form, kept as typed when it is refused.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct DraftInput {
    #[serde(default)]
    disclose_at: String,
    #[serde(default)]
    confirm_day: String,
    #[serde(default)]
    deploy_hosted: String,
    #[serde(default)]
    tell_customers: String,
}

/// The edit form of a draft, kept as typed when it is refused.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct EditInput {
    #[serde(default)]
    notice: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    deploy_hosted: String,
    #[serde(default)]
    tell_customers: String,
}

/// The leak form, kept as typed when it is refused.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct LeakInput {
    #[serde(default)]
    partner: String,
    #[serde(default)]
    details: String,
}

struct CopyRow {
    partner: String,
    email: String,
    state: String,
    encrypted: bool,
    sent: String,
    bounced: String,
    seen: String,
    acknowledged: String,
}

struct LeakRow {
    id: i64,
    partner: String,
    recorded_by: String,
    details: String,
    decision: String,
    decided_by: String,
    when: String,
}

/// Which form a refusal belongs to (it is shown next to that form).
#[derive(Default, PartialEq, Eq)]
enum Where {
    #[default]
    Nowhere,
    Draft,
    Edit,
    Send,
    Leak,
    Embargo,
}

#[derive(Template)]
#[template(path = "disclosure.html")]
struct DisclosurePage {
    layout: Layout,
    reference: String,
    notice: Option<NoticeStatus>,
    embargo: String,
    /// Whether the date and severity are pre-announced in public now.
    announced: bool,
    disclose_utc: String,
    copies: Vec<CopyRow>,
    /// The partners the latest notice went to (a leak may name one of them).
    told: Vec<String>,
    leaks: Vec<LeakRow>,
    policies: Vec<PolicyRow>,
    /// What the policy says of the draft's date now: warnings, or why it would be refused.
    draft_warnings: Vec<String>,
    draft_refusal: Option<String>,
    draft: DraftInput,
    edit: EditInput,
    leak: LeakInput,
    error_at: Where,
    error: String,
}

impl DisclosurePage {
    fn error_for(&self, form: &str) -> Option<&str> {
        let at = match form {
            "draft" => Where::Draft,
            "edit" => Where::Edit,
            "send" => Where::Send,
            "leak" => Where::Leak,
            "embargo" => Where::Embargo,
            _ => Where::Nowhere,
        };
        (self.error_at == at && at != Where::Nowhere).then_some(self.error.as_str())
    }
}

fn when(app: &App, rfc3339: &Option<String>) -> String {
    rfc3339.as_deref().and_then(|t| t.parse::<Timestamp>().ok()).map(|t| render::time(app, t)).unwrap_or_default()
}

fn utc(at: Timestamp) -> String {
    at.strftime("%A %Y-%m-%d %H:%M UTC").to_string()
}

/// The value of a `datetime-local` input for an instant (UTC).
fn local_input(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M").to_string()
}

/// A `datetime-local` value (or an RFC 3339 instant), read as UTC.
fn parse_instant(text: &str) -> Result<Timestamp, AppError> {
    let text = text.trim();
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| AppError::Invalid("give the disclosure date and time (UTC), such as 2026-03-17T16:00".into()))
}

struct Refusal {
    at: Where,
    message: String,
    status: StatusCode,
}

/// The disclosure page, with the forms as given and a refusal next to its form.
async fn disclosure_page(
    app: &App,
    who: &Team,
    reference: &ReferenceId,
    forms: (DraftInput, EditInput, LeakInput),
    refusal: Option<Refusal>,
    flash: Option<&str>,
) -> Result<Response, WebError> {
    // The report first: refused (or unknown) is "not found", before anything else is read.
    let leaks = partners::leaks(app, &who.actor, reference).await?;
    let notice = match partners::status(app, &who.actor, &reference.to_string()).await {
        Ok(status) => Some(status),
        Err(AppError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let policies = partners::policies(app, &who.actor).await?.iter().map(policy_row).collect();
    let (draft, mut edit, leak) = forms;
    let mut draft_warnings = Vec::new();
    let mut draft_refusal = None;
    let mut disclose_utc = String::new();
    if let Some(n) = &notice {
        if let Ok(at) = n.disclose_at.parse::<Timestamp>() {
            disclose_utc = utc(at);
            if n.state == "draft" {
                match partners::check_date(app, &who.actor, reference, at, true).await {
                    Ok(warnings) => draft_warnings = warnings,
                    Err(AppError::Invalid(m) | AppError::Conflict(m)) => draft_refusal = Some(m),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // The edit form starts from the draft as stored, unless a refused edit is shown.
        if n.state == "draft" && edit.notice.is_empty() {
            edit = EditInput {
                notice: n.notice.to_string(),
                subject: n.subject.clone(),
                body: n.body.clone(),
                deploy_hosted: if n.deploy_hosted { "yes".into() } else { String::new() },
                tell_customers: if n.tell_customers { "yes".into() } else { String::new() },
            };
        }
    }
    let draft = if draft.disclose_at.is_empty() && refusal.is_none() {
        DraftInput {
            disclose_at: notice
                .as_ref()
                .filter(|n| matches!(n.kind.as_str(), "pre-notice" | "revision"))
                .and_then(|n| n.disclose_at.parse::<Timestamp>().ok())
                .map(local_input)
                .unwrap_or_default(),
            ..draft
        }
    } else {
        draft
    };
    let copies = notice
        .as_ref()
        .map(|n| {
            n.contacts
                .iter()
                .map(|c| CopyRow {
                    partner: c.partner.clone(),
                    email: c.email.clone(),
                    state: c.state.clone(),
                    encrypted: c.encrypted,
                    sent: when(app, &c.sent_at),
                    bounced: when(app, &c.bounced_at),
                    seen: when(app, &c.seen_at),
                    acknowledged: when(app, &c.acknowledged_at),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut told: Vec<String> = Vec::new();
    for c in notice.iter().flat_map(|n| &n.contacts) {
        if !told.contains(&c.partner) {
            told.push(c.partner.clone());
        }
    }
    let leaks = leaks
        .into_iter()
        .map(|l| LeakRow {
            id: l.id,
            partner: l.partner.unwrap_or_default(),
            recorded_by: l.recorded_by,
            details: l.details,
            decision: l.decision.unwrap_or_default(),
            decided_by: l.decided_by.unwrap_or_default(),
            when: when(app, &Some(l.created_at)),
        })
        .collect();
    let embargo = notice.as_ref().and_then(|n| n.embargo.clone()).unwrap_or_else(|| "none".into());
    let announced = notice.as_ref().is_some_and(|n| n.announced_at.is_some());
    let (status, error_at, error) = match refusal {
        Some(r) => (r.status, r.at, r.message),
        None => (StatusCode::OK, Where::Nowhere, String::new()),
    };
    let mut layout = Layout::team(app, format!("Disclosure of {reference}"), "inbox", who);
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    Ok(page(
        status,
        &DisclosurePage {
            layout,
            reference: reference.to_string(),
            notice,
            embargo,
            announced,
            disclose_utc,
            copies,
            told,
            leaks,
            policies,
            draft_warnings,
            draft_refusal,
            draft,
            edit,
            leak,
            error_at,
            error,
        },
    ))
}

/// `GET /reports/{reference}/disclosure`.
pub(crate) async fn disclosure(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Query(flash): Query<Flash>,
) -> Result<Response, WebError> {
    let message = match flash.done.as_str() {
        "drafted" => Some("The notice is drafted: check its text and the warnings, then send it."),
        "edited" => Some("The draft is saved."),
        "sent" => Some("The notice is sent: one copy per contact, below."),
        "leak" => Some("The suspected leak is recorded."),
        "decided" => Some("The decision on the leak is recorded."),
        "broken" => Some("The embargo is broken: every partner is being told."),
        "lifted" => Some("The embargo is lifted: every partner is being told."),
        "announced" => Some("The date and severity are pre-announced on the public advisories page."),
        "withdrawn" => Some("The public pre-announcement is withdrawn."),
        _ => None,
    };
    disclosure_page(&app, &who, &reference, Default::default(), None, message).await
}

fn back(reference: &ReferenceId, done: &str) -> Response {
    Redirect::to(&format!("/reports/{reference}/disclosure?done={done}")).into_response()
}

/// Redirects after a change, or shows the page with the refusal next to its form and the
/// forms as typed. "Not found" and "not allowed" stay errors of their own.
async fn after(
    app: &App,
    who: &Team,
    reference: &ReferenceId,
    result: Result<(), AppError>,
    done: &str,
    at: Where,
    forms: (DraftInput, EditInput, LeakInput),
) -> Result<Response, WebError> {
    let (status, message) = match result {
        Ok(()) => return Ok(back(reference, done)),
        Err(AppError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(AppError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(e) => return Err(e.into()),
    };
    disclosure_page(app, who, reference, forms, Some(Refusal { at, message, status }), None).await
}

/// The report's latest notice must be the one the form was made for (no other report's,
/// and not one drafted since).
async fn same_notice(app: &App, who: &Team, reference: &ReferenceId, notice: &str) -> Result<String, AppError> {
    let latest = partners::resolve(app, &who.actor, &reference.to_string()).await?;
    if notice.trim() != latest.to_string() {
        return Err(AppError::Conflict(
            "the report's notice changed since this page was shown: look at it again before acting on it".into(),
        ));
    }
    Ok(latest.to_string())
}

/// `POST /reports/{reference}/disclosure/draft`: checks the date against the policy and
/// drafts the notice (a refusal shows the form again, as typed, with every rule broken).
pub(crate) async fn draft(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<DraftInput>,
) -> Result<Response, WebError> {
    let result = match parse_instant(&input.disclose_at) {
        Ok(disclose_at) => partners::draft(
            &app,
            &who.actor,
            &reference,
            partners::DraftOptions {
                disclose_at,
                confirm_day: input.confirm_day == "yes",
                deploy_hosted: input.deploy_hosted == "yes",
                tell_customers: input.tell_customers == "yes",
            },
        )
        .await
        .map(drop),
        Err(e) => Err(e),
    };
    after(&app, &who, &reference, result, "drafted", Where::Draft, (input, EditInput::default(), LeakInput::default()))
        .await
}

/// `POST /reports/{reference}/disclosure/edit`: the draft's subject, text and permissions.
pub(crate) async fn edit(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<EditInput>,
) -> Result<Response, WebError> {
    let result = match same_notice(&app, &who, &reference, &input.notice).await {
        Ok(notice) => {
            let text = partners::NoticeText {
                subject: input.subject.clone(),
                body: input.body.clone(),
                deploy_hosted: input.deploy_hosted == "yes",
                tell_customers: input.tell_customers == "yes",
            };
            partners::edit(&app, &who.actor, &notice, text).await
        }
        Err(e) => Err(e),
    };
    after(&app, &who, &reference, result, "edited", Where::Edit, (DraftInput::default(), input, LeakInput::default()))
        .await
}

#[derive(Deserialize)]
pub(crate) struct SendInput {
    notice: String,
    #[serde(default)]
    confirm_day: String,
}

/// `POST /reports/{reference}/disclosure/send`: sends the draft to every partner.
pub(crate) async fn send(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<SendInput>,
) -> Result<Response, WebError> {
    let result = match same_notice(&app, &who, &reference, &input.notice).await {
        Ok(notice) => partners::send(&app, &who.actor, &notice, input.confirm_day == "yes").await.map(drop),
        Err(e) => Err(e),
    };
    after(&app, &who, &reference, result, "sent", Where::Send, Default::default()).await
}

/// `POST /reports/{reference}/disclosure/leaks`: records a suspected leak.
pub(crate) async fn record_leak(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<LeakInput>,
) -> Result<Response, WebError> {
    let partner = optional(&input.partner);
    let result =
        partners::record_leak(&app, &who.actor, &reference.to_string(), partner.as_deref(), &input.details).await;
    let result = match result {
        // A partner named wrongly is the form's mistake, not a missing page.
        Err(AppError::NotFound(m)) if partner.is_some() && m.starts_with("partner") => {
            Err(AppError::Invalid(format!("there is no {m}")))
        }
        other => other.map(drop),
    };
    after(&app, &who, &reference, result, "leak", Where::Leak, (DraftInput::default(), EditInput::default(), input))
        .await
}

#[derive(Deserialize)]
pub(crate) struct DecideInput {
    leak: i64,
    decision: String,
    #[serde(default)]
    move_to: String,
    #[serde(default)]
    confirm_day: String,
}

/// `POST /reports/{reference}/disclosure/leaks/decide`: keep the date, move it, or break
/// the embargo now.
pub(crate) async fn decide_leak(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<DecideInput>,
) -> Result<Response, WebError> {
    // Only a leak of this report is decided here.
    let leaks = partners::leaks(&app, &who.actor, &reference).await?;
    if !leaks.iter().any(|l| l.id == input.leak) {
        return Err(AppError::NotFound(format!("leak {}", input.leak)).into());
    }
    let decision = match input.decision.as_str() {
        "keep" => Ok(LeakDecision::Keep),
        "break" => Ok(LeakDecision::Break),
        "move" => {
            parse_instant(&input.move_to).map(|to| LeakDecision::Move { to, confirm_day: input.confirm_day == "yes" })
        }
        other => Err(AppError::Invalid(format!("{other:?} is not a decision (keep, move or break)"))),
    };
    let result = match decision {
        Ok(decision) => partners::decide_leak(&app, &who.actor, input.leak, decision).await,
        Err(e) => Err(e),
    };
    after(&app, &who, &reference, result, "decided", Where::Leak, Default::default()).await
}

#[derive(Deserialize)]
pub(crate) struct EmbargoInput {
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /reports/{reference}/disclosure/embargo`: break (with a reason) or lift the
/// embargo, pre-announce the date publicly or withdraw that.
pub(crate) async fn embargo(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<EmbargoInput>,
) -> Result<Response, WebError> {
    let (result, done) = match input.action.as_str() {
        "break" if input.confirm != "yes" => {
            (Err(AppError::Invalid("confirm that the embargo is to be broken now".into())), "broken")
        }
        "break" if input.reason.trim().is_empty() => {
            (Err(AppError::Invalid("say why the embargo is broken".into())), "broken")
        }
        "break" => (partners::break_embargo(&app, &who.actor, &reference, input.reason.trim()).await, "broken"),
        "lift" => (partners::lift(&app, &who.actor, &reference).await, "lifted"),
        "announce" => (partners::announce(&app, &who.actor, &reference).await.map(drop), "announced"),
        "withdraw" => (partners::withdraw_announcement(&app, &who.actor, &reference).await, "withdrawn"),
        other => (Err(AppError::Invalid(format!("{other:?} is not an action here"))), ""),
    };
    after(&app, &who, &reference, result, done, Where::Embargo, Default::default()).await
}
