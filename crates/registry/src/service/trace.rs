//! The trace id an audit record carries: the caller's, from the W3C `traceparent`
//! request metadata, else the trace of the request's own span (when spans are exported),
//! else empty.

use opentelemetry::trace::TraceContextExt;
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// The trace id of this request, as 32 lowercase hex digits, or empty.
pub fn request_trace_id(metadata: &MetadataMap) -> String {
    if let Some(trace_id) = metadata
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(trace_id_of)
    {
        return trace_id;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        return span_context.trace_id().to_string();
    }
    String::new()
}

/// The trace id of a `traceparent` value (`00-<trace id>-<span id>-<flags>`), if valid.
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let is_hex = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && is_hex(span_id, 16)
        && is_hex(flags, 2);
    valid.then(|| trace_id.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reads_the_trace_id_of_a_valid_traceparent_only() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            request_trace_id(&metadata),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f35-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
        assert_eq!(request_trace_id(&MetadataMap::new()), "");
    }
}
