//! Every rpc of `inference.GRPCInferenceService`, plus grpc.health.v1 and reflection, over
//! loopback with real tonic clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{SOON, Setup, probe_request, start, train};
use mend_proto::inference::{
    ModelMetadataRequest, ModelReadyRequest, ServerLiveRequest, ServerMetadataRequest,
    ServerReadyRequest,
};
use mend_server::InMemoryModelSource;
use mend_testkit::eventually;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

#[tokio::test]
async fn server_rpcs_report_liveness_readiness_and_metadata() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(5, 1, 2, 1);
    source.add_version("churn", trained.bytes.clone());
    let mut setup = Setup::new(Arc::clone(&source));
    setup.config.models = vec!["churn".into()];
    let server = start(setup).await;
    let mut client = server.client().await;
    let health = HealthClient::new(server.channel().await);
    let status = |health: &HealthClient<tonic::transport::Channel>| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: INFERENCE_SERVICE.to_owned(),
                })
                .await
                .map(|r| r.into_inner().status)
                .ok()
        }
    };

    // Live from the start; not ready while no champion is loaded.
    assert!(
        client
            .server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    eventually(SOON, "the server reported not serving", || {
        let status = status(&health);
        async move { status.await == Some(ServingStatus::NotServing as i32) }
    })
    .await;
    assert!(
        !client
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let unavailable = client
        .model_infer(probe_request("churn"))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");
    assert!(
        unavailable.message().contains("no champion"),
        "{unavailable:?}"
    );

    // A champion appears at the source; the first reconcile retries quickly until it loads.
    source.set_champion("churn", 1);
    server.wait_for_champion(&probe_request("churn"), 1).await;
    assert!(
        client
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    eventually(SOON, "the server reported serving", || {
        let status = status(&health);
        async move { status.await == Some(ServingStatus::Serving as i32) }
    })
    .await;

    let metadata = client
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, "mend");
    assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));

    server.stop().await;
}

#[tokio::test]
async fn model_ready_and_metadata_describe_versions_layouts_and_outputs() {
    let source = Arc::new(InMemoryModelSource::new());
    let mixed = train(5, 1, 2, 2);
    let numeric = train(3, 0, 3, 3);
    source.promote("churn", mixed.bytes.clone());
    source.promote("churn", common::variant(&mixed.artifact, 0.5));
    source.promote("iris", numeric.bytes.clone());
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    server.wait_for_champion(&probe_request("churn"), 2).await;
    eventually(SOON, "iris ready", || async {
        let mut client = client.clone();
        client
            .model_ready(ModelReadyRequest {
                name: "iris".into(),
                version: String::new(),
            })
            .await
            .is_ok_and(|r| r.into_inner().ready)
    })
    .await;

    let ready = |name: &str, version: &str| {
        let mut client = client.clone();
        let request = ModelReadyRequest {
            name: name.to_owned(),
            version: version.to_owned(),
        };
        async move {
            client
                .model_ready(request)
                .await
                .map(|r| r.into_inner().ready)
        }
    };
    assert!(ready("churn", "").await.unwrap());
    assert!(ready("churn", "2").await.unwrap());
    // Version 1 is no longer champion but can still be served (loaded into the cache).
    assert!(ready("churn", "1").await.unwrap());
    assert!(!ready("churn", "9").await.unwrap());
    assert_eq!(ready("nope", "").await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        ready("churn", "two").await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let metadata = client
        .model_metadata(ModelMetadataRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, "churn");
    assert_eq!(metadata.platform, "mend-logistic");
    assert_eq!(metadata.versions, vec!["1".to_owned(), "2".to_owned()]);
    let inputs: Vec<(&str, &str, &[i64])> = metadata
        .inputs
        .iter()
        .map(|t| (t.name.as_str(), t.datatype.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(
        inputs,
        vec![
            ("x0", "FP64", &[-1][..]),
            ("x1", "FP64", &[-1][..]),
            ("x2", "FP64", &[-1][..]),
            ("x3", "FP64", &[-1][..]),
            ("x4", "FP64", &[-1][..]),
            ("c0", "BYTES", &[-1][..]),
            ("row_id", "BYTES", &[-1][..]),
        ]
    );
    let outputs: Vec<(&str, &str, &[i64])> = metadata
        .outputs
        .iter()
        .map(|t| (t.name.as_str(), t.datatype.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(
        outputs,
        vec![
            ("probabilities", "FP32", &[-1, 2][..]),
            ("label", "BYTES", &[-1][..])
        ]
    );

    // An all-numeric model also advertises the [N, F] layout.
    let iris = client
        .model_metadata(ModelMetadataRequest {
            name: "iris".into(),
            version: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let matrix = iris.inputs.iter().find(|t| t.name == "input").unwrap();
    assert_eq!(
        (matrix.datatype.as_str(), matrix.shape.as_slice()),
        ("FP32", &[-1, 3][..])
    );
    assert_eq!(iris.outputs[0].shape, vec![-1, 3]);

    let missing = client
        .model_metadata(ModelMetadataRequest {
            name: "churn".into(),
            version: "7".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("no version 7"), "{missing:?}");
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_inference_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let source = Arc::new(InMemoryModelSource::new());
    let server = start(Setup::new(source)).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&INFERENCE_SERVICE.to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    server.stop().await;
}
