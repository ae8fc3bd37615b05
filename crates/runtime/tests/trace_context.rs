//! Trace context crosses a real gRPC call: the server's request span is a child of the
//! client's span, in the same trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mend_runtime::Health;
use mend_runtime::config::{ServiceAddr, TlsConfig};
use mend_runtime::grpc::{grpc_client_endpoint, grpc_server_builder};
use mend_runtime::telemetry::propagation::TraceContextInterceptor;
use opentelemetry::global;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Keeps every finished span in memory.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Collected {
    fn named(&self, name: &str) -> Option<SpanData> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|span| span.name == name)
            .cloned()
    }
}

// Current-thread runtime: the thread-local subscriber below sees client and server.
#[tokio::test]
async fn the_server_span_joins_the_callers_trace() {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);
    global::set_text_map_propagator(TraceContextPropagator::new());

    let health = Health::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ServiceAddr::from(listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        grpc_server_builder(&TlsConfig::default())
            .unwrap()
            .add_service(health.service())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                stop.clone().cancelled_owned(),
            ),
    );
    let channel = grpc_client_endpoint(&addr, &TlsConfig::default())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let client_span = tracing::info_span!("trainer asks registry");
    let client_context = client_span.context().span().span_context().clone();
    assert!(client_context.is_valid());
    async {
        HealthClient::with_interceptor(channel, TraceContextInterceptor)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
    }
    .instrument(client_span.clone())
    .await;
    drop(client_span);

    let mut server_span = None;
    for _ in 0..200 {
        server_span = collected.named("/grpc.health.v1.Health/Check");
        if server_span.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server_span = server_span.expect("server request span was recorded");
    assert_eq!(
        server_span.span_context.trace_id(),
        client_context.trace_id()
    );
    assert_eq!(server_span.parent_span_id, client_context.span_id());
    assert!(server_span.parent_span_is_remote);
    assert!(collected.named("trainer asks registry").is_some());

    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn without_a_caller_trace_the_server_span_starts_its_own() {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);
    global::set_text_map_propagator(TraceContextPropagator::new());

    let request = http::Request::builder()
        .uri("/mend.registry.v1.Registry/Get")
        .body(())
        .unwrap();
    let span = mend_runtime::telemetry::propagation::grpc_server_span(&request);
    let context = span.context().span().span_context().clone();
    drop(span);
    let recorded = collected.named("/mend.registry.v1.Registry/Get").unwrap();
    assert_eq!(recorded.span_context.trace_id(), context.trace_id());
    assert_eq!(
        recorded.parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
}
