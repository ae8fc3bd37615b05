//! Builds the response: `probabilities` (FP32 `[N, C]`) and `label` (BYTES `[N]`), the ones
//! requested, in the order requested, typed or raw.
//!
//! Raw outputs follow the request: inputs sent in `raw_input_contents` get outputs in
//! `raw_output_contents` (as MLServer does), typed inputs get typed `contents`.

use bytes::Bytes;
use mend_proto::inference::model_infer_response::InferOutputTensor;
use mend_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};

use super::datatype::{BYTES, FP32};
use super::predict::Predictions;
use crate::error::InferError;
use crate::model::LoadedModel;

/// Output tensor names.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";
pub const LABEL_OUTPUT: &str = "label";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Probabilities,
    Label,
}

/// The outputs a request asks for, in order and without duplicates: at most the two there
/// are, so no allocation per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outputs {
    list: [Output; 2],
    len: usize,
}

impl Outputs {
    const ALL: Outputs = Outputs {
        list: [Output::Probabilities, Output::Label],
        len: 2,
    };

    pub fn as_slice(&self) -> &[Output] {
        &self.list[..self.len]
    }

    fn push(&mut self, output: Output) {
        if self.as_slice().contains(&output) {
            return;
        }
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = output;
            self.len += 1;
        }
    }
}

/// The outputs a request asks for (every output when it lists none), without duplicates.
pub(crate) fn requested_outputs(request: &ModelInferRequest) -> Result<Outputs, InferError> {
    if request.outputs.is_empty() {
        return Ok(Outputs::ALL);
    }
    let mut outputs = Outputs {
        list: [Output::Probabilities; 2],
        len: 0,
    };
    for requested in &request.outputs {
        let output = match requested.name.as_str() {
            PROBABILITIES_OUTPUT => Output::Probabilities,
            LABEL_OUTPUT => Output::Label,
            other => {
                return Err(InferError::invalid(format!(
                    "requested output `{other}` does not exist; outputs are `{PROBABILITIES_OUTPUT}` and `{LABEL_OUTPUT}`"
                )));
            }
        };
        outputs.push(output);
    }
    Ok(outputs)
}

/// The response for `predictions`, answered by `model`.
pub(crate) fn response(
    model: &LoadedModel,
    request_id: &str,
    outputs: &[Output],
    mut predictions: Predictions,
    raw: bool,
) -> ModelInferResponse {
    let rows = predictions.labels.len();
    let classes = model.plan.classes;
    let mut response = ModelInferResponse {
        model_name: model.name.clone(),
        model_version: model.version_text.clone(),
        id: request_id.to_owned(),
        parameters: Default::default(),
        outputs: Vec::with_capacity(outputs.len()),
        raw_output_contents: Vec::new(),
    };
    for output in outputs {
        let (name, datatype, shape) = match output {
            Output::Probabilities => (
                PROBABILITIES_OUTPUT,
                FP32,
                vec![rows as i64, classes as i64],
            ),
            Output::Label => (LABEL_OUTPUT, BYTES, vec![rows as i64]),
        };
        let contents = if raw {
            response.raw_output_contents.push(match output {
                Output::Probabilities => raw_probabilities(&predictions.probabilities),
                Output::Label => raw_labels(model, &predictions.labels),
            });
            None
        } else {
            Some(match output {
                Output::Probabilities => InferTensorContents {
                    fp32_contents: std::mem::take(&mut predictions.probabilities),
                    ..Default::default()
                },
                Output::Label => InferTensorContents {
                    bytes_contents: predictions
                        .labels
                        .iter()
                        .map(|&label| class_bytes(model, label))
                        .collect(),
                    ..Default::default()
                },
            })
        };
        response.outputs.push(InferOutputTensor {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
            parameters: Default::default(),
            contents,
        });
    }
    response
}

fn class_bytes(model: &LoadedModel, label: u32) -> Bytes {
    model
        .class_bytes
        .get(label as usize)
        .cloned()
        .unwrap_or_default()
}

fn raw_probabilities(probabilities: &[f32]) -> Bytes {
    let mut raw = Vec::with_capacity(probabilities.len() * 4);
    for p in probabilities {
        raw.extend_from_slice(&p.to_le_bytes());
    }
    raw.into()
}

fn raw_labels(model: &LoadedModel, labels: &[u32]) -> Bytes {
    let longest = model.class_bytes.iter().map(Bytes::len).max().unwrap_or(0);
    let mut raw = Vec::with_capacity(labels.len() * (4 + longest));
    for &label in labels {
        let class = model
            .class_bytes
            .get(label as usize)
            .map(Bytes::as_ref)
            .unwrap_or_default();
        raw.extend_from_slice(&(class.len() as u32).to_le_bytes());
        raw.extend_from_slice(class);
    }
    raw.into()
}
