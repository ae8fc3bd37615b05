//! `mend up`: every service in one process.
//!
//! The embedded default shares an in-process bus, a SQLite data log and a SQLite registry in the
//! data directory; `--nats URL` runs the same services over NATS JetStream (bus, data log, and
//! the registry's KV + Object Store). Each service is the same library code its own binary runs;
//! only the adapters differ. The registry and the servers find each other over loopback gRPC,
//! exactly as separate processes would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use mend_bus::{
    Bus, DataLog, InProcessBus, InProcessConfig, JetStreamBus, JetStreamDataLog, SqliteDataLog,
};
use mend_client::RegistryClient;
use mend_registry::{JetStreamStore, RegistryDeps, RegistryStore, SqliteStore};
use mend_runtime::config::Env;
use mend_runtime::{Health, MendConfig, Metrics, Readiness, Shutdown};
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
}

async fn open_shared(config: &MendConfig) -> Result<Shared> {
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
    let settings = Settings::from_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(settings))
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
    pub server: mend_server::ServerConfig,
    pub ingest: mend_ingest::IngestConfig,
    pub monitor: mend_monitor::MonitorConfig,
}

impl Settings {
    pub fn from_config(config: MendConfig) -> Result<Settings> {
        let server = mend_server::ServerConfig::from_mend(&config)
            .context("invalid server configuration")?;
        let ingest = mend_ingest::IngestConfig::from_mend(&config)
            .context("invalid ingest configuration")?;
        let monitor = mend_monitor::MonitorConfig::from_mend(&config)
            .context("invalid monitor configuration")?;
        mend_trainer::TrainerConfig::from_mend(&config).context("invalid trainer configuration")?;
        Ok(Settings {
            config,
            server,
            ingest,
            monitor,
        })
    }
}

/// Starts registry, server, ingest, monitor and trainer as tasks of one process, joined to
/// `shutdown`. The registry is reached over loopback gRPC at `registry_addr`.
pub async fn start_services(
    settings: Settings,
    listeners: Listeners,
    registry_addr: &str,
    shutdown: &Shutdown,
) -> Result<(JoinSet<(&'static str, Result<()>)>, Arc<dyn Bus>)> {
    let Settings {
        config,
        server: server_config,
        ingest: ingest_config,
        monitor: monitor_config,
    } = settings;
    let shared = open_shared(&config).await?;
    let metrics = Metrics::new();
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
    let mut services: JoinSet<(&'static str, Result<()>)> = JoinSet::new();
    {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        let deps = RegistryDeps {
            store: shared.store.clone(),
            bus: Some(shared.bus.clone()),
        };
        services.spawn(async move {
            (
                "registry",
                mend_registry::run(&config, deps, registry_listener, shutdown)
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
        let (config, shutdown) = (config.clone(), shutdown.clone());
        services.spawn(async move {
            (
                "trainer",
                mend_trainer::run(&config, deps, shutdown)
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
            metrics: metrics.clone(),
        };
        let shutdown = shutdown.clone();
        services.spawn(async move {
            (
                "monitor",
                mend_monitor::run_without_http(monitor_config, deps, shutdown)
                    .await
                    .map_err(Into::into),
            )
        });
    }

    Ok((services, shared.bus))
}

async fn serve(settings: Settings) -> Result<()> {
    let config = settings.config.clone();
    let telemetry =
        mend_runtime::telemetry::init(&config, "mend").context("failed to start telemetry")?;
    // Bind everything first: a taken port fails before any service starts.
    let bind = |addr: &mend_runtime::config::ServiceAddr, var: &'static str| {
        let addr = addr.clone();
        async move {
            addr.bind()
                .await
                .with_context(|| format!("failed to bind {var} {addr}"))
        }
    };
    let listeners = Listeners {
        registry: bind(&config.registry_addr, "MEND_REGISTRY_ADDR").await?,
        server: bind(&config.server_addr, "MEND_SERVER_ADDR").await?,
        ingest: bind(&config.ingest_addr, "MEND_INGEST_ADDR").await?,
        http: bind(&config.http_addr, "MEND_HTTP_ADDR").await?,
    };
    let readiness = Readiness::new();
    let shutdown = Shutdown::with_readiness(readiness);
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let registry_addr = config.registry_addr.to_string();
    let (mut services, _bus) =
        start_services(settings, listeners, &registry_addr, &shutdown).await?;

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

    // One service failing stops the others: a half-running loop is worse than a clear stop.
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
    telemetry.shutdown().await.ok();
    failure.map_or(Ok(()), Err)
}
