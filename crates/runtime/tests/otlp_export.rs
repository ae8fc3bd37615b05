//! `telemetry::init` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports spans to a real OTLP/gRPC
//! endpoint (a fake collector on port 0) and flushes them on shutdown. Its own test
//! binary with a single test, since `init` installs process-wide state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mend_runtime::MendConfig;
use mend_runtime::config::vars::{MEND_LOG, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME};
use mend_runtime::telemetry;
use opentelemetry::global;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

struct FakeCollector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for FakeCollector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.send(request.into_inner()).ok();
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_the_service_name() {
    let (sender, mut received) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(FakeCollector(sender)))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                stop.clone().cancelled_owned(),
            ),
    );

    let config = MendConfig::load(
        [
            (OTEL_EXPORTER_OTLP_ENDPOINT, format!("http://{addr}")),
            (OTEL_SERVICE_NAME, "mend-canary".to_owned()),
            (MEND_LOG, "info".to_owned()),
        ]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let guard = telemetry::init(&config, "mend-default").unwrap();
    assert!(guard.is_exporting());
    assert!(
        matches!(
            telemetry::init(&config, "mend-default"),
            Err(telemetry::TelemetryError::AlreadyInitialised(_))
        ),
        "a second init is an error, not a panic"
    );
    assert!(
        global::get_text_map_propagator(|propagator| propagator
            .fields()
            .any(|field| field == "traceparent")),
        "the W3C propagator is installed globally"
    );

    tracing::info_span!("heal", model = "churn").in_scope(|| tracing::info!("retraining"));
    guard.shutdown().await.unwrap();

    let mut names = Vec::new();
    let mut service_names = Vec::new();
    while let Ok(Some(request)) =
        tokio::time::timeout(Duration::from_secs(5), received.recv()).await
    {
        for resource_spans in request.resource_spans {
            for attribute in resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
            {
                if attribute.key == "service.name"
                    && let Some(Value::StringValue(name)) =
                        attribute.value.as_ref().and_then(|v| v.value.clone())
                {
                    service_names.push(name);
                }
            }
            for scope in resource_spans.scope_spans {
                names.extend(scope.spans.into_iter().map(|span| span.name));
            }
        }
        if names.iter().any(|name| name == "heal") {
            break;
        }
    }
    assert!(
        names.iter().any(|name| name == "heal"),
        "exported: {names:?}"
    );
    assert!(
        service_names.iter().all(|name| name == "mend-canary") && !service_names.is_empty(),
        "{service_names:?}"
    );

    stop.cancel();
    collector.await.unwrap().unwrap();
}
