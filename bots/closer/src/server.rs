//! The long-running process: the HTTP server (health, readiness, channels' webhooks) around
//! the engine, and `/metrics` on a listener of its own when configured, each started on an
//! already bound listener so that tests can run many on port 0.

use std::future::Future;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use closer_engine::Engine;
use tokio::net::TcpListener;

/// A built, not yet running, Closer server.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

#[derive(Clone)]
struct AppState {
    engine: Engine,
}

impl Application {
    /// Binds `listen` and wires the routes around `engine`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn build(listen: &str, engine: Engine) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("while binding {listen}"))?;
        Ok(Application::with_listener(listener, engine))
    }

    pub fn with_listener(listener: TcpListener, engine: Engine) -> Application {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(AppState { engine });
        Application { listener, router }
    }

    /// Mounts a channel's routes (a webhook) beside Closer's own.
    #[must_use]
    pub fn with_routes(mut self, routes: Router) -> Application {
        self.router = self.router.merge(routes);
        self
    }

    /// The bound port (useful when built on port 0).
    pub fn port(&self) -> u16 {
        bound_port(&self.listener)
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    ///
    /// # Errors
    /// The server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        serve(self.listener, self.router, shutdown, "HTTP").await
    }
}

/// `/metrics` on a listener of its own (`[metrics] listen`): an address only the monitoring
/// network reaches, so that the main server (webhooks, the console) need not expose it.
pub struct MetricsServer {
    listener: TcpListener,
    router: Router,
}

impl MetricsServer {
    /// Binds `listen` for `metrics` (`closer_web::metrics::router`).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn build(listen: &str, metrics: Router) -> anyhow::Result<MetricsServer> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("while binding metrics.listen {listen}"))?;
        Ok(MetricsServer::with_listener(listener, metrics))
    }

    pub fn with_listener(listener: TcpListener, metrics: Router) -> MetricsServer {
        MetricsServer {
            listener,
            router: metrics,
        }
    }

    /// The bound port (useful when built on port 0).
    pub fn port(&self) -> u16 {
        bound_port(&self.listener)
    }

    /// Serves until `shutdown` completes.
    ///
    /// # Errors
    /// The server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        serve(self.listener, self.router, shutdown, "/metrics").await
    }
}

fn bound_port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .map(|address| address.port())
        .unwrap_or(0)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish.
async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    what: &str,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .with_context(|| format!("while serving {what}"))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers too.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
