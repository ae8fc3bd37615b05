#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend retrain` as an operator runs it, against a registry (with an in-process bus)
//! served inside the test: the request becomes a `retrain.requested` event.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription, InProcessBus, InProcessConfig};
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryDeps, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use serde_json::Value;

const TOKEN: &str = "cli-retrain-token";

struct Registry {
    addr: String,
    bus: Arc<dyn Bus>,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A registry guarded by [`TOKEN`], on a bus, with one version of `churn` registered.
async fn start_registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let vars = HashMap::from([("MEND_REGISTRY_TOKEN".to_owned(), TOKEN.to_owned())]);
    let config = MendConfig::from_map(&vars).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(InProcessConfig::default()));
    let deps = RegistryDeps {
        store: Arc::new(store),
        bus: Some(Arc::clone(&bus)),
    };
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move { mend_registry::run(&config, deps, listener, shutdown).await }
    });
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let client = RegistryClient::connect_lazy(&endpoint, Some(TOKEN.to_owned()));
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
    // The listener is bound, so the call waits for the server instead of failing.
    client
        .register(header, bytes::Bytes::from_static(b"model"))
        .await
        .unwrap();
    Registry {
        addr,
        bus,
        shutdown,
        _dir: dir,
    }
}

/// Runs `mend` with only the variables given (nothing leaks in from the machine).
async fn mend(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mend"))
        .current_dir(dir)
        .env_clear()
        .env("USER", "tester")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .await
        .expect("mend runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mend_retrain_publishes_a_retrain_request_through_the_registry() {
    let registry = start_registry().await;
    let mut events = EventSubscription::subscribe(
        Arc::clone(&registry.bus),
        ConsumerSpec::new("test", ["retrain.>"]),
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let addr = registry.addr.as_str();

    let refused = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr)],
        &["retrain", "churn", "--reason", "no token"],
    )
    .await;
    assert!(
        !refused.status.success(),
        "a retrain without the token must fail"
    );
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("unauthenticated"), "{stderr}");

    let unknown = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &["retrain", "fraud", "--reason", "typo"],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8(unknown.stderr)
            .unwrap()
            .contains("not found")
    );

    let out = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &[
            "retrain",
            "churn",
            "--reason",
            "label fix backfill",
            "--window-rows",
            "800",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "mend retrain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["subject"], "retrain.requested.churn");
    let event_id = printed["event_id"].as_str().unwrap();

    // The refused calls published nothing: the first event is this one.
    let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.envelope.id, event_id);
    let Event::RetrainRequested(request) = &delivery.envelope.event else {
        panic!("{:?}", delivery.envelope);
    };
    assert_eq!(request.reason, "label fix backfill");
    assert_eq!(request.window.as_ref().unwrap().last_rows, Some(800));
    assert_eq!(request.requested_by.as_deref(), Some("tester (mend cli)"));

    let text = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &["retrain", "churn", "--reason", "again"],
    )
    .await;
    assert!(text.status.success());
    let line = String::from_utf8(text.stdout).unwrap();
    assert!(
        line.starts_with("retrain of churn requested: event "),
        "{line}"
    );
}
