//! Readiness: whether this process should receive traffic.
//!
//! Each part that must be up before traffic arrives registers a gate (`mend up` runs
//! several services in one process; each holds its own gate). The process is ready when
//! every gate is open and shutdown has not begun. Shutdown closes readiness first, so
//! Kubernetes stops routing to the pod before anything is drained.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Shared readiness state; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    shutting_down: AtomicBool,
    gates: Mutex<BTreeMap<String, bool>>,
}

/// One part's say in readiness, created closed.
#[derive(Debug)]
pub struct ReadyGate {
    readiness: Readiness,
    name: String,
}

impl Readiness {
    /// No gates, not shutting down: ready until a gate is registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a gate, closed until [`ReadyGate::open`]. Registering a name twice
    /// shares the same gate.
    pub fn gate(&self, name: impl Into<String>) -> ReadyGate {
        let name = name.into();
        self.gates().entry(name.clone()).or_insert(false);
        ReadyGate {
            readiness: self.clone(),
            name,
        }
    }

    /// Ready: not shutting down and every gate open.
    pub fn is_ready(&self) -> bool {
        !self.is_shutting_down() && self.gates().values().all(|open| *open)
    }

    /// Names of gates still closed, for the `/healthz` body and logs.
    pub fn waiting_for(&self) -> Vec<String> {
        self.gates()
            .iter()
            .filter(|(_, open)| !**open)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Marks shutdown begun; readiness never comes back.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    fn set(&self, name: &str, open: bool) {
        self.gates().insert(name.to_owned(), open);
    }

    /// A panic while holding this lock cannot leave the map half-written (single
    /// inserts), so a poisoned lock is still safe to use.
    fn gates(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.inner
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReadyGate {
    /// This part is ready for traffic.
    pub fn open(&self) {
        self.readiness.set(&self.name, true);
    }

    /// This part is not ready (lost a dependency, reloading).
    pub fn close(&self) {
        self.readiness.set(&self.name, false);
    }

    /// The gate's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_gate_is_open_and_never_after_shutdown() {
        let readiness = Readiness::new();
        let server = readiness.gate("server");
        let registry = readiness.gate("registry");
        assert!(!readiness.is_ready());
        server.open();
        assert_eq!(readiness.waiting_for(), vec!["registry".to_owned()]);
        registry.open();
        assert!(readiness.is_ready());
        readiness.begin_shutdown();
        assert!(!readiness.is_ready());
        server.open();
        assert!(!readiness.is_ready());
    }
}
