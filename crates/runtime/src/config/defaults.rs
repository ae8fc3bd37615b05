//! The defaults DESIGN.md promises ("Defaults a user can count on").

use std::time::Duration;

use super::addr::ServiceAddr;

/// Embedded stores and reports.
pub const DATA_DIR: &str = "./mend-data";
/// 8001 is the usual OIP/Triton gRPC port.
pub const SERVER_PORT: u16 = 8001;
/// Registry gRPC.
pub const REGISTRY_PORT: u16 = 8002;
/// Ingest gRPC.
pub const INGEST_PORT: u16 = 8003;
/// `/metrics`, `/healthz`, reports.
pub const HTTP_PORT: u16 = 8080;
/// Loopback by default: a fresh `mend up` must not expose anything to the network.
pub const HOST: &str = "127.0.0.1";
/// Everything at `info`, which is what an operator reads.
pub const LOG_FILTER: &str = "info";
/// Below Kubernetes' default 30 s `terminationGracePeriodSeconds`, so a service gives
/// up draining and exits on its own before the kubelet sends SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(25_000);
/// A grace longer than this is almost certainly a unit mistake (seconds for ms).
pub const MAX_SHUTDOWN_GRACE_MS: u64 = 3_600_000;

/// The default address on `port`.
pub fn addr(port: u16) -> ServiceAddr {
    ServiceAddr::new(HOST, port)
}
