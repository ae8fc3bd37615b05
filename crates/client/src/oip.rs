//! Open Inference Protocol requests and answers for tools that drive the inference server with
//! synthetic data (the demo, end-to-end tests): one tensor per feature, FP64 for numeric
//! features and BYTES for categorical ones.

use bytes::Bytes;
use mend_proto::inference::model_infer_request::InferInputTensor;
use mend_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};
use mend_worlds::Sample;

/// A request for every row of `sample`; `feature_names` lists the numeric features first, then
/// the categorical ones, as [`mend_worlds::Generator::feature_names`] does.
pub fn sample_request(model: &str, feature_names: &[String], sample: &Sample) -> ModelInferRequest {
    let rows = sample.labels.len();
    let numeric = sample.numeric.ncols();
    let inputs = feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let (datatype, contents) = if j < numeric {
                let values = sample.numeric.column(j).to_vec();
                (
                    "FP64",
                    InferTensorContents {
                        fp64_contents: values,
                        ..Default::default()
                    },
                )
            } else {
                let values = sample.categorical[j - numeric]
                    .iter()
                    .map(|s| Bytes::from(s.clone()))
                    .collect();
                (
                    "BYTES",
                    InferTensorContents {
                        bytes_contents: values,
                        ..Default::default()
                    },
                )
            };
            InferInputTensor {
                name: name.clone(),
                datatype: datatype.into(),
                shape: vec![rows as i64],
                contents: Some(contents),
                ..Default::default()
            }
        })
        .collect();
    ModelInferRequest {
        model_name: model.to_owned(),
        inputs,
        ..Default::default()
    }
}

/// The predicted class names of a response's `label` output (typed contents).
pub fn labels(response: &ModelInferResponse) -> Vec<String> {
    response
        .outputs
        .iter()
        .find(|o| o.name == "label")
        .and_then(|o| o.contents.as_ref())
        .map(|c| {
            c.bytes_contents
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        })
        .unwrap_or_default()
}
