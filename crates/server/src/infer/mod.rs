//! One inference request against one loaded model: validate, predict, sample, respond.
//!
//! - [`datatype`](self): the OIP datatypes the server reads.
//! - `source`: borrowed views of typed or raw tensor elements.
//! - `decode`: layouts, shapes, sizes and values checked; each error names its tensor.
//! - `predict`: the allocation-free row loop.
//! - `encode`: the requested outputs, typed or raw.
//! - [`InferError`]: what failed, mapped once to gRPC and HTTP codes.

mod datatype;
mod decode;
mod encode;
mod error;
mod predict;
mod source;

use mend_proto::inference::{ModelInferRequest, ModelInferResponse};

pub use decode::{MATRIX_INPUT, ROW_ID_INPUT};
pub use encode::{LABEL_OUTPUT, PROBABILITIES_OUTPUT};
pub use error::InferError;

pub(crate) use datatype::{BYTES, FP32};
pub(crate) use decode::Decoded;
pub(crate) use predict::Predictions;

use crate::model::LoadedModel;
use crate::predlog::PredictionLog;

/// Answers `request` with `model`; returns the response and the number of rows predicted.
pub(crate) fn infer(
    model: &LoadedModel,
    request: &ModelInferRequest,
    max_rows: usize,
    log: Option<&PredictionLog>,
) -> Result<(ModelInferResponse, usize), InferError> {
    let outputs = encode::requested_outputs(request)?;
    let decoded = decode::decode(model, request, max_rows)?;
    let predictions = predict::predict(model, &decoded)?;
    if let Some(log) = log {
        log.sample(model, &request.id, &decoded, &predictions);
    }
    let rows = decoded.rows;
    let response = encode::response(
        model,
        &request.id,
        outputs.as_slice(),
        predictions,
        decoded.raw,
    );
    Ok((response, rows))
}
