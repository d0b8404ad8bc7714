//! The team app: sign-in with TOTP, the inbox, the report page and its actions, the account
//! page (sessions, API tokens) and the team page (accounts, products).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::reports::{self, InboxQuery, KeyImport, MessageKind, Notice};
use embargo_app::{App, AppError, accounts, sessions};
use embargo_domain::{ReferenceId, ReportState, Role, Target};
use serde::Deserialize;

use crate::auth::{self, AnySession, Team};
use crate::error::WebError;
use crate::extract::{Form, Path, Query, ReportPath};
use crate::render::{self, Layout, page};

// ---- Sign-in -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    /// The page to go to after signing in.
    next: String,
    /// Single sign-on's button name, when configured.
    sso: Option<String>,
}

/// `?next=` of the sign-in pages: the page that was asked for.
#[derive(Deserialize, Default)]
pub(crate) struct NextPage {
    #[serde(default)]
    pub(crate) next: String,
}

pub(crate) async fn login_form(State(app): State<App>, Query(next): Query<NextPage>) -> Response {
    page(
        StatusCode::OK,
        &LoginPage {
            layout: sign_in_layout(&app, "Sign in"),
            email: String::new(),
            error: None,
            next: next.next,
            sso: embargo_app::oidc::display_name(&app).map(str::to_owned),
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginInput {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub(crate) async fn login(
    State(app): State<App>,
    auth::ClientAddress(address): auth::ClientAddress,
    headers: HeaderMap,
    Form(input): Form<LoginInput>,
) -> Response {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let device = auth::device_token(&app, &headers);
    match sessions::sign_in_password(&app, &input.email, &input.password, &address, agent, device.as_deref()).await {
        Ok(outcome) if outcome.needs_totp => {
            let to = if input.next.is_empty() {
                "/login/totp".to_owned()
            } else {
                format!("/login/totp?next={}", auth::urlencode(&input.next))
            };
            ([(header::SET_COOKIE, auth::set_cookie(&app, &outcome.token))], Redirect::to(&to)).into_response()
        }
        Ok(outcome) => {
            let device = sessions::device_cookie(&app, &input.email);
            let home = match sessions::session(&app, &outcome.token).await {
                Ok(Some(session)) => auth::after_sign_in(&session, Some(&input.next)),
                _ => "/inbox".to_owned(),
            };
            let mut response =
                ([(header::SET_COOKIE, auth::set_cookie(&app, &outcome.token))], Redirect::to(&home)).into_response();
            response.headers_mut().append(header::SET_COOKIE, auth::set_device_cookie(&app, &device));
            response
        }
        Err(err) => match auth::sign_in_message(&err) {
            Some(message) => {
                let status = if matches!(err, AppError::TooMany(_) | AppError::Throttled { .. }) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let mut response = page(
                    status,
                    &LoginPage {
                        layout: sign_in_layout(&app, "Sign in"),
                        email: input.email,
                        error: Some(message),
                        next: input.next,
                        sso: embargo_app::oidc::display_name(&app).map(str::to_owned),
                    },
                );
                render::retry_after(&mut response, &err);
                response
            }
            None => WebError::from(err).into_response(),
        },
    }
}

/// The sign-in pages load the script (passkeys need `navigator.credentials`; the forms work
/// without it).
fn sign_in_layout(app: &App, title: &str) -> Layout {
    Layout { script: true, ..Layout::public(app, title.to_owned(), "") }
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    layout: Layout,
    enrol: Option<(String, String)>,
    error: Option<String>,
    /// The page to go to after signing in.
    next: String,
    /// The account has passkeys: offer one as the second factor.
    passkeys: bool,
    /// A TOTP or recovery code may complete the sign-in (not when an admin requires a
    /// passkey and the account has one).
    totp: bool,
}

async fn totp_page(app: &App, who: &AnySession, status: StatusCode, error: Option<String>, next: &str) -> Response {
    let passkeys = who.session.has_passkeys();
    // A TOTP code is asked for when it may complete the sign-in and there is TOTP (or it is
    // being set up: an account without a passkey).
    let totp = who.session.totp_allowed()
        && (!passkeys
            || match sessions::has_totp(app, &who.session).await {
                Ok(has) => has,
                Err(err) => return WebError::from(err).into_response(),
            });
    // An account with a passkey is not made to set TOTP up: the passkey is its second factor.
    let enrol = if passkeys {
        None
    } else {
        match sessions::totp_enrolment(app, &who.session).await {
            Ok(e) => Some((e.secret, e.uri)),
            Err(AppError::Conflict(_)) => None,
            Err(err) => return WebError::from(err).into_response(),
        }
    };
    page(
        status,
        &TotpPage {
            layout: sign_in_layout(app, "Two-factor sign-in"),
            enrol,
            error,
            next: next.to_owned(),
            passkeys,
            totp,
        },
    )
}

/// `GET /login/totp/qr.svg`: the enrolment link as a QR code (an image, so the page keeps a
/// strict CSP), while the account is setting its second factor up.
pub(crate) async fn totp_qr(State(app): State<App>, who: AnySession) -> Response {
    if !who.pending() {
        return WebError::nothing_here().into_response();
    }
    let uri = match sessions::totp_enrolment(&app, &who.session).await {
        Ok(enrolment) => enrolment.uri,
        Err(AppError::Conflict(_)) => return WebError::nothing_here().into_response(),
        Err(err) => return WebError::from(err).into_response(),
    };
    match qrcodegen::QrCode::encode_text(&uri, qrcodegen::QrCodeEcc::Medium) {
        Ok(code) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            qr_svg(&code),
        )
            .into_response(),
        Err(_) => WebError::nothing_here().into_response(),
    }
}

/// A QR code as SVG: dark modules as one path, a quiet zone of four modules.
fn qr_svg(code: &qrcodegen::QrCode) -> String {
    let border = 4;
    let size = code.size() + 2 * border;
    let mut path = String::new();
    for y in 0..code.size() {
        for x in 0..code.size() {
            if code.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

pub(crate) async fn totp_form(State(app): State<App>, who: AnySession, Query(next): Query<NextPage>) -> Response {
    if !who.pending() {
        return Redirect::to(&auth::after_sign_in(&who.session, Some(&next.next))).into_response();
    }
    totp_page(&app, &who, StatusCode::OK, None, &next.next).await
}

#[derive(Deserialize)]
pub(crate) struct TotpInput {
    code: String,
    #[serde(default)]
    next: String,
}

pub(crate) async fn totp(State(app): State<App>, who: AnySession, Form(input): Form<TotpInput>) -> Response {
    if !who.pending() {
        return Redirect::to(&auth::after_sign_in(&who.session, Some(&input.next))).into_response();
    }
    let home = auth::home(&who.session);
    let asked = auth::after_sign_in(&who.session, Some(&input.next));
    match sessions::sign_in_totp(&app, &who.session, &input.code, &who.address, who.device.as_deref()).await {
        Ok(done) => {
            let device = sessions::device_cookie(&app, who.session.email());
            let mut response = if !done.recovery_codes.is_empty() {
                let codes = recovery_codes_page(&app, done.recovery_codes, home);
                ([(header::SET_COOKIE, auth::set_cookie(&app, &done.token))], codes).into_response()
            } else {
                // (A partner has no account page: the portal is all of theirs.)
                let to = if done.recovery_codes_left.is_some() && home == "/inbox" {
                    "/account?done=recovery-used"
                } else {
                    asked.as_str()
                };
                ([(header::SET_COOKIE, auth::set_cookie(&app, &done.token))], Redirect::to(to)).into_response()
            };
            response.headers_mut().append(header::SET_COOKIE, auth::set_device_cookie(&app, &device));
            response
        }
        Err(err) => match auth::sign_in_message(&err) {
            Some(message) => {
                let status = if matches!(err, AppError::TooMany(_) | AppError::Throttled { .. }) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let mut response = totp_page(&app, &who, status, Some(message), &input.next).await;
                render::retry_after(&mut response, &err);
                response
            }
            None => WebError::from(err).into_response(),
        },
    }
}

pub(crate) async fn logout(State(app): State<App>, who: AnySession) -> Response {
    if let Err(err) = sessions::sign_out(&app, &who.session).await {
        return WebError::from(err).into_response();
    }
    ([(header::SET_COOKIE, auth::clear_cookie(&app))], Redirect::to("/login")).into_response()
}

// ---- Inbox ---------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub(crate) struct InboxParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    due: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<i64>,
    /// After a bulk action that went through for every report: what was done, to how many.
    #[serde(default)]
    done: String,
    #[serde(default)]
    count: Option<usize>,
}

struct InboxRow {
    reference: String,
    title: String,
    state: String,
    state_class: &'static str,
    product: String,
    assignee: String,
    /// The deadline that matters, relative ("in 3 working days", "overdue by 1 working
    /// day"), its clock's name and the instant.
    due: String,
    due_clock: &'static str,
    due_at: String,
    due_class: &'static str,
    received: String,
    received_at: String,
    received_datetime: String,
    flagged: bool,
    /// Ticked in the bulk form (kept when the form comes back refused).
    selected: bool,
}

/// A saved view of the inbox, as a tab.
struct Tab {
    label: &'static str,
    href: String,
    current: bool,
}

/// The bulk form's state: what was sent (kept when refused), the refusal at its field, and
/// each report's outcome.
#[derive(Default)]
struct BulkState {
    selected: Vec<String>,
    action: String,
    to: String,
    reason: String,
    notify: bool,
    /// The field refused (`report`, `to`, `reason`, `action`) and why.
    error: Option<(&'static str, String)>,
    results: Vec<BulkResult>,
}

impl BulkState {
    fn error(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }
}

/// One report's outcome in a bulk action.
struct BulkResult {
    reference: String,
    ok: bool,
    text: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    rows: Vec<InboxRow>,
    total: String,
    q: String,
    state: String,
    product: String,
    assignee: String,
    due: String,
    sort: String,
    page_param: String,
    states: Vec<(String, String)>,
    products: Vec<(i64, String)>,
    team: Vec<String>,
    tabs: Vec<Tab>,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    /// No report at all is visible yet: how reports arrive.
    first_run: bool,
    /// The person sees only the reports they work on (a responder): their empty inbox says
    /// how reports reach them.
    narrowed: bool,
    security_address: String,
    report_form: String,
    /// Bulk actions: whom the person may assign to (everyone, or only themselves), the close
    /// reasons, and the form's state.
    assign_to: Vec<(String, String)>,
    close_reasons: Vec<(String, String)>,
    bulk: BulkState,
    bulk_failed: usize,
}

const PER_PAGE: i64 = 50;

/// The most reports one bulk action changes (each in its own transaction).
const BULK_MAX: usize = 200;

/// The deadline classes of a page: overdue, and due soon (within two working days).
struct Due {
    now: embargo_domain::Timestamp,
    soon: embargo_domain::Timestamp,
}

impl Due {
    fn now(app: &App) -> Self {
        let now = app.now();
        // The same boundary as the `due=soon` filter: two working days on the business
        // calendar (holidays and weekend included), read when the request began.
        Self { now, soon: embargo_app::sla::cached_calendar(app).add_working_days(now, 2) }
    }

    fn class(&self, due: embargo_domain::Timestamp) -> &'static str {
        if due <= self.now {
            "overdue"
        } else if due <= self.soon {
            "soon"
        } else {
            ""
        }
    }
}

/// The due column: relative, with its clock, for the deadline that matters in the state.
fn inbox_due(
    app: &App,
    classes: &Due,
    state: ReportState,
    due: Option<embargo_domain::Timestamp>,
) -> (String, &'static str, String, &'static str) {
    use embargo_domain::sla::{ClockKind, DueIn};
    let (Some(due), Some(kind)) = (due, ClockKind::that_matters_in(state)) else {
        return (String::new(), "", String::new(), "");
    };
    let calendar = embargo_app::sla::cached_calendar(app);
    let text = match DueIn::at(&calendar, due, app.now()) {
        DueIn::Left(left) => format!("in {}", render::working_time(left)),
        DueIn::Overdue(by) if by.seconds() < 3600 => "overdue".to_owned(),
        DueIn::Overdue(by) => format!("overdue by {}", render::working_time(by)),
    };
    (text, kind.name(), render::time(app, due), classes.class(due))
}

pub(crate) async fn inbox(State(app): State<App>, who: Team, Query(params): Query<InboxParams>) -> Response {
    // A fix developer's start page is the fixes they were given.
    if crate::auth::is_fix_developer(&who.actor) {
        return Redirect::to("/fixes").into_response();
    }
    let flash = match (params.done.as_str(), params.count) {
        ("assigned", Some(n)) => Some(format!("{n} report{} assigned.", if n == 1 { "" } else { "s" })),
        ("closed", Some(n)) => Some(format!("{n} report{} closed.", if n == 1 { "" } else { "s" })),
        _ => None,
    };
    let bulk = BulkState { notify: true, ..BulkState::default() };
    inbox_page(&app, &who, &params, StatusCode::OK, bulk, flash).await
}

fn inbox_link(params: &InboxParams, state: &str, page: i64) -> String {
    let fields = [
        ("q", params.q.as_str()),
        ("state", state),
        ("product", params.product.as_str()),
        ("assignee", params.assignee.as_str()),
        ("due", params.due.as_str()),
        ("sort", params.sort.as_str()),
    ];
    let mut url = String::from("/inbox?");
    for (k, v) in fields {
        url.push_str(&format!("{k}={}&", auth::urlencode(v)));
    }
    url.push_str(&format!("page={page}"));
    url
}

/// The saved views: open reports, assigned to me, overdue, needs info, new, all.
fn tabs(params: &InboxParams, state: &str) -> Vec<Tab> {
    let plain = params.q.trim().is_empty() && params.product.is_empty();
    let views: [(&'static str, &str, &str, &str); 6] = [
        ("Open", "open", "", ""),
        ("Assigned to me", "open", "me", ""),
        ("Overdue", "open", "", "overdue"),
        ("Needs info", "needs-info", "", ""),
        ("New", "new", "", ""),
        ("All", "any", "", ""),
    ];
    views
        .into_iter()
        .map(|(label, tab_state, assignee, due)| {
            let mut href = format!("/inbox?state={tab_state}");
            if !assignee.is_empty() {
                href.push_str(&format!("&assignee={assignee}"));
            }
            if !due.is_empty() {
                href.push_str(&format!("&due={due}"));
            }
            Tab {
                label,
                current: plain && state == tab_state && params.assignee == assignee && params.due == due,
                href,
            }
        })
        .collect()
}

async fn inbox_page(
    app: &App,
    who: &Team,
    params: &InboxParams,
    status: StatusCode,
    bulk: BulkState,
    flash: Option<String>,
) -> Response {
    let state = if params.state.is_empty() { "open".to_owned() } else { params.state.clone() };
    let query = InboxQuery {
        state: Some(state.clone()),
        product: params.product.parse().ok(),
        assignee: Some(params.assignee.clone()).filter(|a| !a.is_empty()),
        due: Some(params.due.clone()).filter(|d| !d.is_empty()),
        search: Some(params.q.clone()).filter(|q| !q.trim().is_empty()),
        sort: Some(params.sort.clone()).filter(|s| !s.is_empty()),
        page: params.page.unwrap_or(1),
        per_page: PER_PAGE,
    };
    let mut layout = Layout { script: true, ..Layout::team(app, "Inbox", "inbox", who) };
    layout.flashes = flash.into_iter().collect();
    let inbox = match reports::inbox(app, &who.actor, &query).await {
        Ok(inbox) => inbox,
        Err(err) => return WebError::from(err).into_response(),
    };
    // An empty view: is it empty because nothing has arrived yet (then say how reports
    // arrive), or because of the filters? The filters' choices come with the page, from the
    // same snapshot (ADR 32).
    let first_run = inbox.nothing_visible;
    let products = inbox.products.into_iter().map(|p| (p.id, p.name)).collect();
    let team: Vec<String> = inbox.team.into_iter().map(|u| u.email).collect();
    // The "due soon" boundary, once for the page.
    let due = Due::now(app);
    let rows = inbox
        .rows
        .into_iter()
        .map(|row| {
            let (state, state_class) = render::state(row.summary.state);
            let (due, due_clock, due_at, due_class) = inbox_due(app, &due, row.summary.state, row.summary.due_at);
            let reference = row.summary.reference.to_string();
            InboxRow {
                selected: bulk.selected.contains(&reference),
                reference,
                title: row.summary.title,
                state,
                state_class,
                product: row.product.unwrap_or_default(),
                assignee: row.assignee.unwrap_or_default(),
                due,
                due_clock,
                due_at,
                due_class,
                received: render::ago(app, row.summary.created_at),
                received_at: render::time(app, row.summary.created_at),
                received_datetime: row.summary.created_at.to_string(),
                flagged: row.summary.flagged,
            }
        })
        .collect();
    let mut states = vec![("open".to_owned(), "Open".to_owned()), ("any".to_owned(), "Any".to_owned())];
    states.extend(ReportState::CODES.iter().map(|c| ((*c).to_owned(), (*c).replace('-', " "))));
    let page_no = query.page.max(1);
    let pages = ((inbox.total.min(reports::INBOX_COUNT_CAP) + PER_PAGE - 1) / PER_PAGE).max(1);
    let me = who.session.email().to_owned();
    let assign_to = if reports::may_assign_anyone(&who.actor) {
        std::iter::once(("none".to_owned(), "Nobody (unassign)".to_owned()))
            .chain(team.iter().map(|u| (u.clone(), u.clone())))
            .collect()
    } else {
        vec![(me.clone(), format!("Me ({me})"))]
    };
    let close_reasons = embargo_domain::CloseReason::CODES
        .iter()
        .filter(|c| **c != "duplicate")
        .map(|c| (format!("closed:{c}"), c.replace('-', " ")))
        .collect();
    let bulk_failed = bulk.results.iter().filter(|r| !r.ok).count();
    page(
        status,
        &InboxPage {
            layout,
            rows,
            total: match inbox.total {
                1 => "1 report".to_owned(),
                n if n > reports::INBOX_COUNT_CAP => format!("more than {} reports", reports::INBOX_COUNT_CAP),
                n => format!("{n} reports"),
            },
            tabs: tabs(params, &state),
            q: params.q.clone(),
            state: state.clone(),
            product: params.product.clone(),
            assignee: params.assignee.clone(),
            due: params.due.clone(),
            sort: params.sort.clone(),
            page_param: params.page.map(|p| p.to_string()).unwrap_or_default(),
            states,
            products,
            team,
            page: page_no,
            pages,
            prev: (page_no > 1).then(|| inbox_link(params, &state, page_no - 1)),
            next: (page_no < pages || inbox.total > reports::INBOX_COUNT_CAP)
                .then(|| inbox_link(params, &state, page_no + 1)),
            first_run,
            narrowed: embargo_app::authz::narrowed_to(&who.actor, embargo_app::authz::Permission::ListReports)
                .is_some(),
            security_address: app.config.organisation.security_address.clone(),
            report_form: format!("{}/report", app.config.public_url.trim_end_matches('/')),
            assign_to,
            close_reasons,
            bulk,
            bulk_failed,
        },
    )
}

/// `POST /inbox/bulk`: assign or close the ticked reports, each through the same use case
/// as on its own page (permission-checked and audited in its own transaction; a close with
/// its reason and, when asked, the reporter's notice for that reason). Every report's
/// outcome is told; when all went through, the inbox with a message. The filters of the
/// view come along as hidden fields.
pub(crate) async fn bulk(State(app): State<App>, who: Team, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let params = InboxParams {
        q: get("q"),
        state: get("state"),
        product: get("product"),
        assignee: get("assignee"),
        due: get("due"),
        sort: get("sort"),
        page: get("page").parse().ok(),
        done: String::new(),
        count: None,
    };
    let mut selected: Vec<String> = Vec::new();
    for (name, value) in &fields {
        if name == "report" && !selected.contains(value) {
            selected.push(value.clone());
        }
    }
    let mut state = BulkState {
        selected: selected.clone(),
        action: get("action"),
        to: get("to"),
        reason: get("reason"),
        notify: !get("notify").is_empty(),
        error: None,
        results: Vec::new(),
    };
    let refusal = if selected.is_empty() {
        Some(("report", "Tick at least one report in the list below.".to_owned()))
    } else if selected.len() > BULK_MAX {
        Some(("report", format!("At most {BULK_MAX} reports at a time.")))
    } else {
        match state.action.as_str() {
            "assign" if state.to.is_empty() => Some(("to", "Choose who to assign the reports to.".to_owned())),
            "close" if state.reason.is_empty() => Some(("reason", "Choose why the reports are closed.".to_owned())),
            "close"
                if Target::<ReferenceId>::parse(&state.reason, None).is_err() || state.reason == "closed:duplicate" =>
            {
                Some(("reason", format!("{:?} is not a reason to close several reports at once.", state.reason)))
            }
            "assign" | "close" => None,
            _ => Some(("action", "Choose an action: assign or close.".to_owned())),
        }
    };
    if let Some(refusal) = refusal {
        state.error = Some(refusal);
        return inbox_page(&app, &who, &params, StatusCode::UNPROCESSABLE_ENTITY, state, None).await;
    }
    let mut results = Vec::new();
    for text in &selected {
        let outcome = match text.parse::<ReferenceId>() {
            Err(_) => Err(AppError::Invalid(format!("{text:?} is not a report reference"))),
            Ok(reference) => match state.action.as_str() {
                "assign" => {
                    let to = Some(state.to.as_str()).filter(|t| *t != "none");
                    reports::assign(&app, &who.actor, &reference, to).await.map(|()| match to {
                        Some(to) => format!("assigned to {to}"),
                        None => "unassigned".to_owned(),
                    })
                }
                _ => {
                    let notice = if state.notify { Notice::Template } else { Notice::None };
                    match Target::parse(&state.reason, None) {
                        Ok(target) => reports::change_state(&app, &who.actor, &reference, target, notice)
                            .await
                            .map(|t| format!("{}{}", t.to, if state.notify { "; the reporter is told" } else { "" })),
                        Err(err) => Err(AppError::from(err)),
                    }
                }
            },
        };
        results.push(match outcome {
            Ok(text_done) => BulkResult { reference: text.clone(), ok: true, text: text_done },
            Err(AppError::NotFound(_) | AppError::Forbidden(_)) => BulkResult {
                reference: text.clone(),
                ok: false,
                text: "not changed: not found, or not yours to change".to_owned(),
            },
            Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
                BulkResult { reference: text.clone(), ok: false, text: format!("not changed: {m}") }
            }
            Err(err) => return WebError::from(err).into_response(),
        });
    }
    if results.iter().all(|r| r.ok) {
        let done = if state.action == "assign" { "assigned" } else { "closed" };
        let mut to =
            inbox_link(&params, if params.state.is_empty() { "open" } else { &params.state }, params.page.unwrap_or(1));
        to.push_str(&format!("&done={done}&count={}", results.len()));
        return Redirect::to(&to).into_response();
    }
    state.results = results;
    // Keep the failed ones ticked, to try again.
    state.selected = state.results.iter().filter(|r| !r.ok).map(|r| r.reference.clone()).collect();
    inbox_page(&app, &who, &params, StatusCode::OK, state, None).await
}

// ---- Report page ---------------------------------------------------------------------

struct FileView {
    id: i64,
    /// The name to save it under (`views::safe_filename`).
    name: String,
    /// The name as sent, escaped for reading, when it differs.
    sent_as: Option<String>,
    size: String,
    key_like: bool,
}

enum TimelineItem {
    State {
        label: String,
        class: &'static str,
        actor: String,
        at: String,
    },
    Message {
        kind: &'static str,
        kind_label: &'static str,
        author: String,
        sender: String,
        subject: String,
        body_html: String,
        /// The message's row id, for its "view original" link.
        id: i64,
        /// Whether the original (the mail as received, with headers) is kept.
        original: bool,
        files: Vec<FileView>,
        flags: Vec<String>,
        at: String,
    },
}

/// A near-duplicate suggestion on the report page.
struct SimilarView {
    reference: String,
    title: String,
    state: String,
    state_class: &'static str,
    /// The similarity score (`embargo_domain::similarity::scores`), as a percentage.
    score: String,
}

struct ActivityRow {
    action: String,
    actor: String,
    details: String,
    at: String,
}

/// A report-page form that was refused: which form and field, why, and what was typed, so
/// that the page comes back with that form as it was sent and the field marked.
#[derive(Debug, Default)]
pub(crate) struct FormState {
    form: &'static str,
    field: &'static str,
    message: String,
    values: Vec<(&'static str, String)>,
}

impl FormState {
    pub(crate) fn refused(
        form: &'static str,
        field: &'static str,
        message: impl Into<String>,
        values: Vec<(&'static str, String)>,
    ) -> Self {
        FormState { form, field, message: message.into(), values }
    }

    /// The reason, when this field of this form was refused.
    fn error(&self, form: &str, field: &str) -> Option<&str> {
        (self.form == form && self.field == field).then_some(self.message.as_str())
    }

    /// Whether this form was the one refused.
    fn is(&self, form: &str) -> bool {
        self.form == form
    }

    /// What was typed into a field of the refused form (empty for any other form).
    fn value(&self, form: &str, field: &str) -> &str {
        if self.form != form {
            return "";
        }
        self.values.iter().find(|(name, _)| *name == field).map_or("", |(_, value)| value.as_str())
    }
}

/// One step of the lifecycle indicator.
struct StepView {
    label: &'static str,
    /// `done`, `current` or `todo`.
    class: &'static str,
}

/// The deadline that matters now, relative ("acknowledge within 3 working days").
struct DeadlineView {
    text: String,
    /// `overdue`, `soon` or empty.
    class: &'static str,
    /// The clock's name (`acknowledge`, `analyse`, `fix`).
    clock: &'static str,
    /// The instant, for people and as RFC 3339.
    at: String,
    datetime: String,
}

/// A lifecycle move offered as a button.
struct MoveView {
    target: String,
    label: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    layout: Layout,
    /// What the signed-in person may do here (forms they cannot use are not shown).
    can: reports::ReportAbilities,
    /// Their own address (to take the report).
    me: String,
    /// Team members added to the report (shown to those who manage its access).
    members: Vec<String>,
    reference: String,
    report_title: String,
    channel: String,
    received: String,
    state: String,
    state_class: &'static str,
    duplicate_of: Option<String>,
    /// The lifecycle's main path, and where the report stands off it (needs info, closed).
    steps: Vec<StepView>,
    off_path: Option<String>,
    deadline: Option<DeadlineView>,
    /// Why there is no deadline now (paused while waiting on the reporter).
    no_deadline: Option<&'static str>,
    /// The move that carries the report forward, the other moves, and the close reasons.
    primary: Option<MoveView>,
    moves: Vec<MoveView>,
    close_reasons: Vec<(String, String)>,
    /// The assignee's address (empty: nobody) and how to show them.
    assignee_email: String,
    assignee: String,
    product_id: Option<i64>,
    product: String,
    reporter_name: String,
    reporter_email: String,
    reporter_key: bool,
    facts: Vec<(String, String)>,
    duplicates: Vec<String>,
    split_from: Option<String>,
    split_into: Vec<String>,
    history: reports::ReporterHistory,
    similar: Vec<SimilarView>,
    upstream: Option<String>,
    events: Vec<TimelineItem>,
    activity: Vec<ActivityRow>,
    team: Vec<String>,
    products: Vec<(i64, String)>,
    prefix: String,
    status_revoked: bool,
    eval: crate::evaluation::EvalView,
    /// A refused form, shown again as sent.
    form: FormState,
}

fn size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0),
    }
}

/// The button text of a move (what the person does, not the state's code).
fn move_label(from: ReportState, to: ReportState) -> String {
    use ReportState::*;
    match (from, to) {
        (_, Acknowledged) => "Acknowledge".to_owned(),
        (Closed(_), Triaging) => "Reopen for triage".to_owned(),
        (NeedsInfo, Triaging) => "Back to triage".to_owned(),
        (_, Triaging) => "Start triage".to_owned(),
        (_, NeedsInfo) => "Needs info from the reporter".to_owned(),
        (Fixing, Accepted) => "Back to accepted".to_owned(),
        (_, Accepted) => "Accept".to_owned(),
        (ReadyForDisclosure, Fixing) => "Reopen the fix".to_owned(),
        (_, Fixing) => "Start fixing".to_owned(),
        (_, ReadyForDisclosure) => "Fix ready for disclosure".to_owned(),
        (_, Disclosed) => "Mark disclosed".to_owned(),
        (_, Closed(reason)) => format!("Close as {}", reason.code().replace('-', " ")),
        (_, New) => "Back to new".to_owned(),
    }
}

/// The moves of the lifecycle from `state`: the one forward ([`ReportState::next_move`]),
/// the other open states it allows, and the close reasons it allows (from the domain's
/// rules; nothing here decides an edge).
fn moves(state: ReportState) -> (Option<MoveView>, Vec<MoveView>, Vec<(String, String)>) {
    let view = |to: ReportState| MoveView {
        target: Target::<()>::parse(to.code(), None).map(|t| t.to_string()).unwrap_or_default(),
        label: move_label(state, to),
    };
    let primary = state.next_move().filter(|to| state.can_move_to(*to));
    let others = ReportState::of_every_code()
        .into_iter()
        .filter(|to| !to.is_closed() && Some(*to) != primary && state.can_move_to(*to))
        .map(view)
        .collect();
    let closes = Target::every()
        .into_iter()
        .filter(|t| t.to_string().starts_with("closed:") && t.allowed_from(state))
        .map(|t| {
            let code = t.to_string();
            let label = code.trim_start_matches("closed:").replace('-', " ");
            (code, label)
        })
        .collect();
    (primary.map(view), others, closes)
}

/// The lifecycle indicator: the main path, done up to where the report got.
fn steps(state: ReportState, history: &[reports::TransitionRecord]) -> (Vec<StepView>, Option<String>) {
    let reached = state.furthest_on_path(
        history.iter().flat_map(|t| [ReportState::from_codes(&t.from, None, None).unwrap_or(t.to), t.to]),
    );
    let current = state.on_path();
    let labels = ["New", "Acknowledged", "Triage", "Accepted", "Fixing", "Ready", "Disclosed"];
    let steps = ReportState::PATH
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (_, label))| StepView {
            label,
            class: match current {
                Some(c) if c == i => "current",
                _ if i <= reached && current.is_none_or(|c| i < c) => "done",
                _ => "todo",
            },
        })
        .collect();
    let off = match state {
        ReportState::NeedsInfo => Some("waiting on the reporter (needs info)".to_owned()),
        ReportState::Closed(_) => Some(state.to_string()),
        _ => None,
    };
    (steps, off)
}

/// The deadline that matters in the report's state (`ClockKind::that_matters_in`), relative
/// to now on the business calendar.
fn deadline(app: &App, detail: &reports::ReportDetail) -> (Option<DeadlineView>, Option<&'static str>) {
    use embargo_domain::sla::{ClockKind, DueIn};
    let state = detail.report.state;
    if state == ReportState::NeedsInfo {
        return (None, Some("Deadlines are paused while the report waits on the reporter."));
    }
    let Some(kind) = ClockKind::that_matters_in(state) else { return (None, None) };
    let Some(due) = detail.sla.due_of(kind) else { return (None, None) };
    let calendar = embargo_app::sla::cached_calendar(app);
    let now = app.now();
    let standing = DueIn::at(&calendar, due, now);
    let class = Due::now(app).class(due);
    (
        Some(DeadlineView {
            text: render::deadline(kind, standing),
            class,
            clock: kind.name(),
            at: render::time(app, due),
            datetime: due.to_string(),
        }),
        None,
    )
}

pub(crate) async fn report(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Query(flash): Query<FlashParams>,
) -> Response {
    report_response(&app, &who, &reference, StatusCode::OK, FormState::default(), flash.message()).await
}

/// The report page, with a refused form shown again as sent (422) or as it is.
async fn report_response(
    app: &App,
    who: &Team,
    reference: &ReferenceId,
    status: StatusCode,
    form: FormState,
    flash: Option<String>,
) -> Response {
    let mut layout = Layout { script: true, ..Layout::team(app, format!("Report {reference}"), "inbox", who) };
    match report_page(app, who, reference, form).await {
        Ok(mut report) => {
            layout.flashes = flash.into_iter().collect();
            report.layout = layout;
            page(status, &report)
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

/// The report page again after a refused form: 422 with the form as sent and the reason at
/// its field; refusals that are not about the input (not found, forbidden) are the usual
/// error pages.
async fn refused(app: &App, who: &Team, reference: &ReferenceId, err: AppError, form: FormState) -> Response {
    match err {
        AppError::Invalid(message) | AppError::Conflict(message) => {
            let form = FormState { message, ..form };
            report_response(app, who, reference, StatusCode::UNPROCESSABLE_ENTITY, form, None).await
        }
        AppError::NotFound(what) if what != format!("report {reference}") => {
            let form = FormState { message: format!("{what} not found"), ..form };
            report_response(app, who, reference, StatusCode::UNPROCESSABLE_ENTITY, form, None).await
        }
        err => WebError::from(err).into_response(),
    }
}

async fn report_page(app: &App, who: &Team, reference: &ReferenceId, form: FormState) -> Result<ReportPage, AppError> {
    let reference = reference.clone();
    // One snapshot and one audit commit for the whole page (ADR 32).
    let reports::ReportPageData {
        detail,
        trail,
        duplicates,
        duplicate_of,
        splits,
        history,
        similar,
        team,
        products,
        members,
        abilities: can,
        people,
    } = reports::page(app, &who.actor, &reference).await?;
    let similar = similar_views(similar);
    let members = if can.manage_access { members } else { Vec::new() };
    let report = &detail.report;
    let duplicate_of = duplicate_of.map(|r| r.to_string());
    let mut events: Vec<(embargo_domain::Timestamp, i64, TimelineItem)> = Vec::new();
    for t in &detail.transitions {
        let (label, class) = render::state(t.to);
        events.push((
            t.at,
            1,
            TimelineItem::State { label, class, actor: people.name(&t.actor), at: render::time(app, t.at) },
        ));
    }
    for m in &detail.messages {
        let (kind, kind_label) = match (m.kind, m.quarantined) {
            (_, true) => ("quarantined", "Quarantined mail (not from the reporter)"),
            (MessageKind::Inbound, _) => ("inbound", "From the reporter"),
            (MessageKind::Outbound, _) => ("outbound", "To the reporter"),
            (MessageKind::Note, _) => ("note", "Internal note"),
        };
        let mut flags = Vec::new();
        if let Some(pgp) = &m.pgp {
            flags.push(format!("OpenPGP: {pgp}"));
        }
        if let Some(auth) = &m.auth
            && auth.contains("fail")
        {
            flags.push(format!("sender authentication: {auth}"));
        }
        for code in &m.anomalies {
            flags.push(embargo_app::intake::anomaly_text(code).to_owned());
        }
        let files = detail
            .attachments
            .iter()
            .filter(|a| a.message == Some(m.id))
            .map(|a| FileView {
                id: a.id,
                name: embargo_app::views::safe_filename(&a.filename, a.id),
                sent_as: (embargo_app::views::safe_filename(&a.filename, a.id) != a.filename)
                    .then(|| format!("{:?}", a.filename)),
                size: size(a.size),
                key_like: a.media_type.contains("pgp-keys")
                    || a.filename.to_lowercase().ends_with(".asc") && a.size < 200_000,
            })
            .collect();
        // The reporter is named as they gave their name; team members by their address.
        let author = match (m.author.as_str(), detail.reporter.name.as_deref()) {
            ("reporter", Some(name)) if !name.trim().is_empty() => name.to_owned(),
            (author, _) => people.name(author),
        };
        events.push((
            m.at,
            0,
            TimelineItem::Message {
                kind,
                kind_label,
                author,
                sender: m.sender.clone().unwrap_or_default(),
                subject: m.subject.clone().unwrap_or_default(),
                body_html: render::text(&m.body),
                id: m.id,
                original: m.raw_size.is_some(),
                files,
                flags,
                at: render::time(app, m.at),
            },
        ));
    }
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let mut facts = Vec::new();
    if let Some(details) = report.details.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) {
        let get = |k: &str| details.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        for (label, key) in [
            ("Product (reporter)", "product_other"),
            ("Version", "version"),
            ("Credit", "credit"),
            ("Credit as", "credit_name"),
            ("AI tools used", "ai_used"),
        ] {
            let value = get(key);
            if !value.is_empty() {
                facts.push((label.to_owned(), value));
            }
        }
    }
    let product_name = report
        .product_id
        .and_then(|p| products.iter().find(|x| x.id == p))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "none".into());
    let assignee_email = report.assignee.map(|a| people.user(a.0)).unwrap_or_default();
    let (state, state_class) = render::state(report.state);
    let (steps, off_path) = steps(report.state, &detail.transitions);
    let (deadline, no_deadline) = deadline(app, &detail);
    let (primary, moves, close_reasons) = if can.change { moves(report.state) } else { (None, Vec::new(), Vec::new()) };
    let product_options: Vec<(i64, String)> = products.iter().map(|p| (p.id, p.name.clone())).collect();
    let eval = crate::evaluation::view(app, &detail, &product_options);
    Ok(ReportPage {
        layout: Layout::team(app, "", "inbox", who),
        can,
        me: who.session.email().to_owned(),
        members,
        reference: reference.to_string(),
        report_title: report.title.clone(),
        channel: report.channel.clone(),
        received: render::time(app, report.created_at),
        state,
        state_class,
        duplicate_of,
        steps,
        off_path,
        deadline,
        no_deadline,
        primary,
        moves,
        close_reasons,
        assignee: if assignee_email.is_empty() { "nobody".to_owned() } else { assignee_email.clone() },
        assignee_email,
        product_id: report.product_id,
        product: product_name,
        reporter_name: detail.reporter.name.clone().unwrap_or_default(),
        reporter_email: detail.reporter.email.clone(),
        reporter_key: detail.reporter.openpgp_key.is_some(),
        facts,
        duplicates: duplicates.iter().map(ToString::to_string).collect(),
        split_from: splits.from.map(|r| r.to_string()),
        split_into: splits.into.iter().map(ToString::to_string).collect(),
        history,
        similar,
        upstream: report.upstream.as_ref().map(|u| format!("{} ({})", u.project, u.contact)),
        events: events.into_iter().map(|(_, _, e)| e).collect(),
        activity: trail
            .iter()
            .rev()
            .map(|entry| ActivityRow {
                action: entry.action.clone(),
                actor: people.name(&entry.actor),
                details: people.in_text(&entry.details),
                at: render::time(app, embargo_domain::Timestamp::from_millisecond(entry.at_ms).unwrap_or_default()),
            })
            .collect(),
        team: team.iter().map(|u| u.email.clone()).collect(),
        products: product_options,
        prefix: app.config.organisation.reference_prefix.clone(),
        status_revoked: report.status_revoked,
        eval,
        form,
    })
}

/// Near-duplicate suggestions, as the report page shows them.
fn similar_views(similar: Vec<reports::Similar>) -> Vec<SimilarView> {
    similar
        .into_iter()
        .map(|s| {
            let (state, state_class) = render::state(s.state);
            SimilarView {
                reference: s.reference.to_string(),
                title: s.title,
                state,
                state_class,
                score: format!("{:.0} %", s.score * 100.0),
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct FlashParams {
    #[serde(default)]
    done: String,
}

impl FlashParams {
    fn message(&self) -> Option<String> {
        Some(
            match self.done.as_str() {
                "reply" => "Reply recorded; it is being mailed to the reporter.",
                "note" => "Note added.",
                "state" => "State changed.",
                "assign" => "Assignment saved.",
                "product" => "Product saved.",
                "member" => "Access granted.",
                "member-removed" => "Access removed.",
                "member-removed-product" => {
                    "Access removed; they still see this report as a responder of its product (remove that on the Team page)."
                }
                "key" => "Key imported: mail to the reporter is encrypted from now on.",
                "link-rotate" => "A new status link was mailed to the reporter; the old one no longer works.",
                "link-revoke" => "The status link is revoked.",
                "cvss" => "CVSS saved.",
                "classification" => "Classification saved.",
                "affected" => "Affected versions saved.",
                "split" => "This report was split off the original. The reporter was not told.",
                _ => return None,
            }
            .to_owned(),
        )
    }
}

pub(crate) fn back(reference: &ReferenceId, done: &str) -> Response {
    Redirect::to(&format!("/reports/{reference}?done={done}")).into_response()
}

async fn act<F, Fut>(reference: ReferenceId, done: &str, action: F) -> Result<Response, WebError>
where
    F: FnOnce(ReferenceId) -> Fut,
    Fut: std::future::Future<Output = Result<(), AppError>>,
{
    action(reference.clone()).await?;
    Ok(back(&reference, done))
}

#[derive(Deserialize)]
pub(crate) struct BodyInput {
    #[serde(default)]
    body: String,
    /// On a reply: it asks the reporter something (needs-info).
    #[serde(default)]
    ask: String,
}

pub(crate) async fn reply(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<BodyInput>,
) -> Response {
    let kind = if input.ask.is_empty() { reports::TeamMessage::Reply } else { reports::TeamMessage::Question };
    match reports::write(&app, &who.actor, &reference, kind, &input.body).await {
        Ok(_) => back(&reference, "reply"),
        Err(err) => {
            let form = FormState::refused("reply", "body", "", vec![("body", input.body), ("ask", input.ask)]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

pub(crate) async fn note(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<BodyInput>,
) -> Response {
    match reports::add_note(&app, &who.actor, &reference, &input.body).await {
        Ok(_) => back(&reference, "note"),
        Err(err) => {
            let form = FormState::refused("note", "body", "", vec![("body", input.body)]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TransitionInput {
    #[serde(default)]
    target: String,
    #[serde(default)]
    duplicate_of: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    send: String,
    #[serde(default)]
    notice: String,
}

#[derive(Template)]
#[template(path = "transition.html")]
struct TransitionPage {
    layout: Layout,
    reference: String,
    target: String,
    target_label: String,
    duplicate_of: String,
    subject: Option<String>,
    body: String,
    /// Why the change was refused, at the message.
    error: Option<String>,
}

/// Two steps, without JavaScript: the first shows the templated notice for editing, the
/// second (`confirm=1`) changes the state and sends the edited notice, or none. A target
/// that cannot be read (no close reason chosen, an original that is not a reference) brings
/// the report page back with the close form as sent.
pub(crate) async fn transition(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<TransitionInput>,
) -> Response {
    let layout = Layout::team(&app, "Change state", "inbox", &who);
    let closing = input.target.is_empty() || input.target.starts_with("closed");
    let close_form = |field: &'static str| {
        FormState::refused(
            if closing { "close" } else { "move" },
            field,
            "",
            vec![("target", input.target.clone()), ("duplicate_of", input.duplicate_of.clone())],
        )
    };
    if input.target.trim().is_empty() {
        let err = AppError::Invalid("choose why the report is closed".into());
        return refused(&app, &who, &reference, err, close_form("target")).await;
    }
    let duplicate_of = match input.duplicate_of.trim() {
        "" => None,
        text => match text.parse::<ReferenceId>() {
            Ok(d) => Some(d),
            Err(_) => {
                let err = AppError::Invalid(format!("{text:?} is not a report reference such as {reference}"));
                return refused(&app, &who, &reference, err, close_form("duplicate_of")).await;
            }
        },
    };
    let target = match Target::parse(&input.target, duplicate_of) {
        Ok(target) => target,
        Err(err @ embargo_domain::TargetError::DuplicateWithoutOriginal) => {
            return refused(&app, &who, &reference, AppError::from(err), close_form("duplicate_of")).await;
        }
        Err(err @ embargo_domain::TargetError::OriginalWithoutDuplicate) => {
            return refused(&app, &who, &reference, AppError::from(err), close_form("duplicate_of")).await;
        }
        Err(err) => return refused(&app, &who, &reference, AppError::from(err), close_form("target")).await,
    };
    let transition_page = |status: StatusCode, subject: Option<String>, body: String, error: Option<String>| {
        page(
            status,
            &TransitionPage {
                layout: layout.clone(),
                reference: reference.to_string(),
                target_label: input.target.replace([':', '-'], " "),
                target: input.target.clone(),
                duplicate_of: input.duplicate_of.trim().to_owned(),
                subject,
                body,
                error,
            },
        )
    };
    if input.confirm != "1" {
        return match reports::notice_template(&app, &who.actor, &reference, &target).await {
            Ok(template) => transition_page(
                StatusCode::OK,
                template.as_ref().map(|t| t.subject.clone()),
                template.map(|t| t.body).unwrap_or_default(),
                None,
            ),
            Err(AppError::NotFound(what)) if what != format!("report {reference}") => {
                refused(&app, &who, &reference, AppError::NotFound(what), close_form("duplicate_of")).await
            }
            Err(err) => WebError::from(err).into_response(),
        };
    }
    let notice = if input.send == "1" { Notice::Custom(input.notice.clone()) } else { Notice::None };
    let sent_notice = input.notice.clone();
    match reports::change_state(&app, &who.actor, &reference, target.clone(), notice).await {
        Ok(_) => back(&reference, "state"),
        Err(AppError::NotFound(what)) if what != format!("report {reference}") => {
            let err = AppError::NotFound(what);
            refused(&app, &who, &reference, err, close_form("duplicate_of")).await
        }
        Err(AppError::Invalid(message) | AppError::Conflict(message)) => {
            // The notice page again, the text as edited, the reason beside it.
            let subject = match reports::notice_template(&app, &who.actor, &reference, &target).await {
                Ok(template) => template.map(|t| t.subject),
                Err(err) => return WebError::from(err).into_response(),
            };
            transition_page(StatusCode::UNPROCESSABLE_ENTITY, subject, sent_notice, Some(message))
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct SplitInput {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// Splits a finding off the report into a new report, and shows the new one.
pub(crate) async fn split(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<SplitInput>,
) -> Response {
    match reports::split(&app, &who.actor, &reference, &input.title, &input.body).await {
        Ok(new) => back(&new, "split"),
        Err(err) => {
            let field = match &err {
                AppError::Invalid(m) if m.contains("title") => "title",
                _ => "body",
            };
            let form = FormState::refused("split", field, "", vec![("title", input.title), ("body", input.body)]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct AssignInput {
    #[serde(default)]
    assignee: String,
}

/// `assignee`: an address, `none` (unassign); empty is a choice not made.
pub(crate) async fn assign(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<AssignInput>,
) -> Response {
    let form = FormState::refused("assign", "assignee", "", vec![("assignee", input.assignee.clone())]);
    let result = match input.assignee.trim() {
        "" => Err(AppError::Invalid("choose who to assign the report to (or nobody)".into())),
        "none" => reports::assign(&app, &who.actor, &reference, None).await,
        email => reports::assign(&app, &who.actor, &reference, Some(email)).await,
    };
    match result {
        Ok(()) => back(&reference, "assign"),
        Err(err) => refused(&app, &who, &reference, err, form).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct ProductInput {
    #[serde(default)]
    product: String,
}

pub(crate) async fn set_product(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<ProductInput>,
) -> Response {
    let form = FormState::refused("product", "product", "", vec![("product", input.product.clone())]);
    let result = match input.product.trim() {
        "" => reports::set_product(&app, &who.actor, &reference, None).await,
        text => match text.parse::<i64>() {
            Ok(id) => reports::set_product(&app, &who.actor, &reference, Some(id)).await,
            Err(_) => Err(AppError::Invalid(format!("{text:?} is not a product of the catalogue"))),
        },
    };
    match result {
        Ok(()) => back(&reference, "product"),
        Err(err) => refused(&app, &who, &reference, err, form).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct EmailInput {
    #[serde(default)]
    pub(crate) email: String,
}

pub(crate) async fn add_member(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<EmailInput>,
) -> Response {
    match reports::add_member(&app, &who.actor, &reference, &input.email).await {
        Ok(()) => back(&reference, "member"),
        Err(err) => {
            let form = FormState::refused("member", "email", "", vec![("email", input.email)]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

/// `POST /reports/{reference}/cvss` (see `evaluation::save_cvss`): a refused vector comes
/// back in its calculator, as typed.
pub(crate) async fn set_cvss(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    match crate::evaluation::save_cvss(&app, &who, &reference, &fields).await {
        Ok(()) => crate::evaluation::to_report(&reference, "cvss"),
        Err(err) => {
            let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let form_id = if get("version") == "4.0" { "v40" } else { "v31" };
            let form = FormState::refused(form_id, "vector", "", vec![("vector", get("vector"))]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

/// `POST /reports/{reference}/classification` (see `evaluation::save_classification`).
pub(crate) async fn set_classification(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<crate::evaluation::ClassificationInput>,
) -> Response {
    match crate::evaluation::save_classification(&app, &who, &reference, &input).await {
        Ok(()) => crate::evaluation::to_report(&reference, "classification"),
        Err(err) => {
            let field = match &err {
                AppError::Invalid(m) if m.contains("SSVC") => "ssvc",
                _ => "cwe",
            };
            let form = FormState::refused("classification", field, "", vec![("cwe", input.cwe.clone())]);
            refused(&app, &who, &reference, err, form).await
        }
    }
}

/// `POST /reports/{reference}/affected` (see `evaluation::save_affected`).
pub(crate) async fn set_affected(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    match crate::evaluation::save_affected(&app, &who, &reference, &fields).await {
        Ok(()) => crate::evaluation::to_report(&reference, "affected"),
        Err(err) => {
            let form = FormState::refused("affected", "rows", "", Vec::new());
            refused(&app, &who, &reference, err, form).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct KeyInput {
    attachment: i64,
}

pub(crate) async fn import_key(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<KeyInput>,
) -> Result<Response, WebError> {
    let (app, who) = (&app, &who);
    act(reference, "key", |reference| async move {
        reports::import_reporter_key(app, &who.actor, &reference, KeyImport::Attachment(input.attachment))
            .await
            .map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct LinkInput {
    action: String,
}

pub(crate) async fn status_link(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<LinkInput>,
) -> Result<Response, WebError> {
    let revoke = input.action == "revoke";
    let (app, who) = (&app, &who);
    act(reference, if revoke { "link-revoke" } else { "link-rotate" }, |reference| async move {
        reports::reset_status_link(app, &who.actor, &reference, revoke).await
    })
    .await
}

/// Attachments are only ever downloads: a neutral type, `attachment` disposition with a
/// cleaned name, no sniffing, and a sandboxing CSP in case a browser renders it anyway.
pub(crate) async fn attachment(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Path((_, id)): Path<(String, i64)>,
) -> Response {
    match reports::attachment(&app, &who.actor, &reference, id).await {
        Ok(download) => {
            let disposition = content_disposition(&embargo_app::views::safe_filename(&download.filename, id));
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".to_owned()),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                download.data,
            )
                .into_response()
        }
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `Content-Disposition: attachment` for a safe name (RFC 6266): an ASCII `filename` for old
/// clients and the exact name as `filename*` (RFC 8187).
pub(crate) fn content_disposition(safe_name: &str) -> String {
    let ascii: String = safe_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = safe_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

// ---- Account -------------------------------------------------------------------------

struct SessionView {
    id: i64,
    agent: String,
    created: String,
    seen: String,
    current: bool,
}

struct TokenView {
    id: i64,
    name: String,
    created: String,
    used: String,
    revoked: bool,
}

struct PasskeyView {
    id: i64,
    name: String,
    created: String,
    used: String,
    transports: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    email: String,
    role: &'static str,
    sessions: Vec<SessionView>,
    tokens: Vec<TokenView>,
    new_token: Option<String>,
    /// Unused recovery codes.
    recovery_left: i64,
    /// The account's passkeys.
    passkeys: Vec<PasskeyView>,
    /// An admin requires this account to sign in with a passkey.
    passkey_required: bool,
    /// Single sign-on: its name when configured, and the identities linked to the account.
    sso: Option<String>,
    sso_links: Vec<SsoLinkView>,
}

struct SsoLinkView {
    email: String,
    linked: String,
    used: String,
}

async fn account_page(app: &App, who: &Team, new_token: Option<String>, flash: Option<String>) -> Response {
    let mut layout = Layout::team(app, "Your account", "account", who);
    layout.flashes = flash.into_iter().collect();
    let list = match sessions::list(app, &who.session).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    let tokens = match accounts::my_tokens(app, &who.actor).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    let recovery_left = match accounts::my_recovery_codes_left(app, &who.actor).await {
        Ok(n) => n,
        Err(err) => return WebError::from(err).into_response(),
    };
    let passkeys = match embargo_app::passkeys::list(app, &who.actor).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    layout.script = true;
    let sso_links = match embargo_app::oidc::my_identities(app, &who.actor).await {
        Ok(list) => list
            .into_iter()
            .map(|l| SsoLinkView {
                email: if l.email.is_empty() { "(no address given)".into() } else { l.email },
                linked: render::time(app, l.created_at),
                used: l.last_used_at.map_or_else(|| "never".into(), |u| render::time(app, u)),
            })
            .collect(),
        Err(err) => return WebError::from(err).into_response(),
    };
    page(
        StatusCode::OK,
        &AccountPage {
            layout,
            email: who.session.email().to_owned(),
            role: who.session.record.user.role.as_str(),
            sessions: list
                .into_iter()
                .map(|s| SessionView {
                    current: s.id == who.session.record.id,
                    id: s.id,
                    agent: s.user_agent,
                    created: render::time(app, s.created_at),
                    seen: render::time(app, s.last_seen_at),
                })
                .collect(),
            tokens: tokens
                .into_iter()
                .map(|t| TokenView {
                    id: t.id,
                    name: t.name,
                    created: render::time(app, t.created_at),
                    used: t.last_used_at.map_or_else(|| "never".into(), |u| render::time(app, u)),
                    revoked: t.revoked,
                })
                .collect(),
            new_token,
            recovery_left,
            passkeys: passkeys
                .into_iter()
                .map(|p| PasskeyView {
                    id: p.id,
                    name: p.name,
                    created: render::time(app, p.created_at),
                    used: p.last_used_at.map_or_else(|| "never".into(), |u| render::time(app, u)),
                    transports: p.transports.join(", "),
                })
                .collect(),
            passkey_required: who.session.record.passkey_required,
            sso: embargo_app::oidc::display_name(app).map(str::to_owned),
            sso_links,
        },
    )
}

pub(crate) async fn account(State(app): State<App>, who: Team, Query(flash): Query<FlashParams>) -> Response {
    let message = match flash.done.as_str() {
        "session" => Some("Session revoked.".to_owned()),
        "token-revoke" => Some("Token revoked.".to_owned()),
        "passkey-added" => Some("Passkey added.".to_owned()),
        "passkey-renamed" => Some("Passkey renamed.".to_owned()),
        "passkey-removed" => Some("Passkey removed.".to_owned()),
        "passkey-required" => Some("Your account must sign in with a passkey: add one below to go on.".to_owned()),
        "recovery-none" => Some("Recovery codes are made once TOTP is set up for the account.".to_owned()),
        "oidc-linked" => Some("Your single sign-on identity is linked: you can sign in with it now.".to_owned()),
        "recovery-used" => Some(
            "You signed in with a recovery code, which no longer works. Make a new set below if few are left."
                .to_owned(),
        ),
        _ => None,
    };
    account_page(&app, &who, None, message).await
}

pub(crate) async fn revoke_session(State(app): State<App>, who: Team, Path(id): Path<i64>) -> Response {
    match sessions::revoke(&app, &who.session, id).await {
        Ok(()) if id == who.session.record.id => {
            ([(header::SET_COOKIE, auth::clear_cookie(&app))], Redirect::to("/login")).into_response()
        }
        Ok(()) => Redirect::to("/account?done=session").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct NameInput {
    name: String,
}

pub(crate) async fn create_token(State(app): State<App>, who: Team, Form(input): Form<NameInput>) -> Response {
    match accounts::create_my_token(&app, &who.actor, &input.name).await {
        Ok(token) => account_page(&app, &who, Some(token), None).await,
        Err(err) => WebError::from(err).into_response(),
    }
}

pub(crate) async fn revoke_token(State(app): State<App>, who: Team, Path(id): Path<i64>) -> Response {
    match accounts::revoke_my_token(&app, &who.actor, id).await {
        Ok(()) => Redirect::to("/account?done=token-revoke").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

// ---- Team administration -------------------------------------------------------------

struct ProductRow {
    id: i64,
    name: String,
    responders: Vec<String>,
    repository_url: String,
    ecosystem: String,
    purl: String,
    release_lines: String,
}

/// An account on the team page.
struct UserRow {
    email: String,
    role: &'static str,
    /// active, disabled or deleted.
    status: &'static str,
    /// The signed-in admin's own account.
    is_self: bool,
    /// An admin requires the account to sign in with a passkey.
    passkey_required: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    layout: Layout,
    /// Whether single sign-on is configured (the unlink form).
    sso: bool,
    users: Vec<UserRow>,
    products: Vec<ProductRow>,
    error: Option<String>,
}

async fn admin_page(
    app: &App,
    who: &Team,
    status: StatusCode,
    error: Option<String>,
    flash: Option<String>,
) -> Response {
    let mut layout = Layout::team(app, "Team", "admin", who);
    layout.flashes = flash.into_iter().collect();
    let users = match accounts::list_users(app, &who.actor).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    let products = match accounts::products(app, &who.actor).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    let passkey_required = match embargo_app::passkeys::required_accounts(app, &who.actor).await {
        Ok(list) => list,
        Err(err) => return WebError::from(err).into_response(),
    };
    page(
        status,
        &AdminPage {
            layout,
            sso: app.config.oidc.enabled(),
            users: users
                .into_iter()
                .map(|u| UserRow {
                    status: if u.deleted {
                        "deleted"
                    } else if u.disabled {
                        "disabled"
                    } else {
                        "active"
                    },
                    is_self: u.id == who.session.user_id(),
                    passkey_required: passkey_required.contains(&u.id),
                    role: u.role.as_str(),
                    email: u.email,
                })
                .collect(),
            products: products
                .into_iter()
                .map(|p| ProductRow {
                    id: p.product.id,
                    responders: p.responders,
                    repository_url: p.product.repository_url,
                    ecosystem: p.product.ecosystem,
                    purl: p.product.purl,
                    release_lines: p.product.release_lines.join(", "),
                    name: p.product.name,
                })
                .collect(),
            error,
        },
    )
}

pub(crate) async fn admin(State(app): State<App>, who: Team, Query(flash): Query<FlashParams>) -> Response {
    let message = match flash.done.as_str() {
        "user" => Some("Account created. They sign in with the password and set up TOTP.".to_owned()),
        "product" => Some("Product added.".to_owned()),
        "responder" => Some("Responder added.".to_owned()),
        "product-details" => Some("Product details saved.".to_owned()),
        other => admin_flash(other),
    };
    admin_page(&app, &who, StatusCode::OK, None, message).await
}

#[derive(Deserialize)]
pub(crate) struct UserInput {
    email: String,
    role: String,
    password: String,
}

/// The answer of an action on the team page: back to it with a message, or bad input as the
/// same form with the field marked and the input kept (`refill`).
pub(crate) async fn admin_result(_app: &App, _who: &Team, result: Result<(), AppError>, done: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/admin?done={done}")).into_response(),
        Err(err @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let message = match &err {
                AppError::Invalid(m) | AppError::Conflict(m) => m.to_lowercase(),
                _ => String::new(),
            };
            let field = match done {
                "user" if message.contains("password") => Some("password"),
                "user" if message.contains("role") => Some("role"),
                "user" | "responder" => Some("email"),
                "product" | "renamed" => Some("name"),
                "password" => Some("password"),
                _ => None,
            };
            // As before, a conflict (the last admin, a product still in use) is a 422 here.
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

pub(crate) async fn create_user(State(app): State<App>, who: Team, Form(input): Form<UserInput>) -> Response {
    let role = Role::parse(&input.role).unwrap_or(Role::Responder);
    let result = accounts::create_user(&app, &who.actor, &input.email, role, Some(&input.password)).await.map(|_| ());
    admin_result(&app, &who, result, "user").await
}

pub(crate) async fn create_product(State(app): State<App>, who: Team, Form(input): Form<NameInput>) -> Response {
    let result = accounts::create_product(&app, &who.actor, &input.name).await.map(|_| ());
    admin_result(&app, &who, result, "product").await
}

pub(crate) async fn add_responder(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<EmailInput>,
) -> Response {
    let result = accounts::add_product_responder(&app, &who.actor, id, &input.email).await;
    admin_result(&app, &who, result, "responder").await
}

// ---- Offboarding messages and recovery codes (the handlers are in `access`) ----------

/// Messages on the team page after one of these actions.
pub(crate) fn admin_flash(done: &str) -> Option<String> {
    Some(
        match done {
            "disabled" => "Account disabled: its sessions and API tokens no longer work.",
            "enabled" => "Account enabled. It signs in again with its password; old sessions and tokens stay revoked.",
            "deleted" => {
                "Account deleted: its address, password, second factor and access are gone; what it did stays on the record."
            }
            "password" => "Password set; the account's sessions were ended. Hand the new password over safely.",
            "oidc-unlinked" => "Single sign-on identity unlinked: the account no longer signs in through the provider.",
            "totp" => "Second factor removed; the account sets up TOTP again at its next sign-in.",
            "responder-removed" => "Responder removed from the product.",
            "renamed" => "Product renamed.",
            "product-deleted" => "Product deleted.",
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    next: &'static str,
}

/// The page that shows a new set of recovery codes, once.
pub(crate) fn recovery_codes_page(app: &App, codes: Vec<String>, next: &'static str) -> Response {
    let mut response = page(
        StatusCode::OK,
        &RecoveryCodesPage { layout: Layout::public(app, "Your recovery codes", ""), codes, next },
    );
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}
