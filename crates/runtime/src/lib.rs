//! mend-runtime: what every mend service shares, and nothing about what any one does.
//!
//! - [`config`]: `MEND_*` variables from an injected environment over an optional TOML
//!   file, validated before anything binds; secrets redacted.
//! - [`telemetry`]: `tracing` (pretty or JSON), OTLP span export, W3C trace context in
//!   gRPC metadata.
//! - [`metrics`]: the process's Prometheus registry.
//! - [`http`]: `/metrics`, `/healthz`, `/livez` on a router services extend, served on a
//!   caller-bound listener.
//! - [`readiness`]: whether the process should get traffic; shutdown fails it first.
//! - [`shutdown`]: SIGTERM/SIGINT → cancellation token, with a grace timeout.
//! - [`health`]: `grpc.health.v1` reporters per service name.
//! - [`grpc`]: a configured tonic server builder (request spans, TLS) and client endpoint.
//! - [`nats`]: async-nats connect options (auth, TLS) from `MEND_NATS_*`.
//! - [`probe`]: `--health-check`, one `GET /healthz` of the process's own HTTP port (plain
//!   or TLS, as the port serves), for images without a shell.
//!
//! - [`service`]: a service binary's arguments and process: load [`config::MendConfig`] and
//!   the service's settings (bad config: print, exit 2) → [`telemetry::init`] → serve → flush
//!   telemetry ([`service::service_main`]); or, given `--health-check`, probe the running
//!   service's `/healthz` and exit 0 or 1.
//! - [`host`]: the one host of every service ([`host::Service`]: its settings, ports,
//!   dependencies and `run(config, deps, listeners, shutdown)`): bind → open the bus and
//!   stores → readiness and signals → ops HTTP → run within the shutdown grace. Each service
//!   binary's `main` is `host::main::<S>()`; `mend up` is [`host::serve`] of the five as one.

pub mod config;
pub mod grpc;
pub mod health;
pub mod host;
pub mod http;
pub mod metrics;
pub mod nats;
pub mod probe;
pub mod readiness;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use config::{MendConfig, Secret};
pub use health::{Health, HealthReporter};
pub use metrics::Metrics;
pub use readiness::{Readiness, ReadyGate};
pub use shutdown::{GraceExpired, Shutdown};
pub use telemetry::TelemetryGuard;
