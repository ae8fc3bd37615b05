//! The rollback guard: after a promotion, the new champion and its predecessor are judged
//! on the same rows labeled after the move. If the new one is worse by more than the margin,
//! the champion moves back (compare-and-set, so a newer promotion is never undone) and an
//! alert says why; the registry announces `model.rolled_back.<model>`.
//!
//! Guards live in memory: a trainer restart forgets the guards it was running (a missed
//! rollback is then left to the monitor's performance drift, which triggers a retrain).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mend_bus::events::Severity;
use mend_bus::{Bus, DataLog, ModelName, Window};
use mend_client::RegistryClient;
use tokio_util::sync::CancellationToken;

use crate::alerts;
use crate::config::GuardPolicy;
use crate::error::TrainerError;
use crate::evaluate::live_accuracy;
use crate::metrics::TrainerMetrics;
use crate::registry::{self, LoadedVersion, MoveOutcome};
use crate::window::load_labeled;

/// What a guard watches: the new champion and the one it replaced.
#[derive(Debug, Clone)]
pub struct GuardStart {
    pub new: LoadedVersion,
    pub predecessor: Option<LoadedVersion>,
}

/// How a guard ended.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardVerdict {
    /// The new champion held up; it stays.
    Kept {
        new_accuracy: f64,
        old_accuracy: f64,
    },
    /// The champion moved back to the predecessor.
    RolledBack {
        new_accuracy: f64,
        old_accuracy: f64,
    },
    /// The champion moved elsewhere meanwhile, or there is nothing to compare with.
    Abandoned { reason: String },
}

/// The running guards, one per model (a newer promotion replaces the older guard).
#[derive(Debug, Clone)]
pub struct Guards {
    inner: Arc<GuardsInner>,
}

#[derive(Debug)]
struct GuardsInner {
    bus: Arc<dyn Bus>,
    data_log: Arc<dyn DataLog>,
    registry: RegistryClient,
    policy: GuardPolicy,
    metrics: TrainerMetrics,
    shutdown: CancellationToken,
    running: Mutex<HashMap<ModelName, CancellationToken>>,
    verdicts: tokio::sync::broadcast::Sender<(ModelName, u64, GuardVerdict)>,
}

impl Guards {
    pub fn new(
        bus: Arc<dyn Bus>,
        data_log: Arc<dyn DataLog>,
        registry: RegistryClient,
        policy: GuardPolicy,
        metrics: TrainerMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        let (verdicts, _) = tokio::sync::broadcast::channel(64);
        Guards {
            inner: Arc::new(GuardsInner {
                bus,
                data_log,
                registry,
                policy,
                metrics,
                shutdown,
                running: Mutex::new(HashMap::new()),
                verdicts,
            }),
        }
    }

    /// Verdicts as guards end: model, guarded version, verdict.
    pub fn verdicts(&self) -> tokio::sync::broadcast::Receiver<(ModelName, u64, GuardVerdict)> {
        self.inner.verdicts.subscribe()
    }

    /// Starts watching a promotion; `labels_seq` is the newest label before the move.
    pub fn start(&self, model: ModelName, start: GuardStart, labels_seq: u64) {
        if self.inner.policy.rows == 0 {
            return;
        }
        let Some(predecessor) = start.predecessor else {
            return;
        };
        let token = self.inner.shutdown.child_token();
        let replaced = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(model.clone(), token.clone());
        if let Some(older) = replaced {
            older.cancel();
        }
        let inner = Arc::clone(&self.inner);
        let new = start.new;
        tokio::spawn(async move {
            let version = new.meta.version;
            let verdict = tokio::select! {
                () = token.cancelled() => return,
                verdict = watch(&inner, &model, &new, &predecessor, labels_seq) => verdict,
            };
            match verdict {
                Ok(verdict) => {
                    tracing::info!(%model, version, ?verdict, "rollback guard finished");
                    let _ = inner.verdicts.send((model, version, verdict));
                }
                Err(error) => tracing::error!(%model, version, %error, "rollback guard failed"),
            }
        });
    }
}

async fn watch(
    inner: &GuardsInner,
    model: &ModelName,
    new: &LoadedVersion,
    old: &LoadedVersion,
    labels_seq: u64,
) -> Result<GuardVerdict, TrainerError> {
    let policy = &inner.policy;
    let new_version = new.meta.version;
    let old_version = old.meta.version;
    let window = Window::sequence(labels_seq + 1, None).with_limit(policy.rows);
    let data = loop {
        tokio::time::sleep(policy.poll).await;
        let champion = registry::champion_version(&inner.registry, model.as_str()).await;
        match champion {
            Ok(Some(version)) if version == new_version => {}
            Ok(other) => {
                return Ok(GuardVerdict::Abandoned {
                    reason: format!("the champion is now {other:?}"),
                });
            }
            Err(error) => {
                tracing::warn!(%model, %error, "guard cannot read the champion; trying again");
                continue;
            }
        }
        let data = load_labeled(inner.data_log.as_ref(), model, &window).await?;
        if data.len() >= policy.rows {
            break data;
        }
        tracing::debug!(%model, labeled = data.len(), needed = policy.rows, "guard waiting for labels");
    };
    let (new_artifact, old_artifact) = (new.artifact.clone(), old.artifact.clone());
    let (new_accuracy, old_accuracy) = tokio::task::spawn_blocking(move || {
        Ok::<_, TrainerError>((
            live_accuracy(&new_artifact, &data.rows, &data.labels)?,
            live_accuracy(&old_artifact, &data.rows, &data.labels)?,
        ))
    })
    .await??;
    if new_accuracy + policy.margin >= old_accuracy {
        return Ok(GuardVerdict::Kept {
            new_accuracy,
            old_accuracy,
        });
    }
    let reason = format!(
        "rollback guard: live accuracy of version {new_version} is {new_accuracy:.4}, below version {old_version}'s {old_accuracy:.4} by more than {:.4} over {} labeled rows",
        policy.margin, policy.rows
    );
    let trigger = format!("guard-{model}-v{new_version}");
    match registry::move_champion(
        &inner.registry,
        model.as_str(),
        old_version,
        Some(new_version),
        &reason,
        &trigger,
    )
    .await?
    {
        MoveOutcome::Moved => {
            tracing::warn!(%model, from = new_version, to = old_version, %reason, "champion rolled back");
            inner.metrics.rollback(model.as_str());
            alerts::raise(
                inner.bus.as_ref(),
                model,
                Severity::Critical,
                format!(
                    "{model}: rolled back from version {new_version} to {old_version}. {reason}"
                ),
                None,
                &format!("rolled-back-v{new_version}"),
            )
            .await;
            Ok(GuardVerdict::RolledBack {
                new_accuracy,
                old_accuracy,
            })
        }
        MoveOutcome::Conflict(message) => Ok(GuardVerdict::Abandoned {
            reason: format!("the champion moved before the rollback: {message}"),
        }),
    }
}
