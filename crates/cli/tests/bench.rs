#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend bench` as a user runs it: a self-served model under load, with promotions, in both
//! input layouts and contents, then against a server address, and against a peer whose model
//! metadata lists no inputs (as MLServer's sklearn runtime does), with the inputs given by
//! `--input`.

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mend_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use mend_proto::inference::model_infer_response::InferOutputTensor;
use mend_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest,
    ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest,
    ServerReadyResponse,
};
use serde_json::Value;
use tonic::{Request, Response, Status};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mend"))
        .arg("--json")
        .arg("bench")
        .args([
            "--duration",
            "400ms",
            "--warmup",
            "100ms",
            "--concurrency",
            "4",
        ])
        .args(args)
        .output()
        .expect("mend runs")
}

fn report(out: Output) -> Value {
    assert!(
        out.status.success(),
        "mend bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn self_served_load_with_promotions_fails_nothing() {
    let out = report(bench(&["--self-serve", "--promotions", "5", "--rows", "3"]));
    assert!(out["requests"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["errors"], serde_json::json!({}), "{out}");
    assert_eq!(out["promotions"], 5, "{out}");
    // The load really ran across the swaps: answers came from more than one version.
    let versions = out["versions"].as_object().unwrap();
    assert!(versions.len() >= 2, "{out}");
    assert!(out["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{out}");
}

#[test]
fn both_layouts_and_contents_run() {
    let features = report(bench(&[
        "--self-serve",
        "--categorical",
        "1",
        "--layout",
        "features",
        "--raw",
        "--server-threads",
        "1",
    ]));
    assert!(
        features["shape"].as_str().unwrap().contains("9 tensors"),
        "{features}"
    );
    let matrix = report(bench(&["--self-serve", "--rows", "100", "--raw"]));
    assert!(
        matrix["shape"].as_str().unwrap().contains("FP32 [100, 8]"),
        "{matrix}"
    );
    assert_eq!(matrix["errors"], serde_json::json!({}));
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = bench(&["--addr", &addr]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to connect"), "{stderr}");
}

#[test]
fn given_inputs_drive_a_self_served_mend_model() {
    // The synthetic model (8 numeric features) takes an [N, 8] FP32 or FP64 matrix.
    for raw in [false, true] {
        let mut args = vec![
            "--self-serve",
            "--rows",
            "3",
            "--input",
            "input:FP64:[-1,8]",
        ];
        if raw {
            args.push("--raw");
        }
        let out = report(bench(&args));
        assert_eq!(out["errors"], serde_json::json!({}), "{out}");
        assert!(out["requests"].as_u64().unwrap() > 0, "{out}");
        assert!(
            out["shape"]
                .as_str()
                .unwrap()
                .ends_with("--input input FP64 [3, 8]"),
            "{out}"
        );
    }
}

/// What a peer like MLServer 1.7 (sklearn runtime) shows `mend bench`: model metadata with no
/// inputs, and inference that wants one FP64 tensor `predict` of shape `[N, 3]`. Counts the
/// requests that had that shape and those that did not (clones share the counts).
#[derive(Clone, Default)]
struct NoInputsPeer {
    valid: Arc<AtomicU64>,
    invalid: Arc<AtomicU64>,
}

impl NoInputsPeer {
    /// Rows of a request shaped as the peer wants, or what is wrong with it.
    fn rows(request: &ModelInferRequest) -> Result<usize, String> {
        let [input] = request.inputs.as_slice() else {
            return Err(format!("expected 1 input, got {}", request.inputs.len()));
        };
        if input.name != "predict" || input.datatype != "FP64" {
            return Err(format!("unexpected {} {}", input.name, input.datatype));
        }
        let [rows, 3] = input.shape.as_slice() else {
            return Err(format!("shape {:?} is not [N, 3]", input.shape));
        };
        let rows = usize::try_from(*rows).map_err(|_| format!("{rows} rows"))?;
        let values = match request.raw_input_contents.as_slice() {
            [] => input.contents.as_ref().map_or(0, |c| c.fp64_contents.len()),
            [raw] if raw.len().is_multiple_of(8) => raw.len() / 8,
            other => return Err(format!("{} raw contents", other.len())),
        };
        if rows == 0 || values != rows * 3 {
            return Err(format!("{values} values for {rows} rows"));
        }
        Ok(rows)
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for NoInputsPeer {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        _request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "mlserver".to_owned(),
            version: "1.7.0".to_owned(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        Ok(Response::new(ModelMetadataResponse {
            name: request.into_inner().name,
            platform: "sklearn".to_owned(),
            ..Default::default()
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let request = request.into_inner();
        let rows = match Self::rows(&request) {
            Ok(rows) => rows,
            Err(why) => {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                return Err(Status::invalid_argument(why));
            }
        };
        self.valid.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(ModelInferResponse {
            model_name: request.model_name,
            model_version: "v1".to_owned(),
            outputs: vec![InferOutputTensor {
                name: "predict".to_owned(),
                datatype: "INT64".to_owned(),
                shape: vec![rows as i64],
                contents: Some(InferTensorContents {
                    int64_contents: vec![0; rows],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}

async fn serve_no_inputs_peer() -> (String, NoInputsPeer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = NoInputsPeer::default();
    let service = GrpcInferenceServiceServer::new(peer.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, peer)
}

/// Runs `mend bench` off the test's runtime, which serves the peer meanwhile.
async fn bench_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bench(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_inputs_in_its_metadata_needs_and_takes_input_flags() {
    let (addr, peer) = serve_no_inputs_peer().await;
    let base = ["--addr", addr.as_str(), "--model", "iris"].map(str::to_owned);

    // Nothing to send: a clear error naming the way out, and no empty request sent.
    let out = bench_async(base.to_vec()).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model `iris` lists no inputs"), "{stderr}");
    assert!(stderr.contains("--input NAME:DATATYPE:[SHAPE]"), "{stderr}");
    assert_eq!(peer.valid.load(Ordering::Relaxed), 0);
    assert_eq!(peer.invalid.load(Ordering::Relaxed), 0);

    // Given the input, in typed and in raw contents, every request has the peer's shape.
    for raw in [false, true] {
        let mut args = base.to_vec();
        args.extend(["--rows", "2", "--input", "predict:FP64:[-1,3]"].map(str::to_owned));
        if raw {
            args.push("--raw".to_owned());
        }
        let before = peer.valid.load(Ordering::Relaxed);
        let out = report(bench_async(args).await);
        assert_eq!(out["errors"], serde_json::json!({}), "{out}");
        let requests = out["requests"].as_u64().unwrap();
        assert!(requests > 0, "{out}");
        assert!(
            peer.valid.load(Ordering::Relaxed) - before >= requests,
            "the peer saw fewer well-shaped requests than were answered: {out}"
        );
        assert_eq!(out["versions"]["v1"].as_u64(), Some(requests), "{out}");
        assert!(
            out["shape"]
                .as_str()
                .unwrap()
                .ends_with("--input predict FP64 [2, 3]"),
            "{out}"
        );
    }
    assert_eq!(peer.invalid.load(Ordering::Relaxed), 0);

    // A fixed batch that disagrees with --rows is refused before any request.
    let mut args = base.to_vec();
    args.extend(["--rows", "2", "--input", "predict:FP64:[1,3]"].map(str::to_owned));
    let valid = peer.valid.load(Ordering::Relaxed);
    let out = bench_async(args).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--rows is 2"), "{stderr}");
    assert_eq!(peer.valid.load(Ordering::Relaxed), valid);
}
