//! The hot loop: each row goes straight from the request's tensors through preprocessing into
//! the model, in one reused buffer. No frame, no per-row allocation.
//!
//! The arithmetic is exactly `Step::scale` followed by `LogisticModel::predict_row`, so results
//! are bit-identical to `Artifact::predict_proba` (and `mend predict`) on the same values.

use mend_core::metrics::argmax;

use super::decode::{Column, Decoded, Layout};
use crate::error::InferError;
use crate::model::{FeaturePlan, LoadedModel};

/// Probabilities (`rows x classes`, row-major) and each row's predicted class.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Predictions {
    pub probabilities: Vec<f32>,
    pub labels: Vec<u32>,
}

/// Predicts every row of a decoded request.
pub(crate) fn predict(
    model: &LoadedModel,
    decoded: &Decoded<'_>,
) -> Result<Predictions, InferError> {
    let plan = &model.plan;
    let rows = decoded.rows;
    let mut x = zeros(plan.width);
    let mut p = zeros(plan.classes);
    let mut out = Predictions {
        probabilities: Vec::with_capacity(rows * plan.classes),
        labels: Vec::with_capacity(rows),
    };
    match &decoded.layout {
        Layout::Matrix { name, values } => {
            let width = plan.features.len();
            let check = values.can_be_non_finite();
            for row in 0..rows {
                for (column, feature) in plan.features.iter().enumerate() {
                    if let FeaturePlan::Numeric {
                        offset,
                        median,
                        mean,
                        std,
                    } = *feature
                    {
                        let value = values.get(row * width + column);
                        if check && !value.is_finite() {
                            check_value(model, value, || {
                                let feature = &model.artifact.schema.features[column].name;
                                format!(
                                    "input `{name}`: row {row}, column {column} (feature `{feature}`)"
                                )
                            })?;
                        }
                        set(&mut x, offset, scale(value, median, mean, std));
                    }
                }
                finish_row(model, &x, &mut p, &mut out);
            }
        }
        Layout::Columns(columns) => {
            for row in 0..rows {
                for (feature, column) in plan.features.iter().zip(columns) {
                    match (*feature, column) {
                        (
                            FeaturePlan::Numeric {
                                offset,
                                median,
                                mean,
                                std,
                            },
                            Column::Numeric { name, values },
                        ) => {
                            let value = values.get(row);
                            if !value.is_finite() {
                                check_value(model, value, || {
                                    format!("input `{name}`: element {row}")
                                })?;
                            }
                            set(&mut x, offset, scale(value, median, mean, std));
                        }
                        (
                            FeaturePlan::Categorical { offset, .. },
                            Column::Categorical { slots, .. },
                        ) => {
                            if let Some(slot) = slots.get(row) {
                                set(&mut x, offset + slot, 1.0);
                            }
                        }
                        // Decoding builds columns from the same plan, so kinds always agree.
                        _ => {}
                    }
                }
                finish_row(model, &x, &mut p, &mut out);
                // Clear this row's one-hot bits for the next row.
                for (feature, column) in plan.features.iter().zip(columns) {
                    if let (
                        FeaturePlan::Categorical { offset, .. },
                        Column::Categorical { slots, .. },
                    ) = (*feature, column)
                        && let Some(slot) = slots.get(row)
                    {
                        set(&mut x, offset + slot, 0.0);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `n` zeros. Not `vec![0.0; n]`: that allocates through `calloc`, which glibc (2.36) serves
/// from its arenas, bypassing the per-thread cache `malloc` uses; on single-row requests that
/// was a measurable share of the whole predict path.
fn zeros(n: usize) -> Vec<f64> {
    let mut buffer = Vec::with_capacity(n);
    buffer.resize(n, 0.0);
    buffer
}

/// Exactly `Step::scale`: NaN is imputed with the median, then standardised.
#[inline]
fn scale(value: f64, median: f64, mean: f64, std: f64) -> f64 {
    let value = if value.is_nan() { median } else { value };
    (value - mean) / std
}

#[inline]
fn set(x: &mut [f64], index: usize, value: f64) {
    // The plan's offsets fit the width by construction; a miss would only drop a value.
    if let Some(slot) = x.get_mut(index) {
        *slot = value;
    }
}

#[inline]
fn finish_row(model: &LoadedModel, x: &[f64], p: &mut [f64], out: &mut Predictions) {
    model.artifact.model.predict_row(x, p);
    out.probabilities.extend(p.iter().map(|&q| q as f32));
    out.labels.push(argmax(p.iter().copied()) as u32);
}

/// A non-finite value: NaN is a missing value (imputed when the schema allows it), infinity is
/// never valid.
#[cold]
fn check_value(
    model: &LoadedModel,
    value: f64,
    place: impl FnOnce() -> String,
) -> Result<(), InferError> {
    if value.is_nan() {
        if model.plan.allow_missing {
            return Ok(());
        }
        return Err(InferError::invalid(format!(
            "{} is NaN, and model `{}` does not allow missing values",
            place(),
            model.name
        )));
    }
    Err(InferError::invalid(format!(
        "{} is {value}; values must be finite",
        place()
    )))
}
