//! Recall: worlds recur (weekdays and weekends, seasons, a promotion every quarter, a sensor
//! that flips between two modes). When a concept comes back, the version that once served it
//! is still in the registry, so every run also judges the newest distinct past champions
//! (`MEND_TRAINER_RECALL_VERSIONS` of them, skipping versions whose schema is not the
//! champion's) on the same held-out rows as its fresh candidate and the champion, and the
//! gate picks the best of them all.
//!
//! A past version is chosen when it scores at least as well as the fresh candidate on the
//! gate's metric (a tie goes to the past version: it learned from more rows, it has served
//! before, and recalling it adds no version) and passes the gate against the champion as a
//! candidate would. Recalling it is a promotion like any other: a
//! compare-and-set move on the registry whose reason names every contender's score, the
//! `model.promoted` event, the hot swap and the rollback guard. The fresh candidate is still
//! registered (its lineage is the run's record), as rejected, tagged with the version recalled
//! in its place, so a run repeated after a crash finishes the recall instead of training again.
//!
//! Past artifacts never change: each is fetched from the registry once and kept in memory
//! while it stays among the versions judged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mend_client::{CHAMPION, RegistryClient};
use mend_core::{Artifact, Metrics};
use mend_proto::registry::v1 as pb;

use crate::registry;

/// One model's past artifacts by version.
type Held = HashMap<u64, Arc<Artifact>>;

/// Past artifacts by model and version, fetched once.
#[derive(Debug, Clone, Default)]
pub struct RecallCache {
    artifacts: Arc<Mutex<HashMap<String, Held>>>,
}

impl RecallCache {
    /// The artifacts of `versions` of `model`, in that order, fetching those not held yet;
    /// a version that cannot be fetched or parsed is left out with a warning (a recall is a
    /// chance, not a duty). Versions of `model` no longer asked for are let go.
    pub async fn load(
        &self,
        registry: &RegistryClient,
        model: &str,
        versions: &[pb::VersionMetadata],
    ) -> Vec<(pb::VersionMetadata, Arc<Artifact>)> {
        let mut loaded = Vec::with_capacity(versions.len());
        for meta in versions {
            let held = self.held(model, meta.version);
            let artifact = match held {
                Some(artifact) => artifact,
                None => match registry::version(registry, model, meta.version).await {
                    Ok(version) => Arc::new(version.artifact),
                    Err(error) => {
                        tracing::warn!(model, version = meta.version, %error, "cannot load a past version to judge; skipping it");
                        continue;
                    }
                },
            };
            loaded.push((meta.clone(), artifact));
        }
        if let Ok(mut artifacts) = self.artifacts.lock() {
            let kept: Held = loaded
                .iter()
                .map(|(meta, artifact)| (meta.version, Arc::clone(artifact)))
                .collect();
            artifacts.insert(model.to_owned(), kept);
        }
        loaded
    }

    /// How many artifacts of `model` are held.
    pub fn held_count(&self, model: &str) -> usize {
        self.artifacts
            .lock()
            .map(|artifacts| artifacts.get(model).map_or(0, HashMap::len))
            .unwrap_or(0)
    }

    fn held(&self, model: &str, version: u64) -> Option<Arc<Artifact>> {
        let artifacts = self.artifacts.lock().ok()?;
        artifacts.get(model)?.get(&version).cloned()
    }
}

/// The past champions worth judging, newest first by when they last became champion:
/// distinct, not the champion itself, registered with the champion's schema hash, at most
/// `limit` of them.
pub fn past_champions(
    audit: &[pb::AuditRecord],
    versions: &[pb::VersionMetadata],
    champion: &pb::VersionMetadata,
    limit: usize,
) -> Vec<pb::VersionMetadata> {
    let mut chosen: Vec<pb::VersionMetadata> = Vec::new();
    if limit == 0 {
        return chosen;
    }
    let moves = audit.iter().rev().filter(|record| {
        record.action == pb::AuditAction::SetAlias as i32 && record.alias == CHAMPION
    });
    for record in moves {
        if record.version == champion.version
            || chosen.iter().any(|meta| meta.version == record.version)
        {
            continue;
        }
        let Some(meta) = versions.iter().find(|meta| meta.version == record.version) else {
            continue;
        };
        if meta.schema_hash != champion.schema_hash {
            continue;
        }
        chosen.push(meta.clone());
        if chosen.len() == limit {
            break;
        }
    }
    chosen
}

/// The past version (an index into `past`) that scores at least as well as the fresh
/// candidate on `metric`, the best of them when several do (the newest, first in `past`, of
/// equals); `None` when the candidate beats every one.
pub fn best_past(metric: &str, candidate: &Metrics, past: &[Option<Metrics>]) -> Option<usize> {
    let higher_is_better = Metrics::higher_is_better(metric);
    let better = |a: f64, b: f64| if higher_is_better { a > b } else { a < b };
    let at_least = |a: f64, b: f64| a == b || better(a, b);
    let mut best: Option<(usize, f64)> = None;
    for (index, metrics) in past.iter().enumerate() {
        let Some(value) = metrics.as_ref().and_then(|m| m.get(metric)) else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        let beats_best = best.is_none_or(|(_, best)| better(value, best));
        let matches_candidate = candidate.get(metric).is_none_or(|c| at_least(value, c));
        if beats_best && matches_candidate {
            best = Some((index, value));
        }
    }
    best.map(|(index, _)| index)
}

/// Every contender's score on the held-out rows, for the audit log and alerts, e.g.
/// `accuracy on 400 held-out rows: candidate v7 0.9100, champion v5 0.4000, v3 0.9900`
/// (`candidate` is how to name the fresh candidate: `candidate`, or with its version).
pub fn scores(
    metric: &str,
    holdout_rows: usize,
    candidate: (&str, &Metrics),
    champion: Option<(u64, Option<&Metrics>)>,
    past: &[(u64, Option<&Metrics>)],
) -> String {
    let value = |metrics: Option<&Metrics>| {
        metrics
            .and_then(|m| m.get(metric))
            .map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"))
    };
    let mut parts = vec![format!("{} {}", candidate.0, value(Some(candidate.1)))];
    if let Some((version, metrics)) = champion {
        parts.push(format!("champion v{version} {}", value(metrics)));
    }
    for (version, metrics) in past {
        parts.push(format!("v{version} {}", value(*metrics)));
    }
    format!(
        "{metric} on {holdout_rows} held-out rows: {}",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn meta(version: u64, schema: &str) -> pb::VersionMetadata {
        pb::VersionMetadata {
            version,
            schema_hash: schema.into(),
            ..pb::VersionMetadata::default()
        }
    }

    fn moved(seq: u64, version: u64) -> pb::AuditRecord {
        pb::AuditRecord {
            seq,
            action: pb::AuditAction::SetAlias as i32,
            alias: CHAMPION.into(),
            version,
            ..pb::AuditRecord::default()
        }
    }

    /// Metrics of a binary model right on `right` of 10 rows.
    fn right_on(right: usize) -> Metrics {
        let classes = vec!["no".to_owned(), "yes".to_owned()];
        let y: Vec<usize> = (0..10).map(|i| i % 2).collect();
        let mut proba = ndarray::Array2::zeros((10, 2));
        for (i, &label) in y.iter().enumerate() {
            let predicted = if i < right { label } else { 1 - label };
            proba[[i, predicted]] = 0.9;
            proba[[i, 1 - predicted]] = 0.1;
        }
        Metrics::compute(&y, proba.view(), &classes)
    }

    #[test]
    fn past_champions_are_the_newest_distinct_ones_with_the_champions_schema() {
        let versions = vec![
            meta(1, "a"),
            meta(2, "a"),
            meta(3, "b"),
            meta(4, "a"),
            meta(5, "a"),
        ];
        // Champion history: 1, 2, 3, 1, 4, 5 (5 is the champion now).
        let audit: Vec<_> = [1, 2, 3, 1, 4, 5]
            .iter()
            .enumerate()
            .map(|(seq, &v)| moved(seq as u64, v))
            .collect();
        let past = past_champions(&audit, &versions, &versions[4], 10);
        let order: Vec<u64> = past.iter().map(|m| m.version).collect();
        // 4 then 1 (made champion again after 3), then 2; 3 has another schema.
        assert_eq!(order, vec![4, 1, 2]);
        let two = past_champions(&audit, &versions, &versions[4], 2);
        assert_eq!(
            two.iter().map(|m| m.version).collect::<Vec<_>>(),
            vec![4, 1]
        );
        assert!(past_champions(&audit, &versions, &versions[4], 0).is_empty());
        // A version that was never champion is not a past champion; other aliases don't count.
        let mut other_alias = moved(9, 2);
        other_alias.alias = "guarded".into();
        let past = past_champions(
            &[moved(0, 1), other_alias, moved(1, 5)],
            &versions,
            &versions[4],
            10,
        );
        assert_eq!(past.iter().map(|m| m.version).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn the_best_past_version_must_beat_the_candidate() {
        let candidate = right_on(7);
        let past = vec![
            Some(right_on(6)),
            Some(right_on(9)),
            None,
            Some(right_on(8)),
        ];
        assert_eq!(best_past("accuracy", &candidate, &past), Some(1));
        // A tie goes to the past version; a better candidate keeps its place.
        assert_eq!(best_past("accuracy", &right_on(9), &past), Some(1));
        assert_eq!(best_past("accuracy", &right_on(10), &past), None);
        // Of equal past versions, the newest (first) one.
        let equal = vec![Some(right_on(8)), Some(right_on(8))];
        assert_eq!(best_past("accuracy", &candidate, &equal), Some(0));
        // Losses the right way round: lower log-loss wins.
        assert_eq!(best_past("log_loss", &candidate, &past), Some(1));
        assert_eq!(best_past("accuracy", &candidate, &[]), None);
    }

    #[test]
    fn scores_name_every_contender() {
        let line = scores(
            "accuracy",
            10,
            ("candidate v7", &right_on(9)),
            Some((5, Some(&right_on(4)))),
            &[(3, Some(&right_on(10))), (2, None)],
        );
        assert_eq!(
            line,
            "accuracy on 10 held-out rows: candidate v7 0.9000, champion v5 0.4000, v3 1.0000, v2 undefined"
        );
    }
}
