//! The HTTP side of a service: `/metrics`, `/healthz` (readiness) and `/livez`
//! (liveness), on a router services merge their own routes into, served on a listener
//! the caller already bound.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// OpenMetrics text, which Prometheus negotiates and parses.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct OpsState {
    metrics: Metrics,
    readiness: Readiness,
}

/// `/metrics`, `/healthz` and `/livez`. Merge service routes with `Router::merge`.
pub fn ops_router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(readiness_handler))
        .route("/livez", get(liveness_handler))
        .with_state(OpsState { metrics, readiness })
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then finishes in-flight
/// requests and returns.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "http listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics_handler(State(state): State<OpsState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "failed to encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 200 when ready; 503 while starting (naming what it waits for) or shutting down.
async fn readiness_handler(State(state): State<OpsState>) -> Response {
    if state.readiness.is_ready() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let body = if state.readiness.is_shutting_down() {
        "shutting down\n".to_owned()
    } else {
        format!(
            "waiting for: {}\n",
            state.readiness.waiting_for().join(", ")
        )
    };
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

/// Liveness stays 200 through shutdown: restarting a draining pod would lose the drain.
async fn liveness_handler() -> &'static str {
    "alive\n"
}
