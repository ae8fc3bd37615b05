//! Follow-ups: gradual drift does not end with one retrain. When the world keeps moving (a
//! decision boundary that rotates a little every day), the champion promoted for performance
//! drift starts sliding again the day it is promoted, and waiting for the monitor to see
//! the slide leaves it stale for thousands of rows: an accuracy drop small enough to hide in
//! label noise still costs accuracy on every row.
//!
//! So a promotion that answered performance drift is followed up: once `labels` more rows
//! have been labeled after the move (and the champion is still the one promoted), the
//! trainer asks for a retrain on the newest `window` of them, by publishing
//! `retrain.requested.<model>` with a `follow-up` reason and the label range, as anyone could.
//! The gate judges the candidate as always. If it won by at least `margin` (by default: if it
//! was promoted), performance was still sliding and the new champion is followed up in turn.
//! A rejected follow-up changes nothing, but one judged on a few hundred held-out rows can
//! lose to a champion that is in truth sliding, so the champion is followed up once more
//! (`patience` times), as soon as a fresh `window` of labels is in; the chain ends at the
//! next rejection in a row, and the trainer says so in an `info` alert. So a drift that stops
//! costs a few extra candidates, and a calm model is never retrained by this.
//!
//! The request's id names the promoted version (and the attempt after rejections, see
//! [`request_id`]), so replicas of the trainer ask once. A promotion that is followed up is
//! tagged so (`follow_up: armed`) and its champion move carries the label mark the guard uses,
//! so a restarted trainer follows the champion up again ([`FollowUps::resume_on_start`]) from
//! the attempt after the last one the registry's audit log records as rejected, or not at all
//! when that was the chain's last; if that follow-up had already run, asking again under the
//! same id finds the version it produced instead of training twice.

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{DataWindow, DriftKind, RetrainRequested, Severity};
use mend_bus::{Bus, DataKind, DataLog, Envelope, ModelName, publish_event};
use mend_client::RegistryClient;
use mend_proto::registry::v1::get_version_request::Selector;
use tokio_util::sync::CancellationToken;

use crate::alerts;
use crate::error::TrainerError;
use crate::guard::trainer_promotion;
use crate::lineage::tags;
use crate::per_model::{LabelsAfter, PerModel, Watched, resume_with_backoff};
use crate::registry;
use crate::trigger::{FOLLOW_UP_REASON, RetrainTrigger, TriggerKind};

/// How the id of a follow-up request begins (`follow-up-<model>-v<version>`).
pub const ID_PREFIX: &str = "follow-up-";

/// When and on what a promotion for performance drift is followed up.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpPolicy {
    /// Labeled rows after the promotion before the follow-up retrain; 0: no follow-ups.
    pub labels: usize,
    /// The newest of those labeled rows the follow-up trains and judges on.
    pub window: usize,
    /// A follow-up candidate that beats the champion by at least this (on the gate's metric)
    /// is followed up in turn.
    pub margin: f64,
    /// Rejected follow-ups of one champion in a row before the chain ends: a follow-up judged
    /// on a few hundred held-out rows can lose to a champion that is in truth sliding, so the
    /// champion is followed up again this many times (0: the first rejection ends the chain).
    pub patience: u32,
    /// How often to look for new labels.
    pub poll: Duration,
}

impl FollowUpPolicy {
    /// New labels a follow-up waits for: `labels` after a promotion; after a rejection, only a
    /// fresh `window` (the retry judges on rows the rejected one never saw, and sooner).
    pub fn labels_before(&self, attempt: u32) -> usize {
        if attempt == 0 {
            self.labels
        } else {
            self.window.min(self.labels)
        }
    }
}

/// Whether a promotion by a run of `batch` is followed up: the run answered performance
/// drift, or it was a follow-up whose candidate beat the champion by at least `margin`
/// (`won_by`, on the gate's metric: performance was still sliding).
pub fn follows_up(margin: f64, batch: &[RetrainTrigger], won_by: Option<f64>) -> bool {
    let performance = batch
        .iter()
        .any(|trigger| trigger.drift_kind == Some(DriftKind::Performance));
    let follow_up = batch
        .first()
        .is_some_and(|trigger| trigger.kind == TriggerKind::FollowUp);
    performance || (follow_up && won_by.is_some_and(|by| by + 1e-12 >= margin))
}

/// The waiting follow-ups, one per model (a newer promotion replaces the older one).
#[derive(Debug, Clone)]
pub struct FollowUps {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Arc<dyn Bus>,
    data_log: Arc<dyn DataLog>,
    registry: RegistryClient,
    policy: FollowUpPolicy,
    shutdown: CancellationToken,
    running: PerModel,
}

impl FollowUps {
    pub fn new(
        bus: Arc<dyn Bus>,
        data_log: Arc<dyn DataLog>,
        registry: RegistryClient,
        policy: FollowUpPolicy,
        shutdown: CancellationToken,
    ) -> Self {
        FollowUps {
            inner: Arc::new(Inner {
                bus,
                data_log,
                registry,
                policy,
                shutdown,
                running: PerModel::default(),
            }),
        }
    }

    pub fn policy(&self) -> &FollowUpPolicy {
        &self.inner.policy
    }

    pub fn enabled(&self) -> bool {
        self.inner.policy.labels > 0
    }

    /// Follows up the promotion of `version`, moved when the newest label was `labels_seq`.
    pub fn start(&self, model: ModelName, version: u64, labels_seq: u64) {
        self.start_attempt(model, version, labels_seq, 0);
    }

    /// After the follow-up `attempt` of champion `version` was rejected (the newest label
    /// then being `labels_seq`): follows the champion up again while the policy's patience
    /// lasts. Returns whether it did; when it does not, the chain's end is announced in an
    /// `info` alert naming the last follow-up request.
    pub async fn retry(
        &self,
        model: ModelName,
        version: u64,
        labels_seq: u64,
        attempt: u32,
    ) -> bool {
        if attempt >= self.inner.policy.patience {
            tracing::info!(%model, version, attempt, "follow-up rejected: the chain ends");
            let last = request_id(&model, version, attempt);
            alerts::raise(
                self.inner.bus.as_ref(),
                &model,
                Severity::Info,
                format!(
                    "{model}: version {version} was followed up {} time(s) and no candidate beat it by the follow-up margin: its follow-ups end",
                    attempt + 1
                ),
                Some(last.clone()),
                &format!("follow-ups-ended-{last}"),
            )
            .await;
            return false;
        }
        self.start_attempt(model, version, labels_seq, attempt + 1);
        true
    }

    fn start_attempt(&self, model: ModelName, version: u64, labels_seq: u64, attempt: u32) {
        if !self.enabled() {
            return;
        }
        let Some((id, token)) = self.inner.running.begin(&model, &self.inner.shutdown, true) else {
            return;
        };
        tracing::info!(%model, version, labels_seq, attempt, labels = self.inner.policy.labels_before(attempt), "follow-up armed");
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => return,
                () = follow_up(&inner, &model, version, labels_seq, attempt) => {}
            }
            inner.running.end(&model, id);
        });
    }

    /// Follows up again the champion of every model whose last champion move was the
    /// trainer's, tagged for a follow-up; returns what it resumed.
    pub async fn resume_all(&self) -> Result<Vec<(ModelName, u64)>, TrainerError> {
        let mut resumed = Vec::new();
        if !self.enabled() {
            return Ok(resumed);
        }
        let client = &self.inner.registry;
        for model in registry::champion_models(client).await? {
            let audit = registry::audit(client, model.as_str()).await?;
            let Some((promotion, labels_seq)) = trainer_promotion(&audit) else {
                continue;
            };
            let meta = client
                .metadata(model.as_str(), Selector::Version(promotion.version))
                .await?;
            if meta.tags.get(tags::FOLLOW_UP).map(String::as_str) != Some(tags::ARMED) {
                continue;
            }
            match last_rejected_attempt(&audit, &model, promotion.version) {
                None => self.start(model.clone(), promotion.version, labels_seq),
                Some(attempt) if attempt >= self.inner.policy.patience => {
                    tracing::info!(%model, version = promotion.version, attempt, "its follow-up chain had ended");
                    continue;
                }
                Some(attempt) => {
                    // The rejection's label mark is not on record: count a fresh window from
                    // the labels logged by now.
                    let now = self
                        .inner
                        .data_log
                        .latest_seq(&model, DataKind::Labels)
                        .await?
                        .unwrap_or(labels_seq);
                    self.start_attempt(model.clone(), promotion.version, now, attempt + 1);
                }
            }
            resumed.push((model, promotion.version));
        }
        Ok(resumed)
    }

    /// At trainer start: [`FollowUps::resume_all`], tried again with backoff while the registry
    /// cannot be reached, until it succeeds or `shutdown`.
    pub async fn resume_on_start(self, shutdown: CancellationToken) {
        let first_delay = self.inner.policy.poll;
        resume_with_backoff("follow-ups", first_delay, shutdown, || self.resume_all()).await;
    }
}

/// Waits for the labels, then asks for the retrain; ends early when the champion moves on.
/// Each look reads only the labels logged since the last one, and keeps their sequences.
async fn follow_up(inner: &Inner, model: &ModelName, version: u64, labels_seq: u64, attempt: u32) {
    let policy = &inner.policy;
    let watched = Watched {
        data_log: inner.data_log.as_ref(),
        registry: &inner.registry,
        model,
        version,
        what: "follow-up",
    };
    let needed = policy.labels_before(attempt);
    let labels = match watched.labels_after(labels_seq, needed, policy.poll).await {
        LabelsAfter::Labels(labels) => labels,
        LabelsAfter::ChampionMoved(other) => {
            tracing::info!(%model, version, champion = ?other, "follow-up dropped: the champion moved");
            return;
        }
    };
    let seqs: Vec<u64> = labels.iter().map(|logged| logged.seq).collect();
    let newest = &seqs[seqs.len().saturating_sub(policy.window.max(1))..];
    let (Some(&first), Some(&last)) = (newest.first(), newest.last()) else {
        return;
    };
    let request = Request {
        version,
        attempt,
        from_seq: first,
        to_seq: last,
        rows: newest.len(),
    };
    if let Err(error) = publish(inner, model, &request).await {
        tracing::warn!(%model, version, %error, "could not request the follow-up retrain");
    }
}

/// One follow-up request: of which champion, the how-many-th after rejections, on which labels.
struct Request {
    version: u64,
    attempt: u32,
    from_seq: u64,
    to_seq: u64,
    rows: usize,
}

/// The id of follow-up `attempt` of champion `version`: `follow-up-<model>-v<version>`, and
/// `…-retry<attempt>` after rejections. Replicas asking the same thing use the same id.
pub fn request_id(model: &ModelName, version: u64, attempt: u32) -> String {
    if attempt == 0 {
        format!("{ID_PREFIX}{model}-v{version}")
    } else {
        format!("{ID_PREFIX}{model}-v{version}-retry{attempt}")
    }
}

/// The newest follow-up attempt of champion `version` that the audit log records as rejected
/// (the trainer records its decision on every follow-up request).
fn last_rejected_attempt(
    audit: &[mend_proto::registry::v1::AuditRecord],
    model: &ModelName,
    version: u64,
) -> Option<u32> {
    audit
        .iter()
        .filter(|record| record.outcome == "rejected")
        .filter_map(|record| attempt_of(&record.trigger_event_id, model, version))
        .max()
}

/// Which attempt a follow-up request id names for champion `version` of `model` (`None`:
/// not a follow-up of that champion).
pub fn attempt_of(event_id: &str, model: &ModelName, version: u64) -> Option<u32> {
    let base = request_id(model, version, 0);
    let rest = event_id.strip_prefix(base.as_str())?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix("-retry")?.parse().ok()
}

async fn publish(inner: &Inner, model: &ModelName, request: &Request) -> Result<(), TrainerError> {
    let Request {
        version,
        attempt,
        from_seq,
        to_seq,
        rows,
    } = *request;
    let again = if attempt == 0 {
        String::new()
    } else {
        format!(" (asked again after {attempt} rejected)")
    };
    let mut envelope = Envelope::new(
        model.clone(),
        RetrainRequested {
            reason: format!(
                "{FOLLOW_UP_REASON}: is performance still sliding {} labeled rows after version {version} was promoted for performance drift?{again}",
                inner.policy.labels
            ),
            window: Some(DataWindow::sequence(from_seq, to_seq, rows as u64)),
            requested_by: Some("mend-trainer follow-up".to_owned()),
        },
    );
    envelope.id = request_id(model, version, attempt);
    publish_event(inner.bus.as_ref(), &envelope).await?;
    tracing::info!(%model, version, attempt, from_seq, to_seq, rows, "follow-up retrain requested");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn trigger(kind: TriggerKind, drift_kind: Option<DriftKind>) -> RetrainTrigger {
        RetrainTrigger {
            event_id: "e".into(),
            kind,
            time: OffsetDateTime::UNIX_EPOCH,
            reason: String::new(),
            window: None,
            drift_from_seq: None,
            drift_kind,
            data_seq: None,
        }
    }

    #[test]
    fn performance_drift_is_followed_up_and_a_follow_up_only_while_it_wins_clearly() {
        let performance = trigger(TriggerKind::Drift, Some(DriftKind::Performance));
        let data = trigger(TriggerKind::Drift, Some(DriftKind::Data));
        let follow_up = trigger(TriggerKind::FollowUp, None);
        let forced = trigger(TriggerKind::Forced, None);
        assert!(follows_up(
            0.02,
            std::slice::from_ref(&performance),
            Some(0.001)
        ));
        assert!(
            follows_up(0.02, &[data.clone(), performance], None),
            "performance drift coalesced into the run counts"
        );
        assert!(!follows_up(0.02, &[data], Some(0.5)), "data drift is not");
        assert!(!follows_up(0.02, &[forced], Some(0.5)), "nor a request");
        assert!(follows_up(
            0.02,
            std::slice::from_ref(&follow_up),
            Some(0.02)
        ));
        assert!(!follows_up(
            0.02,
            std::slice::from_ref(&follow_up),
            Some(0.019)
        ));
        assert!(!follows_up(0.02, std::slice::from_ref(&follow_up), None));
        assert!(!follows_up(0.02, &[], Some(1.0)));
    }

    #[test]
    fn request_ids_name_the_champion_and_the_attempt() {
        let model = ModelName::new("churn").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request_id(&model, 7, 0), "follow-up-churn-v7");
        assert_eq!(request_id(&model, 7, 2), "follow-up-churn-v7-retry2");
        assert_eq!(attempt_of("follow-up-churn-v7", &model, 7), Some(0));
        assert_eq!(attempt_of("follow-up-churn-v7-retry2", &model, 7), Some(2));
        assert_eq!(
            attempt_of("follow-up-churn-v7", &model, 8),
            None,
            "another champion"
        );
        assert_eq!(attempt_of("follow-up-churn-v77", &model, 7), None);
        assert_eq!(attempt_of("follow-up-churn-v7-retryx", &model, 7), None);
        assert_eq!(attempt_of("monitor-churn-performance", &model, 7), None);
    }
}
