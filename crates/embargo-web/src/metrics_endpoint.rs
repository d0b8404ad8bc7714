//! Prometheus metrics at `GET /metrics`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use embargo_app::App;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

pub(crate) async fn render(State(app): State<App>) -> Response {
    let handle = install_metrics_recorder();
    handle.run_upkeep();
    let mut text = handle.render();
    // Gauges read from the database at scrape time: the queue and report states.
    if let Ok(counts) = embargo_app::jobs::queue_counts(&app).await {
        text.push_str("# TYPE embargo_jobs gauge\n");
        for (state, n) in counts {
            text.push_str(&format!("embargo_jobs{{state=\"{state}\"}} {n}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
