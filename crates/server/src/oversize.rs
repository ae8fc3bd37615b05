//! Oversized requests answer INVALID_ARGUMENT, as the issue asks, instead of tonic's
//! OUT_OF_RANGE (message over the limit) or RESOURCE_EXHAUSTED (decompressed over the limit).
//!
//! tonic rejects such a message before any handler runs and sends a trailers-only response,
//! so its status sits in the response headers; this wrapper rewrites just those two cases.

use std::task::{Context, Poll};

use http::HeaderValue;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
/// `Code::OutOfRange` and `Code::ResourceExhausted` on the wire.
const OUT_OF_RANGE: &[u8] = b"11";
const RESOURCE_EXHAUSTED: &[u8] = b"8";
const INVALID_ARGUMENT: &str = "3";

/// Wraps a generated gRPC server.
#[derive(Debug, Clone)]
pub struct OversizeAsInvalidArgument<S> {
    inner: S,
    limit: usize,
}

impl<S> OversizeAsInvalidArgument<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        OversizeAsInvalidArgument { inner, limit }
    }
}

impl<S: NamedService> NamedService for OversizeAsInvalidArgument<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, RB> Service<http::Request<B>> for OversizeAsInvalidArgument<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite_oversize(response.headers_mut(), limit);
            Ok(response)
        })
    }
}

fn rewrite_oversize(headers: &mut http::HeaderMap, limit: usize) {
    let Some(status) = headers.get(GRPC_STATUS) else {
        return;
    };
    let status = status.as_bytes();
    if status != OUT_OF_RANGE && status != RESOURCE_EXHAUSTED {
        return;
    }
    let is_size_error = headers.get(GRPC_MESSAGE).is_some_and(|message| {
        let message = percent_decoded(message.as_bytes());
        contains(&message, b"message length too large") || contains(&message, b"size limit")
    });
    if !is_size_error {
        return;
    }
    let message = format!(
        "the request message is larger than the server's limit of {limit} bytes (MEND_SERVER_MAX_MESSAGE_BYTES); send fewer rows per request"
    );
    headers.insert(GRPC_STATUS, HeaderValue::from_static(INVALID_ARGUMENT));
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert(GRPC_MESSAGE, value);
    }
}

/// grpc-message is percent-encoded (tonic encodes spaces too).
fn percent_decoded(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (text[index], text.get(index + 1), text.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) if hex(high).is_some() && hex(low).is_some() => {
                let value = hex(high).unwrap_or(0) * 16 + hex(low).unwrap_or(0);
                out.push(value as u8);
                index += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_size_errors_are_rewritten() {
        let mut headers = http::HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static("11"));
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static(
                "Error,%20decoded%20message%20length%20too%20large:%20found%209",
            ),
        );
        rewrite_oversize(&mut headers, 5);
        assert_eq!(headers[GRPC_STATUS], "3");
        assert!(
            headers[GRPC_MESSAGE]
                .to_str()
                .is_ok_and(|m| m.contains("limit of 5 bytes"))
        );

        let mut other = http::HeaderMap::new();
        other.insert(GRPC_STATUS, HeaderValue::from_static("11"));
        other.insert(GRPC_MESSAGE, HeaderValue::from_static("something else"));
        rewrite_oversize(&mut other, 5);
        assert_eq!(other[GRPC_STATUS], "11");
    }
}
