//! Every way a request can be wrong gets the right gRPC code and a message naming the tensor
//! (or field) and the problem; malformed requests never take the server down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Rows, Setup, request, start, tensor, train, wants};
use mend_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};
use mend_server::{InMemoryModelSource, ServerConfig};
use tonic::Code;

fn fp32(
    name: &str,
    shape: Vec<i64>,
    values: Vec<f32>,
) -> mend_proto::inference::model_infer_request::InferInputTensor {
    tensor(
        name,
        "FP32",
        shape,
        Some(InferTensorContents {
            fp32_contents: values,
            ..Default::default()
        }),
    )
}

fn bytes(
    name: &str,
    shape: Vec<i64>,
    values: &[&str],
) -> mend_proto::inference::model_infer_request::InferInputTensor {
    tensor(
        name,
        "BYTES",
        shape,
        Some(InferTensorContents {
            bytes_contents: values.iter().map(|v| Bytes::from(v.to_string())).collect(),
            ..Default::default()
        }),
    )
}

/// A valid two-row request for `mixed` (x0, x1 numeric, c0 categorical).
/// A valid one-row request for the all-numeric model (3 features) `numeric`.
fn numeric_probe() -> ModelInferRequest {
    Rows {
        numeric: vec![vec![0.0]; 3],
        categorical: vec![],
    }
    .matrix("numeric", false, false)
}

fn mixed() -> ModelInferRequest {
    request(
        "mixed",
        vec![
            fp32("x0", vec![2], vec![0.1, 0.2]),
            fp32("x1", vec![2, 1], vec![1.0, -1.0]),
            bytes("c0", vec![2], &["red", "blue"]),
        ],
        Vec::new(),
    )
}

fn with(
    mut request: ModelInferRequest,
    change: impl FnOnce(&mut ModelInferRequest),
) -> ModelInferRequest {
    change(&mut request);
    request
}

#[tokio::test]
async fn each_bad_request_gets_its_code_and_a_message_naming_the_problem() {
    let source = Arc::new(InMemoryModelSource::new());
    let mixed_model = train(2, 1, 2, 21);
    source.promote("mixed", mixed_model.bytes.clone());
    let numeric_model = train(3, 0, 2, 22);
    source.promote("numeric", numeric_model.bytes.clone());
    let mut strict = train(2, 1, 2, 23).artifact;
    strict.schema.allow_missing = false;
    source.promote("strict", Bytes::from(strict.to_bytes().unwrap()));
    let mut setup = Setup::new(Arc::clone(&source));
    setup.config = ServerConfig {
        max_rows: 100,
        max_message_bytes: 64 * 1024,
        models: vec!["mixed".into(), "numeric".into(), "strict".into()],
        sample_rate: 0.0,
        reconcile_interval: Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let server = start(setup).await;
    let mut client = server.client().await;
    server.wait_for_champion(&mixed(), 1).await;
    server.wait_for_champion(&numeric_probe(), 1).await;
    let strict_ok = with(mixed(), |r| r.model_name = "strict".into());
    server.wait_for_champion(&strict_ok, 1).await;
    client.model_infer(mixed()).await.unwrap();

    let huge_raw = Bytes::from(vec![0u8; 70 * 1024]);
    let cases: Vec<(&str, ModelInferRequest, Code, Vec<&str>)> = vec![
        (
            "unknown model",
            with(mixed(), |r| r.model_name = "nope".into()),
            Code::NotFound,
            vec!["model `nope` is not served", "`mixed`"],
        ),
        (
            "unknown version",
            with(mixed(), |r| r.model_version = "9".into()),
            Code::NotFound,
            vec!["no version 9"],
        ),
        (
            "version text",
            with(mixed(), |r| r.model_version = "latest".into()),
            Code::InvalidArgument,
            vec!["model_version `latest`"],
        ),
        (
            "no inputs",
            with(mixed(), |r| r.inputs.clear()),
            Code::InvalidArgument,
            vec!["no inputs", "`x0`"],
        ),
        (
            "numeric as BYTES",
            with(mixed(), |r| r.inputs[0] = bytes("x0", vec![2], &["1", "2"])),
            Code::InvalidArgument,
            vec!["input `x0`", "BYTES is not accepted for numeric feature"],
        ),
        (
            "categorical as FP32",
            with(mixed(), |r| {
                r.inputs[2] = fp32("c0", vec![2], vec![1.0, 2.0])
            }),
            Code::InvalidArgument,
            vec!["input `c0`", "takes BYTES, not FP32"],
        ),
        (
            "unknown datatype",
            with(mixed(), |r| r.inputs[0].datatype = "FLOAT".into()),
            Code::InvalidArgument,
            vec!["input `x0`", "`FLOAT` is not an OIP datatype"],
        ),
        (
            "unsupported datatype",
            with(mixed(), |r| r.inputs[0].datatype = "FP16".into()),
            Code::InvalidArgument,
            vec!["input `x0`", "FP16 is not accepted"],
        ),
        (
            "bad shape",
            with(mixed(), |r| r.inputs[0].shape = vec![1, 2]),
            Code::InvalidArgument,
            vec!["input `x0`", "shape [1, 2] is not [N] or [N, 1]"],
        ),
        (
            "negative dimension",
            with(mixed(), |r| r.inputs[0].shape = vec![-2]),
            Code::InvalidArgument,
            vec!["input `x0`", "negative dimension"],
        ),
        (
            "row mismatch",
            with(mixed(), |r| {
                r.inputs[1] = fp32("x1", vec![3], vec![1.0, 2.0, 3.0])
            }),
            Code::InvalidArgument,
            vec!["input `x1` has 3 rows", "input `x0` has 2"],
        ),
        (
            "zero rows",
            with(mixed(), |r| {
                for input in &mut r.inputs {
                    input.shape = vec![0];
                }
            }),
            Code::InvalidArgument,
            vec!["input `x0` has no rows"],
        ),
        (
            "too many rows",
            with(mixed(), |r| r.inputs[0].shape = vec![101]),
            Code::InvalidArgument,
            vec!["input `x0` has 101 rows", "limit of 100 rows"],
        ),
        (
            "absurd rows",
            with(mixed(), |r| r.inputs[0].shape = vec![i64::MAX]),
            Code::InvalidArgument,
            vec!["input `x0`", "limit of 100 rows"],
        ),
        (
            "missing feature",
            with(mixed(), |r| {
                r.inputs.remove(1);
            }),
            Code::InvalidArgument,
            vec!["missing input `x1`"],
        ),
        (
            "unknown input",
            with(mixed(), |r| {
                r.inputs.push(fp32("x9", vec![2], vec![0.0, 0.0]))
            }),
            Code::InvalidArgument,
            vec!["input `x9` is not a feature of model `mixed`"],
        ),
        (
            "duplicate input",
            with(mixed(), |r| {
                r.inputs.push(fp32("x0", vec![2], vec![0.0, 0.0]))
            }),
            Code::InvalidArgument,
            vec!["input `x0` appears twice"],
        ),
        (
            "matrix width",
            request(
                "numeric",
                vec![fp32("input", vec![1, 4], vec![0.0; 4])],
                Vec::new(),
            ),
            Code::InvalidArgument,
            vec!["input `input`", "shape [1, 4]", "[N, 3]"],
        ),
        (
            "matrix for a mixed model",
            request(
                "mixed",
                vec![fp32("input", vec![1, 3], vec![0.0; 3])],
                Vec::new(),
            ),
            Code::InvalidArgument,
            vec!["input `input` is not a feature of model `mixed`"],
        ),
        (
            "matrix datatype",
            request(
                "numeric",
                vec![tensor(
                    "input",
                    "INT64",
                    vec![1, 3],
                    Some(InferTensorContents {
                        int64_contents: vec![1, 2, 3],
                        ..Default::default()
                    }),
                )],
                Vec::new(),
            ),
            Code::InvalidArgument,
            vec!["input `input`", "INT64 is not accepted", "FP32 or FP64"],
        ),
        (
            "typed count",
            with(mixed(), |r| r.inputs[0] = fp32("x0", vec![2], vec![0.1])),
            Code::InvalidArgument,
            vec!["input `x0`", "needs 2 values in fp32_contents, found 1"],
        ),
        (
            "contents field mismatch",
            with(mixed(), |r| {
                r.inputs[0] = tensor(
                    "x0",
                    "FP32",
                    vec![2],
                    Some(InferTensorContents {
                        fp64_contents: vec![0.1, 0.2],
                        ..Default::default()
                    }),
                )
            }),
            Code::InvalidArgument,
            vec!["input `x0`", "found 0", "2 in fp64_contents"],
        ),
        (
            "no contents",
            with(mixed(), |r| r.inputs[0].contents = None),
            Code::InvalidArgument,
            vec!["input `x0`", "found 0"],
        ),
        (
            "raw size",
            request(
                "numeric",
                vec![tensor("input", "FP32", vec![1, 3], None)],
                vec![Bytes::from_static(&[0; 11])],
            ),
            Code::InvalidArgument,
            vec![
                "input `input`",
                "raw_input_contents[0] has 11 bytes",
                "take 12",
            ],
        ),
        (
            "raw entry count",
            request(
                "numeric",
                vec![tensor("input", "FP32", vec![1, 3], None)],
                vec![Bytes::from_static(&[0; 12]), Bytes::new()],
            ),
            Code::InvalidArgument,
            vec!["raw_input_contents has 2 entries for 1 inputs"],
        ),
        (
            "raw and typed",
            with(mixed(), |r| {
                r.raw_input_contents = vec![Bytes::new(); 3];
            }),
            Code::InvalidArgument,
            vec!["input `x0` sets contents", "raw_input_contents"],
        ),
        (
            "raw bytes truncated",
            request(
                "mixed",
                vec![
                    tensor("x0", "FP32", vec![1], None),
                    tensor("x1", "FP32", vec![1], None),
                    tensor("c0", "BYTES", vec![1], None),
                ],
                vec![
                    common::raw_f32(&[0.0]),
                    common::raw_f32(&[0.0]),
                    Bytes::from_static(&[9, 0, 0, 0, b'r']),
                ],
            ),
            Code::InvalidArgument,
            vec!["input `c0`", "raw_input_contents[2]", "claims 9 bytes"],
        ),
        (
            "invalid utf-8",
            with(mixed(), |r| {
                r.inputs[2].contents.as_mut().unwrap().bytes_contents[1] =
                    Bytes::from_static(&[0xff, 0xfe])
            }),
            Code::InvalidArgument,
            vec!["input `c0`", "element 1 is not valid UTF-8"],
        ),
        (
            "infinity",
            with(mixed(), |r| {
                r.inputs[1] = fp32("x1", vec![2], vec![1.0, f32::INFINITY])
            }),
            Code::InvalidArgument,
            vec!["input `x1`", "element 1 is inf", "finite"],
        ),
        (
            "matrix NaN forbidden",
            with(mixed(), |r| {
                r.model_name = "strict".into();
                r.inputs[0] = fp32("x0", vec![2], vec![f32::NAN, 0.0]);
            }),
            Code::InvalidArgument,
            vec![
                "input `x0`",
                "element 0 is NaN",
                "model `strict` does not allow missing values",
            ],
        ),
        (
            "category missing forbidden",
            with(mixed(), |r| {
                r.model_name = "strict".into();
                r.inputs[2] = bytes("c0", vec![2], &["red", " "]);
            }),
            Code::InvalidArgument,
            vec![
                "input `c0`",
                "element 1 is missing",
                "does not allow missing values",
            ],
        ),
        (
            "row id type",
            with(mixed(), |r| {
                r.inputs.push(fp32("row_id", vec![2], vec![1.0, 2.0]))
            }),
            Code::InvalidArgument,
            vec!["input `row_id`", "row ids are BYTES"],
        ),
        (
            "unknown output",
            with(mixed(), |r| wants(r, &["score"])),
            Code::InvalidArgument,
            vec!["requested output `score` does not exist"],
        ),
        (
            "oversized message",
            request(
                "numeric",
                vec![tensor("input", "FP32", vec![1, 3], None)],
                vec![huge_raw],
            ),
            Code::InvalidArgument,
            vec!["larger than the server's limit of 65536 bytes"],
        ),
    ];
    for (what, request, code, needles) in cases {
        let status = client.model_infer(request).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        for needle in needles {
            assert!(
                status.message().contains(needle),
                "{what}: {:?} lacks {needle:?}",
                status.message()
            );
        }
    }
    // The server is still fine, and the errors were counted.
    client.model_infer(mixed()).await.unwrap();
    let text = server.metrics.encode().unwrap();
    assert!(
        text.contains(
            "mend_inference_errors_total{model=\"mixed\",version=\"1\",code=\"InvalidArgument\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "mend_inference_errors_total{model=\"_unknown\",version=\"\",code=\"NotFound\"} 1"
        ),
        "{text}"
    );
    server.stop().await;
}

/// A tiny deterministic generator, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn random_malformed_requests_never_break_the_server() {
    let source = Arc::new(InMemoryModelSource::new());
    source.promote("mixed", train(2, 1, 2, 24).bytes);
    source.promote("numeric", train(3, 0, 3, 25).bytes);
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    // Both models loaded before the garbage starts: UNAVAILABLE is the answer while one is
    // still loading (it failed CI once when `numeric` was not ready yet).
    server.wait_for_champion(&mixed(), 1).await;
    server.wait_for_champion(&numeric_probe(), 1).await;

    let datatypes = [
        "FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES", "FP16", "UINT8", "", "X",
    ];
    let names = ["x0", "x1", "c0", "input", "row_id", "zz"];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut ok = 0;
    for round in 0..600 {
        let model = if rng.below(2) == 0 {
            "mixed"
        } else {
            "numeric"
        };
        let raw = rng.below(2) == 0;
        let mut inputs = Vec::new();
        let mut raw_contents = Vec::new();
        for _ in 0..rng.below(5) {
            let rank = rng.below(4);
            let shape: Vec<i64> = (0..rank)
                .map(|_| match rng.below(6) {
                    0 => -1,
                    1 => i64::MAX,
                    _ => rng.below(4) as i64,
                })
                .collect();
            let count = rng.below(6) as usize;
            let contents = InferTensorContents {
                fp32_contents: (0..count)
                    .map(|_| f32::from_bits(rng.next() as u32))
                    .collect(),
                fp64_contents: if rng.below(3) == 0 {
                    vec![f64::NAN; count]
                } else {
                    Vec::new()
                },
                int_contents: vec![7; rng.below(3) as usize],
                bytes_contents: (0..rng.below(4))
                    .map(|_| Bytes::from(vec![rng.below(256) as u8; rng.below(5) as usize]))
                    .collect(),
                ..Default::default()
            };
            inputs.push(tensor(
                names[rng.below(names.len() as u64) as usize],
                datatypes[rng.below(datatypes.len() as u64) as usize],
                shape,
                (!raw).then_some(contents),
            ));
            if raw {
                let len = rng.below(40) as usize;
                raw_contents.push(Bytes::from(
                    (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
                ));
            }
        }
        if raw && rng.below(10) == 0 {
            raw_contents.pop();
        }
        let request = request(model, inputs, raw_contents);
        match client.model_infer(request).await {
            Ok(_) => ok += 1,
            Err(status) => assert!(
                matches!(status.code(), Code::InvalidArgument),
                "round {round}: unexpected {status:?}"
            ),
        }
    }
    // The server still answers a good request after all that.
    client.model_infer(mixed()).await.unwrap();
    assert!(ok < 600);
    server.stop().await;
}

/// Bodies that are not a `ModelInferRequest` at all are the client's fault: INVALID_ARGUMENT
/// naming the message, never INTERNAL.
#[tokio::test]
async fn undecodable_bodies_are_invalid_arguments() {
    let source = Arc::new(InMemoryModelSource::new());
    source.promote("mixed", train(2, 1, 2, 24).bytes);
    let server = start(Setup::new(Arc::clone(&source))).await;
    server.wait_for_champion(&mixed(), 1).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    let path = http::uri::PathAndQuery::from_static("/inference.GRPCInferenceService/ModelInfer");
    let mut invalid = 0;
    for (round, body) in mend_testkit::raw_grpc::garbage_bodies(300, 0x2545_f491_4f6c_dd1d)
        .into_iter()
        .enumerate()
    {
        grpc.ready().await.unwrap();
        let codec = mend_testkit::raw_grpc::RawBytes::<ModelInferResponse>::default();
        if let Err(status) = grpc
            .unary(tonic::Request::new(body), path.clone(), codec)
            .await
        {
            assert_ne!(
                status.code(),
                Code::Internal,
                "round {round}: garbage answered as a server fault: {status:?}"
            );
            if status.code() == Code::InvalidArgument
                && status.message().contains("not a valid ModelInferRequest")
            {
                invalid += 1;
            }
        }
    }
    assert!(
        invalid >= 150,
        "only {invalid} of 300 named the bad message"
    );
    server.stop().await;
}

/// An error quotes what the client sent, but never megabytes of it.
#[tokio::test]
async fn errors_quote_at_most_a_readable_piece_of_the_request() {
    let source = Arc::new(InMemoryModelSource::new());
    source.promote("mixed", train(2, 1, 2, 24).bytes);
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    server.wait_for_champion(&mixed(), 1).await;
    let huge = "m".repeat(10 * 1024 * 1024);
    let mut probe = mixed();
    probe.model_name = huge;
    let status = client.model_infer(probe).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "{}",
        &status.message()[..200]
    );
    assert!(
        status.message().len() <= 1100,
        "message of {} bytes",
        status.message().len()
    );
    assert!(
        status.message().contains("characters in all"),
        "{}",
        status.message()
    );
    let mut probe = mixed();
    probe.inputs[0].name = "x".repeat(5 * 1024 * 1024);
    let status = client.model_infer(probe).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().len() <= 1100);
    server.stop().await;
}
