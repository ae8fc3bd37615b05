//! `--health-check`'s probe ([`mend_runtime::probe::health_check`]) against a real ops port
//! served in-process, plain and under (mutual) TLS: healthy only on a 200 from `/healthz`,
//! and every other outcome says why in one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use mend_runtime::config::{Env, TlsConfig, TlsIdentity};
use mend_runtime::http::{ops_router, serve_ops_with_tls};
use mend_runtime::probe::health_check;
use mend_runtime::{MendConfig, Metrics, Readiness};
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Serves the ops routes on `bind` (`127.0.0.1:0`, `0.0.0.0:0`) under `tls`; the gate named
/// `waiting` stays closed when given.
async fn serve(
    bind: &str,
    tls: TlsConfig,
    waiting: Option<&str>,
) -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let readiness = Readiness::new();
    if let Some(name) = waiting {
        readiness.gate(name);
    }
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        serve_ops_with_tls(listener, ops_router(Metrics::new(), readiness), &tls, token)
            .await
            .unwrap();
    });
    (addr, stop)
}

fn server_tls(ca: bool) -> TlsConfig {
    TlsConfig {
        identity: Some(TlsIdentity {
            cert: fixture("server.pem"),
            key: fixture("server.key"),
        }),
        ca: ca.then(|| fixture("ca.pem")),
    }
}

/// Runs the probe, as `mend-x --health-check` would, with these variables.
async fn probe(vars: Vec<(&'static str, String)>) -> Result<String, String> {
    let env: Env = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = MendConfig::load(env).unwrap();
    tokio::task::spawn_blocking(move || health_check(&config))
        .await
        .unwrap()
}

fn tls_vars(identity: &str, http: String) -> Vec<(&'static str, String)> {
    vec![
        ("MEND_HTTP_ADDR", http),
        (
            "MEND_TLS_CERT",
            fixture(&format!("{identity}.pem")).display().to_string(),
        ),
        (
            "MEND_TLS_KEY",
            fixture(&format!("{identity}.key")).display().to_string(),
        ),
        ("MEND_TLS_CA", fixture("ca.pem").display().to_string()),
    ]
}

#[tokio::test]
async fn a_ready_port_is_healthy_and_a_starting_one_says_what_it_waits_for() {
    let (ready, stop_ready) = serve("127.0.0.1:0", TlsConfig::default(), None).await;
    let line = probe(vec![("MEND_HTTP_ADDR", ready.to_string())])
        .await
        .unwrap();
    assert_eq!(
        line,
        format!("ready: GET http://{ready}/healthz answered 200")
    );

    let (starting, stop_starting) =
        serve("127.0.0.1:0", TlsConfig::default(), Some("registry")).await;
    let why = probe(vec![("MEND_HTTP_ADDR", starting.to_string())])
        .await
        .unwrap_err();
    assert_eq!(
        why,
        format!("not ready: GET http://{starting}/healthz answered 503: waiting for: registry")
    );
    stop_ready.cancel();
    stop_starting.cancel();
}

#[tokio::test]
async fn a_service_bound_to_every_interface_is_probed_on_loopback() {
    let (addr, stop) = serve("0.0.0.0:0", TlsConfig::default(), None).await;
    let line = probe(vec![("MEND_HTTP_ADDR", format!("0.0.0.0:{}", addr.port()))])
        .await
        .unwrap();
    assert!(
        line.contains(&format!("http://127.0.0.1:{}/healthz", addr.port())),
        "{line}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_and_named() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let why = probe(vec![("MEND_HTTP_ADDR", closed.to_string())])
        .await
        .unwrap_err();
    assert!(why.starts_with("not ready: "), "{why}");
    assert!(why.contains(&format!("MEND_HTTP_ADDR {closed}")), "{why}");
    assert!(why.contains("cannot connect"), "{why}");
    assert!(why.contains("plain HTTP"), "{why}");
}

#[tokio::test]
async fn under_mutual_tls_the_probe_speaks_tls_without_a_client_certificate() {
    for ca in [true, false] {
        let (addr, stop) = serve("127.0.0.1:0", server_tls(ca), None).await;
        let line = probe(tls_vars("server", addr.to_string())).await.unwrap();
        assert_eq!(
            line,
            format!("ready: GET https://{addr}/healthz answered 200"),
            "ca: {ca}"
        );
        stop.cancel();
    }
    // Readiness is reported over TLS too.
    let (addr, stop) = serve("127.0.0.1:0", server_tls(true), Some("server")).await;
    let why = probe(tls_vars("server", addr.to_string()))
        .await
        .unwrap_err();
    assert!(why.contains("answered 503: waiting for: server"), "{why}");
    stop.cancel();
}

#[tokio::test]
async fn the_probe_trusts_only_the_services_own_certificate_and_never_falls_back_to_plain() {
    // A port presenting another certificate than MEND_TLS_CERT (signed by the same CA).
    let (addr, stop) = serve("127.0.0.1:0", server_tls(true), None).await;
    let why = probe(tls_vars("client", addr.to_string()))
        .await
        .unwrap_err();
    assert!(
        why.contains("certificate other than the one MEND_TLS_CERT names"),
        "{why}"
    );
    assert!(why.contains("MEND_TLS_CERT is set"), "{why}");
    stop.cancel();

    // A plain port while MEND_TLS_CERT is set: the handshake fails, nothing is sent in clear.
    let (addr, stop) = serve("127.0.0.1:0", TlsConfig::default(), None).await;
    let why = probe(tls_vars("server", addr.to_string()))
        .await
        .unwrap_err();
    assert!(why.contains(&format!("https://{addr}/healthz")), "{why}");
    assert!(why.contains("tls"), "{why}");
    stop.cancel();
}
