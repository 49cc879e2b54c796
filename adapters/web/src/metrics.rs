//! The Prometheus exporter behind the `metrics` facade: installed once per process, rendered
//! on `GET /metrics` by Closer's own server (no second listener).

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for latencies in seconds: from a millisecond (retrieval) to a minute (a paced reply
/// under a burst).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the exporter as the global recorder, once; later calls return the same handle.
/// `None` when another recorder was installed first (then `/metrics` says so).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .map(|builder| builder.install_recorder());
            match builder {
                Ok(Ok(handle)) => {
                    // Histograms collect samples until upkeep folds them in; without a scraper
                    // they would grow, so a thread folds them every few seconds.
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".to_owned())
                        .spawn(move || loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        });
                    if let Err(error) = spawned {
                        tracing::warn!(%error, "cannot start the metrics upkeep thread");
                    }
                    Some(handle)
                }
                Ok(Err(error)) | Err(error) => {
                    tracing::warn!(%error, "the Prometheus exporter is not installed");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics` in Prometheus's text format.
pub fn router() -> Router {
    let handle = install();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                match handle {
                    Some(handle) => (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        handle.render(),
                    )
                        .into_response(),
                    None => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "another metrics recorder is installed",
                    )
                        .into_response(),
                }
            }
        }),
    )
}
