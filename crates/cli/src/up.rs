//! `mend up`: every service in one process.
//!
//! The embedded default shares an in-process bus, a SQLite data log and a SQLite registry in the
//! data directory; `--nats URL` runs the same services over NATS JetStream (bus, data log, and
//! the registry's KV + Object Store). Each service is the same library code its own binary runs,
//! through the same `run(config, deps, listeners, shutdown)`; only the adapters differ. The
//! registry and the servers find each other over loopback gRPC, exactly as separate processes
//! would.
//!
//! `mend up` is hosted as each service binary is ([`mend_runtime::host`]): [`Up`] is the five
//! services as one, so binding, opening the shared stores, signals and the shutdown grace are
//! the host's, done once for all of them.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use mend_bus::{
    Bus, DataLog, InProcessBus, InProcessConfig, JetStreamBus, JetStreamDataLog, SqliteDataLog,
};
use mend_client::RegistryClient;
use mend_registry::{JetStreamStore, RegistryConfig, RegistryDeps, RegistryStore, SqliteStore};
use mend_runtime::config::{ConfigError, Env, vars};
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run over NATS JetStream at this URL instead of the embedded bus and SQLite.
    #[arg(long)]
    nats: Option<String>,
    /// Data directory of the embedded stores (default: MEND_DATA_DIR or ./mend-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// What the services share in one process.
struct Shared {
    bus: Arc<dyn Bus>,
    data_log: Arc<dyn DataLog>,
    store: Arc<dyn RegistryStore>,
    /// One Prometheus registry for every service, served on the one HTTP port.
    metrics: Metrics,
}

async fn open_shared(config: &MendConfig, metrics: Metrics) -> Result<Shared> {
    match &config.nats {
        Some(nats) => {
            let jetstream = JetStreamBus::connect_configured(nats)
                .await
                .context("failed to connect to NATS (MEND_NATS_URL)")?;
            let store = JetStreamStore::open(
                jetstream.jetstream(),
                mend_registry::JetStreamConfig {
                    replicas: nats.replicas,
                    ..mend_registry::JetStreamConfig::default()
                },
            )
            .await
            .context("failed to open the registry buckets on JetStream")?;
            Ok(Shared {
                bus: Arc::new(jetstream.clone()),
                data_log: Arc::new(JetStreamDataLog::new(jetstream)),
                store: Arc::new(store),
                metrics,
            })
        }
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "failed to create the data directory {}",
                    config.data_dir.display()
                )
            })?;
            let data_log =
                SqliteDataLog::open(&config.data_dir).context("failed to open the data log")?;
            let store = SqliteStore::open_in_dir(&config.data_dir)
                .await
                .context("failed to open the registry store")?;
            Ok(Shared {
                bus: Arc::new(InProcessBus::new(InProcessConfig::default())),
                data_log: Arc::new(data_log),
                store: Arc::new(store),
                metrics,
            })
        }
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    if let Some(url) = args.nats {
        vars.insert(mend_runtime::config::vars::MEND_NATS_URL.to_owned(), url);
    }
    if let Some(dir) = args.data_dir {
        vars.insert(
            mend_runtime::config::vars::MEND_DATA_DIR.to_owned(),
            dir.display().to_string(),
        );
    }
    let config = MendConfig::load(Env::from_map(vars)).context("invalid configuration")?;
    let settings = Up::config(&config).context("invalid configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let telemetry = mend_runtime::telemetry::init(&config, Up::NAME)
            .context("failed to start telemetry")?;
        let served = host::serve::<Up>(config, settings).await;
        telemetry.shutdown().await.ok();
        served
    })
}

/// Listeners of every service, bound by the caller. One HTTP port serves everything: OIP
/// REST, the monitor's reports (and its index page at `/`), `/metrics` and the probes.
pub struct Listeners {
    pub registry: TcpListener,
    pub server: TcpListener,
    pub ingest: TcpListener,
    pub http: TcpListener,
}

/// Settings of every service, all read and checked before anything binds.
pub struct Settings {
    pub config: MendConfig,
    pub registry: RegistryConfig,
    pub server: mend_server::ServerConfig,
    pub ingest: mend_ingest::IngestConfig,
    pub monitor: mend_monitor::MonitorConfig,
    pub trainer: mend_trainer::TrainerConfig,
}

impl Settings {
    /// Reads and checks every service's settings from `config`; an error names the variable.
    pub fn from_config(config: MendConfig) -> Result<Settings, ConfigError> {
        Ok(Settings {
            registry: RegistryConfig::from_mend(&config)?,
            server: mend_server::ServerConfig::from_mend(&config)?,
            ingest: mend_ingest::IngestConfig::from_mend(&config)?,
            monitor: mend_monitor::MonitorConfig::from_mend(&config)?,
            trainer: mend_trainer::TrainerConfig::from_mend(&config)?,
            config,
        })
    }
}

/// The tasks of the services started, each ending with its name and how it ended.
pub type Services = JoinSet<(&'static str, Result<()>)>;

/// Starts registry, server, ingest, monitor and trainer as tasks of one process, joined to
/// `shutdown`, on the bus, data log and store opened from `settings`. The registry is reached
/// over loopback gRPC at `registry_addr`.
pub async fn start_services(
    settings: Settings,
    listeners: Listeners,
    registry_addr: &str,
    shutdown: &Shutdown,
) -> Result<(Services, Arc<dyn Bus>)> {
    let shared = open_shared(&settings.config, Metrics::new()).await?;
    let bus = Arc::clone(&shared.bus);
    let services = start(settings, shared, listeners, registry_addr, shutdown)?;
    Ok((services, bus))
}

/// Starts every service on `shared` (see [`start_services`]).
fn start(
    settings: Settings,
    shared: Shared,
    listeners: Listeners,
    registry_addr: &str,
    shutdown: &Shutdown,
) -> Result<Services> {
    let Settings {
        config,
        registry: registry_config,
        server: server_config,
        ingest: ingest_config,
        monitor: monitor_config,
        trainer: trainer_config,
    } = settings;
    let metrics = shared.metrics.clone();
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{registry_addr}"))
        .context("invalid registry address")?;
    let token = config
        .registry_token
        .as_ref()
        .map(|t| t.expose().to_owned());
    let Listeners {
        registry: registry_listener,
        server: server_listener,
        ingest: ingest_listener,
        http: http_listener,
    } = listeners;
    // The monitor writes its reports under the data directory; the server's HTTP port reads
    // them from there.
    // `mend events` reaches the bus through the same port (publishing needs the registry's
    // token when one is set).
    let routes = mend_monitor::reports_router(mend_monitor::ReportStore::new(
        &monitor_config.data_dir,
        monitor_config.reports_kept,
    ))
    .merge(crate::events_cmd::routes(
        shared.bus.clone(),
        config.registry_token.as_ref(),
    ));
    let mut services: Services = JoinSet::new();
    {
        let deps = RegistryDeps {
            store: shared.store.clone(),
            bus: Some(shared.bus.clone()),
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "registry",
                mend_registry::run(registry_config, deps, registry_listener, shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }
    {
        let deps = mend_ingest::IngestDeps {
            schemas: Arc::new(mend_ingest::RegistrySchemaSource::new(
                RegistryClient::connect_lazy(&endpoint, token.clone()),
            )),
            data_log: shared.data_log.clone(),
            bus: Some(shared.bus.clone()),
            metrics: metrics.clone(),
            health: Health::new(),
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "ingest",
                mend_ingest::run(ingest_config, deps, ingest_listener, shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }
    {
        let deps = mend_server::ServerDeps {
            source: Arc::new(mend_server::RegistryModelSource::connect_lazy(&endpoint)),
            bus: Some(shared.bus.clone()),
            data_log: Some(shared.data_log.clone()),
            metrics: metrics.clone(),
            health: Health::new(),
        };
        let listeners = mend_server::Listeners {
            grpc: server_listener,
            http: Some(http_listener),
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "server",
                // The server's `run`, with the reports and `/events` beside OIP REST.
                mend_server::run_with_routes(server_config, deps, listeners, routes, shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }

    {
        let deps = mend_trainer::TrainerDeps {
            bus: shared.bus.clone(),
            data_log: shared.data_log.clone(),
            registry: RegistryClient::connect_lazy(&endpoint, token.clone()),
            metrics: metrics.clone(),
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "trainer",
                mend_trainer::run(trainer_config, deps, (), shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }

    {
        let deps = mend_monitor::MonitorDeps {
            champions: Arc::new(mend_monitor::RegistryChampionSource::new(
                RegistryClient::connect_lazy(&endpoint, token.clone()),
            )),
            data_log: shared.data_log.clone(),
            bus: Some(shared.bus.clone()),
            metrics,
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "monitor",
                // The monitor's `run`, its reports served on the server's HTTP port.
                mend_monitor::run_without_http(monitor_config, deps, shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }

    Ok(services)
}

/// `mend up` as the host runs it: the five services as one, on one shared bus, data log and
/// registry store, each on its own port, the server's HTTP port serving everything HTTP (the
/// ops routes among it). A type only: the host's functions take it as a type parameter.
enum Up {}

impl Service for Up {
    const NAME: &'static str = "mend";
    const TITLE: &'static str = "mend up";
    type Config = Settings;
    type Deps = Shared;
    type Listeners = Listeners;
    type Error = anyhow::Error;

    fn config(config: &MendConfig) -> Result<Settings, ConfigError> {
        Settings::from_config(config.clone())
    }

    async fn bind(config: &MendConfig) -> Result<Bound<Listeners>> {
        // Every port first: a taken one fails before any service starts.
        Ok(Bound::serving_http(Listeners {
            registry: host::bind(&config.registry_addr, vars::MEND_REGISTRY_ADDR).await?,
            server: host::bind(&config.server_addr, vars::MEND_SERVER_ADDR).await?,
            ingest: host::bind(&config.ingest_addr, vars::MEND_INGEST_ADDR).await?,
            http: host::bind_http(config).await?,
        }))
    }

    async fn open(config: &MendConfig, metrics: &Metrics) -> Result<Shared> {
        open_shared(config, metrics.clone()).await
    }

    fn run(
        settings: Settings,
        shared: Shared,
        listeners: Listeners,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<()>> + Send {
        run_all(settings, shared, listeners, shutdown)
    }
}

/// Starts every service, says where they are, and waits until all have stopped. One service
/// failing stops the others: a half-running loop is worse than a clear stop.
async fn run_all(
    settings: Settings,
    shared: Shared,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<()> {
    let config = settings.config.clone();
    let registry_addr = config.registry_addr.to_string();
    let mut services = start(settings, shared, listeners, &registry_addr, &shutdown)?;

    let mode = match &config.nats {
        Some(nats) => format!("NATS JetStream at {}", nats.url),
        None => format!(
            "embedded (in-process bus, SQLite in {})",
            config.data_dir.display()
        ),
    };
    println!("mend up: {mode}");
    println!("  inference (OIP gRPC)  {}", config.server_addr);
    println!(
        "  HTTP                  http://{}  (OIP REST /v2/..., monitor reports / and /reports/<model>, /metrics, /healthz)",
        config.http_addr
    );
    println!("  registry (gRPC)       {}", config.registry_addr);
    println!("  ingest (gRPC)         {}", config.ingest_addr);
    println!("  trainer               drift.detected.* and retrain.requested.* on the bus");
    println!("press Ctrl-C to stop");

    let mut failure = None;
    while let Some(joined) = services.join_next().await {
        match joined {
            Ok((name, Ok(()))) => tracing::info!(service = name, "stopped"),
            Ok((name, Err(error))) => {
                tracing::error!(service = name, error = %format!("{error:#}"), "service failed");
                failure.get_or_insert_with(|| anyhow::anyhow!("{name}: {error:#}"));
                shutdown.trigger();
            }
            Err(join) => {
                failure.get_or_insert_with(|| anyhow::anyhow!("a service task failed: {join}"));
                shutdown.trigger();
            }
        }
    }
    failure.map_or(Ok(()), Err)
}
