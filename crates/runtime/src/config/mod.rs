//! Configuration: `MEND_*` variables from an injected environment over an optional TOML
//! file (`MEND_CONFIG`), validated in full before a service binds anything.
//!
//! - [`vars`]: every variable name, once.
//! - [`Env`]: the injected environment with a typed getter.
//! - [`ConfigFile`] / [`ConfigSource`]: the file and the env-over-file lookup rule,
//!   which services use for their own settings and `[sections]`.
//! - [`MendConfig`]: the settings every service shares, with DESIGN.md's defaults.
//! - [`Secret`]: values that never reach `Debug` output or logs.

mod addr;
pub mod defaults;
mod env;
mod error;
mod file;
mod instance;
mod log;
mod nats;
mod otel;
mod secret;
mod source;
mod tls;
pub mod vars;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use addr::ServiceAddr;
pub use env::Env;
pub use error::{ConfigError, Origin};
pub use file::{ConfigFile, RawValue};
pub use instance::{random_instance, replica_instance};
pub use log::{LogConfig, LogFormat};
pub use nats::{NatsAuth, NatsConfig, NatsTls};
pub use otel::OtelConfig;
pub use secret::Secret;
pub use source::ConfigSource;
pub use tls::{TlsConfig, TlsIdentity};

use vars::{
    MEND_CONFIG, MEND_DATA_DIR, MEND_HTTP_ADDR, MEND_INGEST_ADDR, MEND_REGISTRY_ADDR,
    MEND_REGISTRY_TOKEN, MEND_SERVER_ADDR, MEND_SHUTDOWN_GRACE_MS, MEND_TLS_CA,
    OTEL_EXPORTER_OTLP_ENDPOINT,
};

/// Top-level keys of the config file that the runtime reads.
const FILE_KEYS: &[&str] = &[
    "data_dir",
    "server_addr",
    "registry_addr",
    "ingest_addr",
    "http_addr",
    "log_format",
    "log",
    "registry_token",
    "shutdown_grace_ms",
];

/// Tables of the config file that the runtime owns, with their keys; every other table
/// is a service's section.
const FILE_TABLES: &[(&str, &[&str])] = &[
    (
        "nats",
        &[
            "url",
            "creds",
            "token",
            "user",
            "password",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "tls_required",
            "replicas",
        ],
    ),
    ("otel", &["endpoint", "service_name"]),
    ("tls", &["cert", "key", "ca"]),
];

/// The settings every mend service shares. `Debug` is safe to log: secrets are redacted.
#[derive(Clone, Debug)]
pub struct MendConfig {
    /// `MEND_DATA_DIR`: embedded stores and reports.
    pub data_dir: PathBuf,
    /// `MEND_NATS_*`: `None` means the embedded in-process bus.
    pub nats: Option<NatsConfig>,
    /// `MEND_SERVER_ADDR`: OIP gRPC.
    pub server_addr: ServiceAddr,
    /// `MEND_REGISTRY_ADDR`: registry gRPC.
    pub registry_addr: ServiceAddr,
    /// `MEND_INGEST_ADDR`: ingest gRPC.
    pub ingest_addr: ServiceAddr,
    /// `MEND_HTTP_ADDR`: `/metrics`, `/healthz`, reports.
    pub http_addr: ServiceAddr,
    /// `MEND_LOG_FORMAT`, `MEND_LOG`.
    pub log: LogConfig,
    /// `MEND_REGISTRY_TOKEN`: bearer token for registry writes.
    pub registry_token: Option<Secret>,
    /// `MEND_SHUTDOWN_GRACE_MS`: how long draining may take after SIGTERM.
    pub shutdown_grace: Duration,
    /// `OTEL_*`: span export, when an endpoint is set.
    pub otel: Option<OtelConfig>,
    /// `MEND_TLS_*`.
    pub tls: TlsConfig,
    source: ConfigSource,
}

impl MendConfig {
    /// Loads from an injected environment: the file named by `MEND_CONFIG` (if any) is
    /// read, then each setting is taken from the variable, else the file, else the
    /// default. The first problem found is returned, naming its variable.
    pub fn load(env: Env) -> Result<Self, ConfigError> {
        let file = match env.get(MEND_CONFIG) {
            Some(path) => {
                let file = ConfigFile::load(Path::new(path))?;
                file.check_known_keys(FILE_KEYS, FILE_TABLES)?;
                Some(file)
            }
            None => None,
        };
        Self::from_source(ConfigSource::new(env, file))
    }

    /// [`MendConfig::load`] from a plain map, as tests write it.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::load(Env::from_map(vars.clone()))
    }

    /// Builds from an environment and an already-parsed file.
    pub fn from_source(source: ConfigSource) -> Result<Self, ConfigError> {
        let data_dir = source.raw(MEND_DATA_DIR, "data_dir")?.map_or_else(
            || PathBuf::from(defaults::DATA_DIR),
            |raw| PathBuf::from(raw.text),
        );
        let nats = NatsConfig::from_source(&source)?;
        let server_addr = address(
            &source,
            MEND_SERVER_ADDR,
            "server_addr",
            defaults::SERVER_PORT,
        )?;
        let registry_addr = address(
            &source,
            MEND_REGISTRY_ADDR,
            "registry_addr",
            defaults::REGISTRY_PORT,
        )?;
        let ingest_addr = address(
            &source,
            MEND_INGEST_ADDR,
            "ingest_addr",
            defaults::INGEST_PORT,
        )?;
        let http_addr = address(&source, MEND_HTTP_ADDR, "http_addr", defaults::HTTP_PORT)?;
        let log = LogConfig::from_source(&source)?;
        let registry_token = source.secret(MEND_REGISTRY_TOKEN, "registry_token")?;
        let shutdown_grace = shutdown_grace(&source)?;
        let otel = OtelConfig::from_source(&source)?;
        let tls = TlsConfig::from_source(&source)?;

        // No system root store is bundled (see CRATES.md: keep the tree lean), so an
        // https collector is only reachable through a CA we are given.
        if otel.as_ref().is_some_and(OtelConfig::is_https) && tls.ca.is_none() {
            return Err(ConfigError::Conflict {
                var: OTEL_EXPORTER_OTLP_ENDPOINT.to_owned(),
                reason: format!("uses https but {MEND_TLS_CA} is not set to the collector's CA"),
            });
        }

        Ok(Self {
            data_dir,
            nats,
            server_addr,
            registry_addr,
            ingest_addr,
            http_addr,
            log,
            registry_token,
            shutdown_grace,
            otel,
            tls,
            source,
        })
    }

    /// The environment and file this config came from, for service-specific settings.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// The injected environment, for `env().parse::<T>("MEND_…")`.
    pub fn env(&self) -> &Env {
        self.source.env()
    }

    /// A service's `[name]` table of the config file, or `T::default()`.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Default,
    {
        self.source.section(name)
    }
}

fn address(
    source: &ConfigSource,
    var: &str,
    file_key: &str,
    default_port: u16,
) -> Result<ServiceAddr, ConfigError> {
    source.parse_or(var, file_key, defaults::addr(default_port))
}

fn shutdown_grace(source: &ConfigSource) -> Result<Duration, ConfigError> {
    let Some(raw) = source.raw(MEND_SHUTDOWN_GRACE_MS, "shutdown_grace_ms")? else {
        return Ok(defaults::SHUTDOWN_GRACE);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        var: MEND_SHUTDOWN_GRACE_MS.to_owned(),
        value: raw.text.clone(),
        origin: raw.origin.clone(),
        reason,
    };
    let millis: u64 = raw
        .text
        .parse()
        .map_err(|err| invalid(format!("expected whole milliseconds: {err}")))?;
    if millis > defaults::MAX_SHUTDOWN_GRACE_MS {
        return Err(invalid(format!(
            "more than {} ms (one hour); the value is in milliseconds",
            defaults::MAX_SHUTDOWN_GRACE_MS
        )));
    }
    Ok(Duration::from_millis(millis))
}
