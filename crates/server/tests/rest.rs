//! The OIP REST binding: health, metadata, inference (same answers as gRPC) and errors with
//! 400/404 and `{"error": ...}`; `/metrics` and `/healthz` share the listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Rows, Setup, answer, http, start, train};
use mend_server::InMemoryModelSource;
use serde_json::{Value, json};

#[tokio::test]
async fn rest_endpoints_answer_like_grpc() {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(2, 1, 2, 41);
    let server = start(Setup::new(Arc::clone(&source))).await;

    let (status, body) = http(server.http, "GET", "/v2/health/live", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"live":true}"#));
    let (status, _) = http(server.http, "GET", "/v2/health/ready", "").await;
    assert_eq!(status, 503, "not ready without a champion");
    let (status, _) = http(server.http, "GET", "/healthz", "").await;
    assert_eq!(status, 503);

    source.promote("churn", trained.bytes.clone());
    let rows = Rows::draw(&mut trained.generator, 3, 4);
    server
        .wait_for_champion(&rows.per_feature("churn", false), 1)
        .await;
    let (status, _) = http(server.http, "GET", "/v2/health/ready", "").await;
    assert_eq!(status, 200);
    let (status, _) = http(server.http, "GET", "/healthz", "").await;
    assert_eq!(status, 200);

    let (status, body) = http(server.http, "GET", "/v2", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["name"],
        "mend"
    );

    let (status, body) = http(server.http, "GET", "/v2/models/churn", "").await;
    assert_eq!(status, 200, "{body}");
    let metadata: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["versions"], json!(["1"]));
    assert_eq!(
        metadata["outputs"][0],
        json!({"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]})
    );
    let (status, body) = http(server.http, "GET", "/v2/models/churn/ready", "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"name":"churn","ready":true}"#)
    );

    // Inference, with nested data for one input: the same answer as over gRPC.
    let body = json!({
        "id": "r1",
        "inputs": [
            {"name": "x0", "shape": [3], "datatype": "FP32", "data": rows.numeric[0]},
            {"name": "x1", "shape": [3, 1], "datatype": "FP64", "data": rows.numeric[1].iter().map(|x| vec![*x]).collect::<Vec<_>>()},
            {"name": "c0", "shape": [3], "datatype": "BYTES", "data": rows.categorical[0]},
        ]
    });
    let (status, text) = http(
        server.http,
        "POST",
        "/v2/models/churn/infer",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let response: Value = serde_json::from_str(&text).unwrap();
    let mut client = server.client().await;
    let grpc = answer(
        client
            .model_infer(rows.per_feature("churn", false))
            .await
            .unwrap()
            .get_ref(),
    );
    assert_eq!(response["model_name"], "churn");
    assert_eq!(response["model_version"], "1");
    assert_eq!(response["id"], "r1");
    assert_eq!(response["outputs"][0]["shape"], json!([3, 2]));
    let probabilities: Vec<f32> = response["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(probabilities, grpc.probabilities);
    assert_eq!(response["outputs"][1]["data"], json!(grpc.labels));

    // A named version, requested outputs.
    let mut one = body.clone();
    one["outputs"] = json!([{"name": "label"}]);
    let (status, text) = http(
        server.http,
        "POST",
        "/v2/models/churn/versions/1/infer",
        &one.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let response: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(response["outputs"].as_array().unwrap().len(), 1);

    // Errors: 404 and 400 with the OIP error body, same messages as gRPC.
    let (status, text) = http(
        server.http,
        "POST",
        "/v2/models/nope/infer",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("model `nope` is not served")
    );
    let (status, text) = http(server.http, "GET", "/v2/models/churn/versions/5", "").await;
    assert_eq!(status, 404, "{text}");
    let mut bad = body.clone();
    bad["inputs"][0]["shape"] = json!([2]);
    let (status, text) = http(
        server.http,
        "POST",
        "/v2/models/churn/infer",
        &bad.to_string(),
    )
    .await;
    assert_eq!(status, 400);
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("input `x0`") && error.contains("needs 2 values"),
        "{error}"
    );
    let (status, text) = http(server.http, "POST", "/v2/models/churn/infer", "{not json").await;
    assert_eq!(status, 400);
    assert!(text.contains("not an OIP inference request"), "{text}");
    let mut wrong_type = body.clone();
    wrong_type["inputs"][2]["data"] = json!([1, 2, 3]);
    let (status, text) = http(
        server.http,
        "POST",
        "/v2/models/churn/infer",
        &wrong_type.to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("element 0 of `data` is not a string"),
        "{text}"
    );

    // The ops routes share the listener.
    let (status, text) = http(server.http, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("mend_inference_requests_total{model=\"churn\",version=\"1\"}"),
        "{text}"
    );
    assert!(
        text.contains("mend_inference_latency_seconds_bucket"),
        "{text}"
    );
    server.stop().await;
}

fn tls_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/tests/fixtures/tls")
        .join(name)
}

/// With mutual TLS configured, REST inference on the HTTP port needs a client certificate
/// signed by the CA, like gRPC: plain text and a foreign certificate get nothing, no
/// certificate gets the probes only.
#[tokio::test]
async fn rest_inference_follows_mutual_tls() {
    use mend_testkit::https::{HttpRequest, MtlsFixtures, https, plain};

    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(2, 1, 2, 43);
    source.promote("churn", trained.bytes.clone());
    let mut setup = Setup::new(Arc::clone(&source));
    setup.config.tls = mend_runtime::config::TlsConfig {
        identity: Some(mend_runtime::config::TlsIdentity {
            cert: tls_fixture("server.pem"),
            key: tls_fixture("server.key"),
        }),
        ca: Some(tls_fixture("ca.pem")),
    };
    let server = start(setup).await;
    let fixtures = MtlsFixtures::in_dir(tls_fixture("ca.pem").parent().unwrap());
    let (client, anonymous, foreign) =
        (fixtures.client(), fixtures.anonymous(), fixtures.foreign());

    let ready = HttpRequest::get("/v2/models/churn/ready");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while https(server.http, &ready, client)
        .await
        .map(|(status, _)| status)
        != Ok(200)
    {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let rows = Rows::draw(&mut trained.generator, 3, 4);
    let body = json!({
        "inputs": [
            {"name": "x0", "shape": [3], "datatype": "FP32", "data": rows.numeric[0]},
            {"name": "x1", "shape": [3], "datatype": "FP64", "data": rows.numeric[1]},
            {"name": "c0", "shape": [3], "datatype": "BYTES", "data": rows.categorical[0]},
        ]
    })
    .to_string();
    let infer = HttpRequest::post_json("/v2/models/churn/infer", &body);
    let (status, text) = https(server.http, &infer, client).await.unwrap();
    assert_eq!(status, 200, "{text}");

    let plain_text = plain(server.http, &infer).await;
    assert!(
        plain_text.is_err(),
        "plain text was answered: {plain_text:?}"
    );
    let without_cert = https(server.http, &infer, anonymous).await;
    assert_eq!(without_cert.map(|(status, _)| status), Ok(404));
    let probe = https(server.http, &HttpRequest::get("/livez"), anonymous).await;
    assert_eq!(probe.map(|(status, _)| status), Ok(200));
    let foreign_cert = https(server.http, &infer, foreign).await;
    assert!(foreign_cert.is_err(), "{foreign_cert:?}");
    server.shutdown.trigger();
}
