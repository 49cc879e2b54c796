//! The Prometheus exporter behind the `metrics` facade: installed once per process, rendered
//! on `GET /metrics` by Closer's own server, or on a listener of its own when `[metrics]
//! listen` says so (the binary wires that). With a token configured, a scrape must send it as
//! `Authorization: Bearer`; anything else gets 401.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};

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

/// `GET /metrics` in Prometheus's text format; only for `Authorization: Bearer {token}` when
/// `token` is given.
pub fn router(token: Option<SecretString>) -> Router {
    let handle = install();
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let handle = handle.clone();
            let token = token.clone();
            async move {
                if let Some(token) = &token {
                    if !bearer_matches(&headers, token) {
                        return unauthorized();
                    }
                }
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
                        StatusCode::SERVICE_UNAVAILABLE,
                        "another metrics recorder is installed",
                    )
                        .into_response(),
                }
            }
        }),
    )
}

/// Whether the request carries `Authorization: Bearer {token}`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|presented| crate::auth::same_secret(presented.trim(), token.expose_secret()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"closer metrics\"")],
        "send the metrics token as Authorization: Bearer",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_the_configured_bearer_token_is_accepted() {
        let token = SecretString::from("s3cret-metrics-token".to_owned());
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            headers
        };
        assert!(bearer_matches(&with("Bearer s3cret-metrics-token"), &token));
        assert!(!bearer_matches(&HeaderMap::new(), &token));
        assert!(!bearer_matches(&with("Bearer s3cret"), &token));
        assert!(!bearer_matches(&with("Basic czNjcmV0"), &token));
        assert!(!bearer_matches(&with("Bearer "), &token));
    }
}
