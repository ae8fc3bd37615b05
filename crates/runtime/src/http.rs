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

/// Why the HTTP side could not be served.
#[derive(Debug, thiserror::Error)]
pub enum HttpServeError {
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("http tls: cannot read {path:?}: {reason}")]
    Pem {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("http tls: {0}")]
    Tls(String),
}

/// How long a client gets to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the `ops` routes (`/metrics`, `/healthz`, `/livez`) and the service's `data` routes
/// on `listener`, following the same `MEND_TLS_*` settings as the service's gRPC port:
///
/// - without an identity: plain HTTP, every route;
/// - with an identity: TLS only (plain text is refused on every route);
/// - with a CA as well (mTLS): a client certificate not signed by the CA fails the
///   handshake, and a connection without a client certificate reaches only the ops routes
///   (kubelet probes and scrapers present none); data routes need a certificate.
pub async fn serve_http_with_tls(
    listener: TcpListener,
    ops: Router,
    data: Router,
    tls: &crate::config::TlsConfig,
    shutdown: CancellationToken,
) -> Result<(), HttpServeError> {
    let Some(identity) = &tls.identity else {
        return Ok(serve_http(listener, ops.merge(data), shutdown).await?);
    };
    let config = server_tls_config(identity, tls.ca.as_deref())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let needs_cert = tls.ca.is_some();
    let everything = ops.clone().merge(data);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, mtls = needs_cert, "https listening");
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "http accept failed");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let acceptor = acceptor.clone();
        let (ops, everything) = (ops.clone(), everything.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "refused an http connection: tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "refused an http connection: tls handshake timed out");
                    return;
                }
            };
            let has_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|certs| !certs.is_empty());
            let router = if needs_cert && !has_cert {
                ops
            } else {
                everything
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "https connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn server_tls_config(
    identity: &crate::config::TlsIdentity,
    ca: Option<&std::path::Path>,
) -> Result<tokio_rustls::rustls::ServerConfig, HttpServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;

    let pem_error =
        |path: &std::path::Path, error: rustls_pki_types::pem::Error| HttpServeError::Pem {
            path: path.to_owned(),
            reason: error.to_string(),
        };
    let chain = CertificateDer::pem_file_iter(&identity.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| pem_error(&identity.cert, error))?;
    let key = PrivateKeyDer::from_pem_file(&identity.key)
        .map_err(|error| pem_error(&identity.key, error))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(std::sync::Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| HttpServeError::Tls(error.to_string()))?;
    let builder = match ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|error| pem_error(ca, error))? {
                roots
                    .add(cert.map_err(|error| pem_error(ca, error))?)
                    .map_err(|error| HttpServeError::Tls(error.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            // A connection without a certificate gets the ops routes only (see above).
            .allow_unauthenticated()
            .build()
            .map_err(|error| HttpServeError::Tls(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| HttpServeError::Tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// [`serve_http_with_tls`] for a service whose HTTP port has only the ops routes.
pub async fn serve_ops_with_tls(
    listener: TcpListener,
    ops: Router,
    tls: &crate::config::TlsConfig,
    shutdown: CancellationToken,
) -> Result<(), HttpServeError> {
    serve_http_with_tls(listener, ops, Router::new(), tls, shutdown).await
}
