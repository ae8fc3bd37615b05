//! One retrain of one model, start to finish: find what an earlier attempt already did,
//! read the window, train and judge off the executor, register with lineage, move the
//! champion with compare-and-set, and announce the outcome.
//!
//! Every step is safe to repeat (invariant 6): a version already produced by one of the
//! run's events is reused instead of retrained, its promotion is finished only if the
//! champion still points at its parent, and events carry ids derived from the version so
//! a repeated publish is stored once.

use std::sync::Arc;

use bytes::Bytes;
use mend_bus::events::{ModelRejected, ModelTrained, Severity};
use mend_bus::{Bus, DataKind, DataLog, Envelope, ModelName, publish_event};
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;

use crate::alerts;
use crate::config::TrainerConfig;
use crate::error::TrainerError;
use crate::evaluate::{Comparison, train_and_compare_with_past};
use crate::follow_up::{self, FollowUps};
use crate::gate;
use crate::guard::{GuardStart, Guards};
use crate::lineage::{self, Lineage, tags};
use crate::metrics::TrainerMetrics;
use crate::recall::{self, RecallCache};
use crate::registry::{self, LoadedVersion, MoveOutcome};
use crate::trigger::{RetrainTrigger, TriggerKind, data_drift_alone};
use crate::window::{LabeledWindow, load_labeled, load_labeled_since, load_newest};

/// How a run ended (defined in `outcome.rs`, so the metrics can count it without importing
/// this module).
pub use crate::outcome::RunOutcome;

/// What watches a promotion once it is made: the rollback guard (`None`: load both versions
/// from the registry, as after a restart) and whether a follow-up is armed.
struct Watch {
    guard: Option<GuardStart>,
    follow_up: bool,
    /// Where the run's data ended: the guard and the follow-up count labels from here (so
    /// what they judge depends on the data, not on when the move happened); `None`: from the
    /// newest label at the move.
    labels_from: Option<u64>,
}

/// What every run needs.
#[derive(Debug, Clone)]
pub struct Healer {
    pub bus: Arc<dyn Bus>,
    pub data_log: Arc<dyn DataLog>,
    pub registry: RegistryClient,
    pub config: Arc<TrainerConfig>,
    pub guards: Guards,
    pub follow_ups: FollowUps,
    pub metrics: TrainerMetrics,
    /// Past versions judged beside each candidate, fetched once.
    pub recall: RecallCache,
}

impl Healer {
    /// Runs one retrain for `batch` (the first trigger names the run; the rest were
    /// coalesced into it), its window ending where the batch's alarms were raised.
    pub async fn retrain(
        &self,
        model: &ModelName,
        batch: &[RetrainTrigger],
    ) -> Result<RunOutcome, TrainerError> {
        self.retrain_until(model, batch, anchor_of(batch)).await
    }

    /// Runs one retrain for `batch` on labels logged at or before `anchor` (`None`: up to the
    /// newest), unless the primary trigger names its own window.
    #[tracing::instrument(name = "retrain", skip_all, fields(%model, triggers = batch.len()))]
    pub async fn retrain_until(
        &self,
        model: &ModelName,
        batch: &[RetrainTrigger],
        anchor: Option<u64>,
    ) -> Result<RunOutcome, TrainerError> {
        let Some(primary) = batch.first() else {
            return Ok(RunOutcome::Covered);
        };
        tracing::info!(trigger = %primary.event_id, kind = primary.kind.as_str(), "retrain starting");
        let ids: Vec<&str> = batch.iter().map(|t| t.event_id.as_str()).collect();
        let versions = registry::versions(&self.registry, model.as_str()).await?;
        if versions.is_empty() {
            // A trigger on the bus is a hint, not the registry's word (anyone who can publish
            // can send one): a model the registry does not know is never trained into being.
            return Err(TrainerError::UnknownModel {
                model: model.to_string(),
            });
        }
        let existing = versions
            .iter()
            .find(|meta| lineage::produced_by(meta, &ids))
            .cloned();
        if let Some(meta) = existing {
            return self.resume(model, meta).await;
        }

        let champion = registry::champion(&self.registry, model.as_str()).await?;
        let (data, drift_from_seq) = self.load_window(model, batch, anchor).await?;
        if data.len() < self.config.min_rows {
            return Err(TrainerError::NotEnoughRows {
                found: data.len(),
                needed: self.config.min_rows,
            });
        }
        tracing::info!(
            rows = data.len(),
            labels = ?data.label_seqs,
            "window read; training the candidate"
        );
        let data = Arc::new(data);
        let past = self
            .past_versions(model, champion.as_ref(), &versions)
            .await?;
        let comparison = {
            let data = Arc::clone(&data);
            let champion = champion.as_ref().map(|c| c.artifact.clone());
            let past: Vec<Arc<mend_core::Artifact>> = past
                .iter()
                .map(|(_, artifact)| Arc::clone(artifact))
                .collect();
            let settings = self.config.train.clone();
            // Training is CPU work of up to seconds: keep it off the async executor.
            tokio::task::spawn_blocking(move || {
                train_and_compare_with_past(
                    &data.rows,
                    &data.labels,
                    champion.as_ref(),
                    &past,
                    &settings,
                )
            })
            .await??
        };
        let judge = |metrics: &mend_core::Metrics| {
            let decision = gate::decide(
                &self.config.gate,
                metrics,
                comparison.champion_metrics.as_ref(),
            );
            if data_drift_alone(batch) {
                gate::require_clear_win(
                    decision,
                    &self.config.gate,
                    metrics,
                    comparison.champion_metrics.as_ref(),
                    comparison.holdout_rows,
                )
            } else {
                decision
            }
        };
        let mut decision = judge(&comparison.candidate_metrics);
        // The best past version, when it beats the candidate and passes the gate itself.
        let recalled = recall::best_past(
            &self.config.gate.metric,
            &comparison.candidate_metrics,
            &comparison.past_metrics,
        )
        .and_then(|index| {
            let (meta, artifact) = past.get(index)?;
            let metrics = comparison.past_metrics.get(index)?.as_ref()?;
            let passed = judge(metrics);
            passed
                .promote
                .then(|| (meta.clone(), Arc::clone(artifact), passed))
        });
        let scores = |candidate: &str| {
            recall::scores(
                &self.config.gate.metric,
                comparison.holdout_rows,
                (candidate, &comparison.candidate_metrics),
                champion
                    .as_ref()
                    .map(|c| (c.meta.version, comparison.champion_metrics.as_ref())),
                &past
                    .iter()
                    .zip(&comparison.past_metrics)
                    .map(|((meta, _), metrics)| (meta.version, metrics.as_ref()))
                    .collect::<Vec<_>>(),
            )
        };
        if let Some((meta, _, _)) = &recalled {
            decision = gate::GateDecision {
                promote: false,
                reason: format!(
                    "past version {} did better ({})",
                    meta.version,
                    scores("candidate")
                ),
            };
        } else if !past.is_empty() {
            // Every contender judged is on record, whoever won.
            decision.reason = format!("{}; {}", decision.reason, scores("candidate"));
        }
        tracing::info!(
            promote = decision.promote,
            reason = %decision.reason,
            rows = data.len(),
            train_ms = comparison.train_ms,
            "candidate judged"
        );
        let parent = champion.as_ref().map(|c| c.meta.version);
        let follow_up = decision.promote && self.follows_up(batch, &comparison);
        let mut header = Lineage {
            model: model.as_str(),
            primary,
            coalesced: batch.get(1..).unwrap_or_default(),
            window: &data,
            comparison: &comparison,
            decision: &decision,
            gate_metric: &self.config.gate.metric,
            parent_version: parent,
            settings: &self.config.train,
            drift_from_seq,
        }
        .header();
        if follow_up {
            // Read back by a restarted trainer, which follows the champion up again.
            header
                .tags
                .insert(tags::FOLLOW_UP.to_owned(), tags::ARMED.to_owned());
        }
        if let Some((past, _, _)) = &recalled {
            // Read back by a repeated run, which finishes the recall (see `resume`).
            header
                .tags
                .insert(tags::RECALLED.to_owned(), past.version.to_string());
        }
        let bytes = Bytes::from(comparison.candidate.to_bytes()?);
        let meta = self.registry.register(header, bytes).await?;
        tracing::info!(version = meta.version, "candidate registered");
        self.announce_trained(model, &meta).await?;
        if decision.promote {
            let start = GuardStart {
                new: LoadedVersion {
                    meta: meta.clone(),
                    artifact: comparison.candidate.clone(),
                },
                predecessor: champion,
            };
            self.promote(
                model,
                &meta,
                parent,
                &decision.reason,
                &primary.event_id,
                Watch {
                    guard: Some(start),
                    follow_up,
                    labels_from: data.label_seqs.map(|(_, last)| last),
                },
            )
            .await
        } else if let Some((past, artifact, passed)) = recalled {
            self.reject(model, &meta, &decision.reason).await?;
            let reason = format!(
                "recalled version {}: {}; {}",
                past.version,
                scores(&format!("candidate v{}", meta.version)),
                passed.reason
            );
            let start = Some(GuardStart {
                new: LoadedVersion {
                    meta: past.clone(),
                    artifact: (*artifact).clone(),
                },
                predecessor: champion,
            });
            self.recall(
                model,
                &past,
                parent,
                &reason,
                &primary.event_id,
                start,
                data.label_seqs.map(|(_, last)| last),
            )
            .await
        } else {
            self.reject(model, &meta, &decision.reason).await?;
            self.follow_up_again(model, primary, parent).await;
            Ok(RunOutcome::Rejected {
                version: meta.version,
                reason: decision.reason,
            })
        }
    }

    /// The past champions to judge beside this run's candidate, with their artifacts (none
    /// without a champion, or with recall turned off).
    async fn past_versions(
        &self,
        model: &ModelName,
        champion: Option<&LoadedVersion>,
        versions: &[pb::VersionMetadata],
    ) -> Result<Vec<(pb::VersionMetadata, Arc<mend_core::Artifact>)>, TrainerError> {
        let limit = self.config.recall_versions;
        let Some(champion) = champion.filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let audit = registry::audit(&self.registry, model.as_str()).await?;
        let chosen = recall::past_champions(&audit, versions, &champion.meta, limit);
        Ok(self
            .recall
            .load(&self.registry, model.as_str(), &chosen)
            .await)
    }

    /// Makes past version `past` the champion again, if the champion still points at
    /// `parent`: a promotion like any other, watched by the rollback guard (`start`: `None`
    /// loads both versions from the registry), never followed up.
    #[allow(clippy::too_many_arguments)]
    async fn recall(
        &self,
        model: &ModelName,
        past: &pb::VersionMetadata,
        parent: Option<u64>,
        reason: &str,
        trigger_event_id: &str,
        start: Option<GuardStart>,
        labels_from: Option<u64>,
    ) -> Result<RunOutcome, TrainerError> {
        tracing::info!(version = past.version, ?parent, %reason, "recalling a past version");
        let outcome = self
            .promote(
                model,
                past,
                parent,
                reason,
                trigger_event_id,
                Watch {
                    guard: start,
                    follow_up: false,
                    labels_from,
                },
            )
            .await?;
        Ok(match outcome {
            RunOutcome::Promoted { version } => RunOutcome::Recalled { version },
            other => other,
        })
    }

    /// After a rejected follow-up of `champion`: follows the champion up again while the
    /// follow-up patience lasts (see [`FollowUps::retry`]).
    async fn follow_up_again(
        &self,
        model: &ModelName,
        primary: &RetrainTrigger,
        champion: Option<u64>,
    ) {
        let Some(champion) = champion else { return };
        if primary.kind != TriggerKind::FollowUp {
            return;
        }
        let Some(attempt) = follow_up::attempt_of(&primary.event_id, model, champion) else {
            return;
        };
        match self.data_log.latest_seq(model, DataKind::Labels).await {
            Ok(labels_seq) => {
                self.follow_ups
                    .retry(model.clone(), champion, labels_seq.unwrap_or(0), attempt)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%model, %error, "cannot read where labels stand; the follow-up chain ends");
            }
        }
    }

    /// Whether a promotion by this run is followed up (see [`crate::follow_up`]): it answers
    /// performance drift, or it is a follow-up whose candidate won by the follow-up margin
    /// (performance was still sliding).
    fn follows_up(&self, batch: &[RetrainTrigger], comparison: &Comparison) -> bool {
        if !self.follow_ups.enabled() {
            return false;
        }
        let won_by = comparison.champion_metrics.as_ref().and_then(|champion| {
            gate::improvement(
                &self.config.gate.metric,
                &comparison.candidate_metrics,
                champion,
            )
        });
        follow_up::follows_up(self.follow_ups.policy().margin, batch, won_by)
    }

    /// The rows a run trains on, and the drift start they were cut at: the window the
    /// primary request names; else, when the run answers drift whose window names a start,
    /// the newest labels logged since then (rows from before an abrupt change would teach
    /// the old concept again), if there are at least `min_rows` of them; else the newest
    /// labels. Of several drift starts coalesced into one run, the latest wins: the model
    /// must fit the world after the most recent change.
    async fn load_window(
        &self,
        model: &ModelName,
        batch: &[RetrainTrigger],
        anchor: Option<u64>,
    ) -> Result<(LabeledWindow, Option<u64>), TrainerError> {
        let log = self.data_log.as_ref();
        let named = batch
            .first()
            .and_then(|primary| primary.window.as_ref())
            .and_then(|window| window.to_log_window());
        if let Some(window) = named {
            return Ok((load_labeled(log, model, &window).await?, None));
        }
        let newest = self.config.window_rows_for(model);
        if let Some(from_seq) = batch.iter().filter_map(|t| t.drift_from_seq).max() {
            let since = load_labeled_since(log, model, newest, from_seq, anchor).await?;
            if since.len() >= self.config.min_rows {
                tracing::info!(
                    from_seq,
                    rows = since.len(),
                    "training on the rows labeled since the drift began"
                );
                return Ok((since, Some(from_seq)));
            }
            tracing::info!(
                from_seq,
                rows = since.len(),
                needed = self.config.min_rows,
                "too few rows labeled since the drift began; training on the newest rows"
            );
        }
        Ok((load_newest(log, model, newest, anchor).await?, None))
    }

    /// Finishes what an earlier attempt of the same events started.
    async fn resume(
        &self,
        model: &ModelName,
        meta: pb::VersionMetadata,
    ) -> Result<RunOutcome, TrainerError> {
        let version = meta.version;
        let champion = registry::champion_version(&self.registry, model.as_str()).await?;
        let passed = meta.tags.get(tags::GATE).map(String::as_str) == Some(tags::PASS);
        tracing::info!(
            version,
            ?champion,
            passed,
            "reusing the version these events already produced"
        );
        self.announce_trained(model, &meta).await?;
        // Finish a promotion only if it never happened: a champion moved back by hand (or by
        // the guard) to the parent must not see the same version promoted twice.
        if passed
            && champion == meta.parent_version
            && champion != Some(version)
            && !registry::was_champion(&self.registry, model.as_str(), version).await?
        {
            let reason = meta
                .tags
                .get(tags::GATE_REASON)
                .cloned()
                .unwrap_or_else(|| "gate passed".to_owned());
            let trigger = meta
                .trigger
                .as_ref()
                .map(|t| t.event_id.clone())
                .unwrap_or_default();
            return self
                .promote(
                    model,
                    &meta,
                    meta.parent_version,
                    &reason,
                    &trigger,
                    Watch {
                        guard: None,
                        follow_up: self.follow_ups.enabled()
                            && meta.tags.get(tags::FOLLOW_UP).map(String::as_str)
                                == Some(tags::ARMED),
                        labels_from: None,
                    },
                )
                .await;
        }
        if !passed {
            let reason = meta
                .tags
                .get(tags::GATE_REASON)
                .cloned()
                .unwrap_or_else(|| "gate failed".to_owned());
            self.reject(model, &meta, &reason).await?;
            let recalled = meta
                .tags
                .get(tags::RECALLED)
                .and_then(|version| version.parse::<u64>().ok());
            // The run chose a past version instead of its candidate: finish that move if it
            // never happened (the champion still points where it did then).
            if let Some(past) = recalled
                && champion == meta.parent_version
                && champion != Some(past)
            {
                let past_meta = registry::version(&self.registry, model.as_str(), past)
                    .await?
                    .meta;
                let trigger = meta
                    .trigger
                    .as_ref()
                    .map(|t| t.event_id.clone())
                    .unwrap_or_default();
                return self
                    .recall(
                        model,
                        &past_meta,
                        champion,
                        &format!("recalled version {past}: {reason}"),
                        &trigger,
                        None,
                        None,
                    )
                    .await;
            }
        }
        Ok(RunOutcome::Reused { version })
    }

    /// Moves the champion to the candidate if it still points at `parent`.
    async fn promote(
        &self,
        model: &ModelName,
        meta: &pb::VersionMetadata,
        parent: Option<u64>,
        reason: &str,
        trigger_event_id: &str,
        watch: Watch,
    ) -> Result<RunOutcome, TrainerError> {
        let Watch {
            guard,
            follow_up,
            labels_from,
        } = watch;
        let version = meta.version;
        // Where the guard and the follow-up count labels from: the end of the data the new
        // version learned from (neither model was trained on what comes after it), else where
        // labels stand before the move.
        let labels_seq = match labels_from {
            Some(seq) => seq,
            None => self
                .data_log
                .latest_seq(model, DataKind::Labels)
                .await?
                .unwrap_or(0),
        };
        let moved = registry::move_champion(
            &self.registry,
            model.as_str(),
            version,
            parent,
            &if self.guards.enabled() || follow_up {
                crate::guard::promotion_reason(reason, labels_seq)
            } else {
                reason.to_owned()
            },
            trigger_event_id,
        )
        .await?;
        match moved {
            MoveOutcome::Moved => {
                tracing::info!(version, ?parent, "champion moved");
                alerts::raise(
                    self.bus.as_ref(),
                    model,
                    Severity::Info,
                    format!(
                        "{model}: version {version} promoted (was {}): {reason}",
                        parent.map_or_else(|| "none".to_owned(), |p| p.to_string())
                    ),
                    Some(trigger_event_id.to_owned()),
                    &format!("promoted-v{version}"),
                )
                .await;
                if follow_up {
                    self.follow_ups.start(model.clone(), version, labels_seq);
                }
                match guard {
                    Some(start) => self.guards.start(model.clone(), start, labels_seq),
                    // A promotion finished for an earlier attempt: the guard loads both
                    // versions from the registry, as after a restart.
                    None => {
                        if let Err(error) = self.guards.resume(model, true).await {
                            tracing::warn!(version, %error, "cannot start the rollback guard");
                        }
                    }
                }
                Ok(RunOutcome::Promoted { version })
            }
            MoveOutcome::Conflict(message) => {
                // Someone else moved the champion first: never promote over them.
                let reason = format!("the champion moved during the retrain ({message})");
                tracing::warn!(version, %reason, "not promoting");
                self.reject(model, meta, &reason).await?;
                Ok(RunOutcome::Rejected { version, reason })
            }
        }
    }

    /// `model.trained.<model>`, built from the registered metadata so a resumed run can
    /// announce it again (the id is the version's, so the bus stores it once).
    async fn announce_trained(
        &self,
        model: &ModelName,
        meta: &pb::VersionMetadata,
    ) -> Result<(), TrainerError> {
        let trigger = meta.trigger.as_ref();
        let trigger_prefix = trigger.map(|t| match pb::TriggerKind::try_from(t.kind) {
            Ok(pb::TriggerKind::Drift) => TriggerKind::Drift.subject_prefix(),
            _ => TriggerKind::Forced.subject_prefix(),
        });
        let mut envelope = Envelope::new(
            model.clone(),
            ModelTrained {
                version: meta.version,
                parent_version: meta.parent_version,
                trigger_event_id: trigger.map(|t| t.event_id.clone()),
                trigger: trigger_prefix.map(str::to_owned),
                window: meta.data_window.as_ref().map(|w| {
                    mend_bus::events::DataWindow::sequence(w.from_seq, w.to_seq, w.row_count)
                }),
                metrics: prefixed_metrics(meta, "candidate."),
                champion_metrics: prefixed_metrics(meta, "champion."),
                duration_ms: meta.metrics.get("train.ms").map(|ms| *ms as u64),
            },
        );
        envelope.id = format!("trained-{model}-v{}", meta.version);
        publish_event(self.bus.as_ref(), &envelope).await?;
        Ok(())
    }

    async fn reject(
        &self,
        model: &ModelName,
        meta: &pb::VersionMetadata,
        reason: &str,
    ) -> Result<(), TrainerError> {
        let trigger = meta.trigger.as_ref().map(|t| t.event_id.clone());
        let mut envelope = Envelope::new(
            model.clone(),
            ModelRejected {
                version: Some(meta.version),
                reason: reason.to_owned(),
                metrics: prefixed_metrics(meta, "candidate."),
                champion_metrics: prefixed_metrics(meta, "champion."),
                champion_version: meta.parent_version,
                trigger_event_id: trigger.clone(),
            },
        );
        envelope.id = format!("rejected-{model}-v{}", meta.version);
        publish_event(self.bus.as_ref(), &envelope).await?;
        alerts::raise(
            self.bus.as_ref(),
            model,
            Severity::Warning,
            format!(
                "{model}: candidate version {} rejected: {reason}",
                meta.version
            ),
            trigger,
            &format!("rejected-v{}", meta.version),
        )
        .await;
        Ok(())
    }
}

/// Where a run's window ends: at the newest label a performance alarm of the batch was raised
/// on, when every trigger is such an alarm (so the rows read depend on the data, not on the
/// stream's pace); at the newest label otherwise: a request asks for the data as it stands,
/// and a data-drift alarm is raised on rows whose labels come after it.
pub fn anchor_of(batch: &[RetrainTrigger]) -> Option<u64> {
    let mut anchor = None;
    for trigger in batch {
        if !trigger.lost_performance() {
            return None;
        }
        let seq = trigger.data_seq?;
        anchor = Some(anchor.map_or(seq, |a: u64| a.max(seq)));
    }
    anchor
}

/// The registered metrics under `prefix` (`candidate.`, `champion.`), without it.
fn prefixed_metrics(meta: &pb::VersionMetadata, prefix: &str) -> mend_bus::events::Metrics {
    meta.metrics
        .iter()
        .filter_map(|(name, value)| {
            name.strip_prefix(prefix)
                .map(|name| (name.to_owned(), *value))
        })
        .collect()
}
