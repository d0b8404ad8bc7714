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

mod html;
mod metrics_endpoint;
mod setup;

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use embargo_app::App;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use metrics_endpoint::install_metrics_recorder;

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Builds the router with every route and middleware.
pub fn router(app: App) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        // Operations.
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_endpoint::render))
        // First start: the one-time link that creates the first admin.
        .route("/setup/{token}", get(setup::show_form).post(setup::create_admin))
        // Public: the instance's OpenPGP key, for reporters to encrypt to.
        .route("/.well-known/security.asc", get(openpgp_key))
        .route("/.well-known/security.txt", get(security_txt))
        .route("/", get(home))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
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
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .with_state(app)
}

/// Serves `router(app)` on `listener` until `shutdown` completes, then drains requests.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
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

async fn home(State(app): State<App>) -> Response {
    let name = &app.config.organisation.name;
    html::page(
        StatusCode::OK,
        &format!("{name} security"),
        &format!(
            "<h1>{}</h1><p>This is the coordinated vulnerability disclosure service of {}. \
             To report a vulnerability privately, e-mail <a href=\"mailto:{addr}\">{addr}</a>.</p>\
             <p>To encrypt your report, use our <a href=\"/.well-known/security.asc\">OpenPGP key</a> \
             (PGP/MIME or inline). Contact details: <a href=\"/.well-known/security.txt\">security.txt</a>.</p>",
            html::escape(&format!("{name} security")),
            html::escape(name),
            addr = html::escape(&app.config.organisation.security_address),
        ),
    )
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

async fn not_found() -> Response {
    html::page(StatusCode::NOT_FOUND, "Not found", "<h1>Not found</h1><p>There is nothing here.</p>")
}
