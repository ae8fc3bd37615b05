//! gRPC over mutual TLS from `MEND_TLS_*` paths, with the checked-in test certificates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use mend_runtime::Health;
use mend_runtime::config::vars::{MEND_TLS_CA, MEND_TLS_CERT, MEND_TLS_KEY};
use mend_runtime::config::{MendConfig, ServiceAddr, TlsConfig, TlsIdentity};
use mend_runtime::grpc::{grpc_client_endpoint, grpc_server_builder};
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_owned()
}

#[tokio::test]
async fn mutual_tls_admits_a_client_with_a_certificate_and_refuses_others() {
    let server_config = MendConfig::load(
        [
            (MEND_TLS_CERT, path("server.pem")),
            (MEND_TLS_KEY, path("server.key")),
            (MEND_TLS_CA, path("ca.pem")),
        ]
        .into_iter()
        .collect(),
    )
    .unwrap();
    assert!(server_config.tls.server_enabled());

    let health = Health::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ServiceAddr::from(listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        grpc_server_builder(&server_config.tls)
            .unwrap()
            .add_service(health.service())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                stop.clone().cancelled_owned(),
            ),
    );

    let client_tls = TlsConfig {
        identity: Some(TlsIdentity {
            cert: fixture("client.pem"),
            key: fixture("client.key"),
        }),
        ca: Some(fixture("ca.pem")),
    };
    let endpoint = grpc_client_endpoint(&addr, &client_tls).unwrap();
    assert!(endpoint.uri().to_string().starts_with("https://127.0.0.1:"));
    let mut client = HealthClient::new(endpoint.connect().await.unwrap());
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);

    // Trusts the server but has no client certificate: the handshake is refused.
    let anonymous = TlsConfig {
        identity: None,
        ca: Some(fixture("ca.pem")),
    };
    let refused = match grpc_client_endpoint(&addr, &anonymous)
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(
        refused,
        "mTLS server accepted a client without a certificate"
    );

    // Plain text against a TLS port fails too.
    let plain = grpc_client_endpoint(&addr, &TlsConfig::default()).unwrap();
    let refused = match plain.connect().await {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "TLS server answered plain text");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn a_key_that_is_not_pem_fails_at_setup_not_at_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key").unwrap();
    let tls = TlsConfig {
        identity: Some(TlsIdentity {
            cert: fixture("server.pem"),
            key: garbage,
        }),
        ca: None,
    };
    assert!(grpc_server_builder(&tls).is_err());
}
