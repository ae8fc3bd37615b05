//! What both bindings (gRPC and REST) call: inference with metrics and the prediction log,
//! readiness, and model metadata. One path, so both answer and fail the same way.

use std::sync::Arc;
use std::time::Instant;

use mend_core::FeatureKind;
use mend_proto::inference::model_metadata_response::TensorMetadata;
use mend_proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataResponse, ServerMetadataResponse,
};
use mend_runtime::Readiness;

use crate::infer::{
    self, BYTES, FP32, InferError, LABEL_OUTPUT, MATRIX_INPUT, PROBABILITIES_OUTPUT, ROW_ID_INPUT,
};
use crate::metrics::{ServerMetrics, UNKNOWN_MODEL};
use crate::model::{LoadedModel, ModelStore};
use crate::predlog::PredictionLog;

/// The server's name in OIP server metadata.
pub const SERVER_NAME: &str = "mend";
/// Requests with more tensor elements than this are predicted on the blocking pool, so one
/// huge request cannot stall the executor's other requests.
const BLOCKING_ELEMENTS: usize = 200_000;

/// Shared by the gRPC and REST bindings; cheap to clone.
#[derive(Debug, Clone)]
pub struct InferenceService {
    store: Arc<ModelStore>,
    metrics: ServerMetrics,
    log: Option<Arc<PredictionLog>>,
    max_rows: usize,
    readiness: Readiness,
}

impl InferenceService {
    pub fn new(
        store: Arc<ModelStore>,
        metrics: ServerMetrics,
        log: Option<Arc<PredictionLog>>,
        max_rows: usize,
        readiness: Readiness,
    ) -> Self {
        InferenceService {
            store,
            metrics,
            log,
            max_rows,
            readiness,
        }
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }

    /// Runs one inference request; failures are counted by model, version and code.
    pub async fn infer(
        &self,
        request: ModelInferRequest,
    ) -> Result<ModelInferResponse, InferError> {
        let started = Instant::now();
        let model = match self
            .store
            .resolve(&request.model_name, &request.model_version)
            .await
        {
            Ok(model) => model,
            Err(error) => {
                let label = if self.store.get(&request.model_name).is_some() {
                    request.model_name.as_str()
                } else {
                    UNKNOWN_MODEL
                };
                // No version label: the text is the client's and could be anything.
                self.metrics.error(label, "", error.code());
                return Err(error);
            }
        };
        let outcome = if elements(&request) > BLOCKING_ELEMENTS {
            let model = Arc::clone(&model);
            let log = self.log.clone();
            let max_rows = self.max_rows;
            tokio::task::spawn_blocking(move || {
                infer_and_sample(&model, &request, max_rows, log.as_deref())
            })
            .await
            .unwrap_or_else(|error| {
                Err(InferError::Unavailable(format!(
                    "inference task failed: {error}"
                )))
            })
        } else {
            infer_and_sample(&model, &request, self.max_rows, self.log.as_deref())
        };
        match outcome {
            Ok((response, rows)) => {
                model.metrics.observe(rows, started.elapsed().as_secs_f64());
                Ok(response)
            }
            Err(error) => {
                self.metrics
                    .error(&model.name, &model.version_text, error.code());
                tracing::debug!(model = %model.name, version = model.version, %error, "inference request refused");
                Err(error)
            }
        }
    }

    /// Ready for inference: not shutting down and the served champions are loaded.
    pub fn server_ready(&self) -> bool {
        !self.readiness.is_shutting_down() && self.store.is_ready()
    }

    pub fn server_metadata(&self) -> ServerMetadataResponse {
        ServerMetadataResponse {
            name: SERVER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: Vec::new(),
        }
    }

    /// Whether a model (a version, or the champion when `version` is empty) can answer now.
    /// Unknown models are NOT_FOUND; a known model's unknown version is simply not ready.
    pub async fn model_ready(&self, name: &str, version: &str) -> Result<bool, InferError> {
        match self.store.resolve(name, version).await {
            Ok(_) => Ok(true),
            Err(InferError::NotFound(_)) if self.store.get(name).is_some() => Ok(false),
            Err(InferError::Unavailable(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Inputs (both layouts) and outputs of a model version (the champion when empty).
    pub async fn model_metadata(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ModelMetadataResponse, InferError> {
        let model = self.store.resolve(name, version).await?;
        let versions = self
            .store
            .get(name)
            .map(|entry| entry.loaded_versions())
            .unwrap_or_default();
        Ok(metadata(&model, &versions))
    }
}

/// Answers `request` with `model`, handing the request's rows to the prediction log (when
/// there is one) to sample.
fn infer_and_sample(
    model: &LoadedModel,
    request: &ModelInferRequest,
    max_rows: usize,
    log: Option<&PredictionLog>,
) -> Result<(ModelInferResponse, usize), InferError> {
    infer::infer(model, request, max_rows, |decoded, predictions| {
        if let Some(log) = log {
            log.sample(model, &request.id, decoded, predictions);
        }
    })
}

/// Total tensor elements a request declares, to spot the huge ones early.
fn elements(request: &ModelInferRequest) -> usize {
    request
        .inputs
        .iter()
        .map(|input| {
            input
                .shape
                .iter()
                .map(|&d| usize::try_from(d).unwrap_or(0))
                .fold(1usize, usize::saturating_mul)
        })
        .fold(0, usize::saturating_add)
}

/// Per-feature inputs first (numeric `FP64` — any numeric type is accepted — or `BYTES`), then,
/// for all-numeric models, the alternative `[N, F]` FP32 `input`, then the optional `row_id`.
/// A request uses one layout, not every listed input.
fn metadata(model: &LoadedModel, versions: &[u64]) -> ModelMetadataResponse {
    let schema = &model.artifact.schema;
    let tensor = |name: &str, datatype: &str, shape: Vec<i64>| TensorMetadata {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
    };
    let mut inputs: Vec<TensorMetadata> = schema
        .features
        .iter()
        .map(|feature| {
            let datatype = match feature.kind {
                FeatureKind::Numeric => "FP64",
                FeatureKind::Categorical => BYTES,
            };
            tensor(&feature.name, datatype, vec![-1])
        })
        .collect();
    if schema.all_numeric() {
        inputs.push(tensor(
            MATRIX_INPUT,
            FP32,
            vec![-1, schema.features.len() as i64],
        ));
    }
    inputs.push(tensor(ROW_ID_INPUT, BYTES, vec![-1]));
    let outputs = vec![
        tensor(
            PROBABILITIES_OUTPUT,
            FP32,
            vec![-1, schema.classes.len() as i64],
        ),
        tensor(LABEL_OUTPUT, BYTES, vec![-1]),
    ];
    ModelMetadataResponse {
        name: model.name.clone(),
        versions: versions.iter().map(u64::to_string).collect(),
        platform: model.artifact.model.platform().to_owned(),
        inputs,
        outputs,
    }
}
