//! Telemetry: `tracing` to stderr (pretty or JSON) under an env filter, plus span export
//! over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with the W3C TraceContext
//! propagator installed globally.
//!
//! - [`init`] installs it all once per process and returns a [`TelemetryGuard`].
//! - [`propagation`]: trace context in gRPC metadata (client interceptor, server span).

pub mod propagation;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, MendConfig, OtelConfig, TlsConfig};

/// Telemetry could not be set up (or flushed).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `MEND_LOG` does not parse (config validation normally catches this first).
    #[error("MEND_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// The OTLP exporter could not be built.
    #[error("failed to build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The CA for an https collector could not be read.
    #[error("failed to read MEND_TLS_CA {path:?} for the OTLP exporter: {source}")]
    ReadCa {
        /// The CA path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The exporter's gRPC channel needs a running Tokio runtime.
    #[error("span export needs a tokio runtime: call telemetry::init inside one")]
    NoRuntime,
    /// A global subscriber was already installed in this process.
    #[error("telemetry already initialised: {0}")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
    /// Flushing spans at shutdown failed (collector unreachable, timeout).
    #[error("failed to flush spans: {0}")]
    Flush(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// The flush task panicked or was cancelled.
    #[error("span flush task failed: {0}")]
    FlushTask(#[from] tokio::task::JoinError),
}

/// Keeps span export alive. [`TelemetryGuard::shutdown`] (or drop) flushes buffered
/// spans; call it last in `main`, after every service has stopped.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops span export.
    pub async fn shutdown(mut self) -> Result<(), TelemetryError> {
        let Some(provider) = self.provider.take() else {
            return Ok(());
        };
        // The batch processor's thread exports through a tonic channel driven by this
        // runtime; blocking a runtime thread on it could starve that channel (and
        // deadlock a current-thread runtime), so the wait happens on the blocking pool.
        tokio::task::spawn_blocking(move || provider.shutdown()).await??;
        Ok(())
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "failed to flush spans on drop");
        }
    }
}

/// Installs the global `tracing` subscriber and, when configured, OTLP span export.
/// `default_service_name` (`mend-server`, …) is used unless `OTEL_SERVICE_NAME` is set.
/// With export on, call it inside a Tokio runtime.
pub fn init(
    config: &MendConfig,
    default_service_name: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    // Set even without export: a request's traceparent is still read and passed on.
    global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_new(&config.log.filter)?;
    let provider = match &config.otel {
        Some(otel) => Some(tracer_provider(otel, &config.tls, default_service_name)?),
        None => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("mend")));
    // stderr, so CLI commands sharing this init keep stdout for their output.
    let (pretty, json) = match config.log.format {
        LogFormat::Pretty => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a person at a terminal, never in a file or a pipe.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(pretty)
        .with(json)
        .try_init()?;

    if let Some(provider) = &provider {
        global::set_tracer_provider(provider.clone());
        tracing::info!(endpoint = ?config.otel.as_ref().map(|otel| &otel.endpoint), "exporting spans over otlp");
    }
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    otel: &OtelConfig,
    tls: &TlsConfig,
    default_service_name: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime);
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otel.endpoint.clone());
    if otel.is_https()
        && let Some(ca_path) = &tls.ca
    {
        let ca = std::fs::read(ca_path).map_err(|source| TelemetryError::ReadCa {
            path: ca_path.clone(),
            source,
        })?;
        builder = builder
            .with_tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)));
    }
    let exporter = builder.build()?;
    let service_name = otel
        .service_name
        .clone()
        .unwrap_or_else(|| default_service_name.to_owned());
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
