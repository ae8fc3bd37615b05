//! Graceful shutdown: one cancellation token for the process, triggered by SIGTERM or
//! SIGINT (or by a caller), with readiness failed first and a grace timeout so a hung
//! drain cannot keep the process alive past its deadline.
//!
//! Order, as Kubernetes expects: signal → readiness fails → services drain (NATS
//! subscriptions, then gRPC) → exit, all within the grace period.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::readiness::Readiness;

/// The process-wide shutdown switch; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    readiness: Readiness,
}

/// The future did not finish within the grace period after shutdown began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("did not stop within the {grace:?} shutdown grace period")]
pub struct GraceExpired {
    /// The grace period that ran out.
    pub grace: Duration,
}

/// Signal handlers could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// Signal handling needs a Tokio runtime with I/O enabled.
    #[error("signal handling needs a tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// The OS refused the handler.
    #[error("failed to install the {signal} handler: {source}")]
    Install {
        /// `SIGTERM` or `SIGINT`.
        signal: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Shutdown {
    /// A fresh switch with its own readiness.
    pub fn new() -> Self {
        Self::default()
    }

    /// A switch that fails `readiness` when triggered.
    pub fn with_readiness(readiness: Readiness) -> Self {
        Self {
            token: CancellationToken::new(),
            readiness,
        }
    }

    /// The token services watch; cancelled when shutdown begins.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The readiness this switch fails.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Begins shutdown: readiness first, then the token. Idempotent.
    pub fn trigger(&self) {
        self.readiness.begin_shutdown();
        self.token.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has begun.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// Installs SIGTERM and SIGINT handlers now (so a failure is reported at start-up)
    /// and spawns a task that triggers shutdown on the first of them. The task ends
    /// quietly if shutdown is triggered some other way.
    pub fn listen_for_signals(&self) -> Result<JoinHandle<()>, ShutdownError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let _entered = runtime.enter();
        let signals = Signals::install()?;
        let shutdown = self.clone();
        Ok(runtime.spawn(async move {
            tokio::select! {
                signal = signals.recv() => {
                    tracing::info!(signal, "shutdown signal received; failing readiness and draining");
                    shutdown.trigger();
                }
                () = shutdown.token.cancelled() => {}
            }
        }))
    }

    /// Runs `work` to completion, unless shutdown begins and `work` is still running
    /// `grace` later; then `work` is dropped and [`GraceExpired`] returned. Use it around
    /// a service's whole run (serve + drain), so a hung drain cannot outlive the grace.
    pub async fn run_with_grace<F: Future>(
        &self,
        work: F,
        grace: Duration,
    ) -> Result<F::Output, GraceExpired> {
        let deadline = async {
            self.token.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            // Finishing exactly at the deadline still counts as finishing.
            biased;
            output = work => Ok(output),
            () = deadline => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown grace expired; stopping without finishing the drain");
                Err(GraceExpired { grace })
            }
        }
    }
}

/// The signals that mean "stop": SIGTERM (Kubernetes, docker stop) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Result<Self, ShutdownError> {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate =
            signal(SignalKind::terminate()).map_err(|source| ShutdownError::Install {
                signal: "SIGTERM",
                source,
            })?;
        let interrupt =
            signal(SignalKind::interrupt()).map_err(|source| ShutdownError::Install {
                signal: "SIGINT",
                source,
            })?;
        Ok(Self {
            terminate,
            interrupt,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self, ShutdownError> {
        Ok(Self {})
    }

    /// The name of the first signal received.
    #[cfg(unix)]
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn recv(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "ctrl-c",
            Err(_) => std::future::pending().await,
        }
    }
}
