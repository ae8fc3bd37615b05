//! W3C trace context across gRPC: inject on the client (an interceptor), extract on the
//! server (the span tonic opens per request), so one heal is one trace across services.

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes propagation fields (`traceparent`, `tracestate`) into gRPC metadata.
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

/// Reads propagation fields from gRPC metadata.
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

/// Reads propagation fields from raw HTTP/2 headers (what tonic's `trace_fn` sees).
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagators only emit lowercase ASCII keys and printable values; anything
        // else would be rejected by HTTP/2 anyway, so it is skipped, not fatal.
        let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) else {
            tracing::debug!(
                key,
                "skipping trace context field that is not valid metadata"
            );
            return;
        };
        self.0.insert(key, value);
    }
}

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(|key| match key {
                KeyRef::Ascii(key) => key.as_str(),
                KeyRef::Binary(key) => key.as_str(),
            })
            .collect()
    }
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Injects `context` with the global propagator.
pub fn inject_context(context: &Context, metadata: &mut MetadataMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut MetadataInjector(metadata));
    });
}

/// Injects the current `tracing` span's context.
pub fn inject_current_context(metadata: &mut MetadataMap) {
    inject_context(&tracing::Span::current().context(), metadata);
}

/// The remote parent carried by incoming metadata (empty when there is none).
pub fn extract_context(metadata: &MetadataMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&MetadataExtractor(metadata)))
}

/// A client interceptor that sends the current span's trace context with every call:
/// `RegistryClient::with_interceptor(channel, TraceContextInterceptor)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextInterceptor;

impl Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        inject_current_context(request.metadata_mut());
        Ok(request)
    }
}

/// The span for one incoming gRPC request, a child of the caller's trace when the request
/// carries one. [`crate::grpc::grpc_server_builder`] installs it as tonic's `trace_fn`;
/// handlers' `#[instrument]` spans nest under it.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let span = tracing::info_span!(
        "grpc request",
        otel.name = %request.uri().path(),
        otel.kind = "server",
        rpc.system = "grpc",
    );
    // Fails only when no OpenTelemetry layer is installed (export off): then there is
    // no trace to join, and the span is still useful for logs.
    if span.set_parent(parent).is_err() {
        tracing::trace!("no opentelemetry layer; request span has no remote parent");
    }
    span
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    #[test]
    fn metadata_carries_a_span_context_there_and_back() {
        let sent = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let propagator = TraceContextPropagator::new();
        let mut metadata = MetadataMap::new();
        propagator.inject_context(
            &Context::new().with_remote_span_context(sent.clone()),
            &mut MetadataInjector(&mut metadata),
        );
        assert_eq!(
            metadata.get("traceparent").unwrap().to_str().unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );

        let received = propagator.extract(&MetadataExtractor(&metadata));
        let received = received.span().span_context().clone();
        assert_eq!(received.trace_id(), sent.trace_id());
        assert_eq!(received.span_id(), sent.span_id());
        assert!(received.is_sampled());
        assert!(received.is_remote());
        assert!(MetadataExtractor(&metadata).keys().contains(&"traceparent"));
    }

    #[test]
    fn headers_and_metadata_agree() {
        let mut metadata = MetadataMap::new();
        MetadataInjector(&mut metadata).set(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        // An invalid key is skipped, not a panic.
        MetadataInjector(&mut metadata).set("bad key", "x".to_owned());
        let headers = metadata.into_headers();
        let extracted = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert_eq!(
            extracted.span().span_context().span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert_eq!(headers.len(), 1);
    }
}
