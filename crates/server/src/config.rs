//! The server's own settings, read through `mend-runtime`'s config source: each from its
//! `MEND_SERVER_*` variable, else the `[server]` table of the `MEND_CONFIG` file, else the
//! default here. Errors name the variable.

use std::str::FromStr;
use std::time::Duration;

use mend_runtime::MendConfig;
use mend_runtime::config::{
    ConfigError, ConfigSource, TlsConfig, random_instance, replica_instance,
};

/// Share of served rows whose inputs and outputs go to `predictions.<model>` (0 to 1).
pub const MEND_SERVER_SAMPLE_RATE: &str = "MEND_SERVER_SAMPLE_RATE";
/// Most rows one inference request may carry.
pub const MEND_SERVER_MAX_ROWS: &str = "MEND_SERVER_MAX_ROWS";
/// Largest request message, in bytes (gRPC message or REST body).
pub const MEND_SERVER_MAX_MESSAGE_BYTES: &str = "MEND_SERVER_MAX_MESSAGE_BYTES";
/// How often the server asks the registry for each champion, in milliseconds.
pub const MEND_SERVER_RECONCILE_MS: &str = "MEND_SERVER_RECONCILE_MS";
/// Comma-separated model names to serve; unset serves every model with a champion.
pub const MEND_SERVER_MODELS: &str = "MEND_SERVER_MODELS";
/// How many non-champion versions stay loaded for requests that name a version.
pub const MEND_SERVER_VERSION_CACHE: &str = "MEND_SERVER_VERSION_CACHE";
/// Sampled prediction batches that may wait for the data log before new ones are dropped.
pub const MEND_SERVER_LOG_QUEUE: &str = "MEND_SERVER_LOG_QUEUE";
/// This replica's name, which keys its event consumer. Default: `HOSTNAME`, else random.
pub const MEND_SERVER_INSTANCE: &str = "MEND_SERVER_INSTANCE";

/// Every variable above, for `--help` texts and docs.
pub const ALL: &[&str] = &[
    MEND_SERVER_SAMPLE_RATE,
    MEND_SERVER_MAX_ROWS,
    MEND_SERVER_MAX_MESSAGE_BYTES,
    MEND_SERVER_RECONCILE_MS,
    MEND_SERVER_MODELS,
    MEND_SERVER_VERSION_CACHE,
    MEND_SERVER_LOG_QUEUE,
    MEND_SERVER_INSTANCE,
];

/// Defaults: 1% of rows logged; 10,000 rows and 64 MiB per request; a 10 s reconcile.
pub mod defaults {
    use std::time::Duration;

    pub const SAMPLE_RATE: f64 = 0.01;
    pub const MAX_ROWS: usize = 10_000;
    pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
    pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(10);
    pub const VERSION_CACHE: usize = 4;
    pub const LOG_QUEUE: usize = 1024;
}

/// What the inference server needs to know beyond the shared runtime settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Share of rows logged to `predictions.<model>`, in `[0, 1]`.
    pub sample_rate: f64,
    pub max_rows: usize,
    pub max_message_bytes: usize,
    pub reconcile_interval: Duration,
    /// Models to serve; empty means every model the source lists.
    pub models: Vec<String>,
    pub version_cache: usize,
    pub log_queue: usize,
    /// Names this replica's durable event consumer (`mend-server-<instance>`).
    pub instance: String,
    /// gRPC server TLS (`MEND_TLS_*`).
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sample_rate: defaults::SAMPLE_RATE,
            max_rows: defaults::MAX_ROWS,
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            reconcile_interval: defaults::RECONCILE_INTERVAL,
            models: Vec::new(),
            version_cache: defaults::VERSION_CACHE,
            log_queue: defaults::LOG_QUEUE,
            instance: random_instance(),
            tls: TlsConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Reads the server settings from the same environment and file as `config`.
    pub fn from_mend(config: &MendConfig) -> Result<ServerConfig, ConfigError> {
        let mut server = ServerConfig::from_source(config.source())?;
        server.tls = config.tls.clone();
        Ok(server)
    }

    /// Reads the server settings from an environment and optional file.
    pub fn from_source(source: &ConfigSource) -> Result<ServerConfig, ConfigError> {
        let sample_rate = source.parse_or(
            MEND_SERVER_SAMPLE_RATE,
            "server.sample_rate",
            defaults::SAMPLE_RATE,
        )?;
        if !(0.0..=1.0).contains(&sample_rate) {
            return Err(source.invalid(
                MEND_SERVER_SAMPLE_RATE,
                "server.sample_rate",
                "must be a share between 0 and 1, e.g. 0.01 for 1% of rows",
            ));
        }
        let max_rows: usize =
            source.parse_or(MEND_SERVER_MAX_ROWS, "server.max_rows", defaults::MAX_ROWS)?;
        if max_rows == 0 {
            return Err(source.invalid(
                MEND_SERVER_MAX_ROWS,
                "server.max_rows",
                "must be at least 1",
            ));
        }
        let max_message_bytes: usize = source.parse_or(
            MEND_SERVER_MAX_MESSAGE_BYTES,
            "server.max_message_bytes",
            defaults::MAX_MESSAGE_BYTES,
        )?;
        // Below 1 KiB not even a small request fits; above 1 GiB is almost surely a typo.
        if !(1024..=1 << 30).contains(&max_message_bytes) {
            return Err(source.invalid(
                MEND_SERVER_MAX_MESSAGE_BYTES,
                "server.max_message_bytes",
                "must be between 1024 and 1073741824 bytes",
            ));
        }
        let reconcile_ms: u64 = source.parse_or(
            MEND_SERVER_RECONCILE_MS,
            "server.reconcile_ms",
            defaults::RECONCILE_INTERVAL.as_millis() as u64,
        )?;
        if reconcile_ms < 10 {
            return Err(source.invalid(
                MEND_SERVER_RECONCILE_MS,
                "server.reconcile_ms",
                "must be at least 10 milliseconds",
            ));
        }
        let models = source
            .parse::<ModelList>(MEND_SERVER_MODELS, "server.models")?
            .map(|list| list.0)
            .unwrap_or_default();
        let version_cache = source.parse_or(
            MEND_SERVER_VERSION_CACHE,
            "server.version_cache",
            defaults::VERSION_CACHE,
        )?;
        let log_queue: usize = source.parse_or(
            MEND_SERVER_LOG_QUEUE,
            "server.log_queue",
            defaults::LOG_QUEUE,
        )?;
        if log_queue == 0 {
            return Err(source.invalid(
                MEND_SERVER_LOG_QUEUE,
                "server.log_queue",
                "must be at least 1",
            ));
        }
        let instance = replica_instance(
            source,
            MEND_SERVER_INSTANCE,
            "server.instance",
            mend_bus::max_instance_len(crate::swap::CONSUMER_PREFIX),
        )?;
        Ok(ServerConfig {
            sample_rate,
            max_rows,
            max_message_bytes,
            reconcile_interval: Duration::from_millis(reconcile_ms),
            models,
            version_cache,
            log_queue,
            instance,
            tls: TlsConfig::default(),
        })
    }
}

/// `a, b,c` → `["a", "b", "c"]`, each a valid model name.
struct ModelList(Vec<String>);

impl FromStr for ModelList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut models = Vec::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            mend_bus::ModelName::new(name).map_err(|error| error.to_string())?;
            if !models.iter().any(|known| known == name) {
                models.push(name.to_owned());
            }
        }
        Ok(ModelList(models))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mend_runtime::config::Env;

    fn source(vars: &[(&str, &str)]) -> ConfigSource {
        ConfigSource::new(vars.iter().copied().collect::<Env>(), None)
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = ServerConfig::from_source(&source(&[("HOSTNAME", "server-7f9c")])).unwrap();
        assert_eq!(config.sample_rate, defaults::SAMPLE_RATE);
        assert_eq!(config.max_rows, defaults::MAX_ROWS);
        assert_eq!(config.reconcile_interval, defaults::RECONCILE_INTERVAL);
        assert!(config.models.is_empty());
        assert_eq!(config.instance, "server-7f9c");
    }

    #[test]
    fn values_are_read_and_models_split() {
        let config = ServerConfig::from_source(&source(&[
            (MEND_SERVER_SAMPLE_RATE, "0.5"),
            (MEND_SERVER_MAX_ROWS, "100"),
            (MEND_SERVER_RECONCILE_MS, "250"),
            (MEND_SERVER_MODELS, "churn, fraud,churn"),
            (MEND_SERVER_INSTANCE, "pod-a_b"),
        ]))
        .unwrap();
        assert_eq!(config.sample_rate, 0.5);
        assert_eq!(config.max_rows, 100);
        assert_eq!(config.reconcile_interval, Duration::from_millis(250));
        assert_eq!(config.models, vec!["churn".to_owned(), "fraud".to_owned()]);
        assert_eq!(config.instance, "pod-a_b");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            (MEND_SERVER_SAMPLE_RATE, "1.5"),
            (MEND_SERVER_SAMPLE_RATE, "often"),
            (MEND_SERVER_MAX_ROWS, "0"),
            (MEND_SERVER_MAX_MESSAGE_BYTES, "12"),
            (MEND_SERVER_RECONCILE_MS, "1"),
            (MEND_SERVER_MODELS, "a.b"),
            (MEND_SERVER_LOG_QUEUE, "0"),
            (MEND_SERVER_INSTANCE, "pod.a/b"),
        ] {
            let error = ServerConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert_eq!(error.var(), var, "{error}");
            assert!(error.to_string().contains(var), "{error}");
        }
    }
}
