//! The HTTP port under `MEND_TLS_*`, with a real TLS client over loopback: plain text is
//! refused on every route, a client certificate from another CA fails the handshake, a
//! connection without a certificate reaches the ops routes only, and a certificate from the
//! CA reaches everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::routing::get;
use mend_runtime::config::{TlsConfig, TlsIdentity};
use mend_runtime::http::{ops_router, serve_http_with_tls};
use mend_runtime::{Metrics, Readiness};
use mend_testkit::https::{ClientTls, HttpRequest, https, plain};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn identity(name: &str) -> TlsIdentity {
    TlsIdentity {
        cert: fixture(&format!("{name}.pem")),
        key: fixture(&format!("{name}.key")),
    }
}

async fn serve(tls: TlsConfig) -> (SocketAddr, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let readiness = Readiness::new();
    readiness.gate("test").open();
    let ops = ops_router(Metrics::new(), readiness);
    let data = Router::new().route("/v2/models/m/infer", get(|| async { "prediction\n" }));
    let token = stop.clone();
    tokio::spawn(async move {
        serve_http_with_tls(listener, ops, data, &tls, token)
            .await
            .unwrap();
    });
    (addr, stop)
}

async fn https_get(
    addr: SocketAddr,
    path: &str,
    trust: &str,
    client: Option<&str>,
) -> Result<u16, String> {
    let trust = fixture(trust);
    let identity = client.map(|name| {
        (
            fixture(&format!("{name}.pem")),
            fixture(&format!("{name}.key")),
        )
    });
    let tls = ClientTls {
        trust: &trust,
        identity: identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path())),
    };
    https(addr, &HttpRequest::get(path), tls)
        .await
        .map(|(status, _)| status)
}

async fn plain_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    plain(addr, &HttpRequest::get(path))
        .await
        .map(|(status, _)| status)
}

#[tokio::test]
async fn mutual_tls_guards_every_data_route_and_leaves_ops_to_probes() {
    let (addr, stop) = serve(TlsConfig {
        identity: Some(identity("server")),
        ca: Some(fixture("ca.pem")),
    })
    .await;
    let data = "/v2/models/m/infer";

    assert_eq!(
        https_get(addr, data, "ca.pem", Some("client")).await,
        Ok(200)
    );
    assert_eq!(
        https_get(addr, "/healthz", "ca.pem", Some("client")).await,
        Ok(200)
    );

    // No client certificate: the probes' routes answer, the data routes do not exist.
    assert_eq!(https_get(addr, "/healthz", "ca.pem", None).await, Ok(200));
    assert_eq!(https_get(addr, "/metrics", "ca.pem", None).await, Ok(200));
    assert_eq!(https_get(addr, data, "ca.pem", None).await, Ok(404));

    // A certificate from another CA: no route at all.
    for path in [data, "/healthz"] {
        let refused = https_get(addr, path, "ca.pem", Some("other-client")).await;
        assert!(refused.is_err(), "{path}: {refused:?}");
    }

    // Plain text: nothing answers in HTTP.
    for path in [data, "/healthz"] {
        let plain = plain_get(addr, path).await;
        assert!(plain.is_err(), "{path} answered plain text: {plain:?}");
    }
    stop.cancel();
}

#[tokio::test]
async fn tls_without_a_ca_serves_every_route_over_tls_only() {
    let (addr, stop) = serve(TlsConfig {
        identity: Some(identity("server")),
        ca: None,
    })
    .await;
    assert_eq!(
        https_get(addr, "/v2/models/m/infer", "ca.pem", None).await,
        Ok(200)
    );
    let plain = plain_get(addr, "/v2/models/m/infer").await;
    assert!(plain.is_err(), "answered plain text: {plain:?}");
    // A client that trusts another CA does not trust this server.
    assert!(
        https_get(addr, "/healthz", "other-ca.pem", None)
            .await
            .is_err()
    );
    stop.cancel();
}

#[tokio::test]
async fn without_tls_every_route_is_plain_http() {
    let (addr, stop) = serve(TlsConfig::default()).await;
    assert_eq!(plain_get(addr, "/v2/models/m/infer").await, Ok(200));
    assert_eq!(plain_get(addr, "/healthz").await, Ok(200));
    stop.cancel();
}
