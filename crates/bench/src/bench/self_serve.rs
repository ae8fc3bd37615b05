//! `--self-serve`: a synthetic model served by `mend-server` inside this process, on its own
//! runtime threads (so client and server compete for the machine as two processes would),
//! with an in-memory model source and an in-process bus for promotions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use bytes::Bytes;
use mend_bus::events::ModelPromoted;
use mend_bus::{
    Bus, DataKind, DataLog, DataLogError, Envelope, InProcessBus, ModelName, RawEntry, Window,
    publish_event,
};
use mend_core::{Artifact, TrainSettings};
use mend_proto::inference::ServerReadyRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_runtime::{Health, Metrics, Shutdown};
use mend_server::{InMemoryModelSource, Listeners, ServerConfig, ServerDeps, ServerError};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Rows the synthetic model is trained on.
const TRAINING_ROWS: usize = 5_000;

#[derive(Debug, Clone)]
pub struct SelfServeSpec {
    pub model: String,
    pub numeric: usize,
    pub categorical: usize,
    pub sample_rate: f64,
    pub threads: usize,
    pub listen: String,
    pub max_rows: usize,
}

/// A running in-process server.
pub struct SelfServer {
    /// The server's own runtime, or `None` when it shares the caller's.
    runtime: Option<Runtime>,
    handle: Handle,
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), ServerError>>,
    source: Arc<InMemoryModelSource>,
    bus: Arc<InProcessBus>,
    artifact: Artifact,
    model: String,
}

/// What `--promotions` did.
#[derive(Debug, Clone)]
pub struct Promotions {
    /// Versions promoted, in order.
    pub versions: Vec<u64>,
}

impl SelfServer {
    /// Starts serving on its own runtime of `spec.threads` threads, or on `shared` (the load
    /// generator's runtime) when given.
    pub fn start(spec: &SelfServeSpec, shared: Option<Handle>) -> anyhow::Result<SelfServer> {
        ModelName::new(spec.model.as_str()).context("invalid --model name")?;
        let artifact = train(spec.numeric, spec.categorical)?;
        let source = Arc::new(InMemoryModelSource::new());
        source.promote(&spec.model, Bytes::from(artifact.to_bytes()?));
        let bus = Arc::new(InProcessBus::default());
        let (runtime, handle) = match shared {
            Some(handle) => (None, handle),
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(spec.threads.max(1))
                    .thread_name("mend-server")
                    .enable_all()
                    .build()
                    .context("failed to start the server runtime")?;
                let handle = runtime.handle().clone();
                (Some(runtime), handle)
            }
        };
        let listener = handle
            .block_on(tokio::net::TcpListener::bind(spec.listen.as_str()))
            .with_context(|| format!("failed to listen on {}", spec.listen))?;
        let addr = listener.local_addr()?;
        let shutdown = Shutdown::new();
        let config = ServerConfig {
            sample_rate: spec.sample_rate,
            max_rows: spec.max_rows,
            models: vec![spec.model.clone()],
            instance: "bench".into(),
            ..ServerConfig::default()
        };
        let bus_dyn: Arc<dyn Bus> = bus.clone();
        let deps = ServerDeps {
            source: source.clone(),
            bus: Some(bus_dyn),
            data_log: Some(Arc::new(NullDataLog::default())),
            metrics: Metrics::new(),
            health: Health::new(),
        };
        let task = handle.spawn(mend_server::run(
            config,
            deps,
            Listeners {
                grpc: listener,
                http: None,
            },
            shutdown.clone(),
        ));
        handle.block_on(wait_ready(addr))?;
        Ok(SelfServer {
            runtime,
            handle,
            addr,
            shutdown,
            task,
            source,
            bus,
            artifact,
            model: spec.model.clone(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until Ctrl-C, for a load generator in another process.
    pub fn serve_until_ctrl_c(self) -> anyhow::Result<()> {
        println!(
            "serving model `{}` on {} (OIP gRPC); run `mend bench --addr {} --model {}` elsewhere, Ctrl-C to stop",
            self.model, self.addr, self.addr, self.model
        );
        self.handle
            .block_on(tokio::signal::ctrl_c())
            .context("failed to wait for Ctrl-C")?;
        self.stop()
    }

    /// Promotes `count` new versions, evenly spread over the measured window, each announced
    /// on the bus as `model.promoted.<model>`. Artifacts are prepared before the load starts.
    pub fn promote_during(
        &self,
        handle: &Handle,
        count: u64,
        warmup: Duration,
        duration: Duration,
    ) -> JoinHandle<anyhow::Result<Promotions>> {
        let variants: Vec<anyhow::Result<Bytes>> = (1..=count)
            .map(|k| {
                let mut variant = self.artifact.clone();
                // A tiny intercept change: a distinct artifact that predicts almost the same.
                let weights = variant
                    .model
                    .as_logistic_mut()
                    .context("promotion variants are made of logistic models")?;
                for b in &mut weights.intercept {
                    *b += k as f64 * 1e-6;
                }
                Ok(Bytes::from(variant.to_bytes()?))
            })
            .collect();
        let source = Arc::clone(&self.source);
        let bus = Arc::clone(&self.bus);
        let model = self.model.clone();
        let start = Instant::now() + warmup;
        let step = duration / u32::try_from(count + 1).unwrap_or(u32::MAX);
        handle.spawn(async move {
            let name = ModelName::new(model.as_str())?;
            let mut versions = Vec::new();
            for (k, variant) in variants.into_iter().enumerate() {
                let at = start + step * (k as u32 + 1);
                tokio::time::sleep_until(at.into()).await;
                let version = source.promote(&model, variant?);
                let event = ModelPromoted {
                    version,
                    previous: version.checked_sub(1),
                    reason: "mend bench --promotions".into(),
                    metrics: Default::default(),
                    trigger_event_id: None,
                };
                publish_event(bus.as_ref(), &Envelope::new(name.clone(), event)).await?;
                versions.push(version);
            }
            Ok(Promotions { versions })
        })
    }

    pub fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        let served = self
            .handle
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), self.task).await });
        drop(self.runtime);
        match served {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(error).context("the in-process server failed"),
            Ok(Err(error)) => Err(error).context("the in-process server panicked"),
            Err(_) => bail!("the in-process server did not stop within 10 s"),
        }
    }
}

/// Trains a binary model on synthetic rows.
fn train(numeric: usize, categorical: usize) -> anyhow::Result<Artifact> {
    if numeric + categorical == 0 {
        bail!("the synthetic model needs at least one feature (--features / --categorical)");
    }
    let spec = SyntheticSpec {
        numeric,
        categorical,
        classes: 2,
        seed: 42,
        ..SyntheticSpec::default()
    };
    let mut generator = Generator::new(spec);
    let sample = generator.sample(TRAINING_ROWS, &Regime::default());
    let table = generator.to_table(&sample, true, 0, 0);
    let (_, model) = crate::world_client::train_first(&table, &TrainSettings::default())?;
    Ok(model)
}

async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = async {
            let mut client = GrpcInferenceServiceClient::connect(format!("http://{addr}")).await?;
            let ready = client
                .server_ready(ServerReadyRequest {})
                .await?
                .into_inner()
                .ready;
            anyhow::Ok(ready)
        }
        .await;
        if matches!(ready, Ok(true)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the in-process server did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A data log that accepts and forgets: the benchmark measures the server's sampling and
/// queueing, not a storage backend.
#[derive(Debug, Default)]
struct NullDataLog {
    next: AtomicU64,
}

#[async_trait]
impl DataLog for NullDataLog {
    async fn append_keyed(
        &self,
        _model: &ModelName,
        _kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<mend_bus::Stored>, DataLogError> {
        let first = self.next.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok((first..first + entries.len() as u64)
            .map(|seq| mend_bus::Stored {
                seq,
                duplicate: false,
            })
            .collect())
    }

    async fn read_raw(
        &self,
        _model: &ModelName,
        _kind: DataKind,
        _window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        Ok(Vec::new())
    }

    async fn latest_seq(
        &self,
        _model: &ModelName,
        _kind: DataKind,
    ) -> Result<Option<u64>, DataLogError> {
        Ok(None)
    }
}
