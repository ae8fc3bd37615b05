//! The rollback guard: after a promotion, the new champion and its predecessor are judged
//! on the same rows labeled after the move. If the new one is worse by more than the margin,
//! the champion moves back (compare-and-set, so a newer promotion is never undone) and an
//! alert says why; the registry announces `model.rolled_back.<model>`.
//!
//! Guards survive a trainer restart through the registry's audit log, with nothing kept on
//! the trainer's side: the trainer's champion move names the newest label sequence before
//! it in its reason ([`promotion_reason`]), and a guard that passes points the
//! [`GUARDED_ALIAS`] alias at the version it passed. A rollback is a champion move itself.
//! On start ([`Guards::resume_on_start`]) a champion last moved by the trainer, with that
//! mark and a predecessor, and not yet marked as guarded since, is watched again from the
//! same label sequence.

use std::sync::Arc;

use mend_bus::events::Severity;
use mend_bus::{Bus, DataLog, ModelName};
use mend_client::{CHAMPION, RegistryClient};
use mend_proto::registry::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::alerts;
use crate::config::GuardPolicy;
use crate::error::TrainerError;
use crate::evaluate::live_accuracy;
use crate::lineage::ACTOR;
use crate::metrics::TrainerMetrics;
use crate::per_model::{ChampionCheck, LabelsAfter, PerModel, Watched, resume_with_backoff};
use crate::registry::{self, LoadedVersion, MoveOutcome};
use crate::window::join_labels;

/// The alias the trainer points at a champion once its rollback guard passed: the durable
/// "this guard is over" record (a rollback needs none: it moves the champion away).
pub const GUARDED_ALIAS: &str = "guarded";

/// Opens the mark a trainer's champion move carries in its audit reason.
const LABELS_SEQ_MARK: &str = " (rollback guard from label seq ";

/// The reason recorded with a champion move a guard or a follow-up will watch: `reason` plus
/// the newest label sequence before the move, which a restarted trainer reads back to resume
/// them.
pub fn promotion_reason(reason: &str, labels_seq: u64) -> String {
    format!("{reason}{LABELS_SEQ_MARK}{labels_seq})")
}

/// The label sequence a [`promotion_reason`] carries, if it carries one.
pub fn labels_seq_in(reason: &str) -> Option<u64> {
    let (_, rest) = reason.rsplit_once(LABELS_SEQ_MARK)?;
    rest.strip_suffix(')')?.parse().ok()
}

/// What a guard watches: the new champion and the one it replaced.
#[derive(Debug, Clone)]
pub struct GuardStart {
    pub new: LoadedVersion,
    pub predecessor: Option<LoadedVersion>,
}

/// How a guard ended.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardVerdict {
    /// The new champion held up; it stays (and the `guarded` alias points at it).
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

/// A promotion whose guard has not concluded, as the audit log tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingGuard {
    version: u64,
    predecessor: u64,
    labels_seq: u64,
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
    running: PerModel,
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
                running: PerModel::default(),
                verdicts,
            }),
        }
    }

    /// Verdicts as guards end: model, guarded version, verdict.
    pub fn verdicts(&self) -> tokio::sync::broadcast::Receiver<(ModelName, u64, GuardVerdict)> {
        self.inner.verdicts.subscribe()
    }

    /// Whether promotions are guarded at all.
    pub fn enabled(&self) -> bool {
        self.inner.policy.rows > 0
    }

    /// Whether a guard of `model` is watching a promotion now (the next retrain of the model
    /// waits for its verdict, which the data decides).
    pub fn watching(&self, model: &ModelName) -> bool {
        self.inner.running.is_running(model)
    }

    /// Starts watching a promotion; `labels_seq` is the newest label the new version learned
    /// from (or, without one, the newest label before the move).
    pub fn start(&self, model: ModelName, start: GuardStart, labels_seq: u64) {
        if !self.enabled() {
            return;
        }
        let Some(predecessor) = start.predecessor else {
            return;
        };
        self.spawn(model, start.new, predecessor, labels_seq, true);
    }

    /// Resumes the guard of `model`'s champion if the trainer promoted it and its guard
    /// has not concluded; returns the version now watched. With `replace` false, a guard
    /// already running for the model is left alone (it watches a promotion at least as new).
    pub async fn resume(
        &self,
        model: &ModelName,
        replace: bool,
    ) -> Result<Option<u64>, TrainerError> {
        if !self.enabled() {
            return Ok(None);
        }
        let registry = &self.inner.registry;
        let audit = registry::audit(registry, model.as_str()).await?;
        let Some(pending) = pending_guard(&audit) else {
            return Ok(None);
        };
        let new = registry::version(registry, model.as_str(), pending.version).await?;
        let predecessor = registry::version(registry, model.as_str(), pending.predecessor).await?;
        if !self.spawn(model.clone(), new, predecessor, pending.labels_seq, replace) {
            return Ok(None);
        }
        tracing::info!(
            %model,
            version = pending.version,
            predecessor = pending.predecessor,
            labels_seq = pending.labels_seq,
            "rollback guard resumed"
        );
        Ok(Some(pending.version))
    }

    /// Resumes the pending guard of every model the registry knows; returns what it resumed.
    pub async fn resume_all(&self) -> Result<Vec<(ModelName, u64)>, TrainerError> {
        let mut resumed = Vec::new();
        if !self.enabled() {
            return Ok(resumed);
        }
        for model in registry::champion_models(&self.inner.registry).await? {
            if let Some(version) = self.resume(&model, false).await? {
                resumed.push((model, version));
            }
        }
        Ok(resumed)
    }

    /// At trainer start: [`Guards::resume_all`], tried again with backoff while the
    /// registry cannot be reached, until it succeeds or `shutdown`.
    pub async fn resume_on_start(self, shutdown: CancellationToken) {
        let first_delay = self.inner.policy.poll;
        resume_with_backoff("rollback guards", first_delay, shutdown, || {
            self.resume_all()
        })
        .await;
    }

    /// Spawns a guard of `new` against `predecessor`; false when `replace` is off and one runs.
    fn spawn(
        &self,
        model: ModelName,
        new: LoadedVersion,
        predecessor: LoadedVersion,
        labels_seq: u64,
        replace: bool,
    ) -> bool {
        let Some((id, token)) = self
            .inner
            .running
            .begin(&model, &self.inner.shutdown, replace)
        else {
            return false;
        };
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let version = new.meta.version;
            let verdict = tokio::select! {
                () = token.cancelled() => return,
                verdict = watch(&inner, &model, &new, &predecessor, labels_seq) => verdict,
            };
            match verdict {
                Ok(verdict) => {
                    if let GuardVerdict::Kept { .. } = verdict {
                        mark_passed(&inner, &model, version).await;
                    }
                    tracing::info!(%model, version, ?verdict, "rollback guard finished");
                    let _ = inner.verdicts.send((model.clone(), version, verdict));
                }
                Err(error) => tracing::error!(%model, version, %error, "rollback guard failed"),
            }
            inner.running.end(&model, id);
        });
        true
    }
}

/// The champion's guard still to be run, by the audit log: the last champion move was the
/// trainer's, carries the label mark, had a predecessor, and no `guarded` move to the same
/// version followed it.
fn pending_guard(audit: &[pb::AuditRecord]) -> Option<PendingGuard> {
    let (promotion, labels_seq) = trainer_promotion(audit)?;
    let predecessor = promotion.previous_version?;
    let concluded = audit.iter().any(|record| {
        moves(record, GUARDED_ALIAS)
            && record.seq > promotion.seq
            && record.version == promotion.version
    });
    (!concluded).then_some(PendingGuard {
        version: promotion.version,
        predecessor,
        labels_seq,
    })
}

/// The champion's last move, if the trainer made it carrying a label mark
/// ([`promotion_reason`]): the record and the newest label sequence before the move, which a
/// restarted trainer's guard and follow-up count from.
pub(crate) fn trainer_promotion(audit: &[pb::AuditRecord]) -> Option<(&pb::AuditRecord, u64)> {
    let promotion = audit.iter().rev().find(|record| moves(record, CHAMPION))?;
    if promotion.actor != ACTOR {
        return None;
    }
    Some((promotion, labels_seq_in(&promotion.reason)?))
}

fn moves(record: &pb::AuditRecord, alias: &str) -> bool {
    record.action == pb::AuditAction::SetAlias as i32 && record.alias == alias
}

/// Points [`GUARDED_ALIAS`] at `version`: the guard's durable verdict. A failure only means
/// a restarted trainer judges the same rows again, so it is logged, not raised.
async fn mark_passed(inner: &GuardsInner, model: &ModelName, version: u64) {
    let registry = &inner.registry;
    let marked = async {
        let current = registry::alias_version(registry, model.as_str(), GUARDED_ALIAS).await?;
        registry::move_alias(
            registry,
            model.as_str(),
            GUARDED_ALIAS,
            version,
            current,
            &format!(
                "rollback guard passed over {} labeled rows",
                inner.policy.rows
            ),
            &format!("guard-{model}-v{version}"),
        )
        .await
    };
    match marked.await {
        Ok(MoveOutcome::Moved) => {}
        Ok(MoveOutcome::Conflict(message)) => {
            tracing::warn!(%model, version, %message, "guard verdict not recorded: the alias moved");
        }
        Err(error) => tracing::warn!(%model, version, %error, "guard verdict not recorded"),
    }
}

fn abandoned(champion: Option<u64>) -> GuardVerdict {
    GuardVerdict::Abandoned {
        reason: format!("the champion is now {champion:?}"),
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
    // The first `rows` labels logged after the move, read as they come, then joined with
    // their rows once all are in.
    let watched = Watched {
        data_log: inner.data_log.as_ref(),
        registry: &inner.registry,
        model,
        version: new_version,
        what: "guard",
    };
    let labels = match watched
        .labels_after(labels_seq, policy.rows, policy.poll)
        .await
    {
        LabelsAfter::Labels(labels) => labels,
        LabelsAfter::ChampionMoved(other) => return Ok(abandoned(other)),
    };
    let data = loop {
        // A row labeled twice counts once (its newest label); a label whose row has not
        // arrived yet is waited for.
        let data = join_labels(inner.data_log.as_ref(), model, labels.clone()).await?;
        if data.unmatched == 0 {
            break data;
        }
        tracing::debug!(%model, unmatched = data.unmatched, "guard waiting for the rows of its labels");
        tokio::time::sleep(policy.poll).await;
        if let ChampionCheck::Moved(other) = watched.champion().await {
            return Ok(abandoned(other));
        }
    };
    let data_rows = data.len();
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
        policy.margin, data_rows
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set_alias(
        seq: u64,
        alias: &str,
        version: u64,
        previous: Option<u64>,
        actor: &str,
        reason: &str,
    ) -> pb::AuditRecord {
        pb::AuditRecord {
            seq,
            action: pb::AuditAction::SetAlias as i32,
            alias: alias.into(),
            version,
            previous_version: previous,
            actor: actor.into(),
            reason: reason.into(),
            ..pb::AuditRecord::default()
        }
    }

    #[test]
    fn the_label_mark_reads_back() {
        let reason = promotion_reason("candidate beats champion (by 0.1)", 42);
        assert_eq!(
            reason,
            "candidate beats champion (by 0.1) (rollback guard from label seq 42)"
        );
        assert_eq!(labels_seq_in(&reason), Some(42));
        assert_eq!(labels_seq_in("gate passed"), None);
        assert_eq!(
            labels_seq_in("gate (rollback guard from label seq x)"),
            None
        );
    }

    #[test]
    fn a_marked_promotion_is_pending_until_guarded() {
        let promoted = set_alias(
            2,
            CHAMPION,
            2,
            Some(1),
            ACTOR,
            &promotion_reason("better", 7),
        );
        assert_eq!(
            pending_guard(std::slice::from_ref(&promoted)),
            Some(PendingGuard {
                version: 2,
                predecessor: 1,
                labels_seq: 7
            })
        );
        let passed = set_alias(3, GUARDED_ALIAS, 2, None, ACTOR, "passed");
        assert_eq!(pending_guard(&[promoted.clone(), passed]), None);
        // A guarded mark from an earlier promotion of the same version does not count.
        let earlier = set_alias(1, GUARDED_ALIAS, 2, None, ACTOR, "passed");
        assert!(pending_guard(&[earlier, promoted]).is_some());
    }

    #[test]
    fn moves_by_people_rollbacks_and_first_models_are_not_guarded() {
        let by_hand = set_alias(2, CHAMPION, 2, Some(1), "alice", &promotion_reason("x", 7));
        assert_eq!(pending_guard(&[by_hand]), None);
        let rollback = set_alias(3, CHAMPION, 1, Some(2), ACTOR, "rollback guard: worse");
        assert_eq!(pending_guard(&[rollback]), None);
        let first = set_alias(1, CHAMPION, 1, None, ACTOR, &promotion_reason("first", 0));
        assert_eq!(pending_guard(&[first]), None);
    }
}
