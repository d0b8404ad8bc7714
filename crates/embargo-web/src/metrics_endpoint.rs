//! Prometheus metrics at `GET /metrics`, for authorised scrapers only: on the separate
//! metrics listener (`metrics_listen`, loopback by default, see [`crate::metrics_router`]),
//! and on the public listener only to holders of `metrics_token`. Metrics say when reports
//! arrive, so the public listener answers 404 without the token.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::App;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide metrics recorder (once; later calls return the same handle).
pub fn install_metrics_recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
                0.1, 0.25, 0.5, 1.0, 5.0,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests); ours then only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Whether the request may read metrics: without a configured token, only on the metrics
/// listener; with one, wherever it is sent as `Authorization: Bearer <token>`.
fn authorised(app: &App, headers: &HeaderMap, metrics_listener: bool) -> bool {
    let expected = app.config.metrics_token.expose();
    if expected.is_empty() {
        return metrics_listener;
    }
    let Some(sent) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    // Compared as digests, in constant time, so that timing reveals nothing of the token.
    let (a, b) = (Sha256::digest(sent.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/metrics` on the public listener: 404 (as for any unknown path) unless a token is
/// configured, then 401 without it.
pub(crate) async fn public(State(app): State<App>, headers: HeaderMap) -> Response {
    if app.config.metrics_token.is_empty() {
        return crate::error::WebError::request(StatusCode::NOT_FOUND, "There is nothing here.").into_response();
    }
    if !authorised(&app, &headers, false) {
        return unauthorised();
    }
    render(&app).await
}

/// `/metrics` on the metrics listener (the token is needed here too when one is set).
pub(crate) async fn private(State(app): State<App>, headers: HeaderMap) -> Response {
    if !authorised(&app, &headers, true) {
        return unauthorised();
    }
    render(&app).await
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "send Authorization: Bearer <metrics_token>\n")
        .into_response()
}

async fn render(app: &App) -> Response {
    let handle = install_metrics_recorder();
    handle.run_upkeep();
    let mut text = handle.render();
    // Gauges read from the database at scrape time: the queue and report states.
    if let Ok(counts) = embargo_app::jobs::queue_counts(app).await {
        text.push_str("# TYPE embargo_jobs gauge\n");
        for (state, n) in counts {
            text.push_str(&format!("embargo_jobs{{state=\"{state}\"}} {n}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")], text).into_response()
}
