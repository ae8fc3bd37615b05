//! Training, evaluation and prediction from frames: the static pipeline every service reuses.

use std::time::Instant;

use ndarray::Array2;

use crate::artifact::{Artifact, FORMAT_VERSION, TrainingMeta};
use crate::error::{CoreError, Result};
use crate::frame::Frame;
use crate::metrics::{Metrics, argmax};
use crate::model::{Model, TrainSettings};
use crate::preprocess::Preprocessor;
use crate::profile::ReferenceProfile;
use crate::schema::Schema;

/// Indices of the training and holdout rows: rows ordered by event time (ties by position), the
/// newest `fraction` held out. Both parts keep at least one row.
pub fn time_split(times: &[i64], fraction: f64) -> Result<(Vec<usize>, Vec<usize>)> {
    let n = times.len();
    if n < 4 {
        return Err(CoreError::Training(format!(
            "need at least 4 labeled rows to train and hold out, got {n}"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (times[i], i));
    let holdout = ((n as f64 * fraction).round() as usize).clamp(1, n - 2);
    let train = order[..n - holdout].to_vec();
    let hold = order[n - holdout..].to_vec();
    Ok((train, hold))
}

/// Trains a model on a labeled frame and packs it with its profile into an artifact.
pub fn train(schema: &Schema, frame: &Frame, settings: &TrainSettings) -> Result<Artifact> {
    settings.validate()?;
    schema.validate()?;
    let started = Instant::now();
    let labels = frame
        .labels
        .as_ref()
        .ok_or_else(|| CoreError::Training("the training data has no labels".into()))?;
    let (train_idx, hold_idx) = time_split(&frame.times, settings.holdout_fraction)?;
    let train = frame.select(&train_idx);
    let hold = frame.select(&hold_idx);
    let preprocessor = Preprocessor::fit(&train, settings.min_category_frequency)?;
    let x_train = preprocessor.transform(&train)?;
    let y_train: Vec<usize> = train_idx.iter().map(|&i| labels[i]).collect();
    let (model, fit) = Model::fit(
        x_train.view(),
        &y_train,
        schema.classes.len(),
        &schema.classes,
        settings,
    )?;
    let x_hold = preprocessor.transform(&hold)?;
    let proba = model.predict_proba(x_hold.view());
    let y_hold: Vec<usize> = hold_idx.iter().map(|&i| labels[i]).collect();
    let metrics = Metrics::compute(&y_hold, proba.view(), &schema.classes);
    // The prediction reference covers every row, not only the holdout: a 400-row holdout's
    // histogram alone sits ~0.08 JS distance from the truth, next to the 0.1 threshold.
    let proba_train = model.predict_proba(x_train.view());
    let proba_all = ndarray::concatenate(ndarray::Axis(0), &[proba_train.view(), proba.view()])
        .map_err(|e| {
            CoreError::Training(format!("cannot join the predicted probabilities: {e}"))
        })?;
    let profile = ReferenceProfile::build(schema, &train, proba_all.view(), metrics.clone());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let training = TrainingMeta {
        rows_train: train.len(),
        rows_holdout: hold.len(),
        time_min: frame.times.iter().copied().min().unwrap_or(0),
        time_max: frame.times.iter().copied().max().unwrap_or(0),
        holdout_from: hold.times.iter().copied().min().unwrap_or(0),
        duration_ms: started.elapsed().as_millis() as u64,
        trained_at_ms: now_ms,
        settings: settings.clone(),
        fit,
        mend_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let artifact = Artifact {
        format_version: FORMAT_VERSION,
        schema: schema.clone(),
        preprocessor,
        model,
        metrics,
        profile,
        training,
    };
    artifact.validate()?;
    Ok(artifact)
}

impl Artifact {
    /// Class probabilities for every row of a frame (rows x classes).
    pub fn predict_proba(&self, frame: &Frame) -> Result<Array2<f64>> {
        let x = self.preprocessor.transform(frame)?;
        Ok(self.model.predict_proba(x.view()))
    }

    /// The predicted class name of each row of probabilities.
    pub fn labels_of(&self, proba: &Array2<f64>) -> Vec<&str> {
        proba
            .rows()
            .into_iter()
            .map(|r| self.schema.classes[argmax(r.iter().copied())].as_str())
            .collect()
    }

    /// Metrics of the model on a labeled frame.
    pub fn evaluate(&self, frame: &Frame) -> Result<Metrics> {
        let labels = frame
            .labels
            .as_ref()
            .ok_or_else(|| CoreError::Input("the data has no labels to evaluate against".into()))?;
        if frame.is_empty() {
            return Err(CoreError::Input("no rows to evaluate".into()));
        }
        let proba = self.predict_proba(frame)?;
        Ok(Metrics::compute(labels, proba.view(), &self.schema.classes))
    }
}
