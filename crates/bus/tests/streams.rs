//! JetStream streams are created with retention limits and updated idempotently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::within;
use mend_bus::subjects::{DATA_STREAM, DEADLETTER_STREAM, EVENTS_STREAM};
use mend_bus::{JetStreamBus, JetStreamConfig, StreamLimits};
use mend_testkit::{NatsServer, NatsServerOptions};

#[tokio::test]
async fn streams_are_created_with_limits_and_updated_in_place() {
    within(60, async {
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap()
            .unwrap();
        let first = JetStreamBus::connect(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();
        for name in [EVENTS_STREAM, DATA_STREAM, DEADLETTER_STREAM] {
            let info = first
                .jetstream()
                .get_stream(name)
                .await
                .unwrap()
                .cached_info()
                .clone();
            assert_eq!(
                info.config.max_age,
                Duration::from_secs(30 * 24 * 3600),
                "{name}"
            );
            assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
            assert!(info.config.max_bytes > 0);
        }
        // Starting again with the same settings is a no-op.
        JetStreamBus::connect(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();

        let changed = JetStreamConfig {
            events: StreamLimits {
                max_age: Duration::from_secs(3600),
                max_bytes: 1024 * 1024,
                duplicate_window: Duration::from_secs(30),
            },
            ..JetStreamConfig::default()
        };
        let second = JetStreamBus::connect(&server.url(), changed).await.unwrap();
        let info = second
            .jetstream()
            .get_stream(EVENTS_STREAM)
            .await
            .unwrap()
            .cached_info()
            .clone();
        assert_eq!(info.config.max_age, Duration::from_secs(3600));
        assert_eq!(info.config.max_bytes, 1024 * 1024);
        assert_eq!(info.config.duplicate_window, Duration::from_secs(30));
    })
    .await;
}

const GIB: u64 = 1024 * 1024 * 1024;

fn server_with_storage(max_file_store: u64) -> NatsServer {
    NatsServer::start_with(NatsServerOptions {
        max_file_store: Some(max_file_store),
        ..NatsServerOptions::default()
    })
    .unwrap()
}

/// The default streams reserve 11.25 GiB. A server with just enough room refuses a second
/// create or update of the same streams (it counts the reservation again), so services
/// restarting against it must find the streams as they are and leave them alone.
#[tokio::test]
async fn services_restart_against_a_server_with_just_enough_storage() {
    within(60, async {
        let server = tokio::task::spawn_blocking(|| server_with_storage(23 * GIB / 2))
            .await
            .unwrap();
        for _ in 0..3 {
            JetStreamBus::connect(&server.url(), JetStreamConfig::default())
                .await
                .unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn streams_larger_than_the_servers_storage_fail_naming_what_to_change() {
    within(60, async {
        let server = tokio::task::spawn_blocking(|| server_with_storage(2 * GIB))
            .await
            .unwrap();
        let error = JetStreamBus::connect(&server.url(), JetStreamConfig::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("MEND_DATA"), "{error}");
        assert!(error.contains("max_file_store"), "{error}");
        assert!(error.contains(&(10 * GIB).to_string()), "{error}");
    })
    .await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_with_the_url() {
    let error = JetStreamBus::connect("nats://127.0.0.1:1", JetStreamConfig::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
}
