//! `grpc.health.v1` over a real tonic client and a port-0 server, through shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mend_runtime::config::{ServiceAddr, TlsConfig};
use mend_runtime::grpc::{grpc_client_endpoint, grpc_server_builder};
use mend_runtime::{Health, Shutdown};
use mend_testkit::{Patience, eventually};
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const REGISTRY: &str = "mend.registry.v1.Registry";

async fn status(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<ServingStatus, tonic::Code> {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|response| response.into_inner().status())
        .map_err(|status| status.code())
}

/// How long a health change may take to show: 2 s, looking every 10 ms.
const SOON: Patience = Patience::seconds(2).polling_every(Duration::from_millis(10));

#[tokio::test]
async fn services_report_serving_and_everything_fails_at_shutdown() {
    let health = Health::new();
    let registry = health.reporter(REGISTRY).await;
    let shutdown = Shutdown::new();
    tokio::spawn(health.clone().not_serving_after(shutdown.token()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_server = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        grpc_server_builder(&TlsConfig::default())
            .unwrap()
            .add_service(health.service())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                stop_server.clone().cancelled_owned(),
            ),
    );

    let channel = grpc_client_endpoint(&ServiceAddr::from(addr), &TlsConfig::default())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);

    assert_eq!(status(&mut client, "").await, Ok(ServingStatus::Serving));
    assert_eq!(
        status(&mut client, REGISTRY).await,
        Ok(ServingStatus::NotServing),
        "new services start not serving"
    );
    assert_eq!(
        status(&mut client, "no.such.Service").await,
        Err(tonic::Code::NotFound)
    );

    registry.set_serving().await;
    assert_eq!(
        status(&mut client, REGISTRY).await,
        Ok(ServingStatus::Serving)
    );

    shutdown.trigger();
    eventually(SOON, "the server reported not serving", || {
        let mut client = client.clone();
        async move { status(&mut client, "").await == Ok(ServingStatus::NotServing) }
    })
    .await;
    assert_eq!(
        status(&mut client, REGISTRY).await,
        Ok(ServingStatus::NotServing)
    );

    registry.set_serving().await;
    assert_eq!(
        status(&mut client, REGISTRY).await,
        Ok(ServingStatus::NotServing),
        "a late set_serving cannot re-admit traffic during shutdown"
    );

    stop_server.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
