//! W3C trace context in message headers, so one heal is one trace across services.
//!
//! The bus always speaks W3C `traceparent`/`tracestate` (a wire contract), whatever global
//! propagator a process installed. Nothing is written when the current span is not recorded
//! by an OpenTelemetry layer.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::message::{Headers, header};

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name).collect()
    }
}

/// Writes the current tracing span's context into `headers`, unless the caller already
/// put a `traceparent` there.
pub fn inject_current(headers: &mut Headers) {
    if headers.get(header::TRACEPARENT).is_some() {
        return;
    }
    inject_context(&tracing::Span::current().context(), headers);
}

/// Writes an explicit OpenTelemetry context into `headers`.
pub fn inject_context(context: &Context, headers: &mut Headers) {
    TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
}

/// The remote context carried by `headers` (empty when there is none or it is malformed).
pub fn extract(headers: &Headers) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` a child of the context carried by `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: &Headers) {
    if headers.get(header::TRACEPARENT).is_none() {
        return;
    }
    if let Err(error) = span.set_parent(extract(headers)) {
        tracing::debug!(%error, "could not attach remote trace context");
    }
}
