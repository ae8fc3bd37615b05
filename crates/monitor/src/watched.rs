//! Which models the monitor watches, and their loops.
//!
//! Without an allow-list (`MEND_MONITOR_MODELS` unset) the monitor watches every model that has
//! a champion: it lists them from the [`ChampionSource`] at start and at every champion
//! refresh, and a `model.promoted` of a model it does not watch yet starts that model's loop
//! at once, once the registry confirms the model has a champion (events are hints). A model
//! that no longer has a champion at a listing has its loop stopped. With an allow-list,
//! exactly the listed models are watched, from the start, whether or not they have a
//! champion yet (the loop waits for one), and discovery adds nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mend_bus::ModelName;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::follow::Signals;
use crate::worker::WorkerParts;

/// One model's running loop.
#[derive(Debug)]
struct Running {
    signals: Arc<Signals>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// When it started watching, in [`WatchedModels::started`] counts: a listing taken
    /// before then may not know the model yet, and must not stop it.
    since: u64,
}

/// The watched models; cheap to share.
#[derive(Debug)]
pub(crate) struct WatchedModels {
    /// `None`: every model with a champion.
    allow: Option<BTreeSet<String>>,
    /// What every loop is built from.
    template: WorkerParts,
    shutdown: CancellationToken,
    running: Mutex<HashMap<String, Running>>,
    /// Loops started so far.
    started: AtomicU64,
}

impl WatchedModels {
    /// `allow`: the allow-list (empty: discover every model with a champion).
    pub fn new(
        allow: &[ModelName],
        template: WorkerParts,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let allow =
            (!allow.is_empty()).then(|| allow.iter().map(|m| m.as_str().to_owned()).collect());
        Arc::new(WatchedModels {
            allow,
            template,
            shutdown,
            running: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
        })
    }

    /// Whether `model` may be watched.
    pub fn allowed(&self, model: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.contains(model))
    }

    /// The signals of a watched model's loop.
    pub fn signals(&self, model: &str) -> Option<Arc<Signals>> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.get(model).map(|r| Arc::clone(&r.signals))
    }

    /// Starts `model`'s loop unless it runs or is not allowed; returns its signals when it
    /// is watched.
    pub fn watch(&self, model: &ModelName) -> Option<Arc<Signals>> {
        if !self.allowed(model.as_str()) || self.shutdown.is_cancelled() {
            return None;
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = running.get(model.as_str()) {
            return Some(Arc::clone(&existing.signals));
        }
        let signals = Arc::new(Signals::default());
        let stop = self.shutdown.child_token();
        let worker = self.template.worker(model.clone(), Arc::clone(&signals));
        tracing::info!(%model, "watching model");
        self.template.metrics.watched(running.len() + 1);
        let task = tokio::spawn(worker.run(stop.clone()));
        let since = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        running.insert(
            model.as_str().to_owned(),
            Running {
                signals: Arc::clone(&signals),
                stop,
                task,
                since,
            },
        );
        Some(signals)
    }

    /// Starts `model`'s loop on a promotion heard on the bus. Events are hints: without an
    /// allow-list, a model not watched yet is only watched if the registry says it has a
    /// champion, so a forged event starts nothing.
    pub async fn watch_promoted(&self, model: &ModelName) -> Option<Arc<Signals>> {
        if let Some(signals) = self.signals(model.as_str()) {
            return Some(signals);
        }
        if self.allow.is_none() {
            match self.template.champions.champion(model).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::info!(%model, "ignored a promotion of a model the registry has no champion for");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(%model, %error, "could not check a promotion with the registry; the next listing will");
                    return None;
                }
            }
        }
        self.watch(model)
    }

    /// Starts the allow-listed models' loops (with an allow-list), or lists the models with
    /// a champion, watches the new ones and stops those that no longer have one (without).
    pub async fn refresh(&self) {
        if let Some(allow) = &self.allow {
            for name in allow {
                if let Ok(model) = ModelName::new(name.as_str()) {
                    self.watch(&model);
                }
            }
            return;
        }
        // A model whose loop starts while the listing is under way (its promotion was just
        // heard) may be missing from it: only loops started before it can be stopped by it.
        let listed_after = self.started.load(Ordering::SeqCst);
        let models = match self.template.champions.models().await {
            Ok(models) => models,
            Err(error) => {
                tracing::warn!(%error, "cannot list the models with a champion; trying again at the next refresh");
                return;
            }
        };
        for model in &models {
            self.watch(model);
        }
        let present: BTreeSet<&str> = models.iter().map(ModelName::as_str).collect();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let gone: Vec<String> = running
            .iter()
            .filter(|(name, r)| r.since <= listed_after && !present.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(stopped) = running.remove(&name) {
                tracing::info!(model = %name, "model has no champion any more: no longer watched");
                stopped.stop.cancel();
            }
        }
        self.template.metrics.watched(running.len());
    }

    /// Waits for every loop to end (after shutdown).
    pub async fn join(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            running.drain().map(|(_, r)| r.task).collect()
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Keeps the watched set current until `shutdown`: a listing at start and at every
/// `every`.
pub(crate) async fn keep_current(
    models: Arc<WatchedModels>,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        models.refresh().await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
