//! The `mend-registry` binary against a NATS server that requires a token: the token from
//! `MEND_NATS_TOKEN` gets it connected (and a forced retrain reaches the bus); a wrong one
//! stops it at start-up with an error that says why and does not print the token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription, JetStreamBus};
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_testkit::{NatsServer, NatsServerOptions, ServerAuth};
use tokio::process::{Child, Command};

const NATS_TOKEN: &str = "nats-secret-4f9a";
const REGISTRY_TOKEN: &str = "registry-secret-77b1";

fn token_server() -> NatsServer {
    NatsServer::start_with(NatsServerOptions {
        auth: ServerAuth::Token(NATS_TOKEN.into()),
        tls: None,
        ..NatsServerOptions::default()
    })
    .unwrap()
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn registry(nats_url: &str, nats_token: &str, grpc: &str, data_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mend-registry"))
        .env_clear()
        .env("MEND_NATS_URL", nats_url)
        .env("MEND_NATS_TOKEN", nats_token)
        .env("MEND_REGISTRY_TOKEN", REGISTRY_TOKEN)
        .env("MEND_REGISTRY_ADDR", grpc)
        .env("MEND_HTTP_ADDR", "127.0.0.1:0")
        .env("MEND_DATA_DIR", data_dir)
        .env("MEND_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mend-registry starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_nats_token_stops_the_registry_with_a_clear_error() {
    let server = tokio::task::spawn_blocking(token_server).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = registry(&server.url(), "not-the-token", &free_addr(), dir.path());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the registry gives up at once instead of retrying forever")
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("authorization violation"), "{text}");
    assert!(
        !text.contains("not-the-token"),
        "the token was printed: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_nats_token_the_registry_publishes_forced_retrains() {
    let server = tokio::task::spawn_blocking(token_server).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grpc = free_addr();
    let mut child = registry(&server.url(), NATS_TOKEN, &grpc, dir.path());

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap();
    let client = RegistryClient::connect_lazy(&endpoint, Some(REGISTRY_TOKEN.to_owned()));
    let header = pb::RegisterVersionHeader {
        model: "churn".into(),
        schema_hash: "schema-1".into(),
        actor: "test".into(),
        reason: "first".into(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        ..Default::default()
    };
    // Poll until the registry is up (it serves once connected to NATS).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match client
            .register(
                header.clone(),
                bytes::Bytes::from(mend_testkit::artifacts::model_bytes(1)),
            )
            .await
        {
            Ok(_) => break,
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                assert!(child.try_wait().unwrap().is_none(), "the registry exited");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("register failed: {error}"),
        }
    }

    let options = async_nats::ConnectOptions::new().token(NATS_TOKEN.to_owned());
    let bus: Arc<dyn Bus> = Arc::new(
        JetStreamBus::connect_with(&server.url(), options, mend_bus::JetStreamConfig::default())
            .await
            .unwrap(),
    );
    let mut events = EventSubscription::subscribe(bus, ConsumerSpec::new("test", ["retrain.>"]))
        .await
        .unwrap();
    let response = client
        .request_retrain(pb::RequestRetrainRequest {
            model: "churn".into(),
            reason: "through the binary".into(),
            actor: String::new(),
            window: None,
        })
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.envelope.id, response.event_id);
    let Event::RetrainRequested(request) = &delivery.envelope.event else {
        panic!("{:?}", delivery.envelope);
    };
    assert_eq!(request.reason, "through the binary");
    child.kill().await.unwrap();

    // Its log went to a pipe, not a terminal: plain text, no colour codes (issue 17 point 7).
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(" INFO "), "an info line was logged: {log}");
    assert!(log.contains("retrain requested"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
}
