//! The load generator: request templates built from the model's metadata (or from
//! `--input`, when given), then `concurrency` workers sending them back to back over a few
//! HTTP/2 connections until the measured window closes. Every latency is kept, so
//! percentiles are exact.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::inference::model_infer_request::InferInputTensor;
use mend_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
};
use tonic::transport::{Channel, Endpoint};

use super::h2client::{self, GrpcH2};
use super::inputs::{Datatype, InputSpec};

/// Distinct requests cycled through, so the server does not see one payload only.
const TEMPLATES: usize = 16;
/// Categories sent for BYTES inputs (the synthetic models' levels; others hit the unknown bucket).
const LEVELS: [&str; 4] = ["red", "green", "blue", "gold"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Auto,
    Matrix,
    Features,
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Layout::Auto),
            "matrix" => Ok(Layout::Matrix),
            "features" => Ok(Layout::Features),
            other => Err(format!(
                "unknown layout {other:?}; use auto, matrix or features"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `host:port`.
    pub addr: String,
    pub model: String,
    pub version: String,
    pub concurrency: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rows: usize,
    pub raw: bool,
    pub layout: Layout,
    /// `--input`: the tensors to send, instead of those the metadata lists.
    pub inputs: Vec<InputSpec>,
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latencies of measured, successful requests, sorted ascending.
    pub latencies: Vec<Duration>,
    /// The measured window.
    pub elapsed: Duration,
    /// Failed requests by gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Answered requests by the version that answered.
    pub versions: BTreeMap<String, u64>,
    /// How the requests were shaped, for the report.
    pub shape: String,
}

/// Runs the load and collects every latency.
pub async fn run(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let uri = format!("http://{}", spec.addr);
    let channel = Endpoint::from_shared(uri.clone())
        .context("invalid server address")?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("failed to connect to {uri}"))?;
    let mut first = client(channel);
    // Given inputs need no metadata (some servers list none, or do not serve it).
    let (templates, shape) = if spec.inputs.is_empty() {
        let metadata = first
            .model_metadata(ModelMetadataRequest {
                name: spec.model.clone(),
                version: spec.version.clone(),
            })
            .await
            .with_context(|| format!("failed to read the metadata of model `{}`", spec.model))?
            .into_inner();
        templates(spec, &metadata.inputs)?
    } else {
        given_templates(spec)?
    };
    // One request first: a broken setup fails loudly instead of as a flood of errors.
    first
        .model_infer(templates[0].clone())
        .await
        .context("the first inference request failed")?;
    let framed: Vec<Bytes> = templates.iter().map(h2client::frame).collect();

    let mut connections = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        connections.push(GrpcH2::connect(&spec.addr).await?);
    }
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut workers = Vec::with_capacity(spec.concurrency);
    for worker in 0..spec.concurrency {
        let connection = connections[worker % connections.len()].clone();
        let framed = framed.clone();
        workers.push(tokio::spawn(work(
            connection,
            framed,
            worker,
            measure_from,
            end,
        )));
    }
    let mut result = LoadResult {
        shape,
        ..LoadResult::default()
    };
    let mut last_finish = measure_from;
    for worker in workers {
        let done = worker.await.context("a load worker failed")?;
        result.latencies.extend(done.latencies);
        for (code, n) in done.errors {
            *result.errors.entry(code).or_default() += n;
        }
        for (version, n) in done.versions {
            *result.versions.entry(version).or_default() += n;
        }
        last_finish = last_finish.max(done.last_finish);
    }
    result.elapsed = last_finish
        .saturating_duration_since(measure_from)
        .max(spec.duration);
    result.latencies.sort_unstable();
    Ok(result)
}

fn client(channel: Channel) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024)
}

/// One worker's measurements.
#[derive(Debug)]
struct WorkerResult {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    versions: BTreeMap<String, u64>,
    last_finish: Instant,
}

async fn work(
    connection: GrpcH2,
    requests: Vec<Bytes>,
    worker: usize,
    measure_from: Instant,
    end: Instant,
) -> WorkerResult {
    let mut out = WorkerResult {
        latencies: Vec::new(),
        errors: BTreeMap::new(),
        versions: BTreeMap::new(),
        last_finish: measure_from,
    };
    let mut next = worker;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = requests[next % requests.len()].clone();
        next += 1;
        let result = connection.model_infer::<ModelInferResponse>(request).await;
        let finished = Instant::now();
        if sent < measure_from {
            continue;
        }
        out.last_finish = finished;
        match result {
            Ok(response) => {
                out.latencies.push(finished - sent);
                match out.versions.get_mut(&response.model_version) {
                    Some(n) => *n += 1,
                    None => {
                        out.versions.insert(response.model_version, 1);
                    }
                }
            }
            Err(error) => {
                *out.errors.entry(format!("{:?}", error.code)).or_default() += 1;
                if out.errors.values().sum::<u64>() == 1 {
                    tracing::warn!(code = ?error.code, message = %error.message, "request failed");
                }
            }
        }
    }
    out
}

/// A small deterministic generator for feature values.
struct Values(u64);

impl Values {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // Uniform in [-2, 2): the synthetic features are standard normal.
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    }
}

/// Request templates for the model's inputs, and a description of their shape.
fn templates(
    spec: &LoadSpec,
    inputs: &[mend_proto::inference::model_metadata_response::TensorMetadata],
) -> anyhow::Result<(Vec<ModelInferRequest>, String)> {
    let matrix = inputs
        .iter()
        .find(|t| t.name == "input" && t.shape.len() == 2 && t.shape[1] > 0);
    let features: Vec<_> = inputs
        .iter()
        .filter(|t| t.name != "input" && t.name != "row_id")
        .collect();
    let use_matrix = match (spec.layout, matrix) {
        (Layout::Features, _) => false,
        (Layout::Matrix, None) => bail!(
            "model `{}` has no [N, F] input (it is not all-numeric)",
            spec.model
        ),
        (_, Some(_)) => true,
        (Layout::Auto, None) => false,
    };
    if !use_matrix && features.is_empty() {
        let listed = if inputs.is_empty() {
            "no inputs".to_owned()
        } else {
            let names: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).collect();
            format!("no input mend bench can fill (only {})", names.join(", "))
        };
        bail!(
            "the metadata of model `{}` lists {listed}, so there is nothing to send; name the \
             inputs with --input NAME:DATATYPE:[SHAPE] (repeatable), e.g. --input \
             predict:FP64:[-1,3], where -1 is the batch (--rows)",
            spec.model
        );
    }
    let n = spec.rows;
    let contents_kind = if spec.raw { "raw" } else { "typed" };
    let mut values = Values(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(TEMPLATES);
    let mut shape = String::new();
    for _ in 0..TEMPLATES {
        let mut request = ModelInferRequest {
            model_name: spec.model.clone(),
            model_version: spec.version.clone(),
            ..Default::default()
        };
        if let (true, Some(matrix)) = (use_matrix, matrix) {
            let width = matrix.shape[1] as usize;
            let data: Vec<f32> = (0..n * width).map(|_| values.next()).collect();
            request
                .inputs
                .push(tensor("input", "FP32", vec![n as i64, width as i64]));
            if spec.raw {
                request.raw_input_contents.push(raw_f32(&data));
            } else {
                request.inputs[0].contents = Some(InferTensorContents {
                    fp32_contents: data,
                    ..Default::default()
                });
            }
            shape = format!("{contents_kind} FP32 [{n}, {width}]");
        } else {
            for feature in &features {
                let categorical = feature.datatype == "BYTES";
                let mut input = tensor(
                    &feature.name,
                    if categorical { "BYTES" } else { "FP32" },
                    vec![n as i64],
                );
                if categorical {
                    let data: Vec<&str> = (0..n)
                        .map(|_| LEVELS[(values.next().abs() * 100.0) as usize % LEVELS.len()])
                        .collect();
                    if spec.raw {
                        request.raw_input_contents.push(raw_bytes(&data));
                    } else {
                        input.contents = Some(InferTensorContents {
                            bytes_contents: data
                                .iter()
                                .map(|s| Bytes::from(s.to_string()))
                                .collect(),
                            ..Default::default()
                        });
                    }
                } else {
                    let data: Vec<f32> = (0..n).map(|_| values.next()).collect();
                    if spec.raw {
                        request.raw_input_contents.push(raw_f32(&data));
                    } else {
                        input.contents = Some(InferTensorContents {
                            fp32_contents: data,
                            ..Default::default()
                        });
                    }
                }
                request.inputs.push(input);
            }
            shape = format!("{contents_kind}, {} tensors of [{n}]", features.len());
        }
        out.push(request);
    }
    Ok((out, shape))
}

/// Request templates for the `--input` tensors, and a description of their shape.
fn given_templates(spec: &LoadSpec) -> anyhow::Result<(Vec<ModelInferRequest>, String)> {
    let shapes = spec
        .inputs
        .iter()
        .map(|input| input.shape_for(spec.rows))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut values = Values(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(TEMPLATES);
    for _ in 0..TEMPLATES {
        let mut request = ModelInferRequest {
            model_name: spec.model.clone(),
            model_version: spec.version.clone(),
            ..Default::default()
        };
        for (input, shape) in spec.inputs.iter().zip(&shapes) {
            let (tensor, raw) = given_tensor(input, shape.clone(), &mut values, spec.raw);
            request.inputs.push(tensor);
            if let Some(raw) = raw {
                request.raw_input_contents.push(raw);
            }
        }
        out.push(request);
    }
    let described: Vec<String> = spec
        .inputs
        .iter()
        .zip(&shapes)
        .map(|(input, shape)| {
            let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
            format!("{} {} [{}]", input.name, input.datatype, dims.join(", "))
        })
        .collect();
    let contents_kind = if spec.raw { "raw" } else { "typed" };
    Ok((
        out,
        format!("{contents_kind}, --input {}", described.join("; ")),
    ))
}

/// One `--input` tensor of `shape`, filled with generated values: typed contents, or (with
/// `raw`) the tensor's `raw_input_contents` entry, little-endian as the protocol lays it out.
/// Numbers are uniform in [-2, 2) for floats, whole numbers in [0, 100) for integers, true or
/// false for BOOL; BYTES are the synthetic models' category levels.
fn given_tensor(
    input: &InputSpec,
    shape: Vec<i64>,
    values: &mut Values,
    raw: bool,
) -> (InferInputTensor, Option<Bytes>) {
    let count: usize = shape
        .iter()
        .map(|&dim| usize::try_from(dim).unwrap_or(0))
        .product();
    let draws: Vec<f32> = (0..count).map(|_| values.next()).collect();
    let mut tensor = tensor(&input.name, input.datatype.name(), shape);
    // Whole numbers in [0, 100): valid for every integer type, signed or not.
    let whole = |value: &f32| ((value + 2.0) * 25.0) as i64;
    let level = |value: &f32| LEVELS[(value.abs() * 100.0) as usize % LEVELS.len()];
    if raw {
        if input.datatype == Datatype::Bytes {
            let data: Vec<&str> = draws.iter().map(level).collect();
            return (tensor, Some(raw_bytes(&data)));
        }
        let mut bytes = Vec::with_capacity(count * 8);
        for value in &draws {
            match input.datatype {
                Datatype::Bool => bytes.push(u8::from(*value >= 0.0)),
                Datatype::Uint8 => bytes.extend_from_slice(&(whole(value) as u8).to_le_bytes()),
                Datatype::Uint16 => bytes.extend_from_slice(&(whole(value) as u16).to_le_bytes()),
                Datatype::Uint32 => bytes.extend_from_slice(&(whole(value) as u32).to_le_bytes()),
                Datatype::Uint64 => bytes.extend_from_slice(&(whole(value) as u64).to_le_bytes()),
                Datatype::Int8 => bytes.extend_from_slice(&(whole(value) as i8).to_le_bytes()),
                Datatype::Int16 => bytes.extend_from_slice(&(whole(value) as i16).to_le_bytes()),
                Datatype::Int32 => bytes.extend_from_slice(&(whole(value) as i32).to_le_bytes()),
                Datatype::Int64 => bytes.extend_from_slice(&whole(value).to_le_bytes()),
                Datatype::Fp32 => bytes.extend_from_slice(&value.to_le_bytes()),
                Datatype::Fp64 => bytes.extend_from_slice(&f64::from(*value).to_le_bytes()),
                Datatype::Bytes => {}
            }
        }
        return (tensor, Some(Bytes::from(bytes)));
    }
    let mut contents = InferTensorContents::default();
    match input.datatype {
        Datatype::Bool => contents.bool_contents = draws.iter().map(|v| *v >= 0.0).collect(),
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 => {
            contents.uint_contents = draws.iter().map(|v| whole(v) as u32).collect();
        }
        Datatype::Uint64 => {
            contents.uint64_contents = draws.iter().map(|v| whole(v) as u64).collect();
        }
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 => {
            contents.int_contents = draws.iter().map(|v| whole(v) as i32).collect();
        }
        Datatype::Int64 => contents.int64_contents = draws.iter().map(whole).collect(),
        Datatype::Fp32 => contents.fp32_contents = draws,
        Datatype::Fp64 => contents.fp64_contents = draws.iter().map(|v| f64::from(*v)).collect(),
        Datatype::Bytes => {
            contents.bytes_contents = draws
                .iter()
                .map(|v| Bytes::from_static(level(v).as_bytes()))
                .collect();
        }
    }
    tensor.contents = Some(contents);
    (tensor, None)
}

fn tensor(name: &str, datatype: &str, shape: Vec<i64>) -> InferInputTensor {
    InferInputTensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
        ..Default::default()
    }
}

fn raw_f32(values: &[f32]) -> Bytes {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for value in values {
        raw.extend_from_slice(&value.to_le_bytes());
    }
    Bytes::from(raw)
}

fn raw_bytes(values: &[&str]) -> Bytes {
    let mut raw = Vec::new();
    for value in values {
        raw.extend_from_slice(&(value.len() as u32).to_le_bytes());
        raw.extend_from_slice(value.as_bytes());
    }
    Bytes::from(raw)
}
