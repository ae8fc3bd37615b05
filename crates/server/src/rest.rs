//! The Open Inference Protocol's REST binding, for users without a gRPC client. Requests are
//! translated into the gRPC messages and answered by the same [`InferenceService`], so both
//! bindings share one inference path and one set of errors (400, 404 or 503 with
//! `{"error": "..."}`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use mend_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use mend_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataResponse,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::infer::InferError;
use crate::service::InferenceService;

#[derive(Clone)]
struct RestState {
    service: InferenceService,
    max_body: usize,
}

/// The `/v2/...` routes; merge them with the runtime's ops router.
pub fn router(service: InferenceService, max_body: usize) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(version_metadata),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(version_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(version_infer),
        )
        .with_state(RestState { service, max_body })
}

/// An error in the OIP REST form.
fn error_response(error: &InferError) -> Response {
    let status = error.http_status();
    (status, axum::Json(json!({ "error": error.to_string() }))).into_response()
}

async fn server_metadata(State(state): State<RestState>) -> Response {
    let metadata = state.service.server_metadata();
    axum::Json(json!({
        "name": metadata.name,
        "version": metadata.version,
        "extensions": metadata.extensions,
    }))
    .into_response()
}

async fn live() -> Response {
    axum::Json(json!({ "live": true })).into_response()
}

async fn ready(State(state): State<RestState>) -> Response {
    let ready = state.service.server_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready }))).into_response()
}

async fn model_metadata(State(state): State<RestState>, Path(name): Path<String>) -> Response {
    metadata_response(&state, &name, "").await
}

async fn version_metadata(
    State(state): State<RestState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata_response(&state, &name, &version).await
}

async fn metadata_response(state: &RestState, name: &str, version: &str) -> Response {
    match state.service.model_metadata(name, version).await {
        Ok(metadata) => axum::Json(metadata_json(&metadata)).into_response(),
        Err(error) => error_response(&error),
    }
}

fn metadata_json(metadata: &ModelMetadataResponse) -> Value {
    let tensors = |tensors: &[mend_proto::inference::model_metadata_response::TensorMetadata]| {
        tensors
            .iter()
            .map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape }))
            .collect::<Vec<_>>()
    };
    json!({
        "name": metadata.name,
        "versions": metadata.versions,
        "platform": metadata.platform,
        "inputs": tensors(&metadata.inputs),
        "outputs": tensors(&metadata.outputs),
    })
}

async fn model_ready(State(state): State<RestState>, Path(name): Path<String>) -> Response {
    ready_response(&state, &name, "").await
}

async fn version_ready(
    State(state): State<RestState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    ready_response(&state, &name, &version).await
}

async fn ready_response(state: &RestState, name: &str, version: &str) -> Response {
    match state.service.model_ready(name, version).await {
        Ok(ready) => {
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(json!({ "name": name, "ready": ready }))).into_response()
        }
        Err(error) => error_response(&error),
    }
}

async fn infer(State(state): State<RestState>, Path(name): Path<String>, body: Body) -> Response {
    infer_response(&state, name, String::new(), body).await
}

async fn version_infer(
    State(state): State<RestState>,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Response {
    infer_response(&state, name, version, body).await
}

async fn infer_response(state: &RestState, name: String, version: String, body: Body) -> Response {
    let body = match axum::body::to_bytes(body, state.max_body).await {
        Ok(body) => body,
        Err(_) => {
            return error_response(&InferError::invalid(format!(
                "the request body is larger than the server's limit of {} bytes (MEND_SERVER_MAX_MESSAGE_BYTES), or could not be read",
                state.max_body
            )));
        }
    };
    let request = match to_grpc_request(&body, name, version) {
        Ok(request) => request,
        Err(error) => return error_response(&error),
    };
    match state.service.infer(request).await {
        Ok(response) => axum::Json(response_json(&response)).into_response(),
        Err(error) => error_response(&error),
    }
}

#[derive(Debug, Deserialize)]
struct RestRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    inputs: Vec<RestInput>,
    #[serde(default)]
    outputs: Vec<RestOutput>,
}

#[derive(Debug, Deserialize)]
struct RestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
struct RestOutput {
    name: String,
}

/// The OIP JSON body as a gRPC `ModelInferRequest` with typed contents.
fn to_grpc_request(
    body: &[u8],
    model: String,
    version: String,
) -> Result<ModelInferRequest, InferError> {
    let request: RestRequest = serde_json::from_slice(body).map_err(|error| {
        InferError::invalid(format!(
            "the request body is not an OIP inference request: {error}"
        ))
    })?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let contents = contents(&input)?;
        inputs.push(InferInputTensor {
            name: input.name,
            datatype: input.datatype,
            shape: input.shape,
            parameters: Default::default(),
            contents: Some(contents),
        });
    }
    Ok(ModelInferRequest {
        model_name: model,
        model_version: version,
        id: request.id,
        parameters: Default::default(),
        inputs,
        outputs: request
            .outputs
            .into_iter()
            .map(|output| InferRequestedOutputTensor {
                name: output.name,
                parameters: Default::default(),
            })
            .collect(),
        raw_input_contents: Vec::new(),
    })
}

/// `data` (flat or nested, row-major) in the typed field matching the datatype. `null` is a
/// missing value: NaN for floats, an empty element for BYTES.
fn contents(input: &RestInput) -> Result<InferTensorContents, InferError> {
    let mut flat = Vec::new();
    flatten(&input.data, &mut flat);
    let mut contents = InferTensorContents::default();
    let bad = |index: usize, expected: &str| {
        InferError::invalid(format!(
            "input `{}`: element {index} of `data` is not {expected}",
            input.name
        ))
    };
    match input.datatype.as_str() {
        "FP32" | "FP64" => {
            let mut values = Vec::with_capacity(flat.len());
            for (index, value) in flat.iter().enumerate() {
                values.push(match value {
                    Value::Null => f64::NAN,
                    other => other.as_f64().ok_or_else(|| bad(index, "a number"))?,
                });
            }
            if input.datatype == "FP32" {
                contents.fp32_contents = values.into_iter().map(|x| x as f32).collect();
            } else {
                contents.fp64_contents = values;
            }
        }
        "INT64" | "INT32" => {
            let mut values = Vec::with_capacity(flat.len());
            for (index, value) in flat.iter().enumerate() {
                values.push(value.as_i64().ok_or_else(|| bad(index, "an integer"))?);
            }
            if input.datatype == "INT64" {
                contents.int64_contents = values;
            } else {
                contents.int_contents = values
                    .into_iter()
                    .enumerate()
                    .map(|(index, x)| i32::try_from(x).map_err(|_| bad(index, "a 32-bit integer")))
                    .collect::<Result<_, _>>()?;
            }
        }
        "BOOL" => {
            for (index, value) in flat.iter().enumerate() {
                contents
                    .bool_contents
                    .push(value.as_bool().ok_or_else(|| bad(index, "true or false"))?);
            }
        }
        "BYTES" => {
            for (index, value) in flat.iter().enumerate() {
                contents.bytes_contents.push(match value {
                    Value::Null => Bytes::new(),
                    Value::String(text) => Bytes::from(text.clone().into_bytes()),
                    _ => return Err(bad(index, "a string")),
                });
            }
        }
        // Any other datatype is refused by the shared decoder, with the same message as gRPC.
        _ => {}
    }
    Ok(contents)
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other),
    }
}

fn response_json(response: &ModelInferResponse) -> Value {
    let outputs: Vec<Value> = response
        .outputs
        .iter()
        .map(|output| {
            let empty = InferTensorContents::default();
            let contents = output.contents.as_ref().unwrap_or(&empty);
            let data = if output.datatype == "BYTES" {
                json!(
                    contents
                        .bytes_contents
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect::<Vec<_>>()
                )
            } else {
                json!(contents.fp32_contents)
            };
            json!({
                "name": output.name,
                "datatype": output.datatype,
                "shape": output.shape,
                "data": data,
            })
        })
        .collect();
    json!({
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "outputs": outputs,
    })
}
