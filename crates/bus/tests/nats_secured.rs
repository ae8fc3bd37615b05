//! Secured NATS, as a deployment configures it: `MEND_NATS_*` → MendConfig →
//! `mend_runtime::nats::connect_options` → `JetStreamBus::connect_with`, against a real
//! `nats-server` that requires a token, a user and password, or TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::within;
use mend_bus::events::RetrainRequested;
use mend_bus::subjects::EVENTS_STREAM;
use mend_bus::{BusError, Envelope, JetStreamBus, JetStreamConfig, ModelName, publish_event};
use mend_runtime::MendConfig;
use mend_testkit::{NatsServer, NatsServerOptions, ServerAuth, ServerTls};

const TOKEN: &str = "s3cret-nats-token";

async fn start(options: NatsServerOptions) -> NatsServer {
    tokio::task::spawn_blocking(move || NatsServer::start_with(options))
        .await
        .unwrap()
        .unwrap()
}

/// Connects the way every service main does, from variables only.
async fn connect(vars: &[(&str, &str)]) -> Result<JetStreamBus, BusError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = MendConfig::from_map(&vars).unwrap();
    let nats = config.nats.as_ref().expect("MEND_NATS_URL is set");
    let options = mend_runtime::nats::connect_options(nats).await.unwrap();
    JetStreamBus::connect_with(
        &nats.url,
        options,
        JetStreamConfig {
            replicas: nats.replicas,
            ..JetStreamConfig::default()
        },
    )
    .await
}

/// A publish acknowledged by the events stream: JetStream really works on this connection.
async fn assert_jetstream_works(bus: &JetStreamBus) {
    let envelope = Envelope::new(
        ModelName::new("churn").unwrap(),
        RetrainRequested {
            reason: "auth test".into(),
            window: None,
            requested_by: None,
        },
    );
    let receipt = publish_event(bus, &envelope).await.unwrap();
    assert_eq!(receipt.stream, EVENTS_STREAM);
    assert!(receipt.sequence >= 1);
}

fn refused(result: Result<JetStreamBus, BusError>) -> String {
    let error = result.expect_err("the server should refuse this connection");
    assert!(matches!(error, BusError::Connect { .. }), "{error:?}");
    error.to_string()
}

#[tokio::test]
async fn a_token_server_admits_the_right_token_and_refuses_others() {
    within(60, async {
        let server = start(NatsServerOptions {
            auth: ServerAuth::Token(TOKEN.into()),
            tls: None,
            ..NatsServerOptions::default()
        })
        .await;
        let url = server.url();

        let bus = connect(&[("MEND_NATS_URL", &url), ("MEND_NATS_TOKEN", TOKEN)])
            .await
            .unwrap();
        assert_jetstream_works(&bus).await;
        let info = bus.jetstream().get_stream(EVENTS_STREAM).await.unwrap();
        assert_eq!(
            info.cached_info().config.num_replicas,
            1,
            "MEND_NATS_REPLICAS defaults to 1"
        );

        for vars in [
            vec![("MEND_NATS_URL", url.as_str())],
            vec![
                ("MEND_NATS_URL", url.as_str()),
                ("MEND_NATS_TOKEN", "wrong-token"),
            ],
        ] {
            let message = refused(connect(&vars).await);
            assert!(message.contains("authorization violation"), "{message}");
            assert!(message.contains("token"), "says what to check: {message}");
            assert!(
                !message.contains(TOKEN),
                "never prints the token: {message}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_user_password_server_admits_its_user_only() {
    within(60, async {
        let server = start(NatsServerOptions {
            auth: ServerAuth::UserPassword {
                user: "mend".into(),
                password: "pa55word".into(),
            },
            tls: None,
            ..NatsServerOptions::default()
        })
        .await;
        let url = server.url();
        let bus = connect(&[
            ("MEND_NATS_URL", &url),
            ("MEND_NATS_USER", "mend"),
            ("MEND_NATS_PASSWORD", "pa55word"),
        ])
        .await
        .unwrap();
        assert_jetstream_works(&bus).await;

        let message = refused(
            connect(&[
                ("MEND_NATS_URL", &url),
                ("MEND_NATS_USER", "mend"),
                ("MEND_NATS_PASSWORD", "guess"),
            ])
            .await,
        );
        assert!(message.contains("authorization violation"), "{message}");
        assert!(!message.contains("guess"), "{message}");
    })
    .await;
}

#[tokio::test]
async fn an_nkey_server_admits_the_seed_of_its_user_only() {
    within(60, async {
        let user = nkeys::KeyPair::new_user();
        let server = start(NatsServerOptions {
            auth: ServerAuth::Nkey(user.public_key()),
            tls: None,
            ..NatsServerOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let seed_file = dir.path().join("user.nk");
        std::fs::write(&seed_file, format!("{}\n", user.seed().unwrap())).unwrap();
        let other = nkeys::KeyPair::new_user();
        let other_file = dir.path().join("other.nk");
        std::fs::write(&other_file, other.seed().unwrap()).unwrap();
        let url = server.url();

        let bus = connect(&[
            ("MEND_NATS_URL", &url),
            ("MEND_NATS_NKEY", seed_file.to_str().unwrap()),
        ])
        .await
        .unwrap();
        assert_jetstream_works(&bus).await;

        let message = refused(
            connect(&[
                ("MEND_NATS_URL", &url),
                ("MEND_NATS_NKEY", other_file.to_str().unwrap()),
            ])
            .await,
        );
        assert!(message.contains("authorization violation"), "{message}");
        assert!(!message.contains(&other.seed().unwrap()), "{message}");
        // Without credentials the server refuses too.
        let message = refused(connect(&[("MEND_NATS_URL", &url)]).await);
        assert!(message.contains("authorization violation"), "{message}");
    })
    .await;
}

/// Decentralised auth: a server in operator mode admits a `.creds` file of a user its
/// account signed (JetStream works through it), and refuses one another operator's account
/// signed, and a client without credentials.
#[tokio::test]
async fn an_operator_mode_server_admits_a_creds_file_of_its_account_only() {
    within(60, async {
        let operator = mend_testkit::nats_jwt::Operator::new();
        let server = start(NatsServerOptions {
            auth: ServerAuth::Operator(operator.server_config()),
            tls: None,
            ..NatsServerOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("mend.creds");
        std::fs::write(&creds, operator.user_creds("mend")).unwrap();
        let stranger = dir.path().join("stranger.creds");
        std::fs::write(
            &stranger,
            mend_testkit::nats_jwt::Operator::new().user_creds("stranger"),
        )
        .unwrap();
        let url = server.url();

        let bus = connect(&[
            ("MEND_NATS_URL", &url),
            ("MEND_NATS_CREDS", creds.to_str().unwrap()),
        ])
        .await
        .unwrap();
        assert_jetstream_works(&bus).await;

        let message = refused(
            connect(&[
                ("MEND_NATS_URL", &url),
                ("MEND_NATS_CREDS", stranger.to_str().unwrap()),
            ])
            .await,
        );
        assert!(message.contains("authorization violation"), "{message}");
        refused(connect(&[("MEND_NATS_URL", &url)]).await);
    })
    .await;
}

#[tokio::test]
async fn replicas_reach_the_streams_a_single_server_cannot_hold_three() {
    within(60, async {
        let server = start(NatsServerOptions::default()).await;
        let url = server.url();
        // Three copies need a three-node cluster: a single server says so at start-up
        // instead of running without the redundancy the operator asked for.
        let error = connect(&[("MEND_NATS_URL", &url), ("MEND_NATS_REPLICAS", "3")])
            .await
            .expect_err("one server cannot keep three replicas");
        assert!(matches!(error, BusError::Stream { .. }), "{error:?}");
    })
    .await;
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/tests/fixtures/tls")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test]
async fn tls_with_the_right_ca_and_client_certificate_connects() {
    within(60, async {
        let server = start(NatsServerOptions {
            auth: ServerAuth::Token(TOKEN.into()),
            tls: Some(ServerTls {
                cert: fixture("server.pem").into(),
                key: fixture("server.key").into(),
                verify_clients_with: Some(fixture("ca.pem").into()),
            }),
            ..NatsServerOptions::default()
        })
        .await;
        let url = server.url();
        let (ca, cert, key) = (
            fixture("ca.pem"),
            fixture("client.pem"),
            fixture("client.key"),
        );
        let bus = connect(&[
            ("MEND_NATS_URL", &url),
            ("MEND_NATS_TOKEN", TOKEN),
            ("MEND_NATS_TLS_CA", &ca),
            ("MEND_NATS_TLS_CERT", &cert),
            ("MEND_NATS_TLS_KEY", &key),
        ])
        .await
        .unwrap();
        assert_jetstream_works(&bus).await;

        // Without a client certificate the server (which verifies clients) hangs up.
        refused(
            connect(&[
                ("MEND_NATS_URL", &url),
                ("MEND_NATS_TOKEN", TOKEN),
                ("MEND_NATS_TLS_CA", &ca),
            ])
            .await,
        );
    })
    .await;
}

#[tokio::test]
async fn tls_against_a_server_signed_by_another_ca_is_refused() {
    within(60, async {
        let server = start(NatsServerOptions {
            auth: ServerAuth::None,
            tls: Some(ServerTls {
                cert: fixture("server.pem").into(),
                key: fixture("server.key").into(),
                verify_clients_with: None,
            }),
            ..NatsServerOptions::default()
        })
        .await;
        let url = server.url();
        // The client certificate is not a CA of the server's chain: the handshake must fail.
        let wrong_ca = fixture("client.pem");
        let message =
            refused(connect(&[("MEND_NATS_URL", &url), ("MEND_NATS_TLS_CA", &wrong_ca)]).await);
        assert!(
            message.contains("tls") && message.contains("certificate"),
            "{message}"
        );

        let ca = fixture("ca.pem");
        let bus = connect(&[("MEND_NATS_URL", &url), ("MEND_NATS_TLS_CA", &ca)])
            .await
            .unwrap();
        assert_jetstream_works(&bus).await;
    })
    .await;
}
