//! A lean gRPC unary client straight on `h2`, for the load generator only.
//!
//! On a 2-core machine the client competes with the server for CPU, so its cost is part of
//! every figure. tonic's `Channel` sends each call through a `tower` buffer task and encodes
//! each message again; here requests are encoded once (gRPC frame included) and each call is
//! one HTTP/2 stream on a shared connection. Responses are still fully decoded and their
//! `grpc-status` checked, so errors are counted as a real client would see them.

use std::str::FromStr;

use anyhow::Context;
use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version};
use prost::Message;
use tokio::net::TcpStream;
use tonic::Code;

/// The ModelInfer method's path.
const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";

/// One HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct GrpcH2 {
    send: SendRequest<Bytes>,
    uri: Uri,
}

/// A failed call: the gRPC code (or `Unavailable` for transport errors) and message.
#[derive(Debug)]
pub struct CallError {
    pub code: Code,
    pub message: String,
}

impl GrpcH2 {
    /// Connects to `host:port` and starts driving the connection.
    pub async fn connect(addr: &str) -> anyhow::Result<GrpcH2> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("failed to connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(4 * 1024 * 1024)
            .initial_connection_window_size(16 * 1024 * 1024)
            .handshake::<_, Bytes>(tcp)
            .await
            .context("http/2 handshake failed")?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "bench connection closed");
            }
        });
        let uri = Uri::from_str(&format!("http://{addr}{MODEL_INFER}"))?;
        Ok(GrpcH2 { send, uri })
    }

    /// Sends one pre-framed ModelInfer request and decodes the response message.
    pub async fn model_infer<M: Message + Default>(&self, framed: Bytes) -> Result<M, CallError> {
        let transport = |error: h2::Error| CallError {
            code: Code::Unavailable,
            message: error.to_string(),
        };
        let mut send = self.send.clone().ready().await.map_err(transport)?;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = Version::HTTP_2;
        let headers = request.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        let (response, mut stream) = send.send_request(request, false).map_err(transport)?;
        stream.send_data(framed, true).map_err(transport)?;
        let response = response.await.map_err(transport)?;
        let (parts, mut body) = response.into_parts();
        // Trailers-only responses (errors) carry the status in the headers.
        check_status(&parts.headers)?;
        let mut data = BytesMut::new();
        let mut single: Option<Bytes> = None;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            match (single.take(), data.is_empty()) {
                (None, true) => single = Some(chunk),
                (Some(first), _) => {
                    data.extend_from_slice(&first);
                    data.extend_from_slice(&chunk);
                }
                (None, false) => data.extend_from_slice(&chunk),
            }
        }
        if let Some(trailers) = body.trailers().await.map_err(transport)? {
            check_status(&trailers)?;
        }
        let mut message = single.unwrap_or_else(|| data.freeze());
        if message.len() < 5 || message[0] != 0 {
            return Err(CallError {
                code: Code::Internal,
                message: "response is not one uncompressed gRPC message".into(),
            });
        }
        message.advance(1);
        let len = message.get_u32() as usize;
        if message.len() != len {
            return Err(CallError {
                code: Code::Internal,
                message: format!("response frame says {len} bytes, got {}", message.len()),
            });
        }
        M::decode(message).map_err(|error| CallError {
            code: Code::Internal,
            message: format!("undecodable response: {error}"),
        })
    }
}

/// Encodes a message as one uncompressed gRPC frame (flag byte, big-endian length, message).
pub fn frame(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(len + 5);
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = message.encode(&mut out);
    out.freeze()
}

fn check_status(headers: &HeaderMap) -> Result<(), CallError> {
    let Some(status) = headers.get("grpc-status") else {
        return Ok(());
    };
    let code = status
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    if code == Code::Ok {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Err(CallError { code, message })
}
