//! Log output settings: format and filter.

use std::fmt;
use std::str::FromStr;

use super::defaults;
use super::error::ConfigError;
use super::source::ConfigSource;
use super::vars::{MEND_LOG, MEND_LOG_FORMAT};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, multi-line; for terminals.
    #[default]
    Pretty,
    /// One JSON object per line; for containers and log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected `pretty` or `json`".to_owned()),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pretty => "pretty",
            Self::Json => "json",
        })
    }
}

/// `MEND_LOG_FORMAT` and `MEND_LOG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `EnvFilter` directives, already checked to parse.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: defaults::LOG_FILTER.to_owned(),
        }
    }
}

impl LogConfig {
    pub(crate) fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let format = source.parse_or(MEND_LOG_FORMAT, "log_format", LogFormat::default())?;
        let Some(raw) = source.raw(MEND_LOG, "log")? else {
            return Ok(Self {
                format,
                ..Self::default()
            });
        };
        // Parsed here, not at telemetry init, so a typo fails with the variable's name.
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&raw.text) {
            return Err(ConfigError::Invalid {
                var: MEND_LOG.to_owned(),
                value: raw.text,
                origin: raw.origin,
                reason: err.to_string(),
            });
        }
        Ok(Self {
            format,
            filter: raw.text,
        })
    }
}
