//! The CPU side of a retrain, synchronous and run on the blocking pool: build frames from
//! labeled rows, train the candidate, and score candidate and champion on the same newest
//! held-out rows, each through its own schema.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use mend_core::record::{RowRecord, Value};
use mend_core::schema::Feature;
use mend_core::{
    Artifact, CoreError, FeatureKind, Frame, Metrics, Schema, TrainSettings, time_split, train,
};

/// The label column name of a schema the trainer infers (records carry labels apart).
const LABEL: &str = "label";

/// A trained candidate and both models' metrics on the same held-out rows.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub candidate: Artifact,
    pub candidate_metrics: Metrics,
    /// `None` without a champion, or when none of the holdout fits its schema.
    pub champion_metrics: Option<Metrics>,
    pub holdout_rows: usize,
    /// Rows the champion could not score (features or classes it does not know).
    pub champion_skipped: usize,
    pub train_ms: u64,
    /// Each past version's metrics on the same held-out rows, in the order given (`None`:
    /// none of the rows fits its schema).
    pub past_metrics: Vec<Option<Metrics>>,
}

/// The candidate's schema: the champion's features and classes, plus features and classes
/// the window brings that the champion has never seen (a schema change is allowed). Without a
/// champion, everything is inferred: numeric when every present value is a number.
pub fn candidate_schema(
    champion: Option<&Schema>,
    rows: &[RowRecord],
    labels: &[String],
) -> Schema {
    let mut features: Vec<Feature> = champion.map(|s| s.features.clone()).unwrap_or_default();
    let known: HashSet<String> = features.iter().map(|f| f.name.clone()).collect();
    let mut numeric_only: BTreeMap<&str, bool> = BTreeMap::new();
    for row in rows {
        for (name, value) in &row.values {
            if known.contains(name) {
                continue;
            }
            let entry = numeric_only.entry(name).or_insert(true);
            if matches!(value, Value::Text(text) if text.trim().parse::<f64>().is_err()) {
                *entry = false;
            }
        }
    }
    features.extend(numeric_only.into_iter().map(|(name, numeric)| Feature {
        name: name.to_owned(),
        kind: if numeric {
            FeatureKind::Numeric
        } else {
            FeatureKind::Categorical
        },
    }));
    let mut classes: Vec<String> = champion.map(|s| s.classes.clone()).unwrap_or_default();
    let seen: BTreeSet<&String> = labels.iter().collect();
    for class in seen {
        if !classes.contains(class) {
            classes.push(class.clone());
        }
    }
    if champion.is_none() {
        classes.sort();
    }
    Schema {
        features,
        label: champion.map_or_else(|| LABEL.to_owned(), |s| s.label.clone()),
        classes,
        id_column: None,
        time_column: None,
        allow_missing: champion.is_none_or(|s| s.allow_missing),
    }
}

/// A labeled frame of the rows the schema accepts; returns it with how many were skipped
/// (an unknown class, or a value the schema refuses).
pub fn labeled_frame(schema: &Schema, rows: &[RowRecord], labels: &[String]) -> (Frame, usize) {
    let mut kept_rows = Vec::with_capacity(rows.len());
    let mut kept_labels = Vec::with_capacity(rows.len());
    for (row, label) in rows.iter().zip(labels) {
        if let Some(class) = schema.class_index(label) {
            kept_rows.push(row);
            kept_labels.push(class);
        }
    }
    let unknown_class = rows.len() - kept_rows.len();
    let (mut frame, rejected) = Frame::from_records(schema, &kept_rows);
    let rejected: HashSet<usize> = rejected.into_iter().map(|(index, _)| index).collect();
    let labels: Vec<usize> = kept_labels
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !rejected.contains(index))
        .map(|(_, class)| class)
        .collect();
    debug_assert_eq!(labels.len(), frame.len());
    frame.labels = Some(labels);
    (frame, unknown_class + rejected.len())
}

/// Trains a candidate on the window and scores it and the champion on its newest rows.
pub fn train_and_compare(
    rows: &[RowRecord],
    labels: &[String],
    champion: Option<&Artifact>,
    settings: &TrainSettings,
) -> Result<Comparison, CoreError> {
    train_and_compare_with_past(rows, labels, champion, &[], settings)
}

/// [`train_and_compare`], also scoring each of `past` (earlier versions of the model) on the
/// same held-out rows, each through its own schema.
pub fn train_and_compare_with_past(
    rows: &[RowRecord],
    labels: &[String],
    champion: Option<&Artifact>,
    past: &[std::sync::Arc<Artifact>],
    settings: &TrainSettings,
) -> Result<Comparison, CoreError> {
    let started = Instant::now();
    let schema = candidate_schema(champion.map(|c| &c.schema), rows, labels);
    let (frame, skipped) = labeled_frame(&schema, rows, labels);
    if skipped > 0 {
        tracing::warn!(skipped, "rows left out of the training frame");
    }
    // `train` holds out exactly these rows (the same split on the same times), so the
    // candidate never sees the rows it is judged on.
    let (_, holdout_idx) = time_split(&frame.times, settings.holdout_fraction)?;
    let candidate = train(&schema, &frame, settings)?;
    let holdout = frame.select(&holdout_idx);
    let candidate_metrics = candidate.evaluate(&holdout)?;

    let holdout_ids: HashSet<&str> = holdout.ids.iter().map(String::as_str).collect();
    let (holdout_rows, holdout_labels): (Vec<RowRecord>, Vec<String>) = rows
        .iter()
        .zip(labels)
        .filter(|(row, _)| holdout_ids.contains(row.id.as_str()))
        .map(|(row, label)| (row.clone(), label.clone()))
        .unzip();
    let score = |model: &Artifact| -> Result<(Option<Metrics>, usize), CoreError> {
        let (frame, skipped) = labeled_frame(&model.schema, &holdout_rows, &holdout_labels);
        if frame.is_empty() {
            Ok((None, skipped))
        } else {
            Ok((Some(model.evaluate(&frame)?), skipped))
        }
    };
    let (champion_metrics, champion_skipped) = match champion {
        Some(champion) => score(champion)?,
        None => (None, 0),
    };
    let past_metrics = past
        .iter()
        .map(|model| score(model).map(|(metrics, _)| metrics))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Comparison {
        candidate,
        candidate_metrics,
        champion_metrics,
        holdout_rows: holdout.len(),
        champion_skipped,
        train_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        past_metrics,
    })
}

/// Accuracy of a model on labeled rows, through its own schema; rows it cannot score count
/// as wrong, so a model is never flattered by the rows it refuses.
pub fn live_accuracy(
    model: &Artifact,
    rows: &[RowRecord],
    labels: &[String],
) -> Result<f64, CoreError> {
    if rows.is_empty() {
        return Err(CoreError::Input("no labeled rows to judge on".into()));
    }
    let (frame, _) = labeled_frame(&model.schema, rows, labels);
    if frame.is_empty() {
        return Ok(0.0);
    }
    let proba = model.predict_proba(&frame)?;
    let predicted = model.labels_of(&proba);
    let truth = frame.labels.as_deref().unwrap_or_default();
    let right = predicted
        .iter()
        .zip(truth)
        .filter(|(predicted, truth)| {
            model
                .schema
                .classes
                .get(**truth)
                .is_some_and(|t| t == *predicted)
        })
        .count();
    Ok(right as f64 / rows.len() as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_worlds::{Generator, Regime, SyntheticSpec};

    use super::*;

    fn window(seed: u64, n: usize, regime: &Regime) -> (Vec<RowRecord>, Vec<String>) {
        let mut generator = Generator::new(SyntheticSpec::default());
        generator.reseed(seed);
        let sample = generator.sample(n, regime);
        let (rows, labels) = generator.to_records(&sample, "r", 0, 1_000);
        (rows, labels.into_iter().map(|l| l.label).collect())
    }

    #[test]
    fn infers_a_schema_and_trains_without_a_champion() {
        let (rows, labels) = window(1, 1_000, &Regime::default());
        let comparison =
            train_and_compare(&rows, &labels, None, &TrainSettings::default()).unwrap();
        assert_eq!(comparison.candidate.schema.classes, vec!["no", "yes"]);
        let kinds: Vec<_> = comparison
            .candidate
            .schema
            .features
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == FeatureKind::Categorical)
                .count(),
            1
        );
        assert_eq!(comparison.holdout_rows, 200);
        assert!(
            comparison.candidate_metrics.accuracy > 0.8,
            "{:?}",
            comparison.candidate_metrics.accuracy
        );
        assert!(comparison.champion_metrics.is_none());
    }

    #[test]
    fn a_champion_of_the_old_concept_loses_on_the_new_one() {
        let (old_rows, old_labels) = window(2, 1_000, &Regime::default());
        let champion = train_and_compare(&old_rows, &old_labels, None, &TrainSettings::default())
            .unwrap()
            .candidate;
        let flipped = Regime {
            flip: true,
            ..Regime::default()
        };
        let (rows, labels) = window(3, 1_000, &flipped);
        let comparison =
            train_and_compare(&rows, &labels, Some(&champion), &TrainSettings::default()).unwrap();
        let champion_accuracy = comparison.champion_metrics.unwrap().accuracy;
        assert!(comparison.candidate_metrics.accuracy > 0.8);
        assert!(champion_accuracy < 0.3, "{champion_accuracy}");
        let live_new = live_accuracy(&comparison.candidate, &rows, &labels).unwrap();
        let live_old = live_accuracy(&champion, &rows, &labels).unwrap();
        assert!(live_new > live_old + 0.5);
    }

    #[test]
    fn new_features_extend_the_schema_and_the_champion_scores_through_its_own() {
        let (rows, labels) = window(4, 600, &Regime::default());
        let champion = train_and_compare(&rows, &labels, None, &TrainSettings::default())
            .unwrap()
            .candidate;
        let extended: Vec<RowRecord> = rows
            .iter()
            .map(|row| {
                let mut row = row.clone();
                row.values
                    .insert("extra", Value::Number(row.time_ms as f64 % 7.0));
                row
            })
            .collect();
        let comparison = train_and_compare(
            &extended,
            &labels,
            Some(&champion),
            &TrainSettings::default(),
        )
        .unwrap();
        assert_eq!(
            comparison.candidate.schema.features.len(),
            champion.schema.features.len() + 1
        );
        assert_eq!(comparison.champion_skipped, 0);
        assert!(comparison.champion_metrics.is_some());
    }
}
