//! Errors of the test harness.

use std::path::PathBuf;

/// Why a test server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(
        "nats-server binary not found: set NATS_SERVER_BIN or put nats-server on PATH \
         (e.g. `apt-get install nats-server`)"
    )]
    BinaryNotFound,
    #[error("failed to spawn {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to create the server's temp dir: {0}")]
    TempDir(std::io::Error),
    #[error("failed to find a free port: {0}")]
    FreePort(std::io::Error),
    #[error("nats-server exited early ({status}); log tail:\n{log}")]
    ExitedEarly { status: String, log: String },
    #[error("nats-server on port {port} not ready within {waited_ms} ms; log tail:\n{log}")]
    NotReady {
        port: u16,
        waited_ms: u128,
        log: String,
    },
    #[error("failed to stop nats-server: {0}")]
    Stop(std::io::Error),
}
