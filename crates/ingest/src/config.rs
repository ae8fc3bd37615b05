//! The ingest service's own settings, read through `mend-runtime`'s config source: each from
//! its `MEND_INGEST_*` variable, else the `[ingest]` table of the `MEND_CONFIG` file, else the
//! default here. Errors name the variable.

use std::time::Duration;

use mend_runtime::MendConfig;
use mend_runtime::config::{
    ConfigError, ConfigSource, TlsConfig, random_instance, replica_instance,
};

/// Most rows (or labels) one batch may carry; a larger batch fails the stream with
/// INVALID_ARGUMENT (gRPC) or is dead-lettered whole (NATS).
pub const MEND_INGEST_MAX_BATCH_ROWS: &str = "MEND_INGEST_MAX_BATCH_ROWS";
/// Largest gRPC message (one batch), in bytes.
pub const MEND_INGEST_MAX_MESSAGE_BYTES: &str = "MEND_INGEST_MAX_MESSAGE_BYTES";
/// Bytes of batches admitted but not yet appended, over all streams; past it, streams wait
/// (and HTTP/2 flow control slows their producers) instead of buffering.
pub const MEND_INGEST_MAX_IN_FLIGHT_BYTES: &str = "MEND_INGEST_MAX_IN_FLIGHT_BYTES";
/// Most rejected rows listed in one summary; the count is always complete.
pub const MEND_INGEST_MAX_LISTED_REJECTIONS: &str = "MEND_INGEST_MAX_LISTED_REJECTIONS";
/// Largest value a row may carry, in bytes: a text cell, a column name, a row id or a label.
pub const MEND_INGEST_MAX_VALUE_BYTES: &str = "MEND_INGEST_MAX_VALUE_BYTES";
/// Largest row (or label), in bytes: its id and every column name and value together. Must
/// stay under the NATS server's `max_payload` (1 MiB by default), which every stored row
/// crosses as one message.
pub const MEND_INGEST_MAX_ROW_BYTES: &str = "MEND_INGEST_MAX_ROW_BYTES";
/// How long a champion's schema is trusted before the registry is asked again, in ms.
pub const MEND_INGEST_SCHEMA_TTL_MS: &str = "MEND_INGEST_SCHEMA_TTL_MS";
/// This replica's name, which keys its promotion consumer. Default: `HOSTNAME`, else random.
pub const MEND_INGEST_INSTANCE: &str = "MEND_INGEST_INSTANCE";

/// Every variable above, for `--help` texts and docs.
pub const ALL: &[&str] = &[
    MEND_INGEST_MAX_BATCH_ROWS,
    MEND_INGEST_MAX_MESSAGE_BYTES,
    MEND_INGEST_MAX_IN_FLIGHT_BYTES,
    MEND_INGEST_MAX_LISTED_REJECTIONS,
    MEND_INGEST_MAX_VALUE_BYTES,
    MEND_INGEST_MAX_ROW_BYTES,
    MEND_INGEST_SCHEMA_TTL_MS,
    MEND_INGEST_INSTANCE,
];

/// Defaults: 10,000 rows and 16 MiB per batch, 256 MiB in flight, 1,000 rejections listed,
/// 64 KiB per value and 256 KiB per row, a 60 s schema time to live.
pub mod defaults {
    use std::time::Duration;

    pub const MAX_BATCH_ROWS: usize = 10_000;
    pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
    pub const MAX_IN_FLIGHT_BYTES: usize = 256 * 1024 * 1024;
    pub const MAX_LISTED_REJECTIONS: usize = 1_000;
    pub const MAX_VALUE_BYTES: usize = 64 * 1024;
    pub const MAX_ROW_BYTES: usize = 256 * 1024;
    pub const SCHEMA_TTL: Duration = Duration::from_secs(60);
}

/// How large a value and a row may be; larger ones are rejected with a reason naming the
/// setting, before anything reaches the data log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub max_value_bytes: usize,
    pub max_row_bytes: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            max_value_bytes: defaults::MAX_VALUE_BYTES,
            max_row_bytes: defaults::MAX_ROW_BYTES,
        }
    }
}

/// What the ingest service needs beyond the shared runtime settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub max_batch_rows: usize,
    pub max_message_bytes: usize,
    pub max_in_flight_bytes: usize,
    pub max_listed_rejections: usize,
    /// Per value and per row (`MEND_INGEST_MAX_VALUE_BYTES`, `MEND_INGEST_MAX_ROW_BYTES`).
    pub limits: SizeLimits,
    pub schema_ttl: Duration,
    /// Names this replica's durable promotion consumer (`mend-ingest-<instance>`).
    pub instance: String,
    /// gRPC server TLS (`MEND_TLS_*`).
    pub tls: TlsConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_batch_rows: defaults::MAX_BATCH_ROWS,
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            max_in_flight_bytes: defaults::MAX_IN_FLIGHT_BYTES,
            max_listed_rejections: defaults::MAX_LISTED_REJECTIONS,
            limits: SizeLimits::default(),
            schema_ttl: defaults::SCHEMA_TTL,
            instance: random_instance(),
            tls: TlsConfig::default(),
        }
    }
}

impl IngestConfig {
    /// Reads the ingest settings from the same environment and file as `config`.
    pub fn from_mend(config: &MendConfig) -> Result<IngestConfig, ConfigError> {
        let mut ingest = IngestConfig::from_source(config.source())?;
        ingest.tls = config.tls.clone();
        Ok(ingest)
    }

    /// Reads the ingest settings from an environment and optional file.
    pub fn from_source(source: &ConfigSource) -> Result<IngestConfig, ConfigError> {
        let max_batch_rows: usize = source.parse_or(
            MEND_INGEST_MAX_BATCH_ROWS,
            "ingest.max_batch_rows",
            defaults::MAX_BATCH_ROWS,
        )?;
        if max_batch_rows == 0 {
            return Err(source.invalid(
                MEND_INGEST_MAX_BATCH_ROWS,
                "ingest.max_batch_rows",
                "must be at least 1",
            ));
        }
        let max_message_bytes: usize = source.parse_or(
            MEND_INGEST_MAX_MESSAGE_BYTES,
            "ingest.max_message_bytes",
            defaults::MAX_MESSAGE_BYTES,
        )?;
        // Below 1 KiB not even a small batch fits; above 1 GiB is almost surely a typo.
        if !(1024..=1 << 30).contains(&max_message_bytes) {
            return Err(source.invalid(
                MEND_INGEST_MAX_MESSAGE_BYTES,
                "ingest.max_message_bytes",
                "must be between 1024 and 1073741824 bytes",
            ));
        }
        let max_in_flight_bytes: usize = source.parse_or(
            MEND_INGEST_MAX_IN_FLIGHT_BYTES,
            "ingest.max_in_flight_bytes",
            defaults::MAX_IN_FLIGHT_BYTES.max(max_message_bytes),
        )?;
        if max_in_flight_bytes < max_message_bytes {
            return Err(source.invalid(MEND_INGEST_MAX_IN_FLIGHT_BYTES,
                "ingest.max_in_flight_bytes",
                "must be at least MEND_INGEST_MAX_MESSAGE_BYTES, or no batch of the largest size could ever be admitted",
            ));
        }
        let max_listed_rejections = source.parse_or(
            MEND_INGEST_MAX_LISTED_REJECTIONS,
            "ingest.max_listed_rejections",
            defaults::MAX_LISTED_REJECTIONS,
        )?;
        let max_value_bytes: usize = source.parse_or(
            MEND_INGEST_MAX_VALUE_BYTES,
            "ingest.max_value_bytes",
            defaults::MAX_VALUE_BYTES,
        )?;
        if max_value_bytes == 0 {
            return Err(source.invalid(
                MEND_INGEST_MAX_VALUE_BYTES,
                "ingest.max_value_bytes",
                "must be at least 1",
            ));
        }
        let max_row_bytes: usize = source.parse_or(
            MEND_INGEST_MAX_ROW_BYTES,
            "ingest.max_row_bytes",
            defaults::MAX_ROW_BYTES.max(max_value_bytes),
        )?;
        if max_row_bytes < max_value_bytes {
            return Err(source.invalid(
                MEND_INGEST_MAX_ROW_BYTES,
                "ingest.max_row_bytes",
                "must be at least MEND_INGEST_MAX_VALUE_BYTES, or a row with one largest value could never be accepted",
            ));
        }
        let schema_ttl_ms: u64 = source.parse_or(
            MEND_INGEST_SCHEMA_TTL_MS,
            "ingest.schema_ttl_ms",
            defaults::SCHEMA_TTL.as_millis() as u64,
        )?;
        if schema_ttl_ms < 10 {
            return Err(source.invalid(
                MEND_INGEST_SCHEMA_TTL_MS,
                "ingest.schema_ttl_ms",
                "must be at least 10 milliseconds",
            ));
        }
        let instance = replica_instance(
            source,
            MEND_INGEST_INSTANCE,
            "ingest.instance",
            mend_bus::max_instance_len(crate::follow::CONSUMER_PREFIX),
        )?;
        Ok(IngestConfig {
            max_batch_rows,
            max_message_bytes,
            max_in_flight_bytes,
            max_listed_rejections,
            limits: SizeLimits {
                max_value_bytes,
                max_row_bytes,
            },
            schema_ttl: Duration::from_millis(schema_ttl_ms),
            instance,
            tls: TlsConfig::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_runtime::config::Env;

    use super::*;

    fn source(vars: &[(&str, &str)]) -> ConfigSource {
        ConfigSource::new(vars.iter().copied().collect::<Env>(), None)
    }

    #[test]
    fn defaults_and_overrides() {
        let config = IngestConfig::from_source(&source(&[("HOSTNAME", "ingest-0")])).unwrap();
        assert_eq!(config.max_batch_rows, defaults::MAX_BATCH_ROWS);
        assert_eq!(config.instance, "ingest-0");
        let config = IngestConfig::from_source(&source(&[
            (MEND_INGEST_MAX_BATCH_ROWS, "5"),
            (MEND_INGEST_SCHEMA_TTL_MS, "250"),
        ]))
        .unwrap();
        assert_eq!(config.max_batch_rows, 5);
        assert_eq!(config.schema_ttl, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            (MEND_INGEST_MAX_BATCH_ROWS, "0"),
            (MEND_INGEST_MAX_MESSAGE_BYTES, "12"),
            (MEND_INGEST_MAX_IN_FLIGHT_BYTES, "2048"),
            (MEND_INGEST_SCHEMA_TTL_MS, "soon"),
            (MEND_INGEST_INSTANCE, "a.b"),
        ] {
            let error = IngestConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert_eq!(error.var(), var, "{error}");
        }
    }
}
