//! One inference request against one loaded model: validate, predict, sample, respond.
//!
//! - [`datatype`](self): the OIP datatypes the server reads.
//! - `source`: borrowed views of typed or raw tensor elements.
//! - `decode`: layouts, shapes, sizes and values checked; each error names its tensor.
//! - `predict`: the allocation-free row loop.
//! - `encode`: the requested outputs, typed or raw.
//! - [`InferError`] (defined in the crate's `error.rs`, which [`crate::model`] uses too): what
//!   failed, mapped once to gRPC and HTTP codes.

mod datatype;
mod decode;
mod encode;
mod predict;
mod source;

use mend_proto::inference::{ModelInferRequest, ModelInferResponse};

pub use crate::error::InferError;
pub use decode::{MATRIX_INPUT, ROW_ID_INPUT};
pub use encode::{LABEL_OUTPUT, PROBABILITIES_OUTPUT};

pub(crate) use datatype::{BYTES, FP32};
pub(crate) use decode::Decoded;
pub(crate) use predict::Predictions;

use crate::model::LoadedModel;

/// Answers `request` with `model`; returns the response and the number of rows predicted.
/// `sample` sees the decoded inputs and the predictions of a request that succeeded, before
/// they are encoded (the service hands them to the prediction log; this module does not know
/// the log, which depends on it).
pub(crate) fn infer(
    model: &LoadedModel,
    request: &ModelInferRequest,
    max_rows: usize,
    sample: impl FnOnce(&Decoded<'_>, &Predictions),
) -> Result<(ModelInferResponse, usize), InferError> {
    let outputs = encode::requested_outputs(request)?;
    let decoded = decode::decode(model, request, max_rows)?;
    let predictions = predict::predict(model, &decoded)?;
    sample(&decoded, &predictions);
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
