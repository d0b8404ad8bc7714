//! Embargo's HTTP layer: the only crate that knows axum and HTTP.
//!
//! [`router`] is the table of contents of every route. Handlers parse their input, call one
//! `embargo-app` function and render; they never touch the store directly.
//!
//! Architecture invariants:
//! * Logs carry the method, the matched route *template*, the status and the request ID,
//!   never the raw URI (it may hold a secret link token) and never a body.
//! * Every response carries a strict Content-Security-Policy ([`CSP`]), `X-Frame-Options:
//!   DENY`, `Referrer-Policy: no-referrer` and `X-Content-Type-Options: nosniff`; pages use no
//!   inline script or style.
#![forbid(unsafe_code)]

// Modules in layers; each uses only modules of lower layers (a test checks there is no
// import circle; ARCHITECTURE.md describes the layers):
// 1. `error` (WebError), 2. `extract` (extractors, ReportPath), 3. `auth` (who is asking),
// 4. `render` (layout, pages), 5. `error_page` (the error middleware) and `csrf` (the
// cross-origin check), 6. the handlers,
// 7. this file, the router.
mod error;
mod extract;

mod auth;

mod render;

mod error_page;

mod refill;

mod csrf;

mod access;
mod advisories_public;
mod advisories_team;
mod affected_form;
mod api;
mod dashboard;
mod evaluation;
mod fixes;
mod git_http;
mod metrics_endpoint;
mod originals;
mod partner_portal;
mod partners;
mod passkeys;
mod public;
mod runbook;
mod setup;
mod sso;
mod team;

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use embargo_app::App;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use metrics_endpoint::install_metrics_recorder;

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere;
/// violations are reported to `/csp-report` (counted, never logged with content).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'; report-uri /csp-report";

/// `Strict-Transport-Security`, sent when the public URL is HTTPS.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The JSON API's own documentation (for tests that check it is complete).
pub const OPENAPI: &str = api::OPENAPI;

/// Builds the router with every route and middleware.
pub fn router(app: App) -> Router {
    // Nobody stops its streams: `serve` does (the sender is gone, the value stays `false`).
    router_stopping(app, tokio::sync::watch::channel(false).1)
}

/// [`router`], whose long-lived streams (the runbook's live progress) end when `stop`
/// becomes `true`, so that a graceful shutdown does not wait for them.
fn router_stopping(app: App, stop: tokio::sync::watch::Receiver<bool>) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    // Forms with files may be as large as the largest accepted message (plus form fields).
    let upload_limit =
        usize::try_from(app.config.limits.max_message_bytes).unwrap_or(usize::MAX).saturating_add(1024 * 1024);
    let hsts = app.config.https();
    let pages: Router = Router::new()
        // Operations.
        .route("/healthz", get(healthz))
        // Metrics: 404 here unless `metrics_token` is set (see `metrics_router`).
        .route("/metrics", get(metrics_endpoint::public))
        .route("/csp-report", post(csp_report))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        // First start: the one-time link that creates the first admin.
        .route("/setup/{token}", get(setup::show_form).post(setup::create_admin))
        // Public: the policy, the instance's OpenPGP key, security.txt.
        .route("/", get(public::home))
        .route("/policy", get(public::policy))
        .route("/.well-known/security.asc", get(openpgp_key))
        .route("/.well-known/security.txt", get(security_txt))
        // Public advisories: only publications, never a draft (`advisories_public`); ETags,
        // 304 and read-only CORS on the documents and feeds.
        .merge(public_advisories())
        // Reporters: the form and the status page behind the private link.
        .route(
            "/report",
            get(public::report_form).post(public::submit_report).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/status/{token}", get(public::status))
        .route("/status/{token}/reply", post(public::status_reply).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/status/{token}/rotate", post(public::status_rotate))
        // Team sign-in.
        .route("/login", get(team::login_form).post(team::login))
        .route("/login/totp", get(team::totp_form).post(team::totp))
        .route("/login/totp/qr.svg", get(team::totp_qr))
        .route("/login/totp/passkey/options", post(passkeys::second_factor_options))
        .route("/login/totp/passkey", post(passkeys::second_factor))
        .route("/login/passkey/options", post(passkeys::login_options))
        .route("/login/passkey", post(passkeys::login))
        .route("/login/oidc", post(sso::start))
        .route("/login/oidc/callback", get(sso::callback))
        .route("/logout", post(team::logout))
        // Team app.
        .route("/inbox", get(team::inbox))
        .route("/inbox/bulk", post(team::bulk))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/dashboard.csv", get(dashboard::dashboard_csv))
        .route("/reports/{reference}", get(team::report))
        .route("/reports/{reference}/reply", post(team::reply))
        .route("/reports/{reference}/note", post(team::note))
        .route("/reports/{reference}/transition", post(team::transition))
        .route("/reports/{reference}/split", post(team::split))
        .route("/reports/{reference}/assign", post(team::assign))
        .route("/reports/{reference}/product", post(team::set_product))
        .route("/reports/{reference}/members", post(team::add_member))
        .route("/reports/{reference}/members/remove", post(access::remove_member))
        .route("/reports/{reference}/import-key", post(team::import_key))
        .route("/reports/{reference}/status-link", post(team::status_link))
        .route("/reports/{reference}/attachments/{id}", get(team::attachment))
        .route("/reports/{reference}/messages/{id}/original", get(originals::show))
        .route("/reports/{reference}/messages/{id}/original/download", get(originals::download))
        .route("/reports/{reference}/cvss", post(team::set_cvss))
        .route("/fixes", get(fixes::list))
        .route("/reports/{reference}/fix", get(fixes::show))
        .route("/reports/{reference}/fix/open", post(fixes::open))
        .route("/reports/{reference}/fix/invite", post(fixes::invite))
        .route("/reports/{reference}/fix/line", post(fixes::set_line))
        .route("/reports/{reference}/fix/override", post(fixes::override_ci))
        .route("/reports/{reference}/fix/comments", post(fixes::comment))
        .route("/reports/{reference}/fix/runs/{id}", get(fixes::run))
        .route("/reports/{reference}/fix/runs/{id}/log.txt", get(fixes::run_text))
        .route("/invitations/{token}", get(fixes::invitation).post(fixes::accept))
        .route("/invitations/{token}/oidc", post(sso::accept_fix_invitation))
        .route("/reports/{reference}/disclosure", get(partners::disclosure))
        .route("/reports/{reference}/disclosure/draft", post(partners::draft))
        .route("/reports/{reference}/disclosure/edit", post(partners::edit))
        .route("/reports/{reference}/disclosure/send", post(partners::send))
        .route("/reports/{reference}/disclosure/leaks", post(partners::record_leak))
        .route("/reports/{reference}/disclosure/leaks/decide", post(partners::decide_leak))
        .route("/reports/{reference}/disclosure/embargo", post(partners::embargo))
        .route("/reports/{reference}/runbook", get(runbook::show))
        .route("/reports/{reference}/runbook/plan", post(runbook::make))
        .route("/reports/{reference}/runbook/approve", post(runbook::approve))
        .route("/reports/{reference}/runbook/message", post(runbook::message))
        .route("/reports/{reference}/runbook/rehearse", post(runbook::rehearse))
        .route("/reports/{reference}/runbook/step", post(runbook::step))
        .route("/reports/{reference}/runbook/resume", post(runbook::resume))
        .route("/reports/{reference}/runbook/cancel", post(runbook::cancel))
        .route("/disclosure", get(runbook::list))
        .route("/disclosure/{plan}", get(runbook::plan_page))
        .route("/disclosure/{plan}/events", get(runbook::events))
        .route("/reports/{reference}/advisory", post(advisories_team::create_from_report))
        .route("/team/advisories", get(advisories_team::list).post(advisories_team::create))
        .route("/team/advisories/{id}", get(advisories_team::show).post(advisories_team::save))
        .route("/team/advisories/{id}/export/{format}", get(advisories_team::export))
        .route("/team/advisories/{id}/withdraw", post(advisories_team::withdraw))
        .route("/team/advisories/{id}/{step}", post(advisories_team::step))
        .route("/reports/{reference}/classification", post(team::set_classification))
        .route("/reports/{reference}/affected", post(team::set_affected))
        .route("/cvss/score", get(evaluation::score))
        .route("/account", get(team::account))
        .route("/account/sessions/{id}/revoke", post(team::revoke_session))
        .route("/account/tokens", post(team::create_token))
        .route("/account/tokens/{id}/revoke", post(team::revoke_token))
        .route("/account/recovery-codes", post(access::new_recovery_codes))
        .route("/account/passkeys/options", post(passkeys::register_options))
        .route("/account/passkeys", post(passkeys::register))
        .route("/account/passkeys/{id}/rename", post(passkeys::rename))
        .route("/account/passkeys/{id}/remove", post(passkeys::remove))
        .route("/account/oidc/link", post(sso::link))
        .route("/admin/users/oidc-unlink", post(sso::unlink))
        .route("/admin", get(team::admin))
        .route("/admin/users", post(team::create_user))
        .route("/admin/products", post(team::create_product))
        .route("/admin/users/disable", post(access::disable_user))
        .route("/admin/users/enable", post(access::enable_user))
        .route("/admin/users/delete", post(access::delete_user))
        .route("/admin/users/password", post(access::reset_password))
        .route("/admin/users/totp", post(access::reset_totp))
        .route("/admin/users/passkey", post(passkeys::set_required))
        .route("/admin/products/{id}/responders", post(team::add_responder))
        .route("/admin/products/{id}/responders/remove", post(access::remove_responder))
        .route("/admin/products/{id}/rename", post(access::rename_product))
        .route("/admin/products/{id}/delete", post(access::delete_product))
        .route("/admin/products/{id}", post(evaluation::update_product))
        .route("/admin/partners", get(partners::admin).post(partners::add))
        .route("/admin/partners/state", post(partners::set_state))
        .route("/admin/partners/update", post(partners::update))
        .route("/admin/partners/contacts", post(partners::add_contact))
        .route("/admin/partners/contacts/remove", post(partners::remove_contact))
        .route("/admin/partners/policies", post(partners::set_policy))
        .route("/admin/calendar", get(evaluation::calendar).post(evaluation::save_calendar))
        .route("/admin/calendar/holidays", post(evaluation::add_holiday))
        .route("/admin/calendar/holidays/{day}/remove", post(evaluation::remove_holiday))
        // Room for a 1 MiB file and the multipart framing: the handler says what is too big.
        .route(
            "/admin/calendar/import",
            post(evaluation::import_holidays).layer(DefaultBodyLimit::max(2 * embargo_app::sla::ICS_MAX_BYTES)),
        )
        .route("/admin/calendar/yearly/remove", post(evaluation::remove_holiday_rule))
        // The partner portal: partner contacts only, each seeing what was shared with them
        // (any other account, and any notice not theirs, is the 404 of an unknown path).
        .route("/partner", get(partner_portal::home))
        .route("/partner/notices/{id}", get(partner_portal::notice))
        .route("/partner/notices/{id}/acknowledge", post(partner_portal::acknowledge))
        .route("/partner/notices/{id}/leak", post(partner_portal::leak))
        .route("/partner/notices/{id}/files/{name}", get(partner_portal::patch_file))
        .route("/partner/notices/{id}/disclosure.ics", get(partner_portal::calendar))
        .route("/partner/organisation", get(partner_portal::organisation))
        .route("/partner/organisation/contacts", post(partner_portal::set_contact))
        .route("/partner/organisation/contacts/remove", post(partner_portal::remove_contact))
        .route("/partner/welcome/{token}", get(partner_portal::welcome).post(partner_portal::accept))
        .route("/partner/welcome/{token}/oidc", post(sso::accept_partner_invitation))
        // JSON API (bearer tokens).
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/reports", get(api::list))
        .route("/api/v1/reports/{reference}", get(api::show))
        .route("/api/v1/reports/{reference}/replies", post(api::reply))
        .route("/api/v1/reports/{reference}/notes", post(api::note))
        .route("/api/v1/reports/{reference}/transitions", post(api::transition))
        .route("/api/v1/reports/{reference}/fix", get(api::fix))
        .route("/api/v1/disclosure/{plan}", get(api::disclosure))
        .fallback(not_found)
        .layer(axum::Extension(runbook::Streams(stop)))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        // Cross-site requests that change state are refused (Sec-Fetch-Site, then Origin,
        // then Referer, against public_url's origin: see `csrf`); the session cookie is also
        // SameSite=Strict.
        .layer(middleware::from_fn_with_state(app.clone(), csrf::protect))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        // Every error, ours or the framework's, as the app's page or the API's JSON; API
        // answers are never cached.
        .layer(middleware::from_fn_with_state(app.clone(), error_page::error_pages))
        .with_state(app.clone());
    // Bad input in a form comes back as the same form, the field marked and the input kept
    // (see `refill`), rendered by the pages above.
    let refill = refill::Refill { app: app.clone(), pages: pages.clone() };
    let router = pages
        .layer(middleware::from_fn_with_state(refill, refill::refill))
        // The fix repositories over git's smart HTTP protocol: no cookies, no forms, their
        // own time limit, their own refusal (see `git_http`).
        .merge(git_http::router().with_state(app))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // The access log sits outside the timeout, so timed-out requests are logged too.
        .layer(middleware::from_fn(access_log))
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
        // Request IDs are ours: a client-chosen one never reaches the logs.
        .layer(middleware::map_request(|mut request: Request| async move {
            request.headers_mut().remove("x-request-id");
            request
        }))
        // Security headers on every response (see the crate docs).
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    if hsts {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        router
    }
}

/// The public advisory routes, behind `advisories_public::documents` (validators, `304`,
/// read-only CORS).
fn public_advisories() -> Router<App> {
    Router::new()
        .route("/advisories", get(advisories_public::index))
        .route("/advisories.atom", get(advisories_public::atom))
        .route("/advisories/osv/all.json", get(advisories_public::osv_all))
        .route("/advisories/{name}", get(advisories_public::advisory))
        .route("/.well-known/csaf/provider-metadata.json", get(advisories_public::provider_metadata))
        .route("/.well-known/csaf/white/embargo-feed-tlp-white.json", get(advisories_public::rolie_feed))
        .route("/.well-known/csaf/white/index.txt", get(advisories_public::index_txt))
        .route("/.well-known/csaf/white/changes.csv", get(advisories_public::changes_csv))
        .route("/.well-known/csaf/white/{year}/{file}", get(advisories_public::csaf_file))
        .layer(middleware::from_fn(advisories_public::documents))
}

/// The router of the metrics listener (`metrics_listen`): `GET /metrics` only, with the
/// same security headers as every response.
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint::private))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .with_state(app)
}

/// Serves `metrics_router(app)` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(app)).with_graceful_shutdown(shutdown).await
}

/// Serves `router(app)` on `listener` until `shutdown` completes, then drains requests
/// (open event streams end within a second).
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_streams, stop) = tokio::sync::watch::channel(false);
    axum::serve(listener, router_stopping(app, stop).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_streams.send(true);
        })
        .await
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand_u64());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// One structured log line and two metrics per request. Only the route template is logged.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!("embargo_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("embargo_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_millis() as u64,
        "http request"
    );
    response
}

async fn healthz(State(app): State<App>) -> Response {
    match app.health().await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "status": "ok", "database": app.backend_name() })),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "unavailable" })))
                .into_response()
        }
    }
}

async fn openpgp_key(State(app): State<App>) -> Response {
    match embargo_app::openpgp::public_key(&app).await {
        Ok(key) => ([(header::CONTENT_TYPE, "application/pgp-keys; charset=utf-8")], key).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot read the OpenPGP key");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn security_txt(State(app): State<App>) -> Response {
    match embargo_app::policy::security_txt(&app).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot build security.txt");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn not_found() -> error::WebError {
    error::WebError::nothing_here()
}

/// Counts CSP violation reports. Their content (which may quote page URLs carrying status
/// tokens) is neither logged nor stored.
async fn csp_report() -> StatusCode {
    metrics::counter!("embargo_csp_violations_total").increment(1);
    CSP_VIOLATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!("content security policy violation reported by a browser");
    StatusCode::NO_CONTENT
}

/// CSP violations reported since start (tests read it through `/metrics`).
static CSP_VIOLATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of CSP violation reports received by this process.
pub fn csp_violations() -> u64 {
    CSP_VIOLATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../assets/app.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../assets/app.js"),
    )
        .into_response()
}
