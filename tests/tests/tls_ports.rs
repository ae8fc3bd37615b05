#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Mutual TLS on every HTTP port, through the released binaries (`mend-registry`,
//! `mend-server`, `mend-ingest`, `mend-monitor`, `mend-trainer`) started the way an operator
//! starts them: `MEND_TLS_CERT`, `MEND_TLS_KEY` and `MEND_TLS_CA`, over a real `nats-server`.
//! The HTTP ports are bound by each binary's `main`, not by the `run` functions the in-process
//! TLS tests drive, so they are checked here. On each:
//!
//! - a client with a certificate the CA signed is answered (health and metrics);
//! - a client without a certificate reaches only health and metrics, never data (the server's
//!   OIP REST, the monitor's reports);
//! - a client with a certificate another CA signed, a client that trusts another CA, and
//!   plain text are refused.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mend_testkit::https::{HttpRequest, MtlsFixtures, https, plain};
use mend_testkit::{NatsServer, free_addr};
use support::service_binary;
use tokio::process::{Child, Command};
use tokio::time::Instant;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/runtime/tests/fixtures/tls")
}

/// A data route of the service's HTTP port (one a client needs a certificate for), if it has
/// one: the rest serve only health and metrics.
fn data_route(service: &str) -> Option<&'static str> {
    match service {
        "mend-server" => Some("/v2"),
        "mend-monitor" => Some("/reports/churn"),
        _ => None,
    }
}

struct Running {
    name: &'static str,
    http: SocketAddr,
    _child: Child,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_port_of_every_binary_follows_mutual_tls() {
    let nats = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tls = fixtures_dir();
    let shared: Vec<(String, String)> = [
        ("MEND_NATS_URL", nats.url()),
        ("MEND_REGISTRY_ADDR", free_addr().to_string()),
        ("MEND_SERVER_ADDR", free_addr().to_string()),
        ("MEND_INGEST_ADDR", free_addr().to_string()),
        (
            "MEND_TLS_CERT",
            tls.join("server.pem").display().to_string(),
        ),
        ("MEND_TLS_KEY", tls.join("server.key").display().to_string()),
        ("MEND_TLS_CA", tls.join("ca.pem").display().to_string()),
        ("MEND_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut running = Vec::new();
    for name in [
        "mend-registry",
        "mend-server",
        "mend-ingest",
        "mend-monitor",
        "mend-trainer",
    ] {
        let http = free_addr();
        let child = Command::new(service_binary(name))
            .env_clear()
            .envs(shared.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("MEND_HTTP_ADDR", http.to_string())
            .env("MEND_DATA_DIR", dir.path().join(name))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the service starts");
        running.push(Running {
            name,
            http,
            _child: child,
        });
    }

    let fixtures = MtlsFixtures::in_dir(&tls);
    let status = |answer: Result<(u16, String), String>| answer.map(|(status, _)| status);
    for service in &running {
        let (name, addr) = (service.name, service.http);
        // A certified client is answered once the service is up.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = https(addr, &HttpRequest::get("/livez"), fixtures.client()).await;
            if status(answer.clone()) == Ok(200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: a certified client was never answered: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status(https(addr, &HttpRequest::get("/metrics"), fixtures.client()).await),
            Ok(200),
            "{name}: metrics, certified"
        );
        // No certificate: the probes and metrics only.
        for path in ["/livez", "/metrics"] {
            assert_eq!(
                status(https(addr, &HttpRequest::get(path), fixtures.anonymous()).await),
                Ok(200),
                "{name}: {path} without a certificate"
            );
        }
        if let Some(route) = data_route(name) {
            let certified = status(https(addr, &HttpRequest::get(route), fixtures.client()).await);
            let anonymous =
                status(https(addr, &HttpRequest::get(route), fixtures.anonymous()).await);
            assert_eq!(certified, Ok(200), "{name}: {route} with a certificate");
            assert_eq!(anonymous, Ok(404), "{name}: {route} without a certificate");
        }
        // Refused outright: a foreign certificate, a client that does not trust the service's
        // CA, and plain text.
        for (who, answer) in [
            (
                "a certificate another CA signed",
                https(addr, &HttpRequest::get("/livez"), fixtures.foreign()).await,
            ),
            (
                "a client trusting another CA",
                https(addr, &HttpRequest::get("/livez"), fixtures.wrong_ca()).await,
            ),
            ("plain text", plain(addr, &HttpRequest::get("/livez")).await),
        ] {
            assert!(answer.is_err(), "{name}: {who} was answered: {answer:?}");
        }
    }
}
