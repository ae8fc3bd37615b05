//! The services of one bench or demo run, in this process: registry, inference server, ingest,
//! monitor and trainer on free loopback ports and a fresh data directory, configured from a map
//! of `MEND_*` variables, with a client for each port the runs talk to.
//!
//! The services start as `mend up` starts them: the start-up is the command line's own, handed
//! in as a [`Launch`] (this crate does not link the command line), so a run measures exactly
//! what `mend up` runs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use mend_bus::Bus;
use mend_client::RegistryClient;
use mend_core::{Artifact, Schema};
use mend_proto::inference::ModelInferRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_runtime::{MendConfig, Shutdown};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

/// Listeners of every service, bound by the stack. One HTTP port serves everything, as in
/// `mend up`: OIP REST, the monitor's reports, `/metrics` and the probes.
pub struct Listeners {
    pub registry: TcpListener,
    pub server: TcpListener,
    pub ingest: TcpListener,
    pub http: TcpListener,
}

/// The service tasks of a stack: each ends with the service's name and how it ended.
pub type Services = JoinSet<(&'static str, Result<()>)>;

/// What a [`Launch`] returns: the running services and the bus they share.
pub type Launched = Pin<Box<dyn Future<Output = Result<(Services, Arc<dyn Bus>)>>>>;

/// Starts registry, server, ingest, monitor and trainer as tasks of this process, configured by
/// the [`MendConfig`], on the [`Listeners`], the registry reached over loopback gRPC at the
/// address given (`host:port`), every service stopping when the [`Shutdown`] is triggered.
pub type Launch = fn(MendConfig, Listeners, String, Shutdown) -> Launched;

/// The services of one run and clients for them.
pub struct Stack {
    pub services: Services,
    pub shutdown: Shutdown,
    pub bus: Arc<dyn Bus>,
    pub registry: RegistryClient,
    pub oip: GrpcInferenceServiceClient<Channel>,
    pub ingest: ingest_pb::ingest_client::IngestClient<Channel>,
    pub config: MendConfig,
    pub data_dir: PathBuf,
    /// Address (`host:port`) of the HTTP port.
    pub http_addr: String,
}

impl Stack {
    /// Empties `data_dir`, binds a free loopback port per service and starts every service with
    /// `vars` plus this run's data directory and addresses. `MEND_NATS_URL` and `MEND_CONFIG`
    /// are left out: every run is self-contained, with its own stores and ports.
    pub async fn start(
        launch: Launch,
        vars: &BTreeMap<String, String>,
        data_dir: PathBuf,
    ) -> Result<Stack> {
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)
                .with_context(|| format!("failed to empty {}", data_dir.display()))?;
        }
        let (registry_l, registry_addr) = bind().await?;
        let (server_l, server_addr) = bind().await?;
        let (ingest_l, ingest_addr) = bind().await?;
        let (http_l, http_addr) = bind().await?;
        let mut map: HashMap<String, String> = vars.clone().into_iter().collect();
        map.remove("MEND_NATS_URL");
        map.remove("MEND_CONFIG");
        for (k, v) in [
            ("MEND_DATA_DIR", data_dir.display().to_string()),
            ("MEND_REGISTRY_ADDR", registry_addr.clone()),
            ("MEND_SERVER_ADDR", server_addr.clone()),
            ("MEND_INGEST_ADDR", ingest_addr.clone()),
            ("MEND_HTTP_ADDR", http_addr.clone()),
        ] {
            map.insert(k.to_owned(), v);
        }
        let config = MendConfig::from_map(&map).context("bench configuration")?;
        let shutdown = Shutdown::new();
        let listeners = Listeners {
            registry: registry_l,
            server: server_l,
            ingest: ingest_l,
            http: http_l,
        };
        let (services, bus) = launch(
            config.clone(),
            listeners,
            registry_addr.clone(),
            shutdown.clone(),
        )
        .await?;
        let registry = RegistryClient::connect_lazy(
            &Endpoint::from_shared(format!("http://{registry_addr}"))?,
            None,
        );
        let oip = GrpcInferenceServiceClient::new(
            Endpoint::from_shared(format!("http://{server_addr}"))?.connect_lazy(),
        )
        .max_decoding_message_size(64 * 1024 * 1024);
        let ingest = ingest_pb::ingest_client::IngestClient::new(
            Endpoint::from_shared(format!("http://{ingest_addr}"))?.connect_lazy(),
        )
        .max_encoding_message_size(64 * 1024 * 1024);
        Ok(Stack {
            services,
            shutdown,
            bus,
            registry,
            oip,
            ingest,
            config,
            data_dir,
            http_addr,
        })
    }

    /// Registers `artifact` as the first version of `model` and makes it champion, in the name
    /// of `actor` with trigger event `event_id`.
    pub async fn seed_champion(
        &self,
        model: &str,
        schema: &Schema,
        artifact: &Artifact,
        actor: &str,
        event_id: &str,
    ) -> Result<()> {
        self.registry
            .seed_champion(
                model,
                schema.hash(),
                Bytes::from(artifact.to_bytes()?),
                actor,
                event_id,
            )
            .await
            .context("failed to make the first model champion")?;
        Ok(())
    }

    /// Waits until the inference server answers `probe` with model version `version`, asking
    /// every 50 ms for at most `within`.
    pub async fn wait_for_version(
        &mut self,
        probe: &ModelInferRequest,
        version: &str,
        within: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(response) = self.oip.model_infer(probe.clone()).await
                && response.get_ref().model_version == version
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the inference server did not load version {version} within {} s",
                    within.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every service and removes the data directory; the first service failure, if any.
    pub async fn stop(self) -> Result<()> {
        let data_dir = self.data_dir.clone();
        let stopped = self.stop_keeping_data().await;
        std::fs::remove_dir_all(&data_dir).ok();
        stopped
    }

    /// Stops every service and keeps the data directory, to be looked at afterwards; the
    /// first service failure, if any.
    pub async fn stop_keeping_data(self) -> Result<()> {
        self.shutdown.trigger();
        let mut services = self.services;
        let mut failure = None;
        while let Some(joined) = services.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => {
                    failure.get_or_insert_with(|| anyhow::anyhow!("{name}: {e:#}"));
                }
                Err(e) => {
                    failure.get_or_insert_with(|| anyhow::anyhow!("a service task failed: {e}"));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// The effective `MEND_*` settings of a run: a bench's defaults under the process environment
/// (a variable the environment sets wins).
pub fn effective_vars(defaults: Vec<(&'static str, String)>) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = defaults
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (k, v) in std::env::vars() {
        if k.starts_with("MEND_") {
            vars.insert(k, v);
        }
    }
    vars
}

/// A data directory for one bench run under `parent` (default: the system temp directory).
pub fn run_dir(parent: Option<&Path>, tag: &str) -> PathBuf {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    parent.join(format!("mend-bench-heal-{}-{tag}", std::process::id()))
}

/// A listener on a free loopback port, and its address.
async fn bind() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("failed to bind a loopback port")?;
    let addr = listener.local_addr()?.to_string();
    Ok((listener, addr))
}
