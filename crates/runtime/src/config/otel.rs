//! OpenTelemetry export settings.

use super::error::ConfigError;
use super::source::ConfigSource;
use super::vars::{OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME};

/// Present when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans go to that OTLP/gRPC endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtelConfig {
    /// `http://collector:4317` (or `https://…`, which needs `MEND_TLS_CA`).
    pub endpoint: String,
    /// `OTEL_SERVICE_NAME`; unset means the binary's own name.
    pub service_name: Option<String>,
}

impl OtelConfig {
    /// Whether the endpoint is dialed over TLS.
    pub fn is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    pub(crate) fn from_source(source: &ConfigSource) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = source.raw(OTEL_EXPORTER_OTLP_ENDPOINT, "otel.endpoint")? else {
            return Ok(None);
        };
        if let Err(reason) = validate_endpoint(&raw.text) {
            return Err(ConfigError::Invalid {
                var: OTEL_EXPORTER_OTLP_ENDPOINT.to_owned(),
                value: raw.text,
                origin: raw.origin,
                reason,
            });
        }
        let service_name = source
            .raw(OTEL_SERVICE_NAME, "otel.service_name")?
            .map(|raw| raw.text);
        Ok(Some(Self {
            endpoint: raw.text,
            service_name,
        }))
    }
}

fn validate_endpoint(text: &str) -> Result<(), String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|err| format!("not a URI ({err}); expected e.g. http://otel-collector:4317"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(
                "expected an http:// or https:// URI, e.g. http://otel-collector:4317".to_owned(),
            );
        }
    }
    if uri.authority().is_none() {
        return Err("has no host".to_owned());
    }
    Ok(())
}
