#![allow(clippy::unwrap_used, clippy::expect_used)]
//! TLS on every gRPC door, configured the way an operator does it (`MEND_TLS_CERT`,
//! `MEND_TLS_KEY`, and `MEND_TLS_CA` for mutual TLS), through each service's own `run`: the
//! registry, the inference server (OIP) and ingest. Against each: a client trusting the
//! right CA is answered; a client trusting another CA, and a plaintext client, are refused;
//! with mutual TLS, a client without a certificate, or with one another CA signed, is
//! refused too. The certificates are the runtime's checked-in test fixtures.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mend_proto::inference::ServerLiveRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_proto::registry::v1 as registry_pb;
use mend_runtime::config::{ServiceAddr, TlsConfig, TlsIdentity};
use mend_runtime::grpc::grpc_client_endpoint;
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Longest a single TLS attempt may take before the test calls it hung.
const ATTEMPT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/runtime/tests/fixtures/tls")
        .join(name)
}

/// The service's own environment: its certificate, and the client CA for mutual TLS.
fn server_config(dir: &tempfile::TempDir, mutual: bool) -> MendConfig {
    let mut vars: HashMap<String, String> = [
        ("MEND_TLS_CERT", fixture("server.pem")),
        ("MEND_TLS_KEY", fixture("server.key")),
    ]
    .into_iter()
    .map(|(name, path)| (name.to_owned(), path.display().to_string()))
    .collect();
    if mutual {
        vars.insert(
            "MEND_TLS_CA".into(),
            fixture("ca.pem").display().to_string(),
        );
    }
    vars.insert("MEND_DATA_DIR".into(), dir.path().display().to_string());
    let config = MendConfig::from_map(&vars).unwrap();
    assert!(config.tls.server_enabled());
    config
}

/// A client's TLS settings: which CA it trusts and which certificate (if any) it shows.
fn client(ca: Option<&str>, cert: Option<&str>) -> TlsConfig {
    TlsConfig {
        ca: ca.map(fixture),
        identity: cert.map(|name| TlsIdentity {
            cert: fixture(&format!("{name}.pem")),
            key: fixture(&format!("{name}.key")),
        }),
    }
}

type Call = fn(Channel) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

/// Dials `addr` with `tls` and makes one call; any failure (handshake or call) is `Err`
/// with its whole cause chain, lowercased, so a test can check why it was refused.
async fn attempt(addr: &ServiceAddr, tls: &TlsConfig, call: Call) -> Result<(), String> {
    let endpoint = grpc_client_endpoint(addr, tls).map_err(|error| error.to_string())?;
    let outcome = tokio::time::timeout(ATTEMPT, async {
        let channel = endpoint.connect().await.map_err(|error| chain(&error))?;
        call(channel).await.map_err(|status| chain(&status))
    })
    .await;
    outcome.unwrap_or_else(|_| panic!("a TLS attempt against {addr:?} hung"))
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text.to_lowercase()
}

/// Asserts `outcome` is a refusal whose causes mention `why`.
fn assert_refused(outcome: Result<(), String>, why: &str, what: &str) {
    match outcome {
        Ok(()) => panic!("{what} was answered"),
        Err(error) => assert!(
            error.contains(why),
            "{what} was refused, but not for `{why}`: {error}"
        ),
    }
}

/// Every door check for one service listening at `addr`.
async fn check_door(service: &str, addr: &ServiceAddr, mutual: bool, call: Call) {
    let trusted = if mutual {
        client(Some("ca.pem"), Some("client"))
    } else {
        client(Some("ca.pem"), None)
    };
    let answered = attempt(addr, &trusted, call).await;
    assert!(
        answered.is_ok(),
        "{service}: a client trusting the right CA was refused: {answered:?}"
    );

    // The client does not trust the server's certificate.
    let wrong_ca = client(Some("other-ca.pem"), Some("client"));
    assert_refused(
        attempt(addr, &wrong_ca, call).await,
        "unknownissuer",
        &format!("{service}: a client trusting another CA"),
    );
    // HTTP/2 in clear text meets a TLS listener: the connection is dropped.
    assert!(
        attempt(addr, &TlsConfig::default(), call).await.is_err(),
        "{service}: a plaintext client was answered"
    );
    if mutual {
        let anonymous = client(Some("ca.pem"), None);
        assert_refused(
            attempt(addr, &anonymous, call).await,
            "certificaterequired",
            &format!("{service}: under mutual TLS, a client without a certificate"),
        );
        // A certificate issued for serving only (no clientAuth usage) is not a client's.
        let server_only = client(Some("ca.pem"), Some("server"));
        assert!(
            attempt(addr, &server_only, call).await.is_err(),
            "{service}: under mutual TLS, a client showing a server-only certificate was answered"
        );
        let foreign = client(Some("ca.pem"), Some("other-client"));
        assert_refused(
            attempt(addr, &foreign, call).await,
            "unknownca",
            &format!("{service}: under mutual TLS, a client whose certificate another CA signed"),
        );
    }
}

async fn listener() -> (TcpListener, ServiceAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ServiceAddr::from(listener.local_addr().unwrap());
    (listener, addr)
}

/// Runs a service on its own task until the returned [`Shutdown`] is triggered.
fn spawn_service<F, E>(run: impl FnOnce(Shutdown) -> F) -> (Shutdown, tokio::task::JoinHandle<()>)
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Debug,
{
    let shutdown = Shutdown::new();
    let running = run(shutdown.clone());
    let task = tokio::spawn(async move { running.await.unwrap() });
    (shutdown, task)
}

async fn stop(shutdown: Shutdown, task: tokio::task::JoinHandle<()>) {
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("service stops")
        .unwrap();
}

fn list_models(
    channel: Channel,
) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>> {
    Box::pin(async move {
        registry_pb::registry_client::RegistryClient::new(channel)
            .list_models(registry_pb::ListModelsRequest::default())
            .await
            .map(drop)
    })
}

fn server_live(
    channel: Channel,
) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>> {
    Box::pin(async move {
        let live = GrpcInferenceServiceClient::new(channel)
            .server_live(ServerLiveRequest {})
            .await?;
        assert!(live.into_inner().live);
        Ok(())
    })
}

fn ingest_nothing(
    channel: Channel,
) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>> {
    Box::pin(async move {
        let summary = ingest_pb::ingest_client::IngestClient::new(channel)
            .ingest_rows(tokio_stream::iter(Vec::<ingest_pb::RowBatch>::new()))
            .await?;
        assert_eq!(summary.into_inner().accepted, 0);
        Ok(())
    })
}

async fn registry_door(mutual: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(&dir, mutual);
    let (listener, addr) = listener().await;
    let deps = mend_registry::RegistryDeps {
        store: Arc::new(
            mend_registry::SqliteStore::open_in_dir(dir.path())
                .await
                .unwrap(),
        ),
        bus: None,
    };
    let config = mend_registry::RegistryConfig::from_mend(&config).unwrap();
    let (shutdown, task) = spawn_service(|shutdown| async move {
        mend_registry::run(config, deps, listener, shutdown).await
    });
    check_door("registry", &addr, mutual, list_models).await;
    stop(shutdown, task).await;
}

async fn server_door(mutual: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = mend_server::ServerConfig::from_mend(&server_config(&dir, mutual)).unwrap();
    let (listener, addr) = listener().await;
    let deps = mend_server::ServerDeps {
        source: Arc::new(mend_server::InMemoryModelSource::new()),
        bus: None,
        data_log: None,
        metrics: Metrics::new(),
        health: Health::new(),
    };
    let listeners = mend_server::Listeners {
        grpc: listener,
        http: None,
    };
    let (shutdown, task) = spawn_service(|shutdown| async move {
        mend_server::run(config, deps, listeners, shutdown).await
    });
    check_door("server", &addr, mutual, server_live).await;
    stop(shutdown, task).await;
}

async fn ingest_door(mutual: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = mend_ingest::IngestConfig::from_mend(&server_config(&dir, mutual)).unwrap();
    let (listener, addr) = listener().await;
    let deps = mend_ingest::IngestDeps {
        schemas: Arc::new(mend_ingest::InMemorySchemaSource::new()),
        data_log: Arc::new(mend_bus::SqliteDataLog::open(dir.path()).unwrap()),
        bus: None,
        metrics: Metrics::new(),
        health: Health::new(),
    };
    let (shutdown, task) = spawn_service(|shutdown| async move {
        mend_ingest::run(config, deps, listener, shutdown).await
    });
    check_door("ingest", &addr, mutual, ingest_nothing).await;
    stop(shutdown, task).await;
}

#[tokio::test]
async fn registry_over_tls() {
    registry_door(false).await;
}

#[tokio::test]
async fn registry_over_mutual_tls() {
    registry_door(true).await;
}

#[tokio::test]
async fn server_over_tls() {
    server_door(false).await;
}

#[tokio::test]
async fn server_over_mutual_tls() {
    server_door(true).await;
}

#[tokio::test]
async fn ingest_over_tls() {
    ingest_door(false).await;
}

#[tokio::test]
async fn ingest_over_mutual_tls() {
    ingest_door(true).await;
}

/// What every service's `main` does: one `MEND_TLS_*` set serves its own port and dials its
/// peers. `MEND_TLS_CA` both trusts the peer and makes the service require client
/// certificates, so services talking TLS use mutual TLS, with a certificate valid for both
/// serving and dialing (`mesh.pem`: serverAuth and clientAuth).
#[tokio::test]
async fn services_sharing_one_tls_configuration_reach_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, addr) = listener().await;
    let vars: HashMap<String, String> = [
        ("MEND_TLS_CERT", fixture("mesh.pem").display().to_string()),
        ("MEND_TLS_KEY", fixture("mesh.key").display().to_string()),
        ("MEND_TLS_CA", fixture("mesh-ca.pem").display().to_string()),
        ("MEND_DATA_DIR", dir.path().display().to_string()),
        ("MEND_REGISTRY_ADDR", addr.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let config = MendConfig::from_map(&vars).unwrap();
    assert!(config.tls.server_enabled() && config.tls.client_enabled());
    let deps = mend_registry::RegistryDeps {
        store: Arc::new(
            mend_registry::SqliteStore::open_in_dir(dir.path())
                .await
                .unwrap(),
        ),
        bus: None,
    };
    let served = mend_registry::RegistryConfig::from_mend(&config).unwrap();
    let (shutdown, task) = spawn_service(|shutdown| async move {
        mend_registry::run(served, deps, listener, shutdown).await
    });

    // As ingest, monitor, trainer and server dial the registry.
    let endpoint = grpc_client_endpoint(&config.registry_addr, &config.tls).unwrap();
    assert!(endpoint.uri().to_string().starts_with("https://"));
    let models = tokio::time::timeout(
        ATTEMPT,
        mend_client::RegistryClient::connect_lazy(&endpoint, None).list_models(),
    )
    .await
    .expect("the call finishes")
    .expect("a peer with the shared configuration is answered");
    assert!(models.is_empty());
    // The same peer without its certificate is not.
    let anonymous = TlsConfig {
        identity: None,
        ..config.tls.clone()
    };
    assert_refused(
        attempt(&config.registry_addr, &anonymous, list_models).await,
        "certificaterequired",
        "registry: a peer trusting the mesh CA but without a certificate",
    );
    stop(shutdown, task).await;
}

/// The monitor's HTTP port under mutual TLS, through the monitor's own `run`: its reports are
/// data, so they need a client certificate from the CA; without one only the probes answer;
/// a foreign certificate and plain text get nothing at all.
#[tokio::test]
async fn monitor_reports_over_mutual_tls() {
    use mend_testkit::https::{HttpRequest, MtlsFixtures, https, plain};

    let dir = tempfile::tempdir().unwrap();
    let config = server_config(&dir, true);
    let monitor_config = mend_monitor::MonitorConfig::from_mend(&config).unwrap();
    let deps = mend_monitor::MonitorDeps {
        champions: Arc::new(mend_monitor::InMemoryChampionSource::new()),
        data_log: Arc::new(mend_bus::SqliteDataLog::open(&dir.path().join("log")).unwrap()),
        bus: None,
        metrics: Metrics::new(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, task) = spawn_service(|shutdown| async move {
        mend_monitor::run(monitor_config, deps, listener, shutdown).await
    });

    let fixtures = MtlsFixtures::in_dir(fixture("ca.pem").parent().unwrap());
    let (client, anonymous, foreign) =
        (fixtures.client(), fixtures.anonymous(), fixtures.foreign());
    let reports = HttpRequest::get("/reports/churn");
    let status = |answer: Result<(u16, String), String>| answer.map(|(status, _)| status);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status(https(addr, &reports, client).await) != Ok(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the monitor never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(https(addr, &reports, anonymous).await), Ok(404));
    assert_eq!(
        status(https(addr, &HttpRequest::get("/livez"), anonymous).await),
        Ok(200)
    );
    let refused = https(addr, &reports, foreign).await;
    assert!(
        refused.is_err(),
        "a foreign certificate was answered: {refused:?}"
    );
    let refused = plain(addr, &reports).await;
    assert!(refused.is_err(), "plain text was answered: {refused:?}");
    stop(shutdown, task).await;
}
