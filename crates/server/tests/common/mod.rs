//! Shared harness: trained synthetic models, a server on port 0 with injected dependencies,
//! OIP request builders, a bare HTTP/1.1 client, and how long `eventually` waits.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::{Bus, DataLog};
use mend_core::Artifact;
use mend_core::frame::{Column, Frame};
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use mend_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};
use mend_runtime::{Health, Metrics, Shutdown};
use mend_server::{InMemoryModelSource, Listeners, ModelSource, ServerConfig, ServerDeps};
use mend_testkit::{Patience, eventually};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A trained model and rows from its world.
pub struct Trained {
    pub artifact: Artifact,
    pub bytes: Bytes,
    pub generator: Generator,
}

/// Trains on synthetic data: `numeric` standard-normal features, `categorical` 4-level ones.
pub fn train(numeric: usize, categorical: usize, classes: usize, seed: u64) -> Trained {
    let spec = SyntheticSpec {
        numeric,
        categorical,
        classes,
        seed,
        ..SyntheticSpec::default()
    };
    let (artifact, generator) = mend_testkit::artifacts::train_on(spec, 1_500);
    let bytes = Bytes::from(artifact.to_bytes().unwrap());
    Trained {
        artifact,
        bytes,
        generator,
    }
}

/// Another artifact of the same model that predicts differently (a shifted intercept), so
/// each promotion is a distinct version with a distinct checksum.
pub fn variant(artifact: &Artifact, shift: f64) -> Bytes {
    let mut changed = artifact.clone();
    for b in &mut changed.model.as_logistic_mut().unwrap().intercept {
        *b += shift;
    }
    Bytes::from(changed.to_bytes().unwrap())
}

/// Rows of a model's world, as plain values (numeric columns then categorical ones).
pub struct Rows {
    pub numeric: Vec<Vec<f64>>,
    pub categorical: Vec<Vec<String>>,
}

impl Rows {
    pub fn draw(generator: &mut Generator, n: usize, seed: u64) -> Rows {
        generator.reseed(seed);
        let sample = generator.sample(n, &Regime::default());
        let numeric = (0..sample.numeric.ncols())
            .map(|j| {
                sample
                    .numeric
                    .column(j)
                    .iter()
                    .map(|&x| f64::from(x as f32))
                    .collect()
            })
            .collect();
        Rows {
            numeric,
            categorical: sample.categorical,
        }
    }

    pub fn len(&self) -> usize {
        self.numeric
            .first()
            .map(Vec::len)
            .or_else(|| self.categorical.first().map(Vec::len))
            .unwrap_or(0)
    }

    /// The same rows as a frame, for `Artifact::predict_proba` (what `mend predict` runs).
    pub fn frame(&self) -> Frame {
        let n = self.len();
        let mut columns: Vec<Column> = self
            .numeric
            .iter()
            .map(|c| Column::Numeric(c.clone()))
            .collect();
        columns.extend(
            self.categorical
                .iter()
                .map(|c| Column::Categorical(c.iter().map(|v| Some(v.clone())).collect())),
        );
        Frame {
            ids: (0..n).map(|i| i.to_string()).collect(),
            times: (0..n as i64).collect(),
            columns,
            labels: None,
        }
    }

    /// One tensor per feature: numeric as FP32 (values are f32-exact) and categorical BYTES.
    pub fn per_feature(&self, model: &str, raw: bool) -> ModelInferRequest {
        let n = self.len() as i64;
        let mut inputs = Vec::new();
        let mut raw_contents = Vec::new();
        for (j, column) in self.numeric.iter().enumerate() {
            let values: Vec<f32> = column.iter().map(|&x| x as f32).collect();
            if raw {
                raw_contents.push(raw_f32(&values));
                inputs.push(tensor(&format!("x{j}"), "FP32", vec![n], None));
            } else {
                inputs.push(tensor(
                    &format!("x{j}"),
                    "FP32",
                    vec![n],
                    Some(InferTensorContents {
                        fp32_contents: values,
                        ..Default::default()
                    }),
                ));
            }
        }
        for (j, column) in self.categorical.iter().enumerate() {
            if raw {
                raw_contents.push(raw_bytes(column.iter().map(String::as_bytes)));
                inputs.push(tensor(&format!("c{j}"), "BYTES", vec![n, 1], None));
            } else {
                inputs.push(tensor(
                    &format!("c{j}"),
                    "BYTES",
                    vec![n, 1],
                    Some(InferTensorContents {
                        bytes_contents: column.iter().map(|v| Bytes::from(v.clone())).collect(),
                        ..Default::default()
                    }),
                ));
            }
        }
        request(model, inputs, raw_contents)
    }

    /// The `[N, F]` layout (all-numeric models), FP32 or FP64.
    pub fn matrix(&self, model: &str, raw: bool, fp64: bool) -> ModelInferRequest {
        let n = self.len();
        let f = self.numeric.len();
        let values: Vec<f64> = (0..n)
            .flat_map(|i| self.numeric.iter().map(move |c| c[i]))
            .collect();
        let datatype = if fp64 { "FP64" } else { "FP32" };
        let shape = vec![n as i64, f as i64];
        if raw {
            let raw = if fp64 {
                Bytes::from(
                    values
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect::<Vec<u8>>(),
                )
            } else {
                raw_f32(&values.iter().map(|&x| x as f32).collect::<Vec<_>>())
            };
            return request(
                model,
                vec![tensor("input", datatype, shape, None)],
                vec![raw],
            );
        }
        let contents = if fp64 {
            InferTensorContents {
                fp64_contents: values,
                ..Default::default()
            }
        } else {
            InferTensorContents {
                fp32_contents: values.iter().map(|&x| x as f32).collect(),
                ..Default::default()
            }
        };
        request(
            model,
            vec![tensor("input", datatype, shape, Some(contents))],
            Vec::new(),
        )
    }
}

pub fn tensor(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
    contents: Option<InferTensorContents>,
) -> InferInputTensor {
    InferInputTensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
        parameters: Default::default(),
        contents,
    }
}

pub fn request(model: &str, inputs: Vec<InferInputTensor>, raw: Vec<Bytes>) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_owned(),
        model_version: String::new(),
        id: String::new(),
        parameters: Default::default(),
        inputs,
        outputs: Vec::new(),
        raw_input_contents: raw,
    }
}

pub fn wants(request: &mut ModelInferRequest, outputs: &[&str]) {
    request.outputs = outputs
        .iter()
        .map(|name| InferRequestedOutputTensor {
            name: (*name).to_owned(),
            parameters: Default::default(),
        })
        .collect();
}

pub fn raw_f32(values: &[f32]) -> Bytes {
    Bytes::from(
        values
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

pub fn raw_bytes<'a>(values: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut out = Vec::new();
    for v in values {
        out.extend((v.len() as u32).to_le_bytes());
        out.extend(v);
    }
    Bytes::from(out)
}

/// Probabilities and labels of a response, typed or raw.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub version: String,
    pub probabilities: Vec<f32>,
    pub labels: Vec<String>,
}

pub fn answer(response: &ModelInferResponse) -> Answer {
    let mut out = Answer {
        version: response.model_version.clone(),
        probabilities: Vec::new(),
        labels: Vec::new(),
    };
    for (index, output) in response.outputs.iter().enumerate() {
        let raw = response.raw_output_contents.get(index);
        match output.name.as_str() {
            "probabilities" => {
                assert_eq!(output.datatype, "FP32");
                out.probabilities = match raw {
                    Some(raw) => raw
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    None => output.contents.clone().unwrap().fp32_contents,
                };
            }
            "label" => {
                assert_eq!(output.datatype, "BYTES");
                out.labels = match raw {
                    Some(raw) => split_raw(raw),
                    None => output
                        .contents
                        .clone()
                        .unwrap()
                        .bytes_contents
                        .iter()
                        .map(|b| String::from_utf8(b.to_vec()).unwrap())
                        .collect(),
                };
            }
            other => panic!("unexpected output {other}"),
        }
    }
    out
}

fn split_raw(mut raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        out.push(String::from_utf8(raw[4..4 + len].to_vec()).unwrap());
        raw = &raw[4 + len..];
    }
    out
}

/// A running server and what drives it.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    pub health: Health,
    pub task: JoinHandle<Result<(), mend_server::ServerError>>,
}

/// Options for [`start`].
pub struct Setup {
    pub source: Arc<dyn ModelSource>,
    pub bus: Option<Arc<dyn Bus>>,
    pub data_log: Option<Arc<dyn DataLog>>,
    pub config: ServerConfig,
}

impl Setup {
    pub fn new(source: Arc<InMemoryModelSource>) -> Setup {
        Setup {
            source,
            bus: None,
            data_log: None,
            config: ServerConfig {
                reconcile_interval: Duration::from_secs(30),
                sample_rate: 0.0,
                ..ServerConfig::default()
            },
        }
    }
}

pub async fn start(setup: Setup) -> TestServer {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let metrics = Metrics::new();
    let health = Health::new();
    let deps = ServerDeps {
        source: setup.source,
        bus: setup.bus,
        data_log: setup.data_log,
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let task = tokio::spawn(mend_server::run(
        setup.config,
        deps,
        Listeners {
            grpc,
            http: Some(http),
        },
        shutdown.clone(),
    ));
    TestServer {
        grpc: addrs.0,
        http: addrs.1,
        shutdown,
        metrics,
        health,
        task,
    }
}

impl TestServer {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }

    /// Waits until requests for the champion of `probe.model_name` are answered by `version`.
    pub async fn wait_for_champion(&self, probe: &ModelInferRequest, version: u64) {
        let client = self.client().await;
        let what = format!("{} served by version {version}", probe.model_name);
        eventually(SOON, &what, || {
            let mut client = client.clone();
            let probe = probe.clone();
            async move {
                match client.model_infer(probe).await {
                    Ok(response) => response.get_ref().model_version == version.to_string(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A minimal valid request for the synthetic models (5 numeric + 1 categorical features).
pub fn probe_request(model: &str) -> ModelInferRequest {
    let mut inputs: Vec<InferInputTensor> = (0..5)
        .map(|j| {
            tensor(
                &format!("x{j}"),
                "FP64",
                vec![1],
                Some(InferTensorContents {
                    fp64_contents: vec![0.5],
                    ..Default::default()
                }),
            )
        })
        .collect();
    inputs.push(tensor(
        "c0",
        "BYTES",
        vec![1],
        Some(InferTensorContents {
            bytes_contents: vec![Bytes::from_static(b"red")],
            ..Default::default()
        }),
    ));
    request(model, inputs, Vec::new())
}

/// How long the server's tests wait for a condition with [`eventually`]: 10 s, looking every
/// 20 ms.
pub const SOON: Patience = Patience::seconds(10);

/// One HTTP/1.1 request over a fresh connection; returns the status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
    out
}
