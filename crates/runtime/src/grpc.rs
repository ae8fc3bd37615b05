//! gRPC server and client set-up shared by every service: request spans joined to the
//! caller's trace, keepalives, and TLS (mTLS with a CA) from `MEND_TLS_*`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::config::{ServiceAddr, TlsConfig};
use crate::telemetry::propagation::grpc_server_span;

/// Dead peers behind a load balancer are noticed within about 40 s.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client gives up dialing a service that is not there quickly, so retries and
/// readiness, not a hung connect, decide what happens next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS file could not be read or the TLS setup was rejected.
#[derive(Debug, thiserror::Error)]
pub enum GrpcSetupError {
    /// A PEM file from `MEND_TLS_*` could not be read.
    #[error("failed to read {var} {path:?}: {source}")]
    ReadPem {
        /// The variable that named it.
        var: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// tonic rejected the TLS configuration (bad PEM, key not matching) or the URI.
    #[error("invalid grpc transport setup: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A `tonic` server builder with mend's defaults: a trace-joined span per request, TCP
/// nodelay, HTTP/2 keepalives, and TLS when `tls` has an identity (client certificates
/// required when it also has a CA).
pub fn grpc_server_builder(tls: &TlsConfig) -> Result<Server, GrpcSetupError> {
    let server = Server::builder()
        .trace_fn(grpc_server_span)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT));
    let Some(identity) = &tls.identity else {
        return Ok(server);
    };
    let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(
        read_pem("MEND_TLS_CERT", &identity.cert)?,
        read_pem("MEND_TLS_KEY", &identity.key)?,
    ));
    if let Some(ca) = &tls.ca {
        tls_config = tls_config.client_ca_root(Certificate::from_pem(read_pem("MEND_TLS_CA", ca)?));
    }
    Ok(server.tls_config(tls_config)?)
}

/// An endpoint for dialing the service at `addr`: `https` when `tls` has a CA (which it
/// trusts), presenting the identity, if any, as a client certificate.
pub fn grpc_client_endpoint(
    addr: &ServiceAddr,
    tls: &TlsConfig,
) -> Result<Endpoint, GrpcSetupError> {
    let endpoint = Endpoint::from_shared(addr.uri(tls.client_enabled()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let Some(ca) = &tls.ca else {
        return Ok(endpoint);
    };
    let mut tls_config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read_pem("MEND_TLS_CA", ca)?))
        .domain_name(addr.host());
    if let Some(identity) = &tls.identity {
        tls_config = tls_config.identity(Identity::from_pem(
            read_pem("MEND_TLS_CERT", &identity.cert)?,
            read_pem("MEND_TLS_KEY", &identity.key)?,
        ));
    }
    Ok(endpoint.tls_config(tls_config)?)
}

fn read_pem(var: &'static str, path: &Path) -> Result<Vec<u8>, GrpcSetupError> {
    std::fs::read(path).map_err(|source| GrpcSetupError::ReadPem {
        var,
        path: path.to_owned(),
        source,
    })
}

/// Longest status message a service sends: a client must be able to read its error, and a
/// message is a header (`grpc-message`) that proxies and clients cap far below megabytes.
pub const MAX_STATUS_MESSAGE: usize = 1000;
/// Longest piece of a client's own input an error quotes back.
pub const MAX_QUOTE: usize = 200;

/// `text` as an error may quote it: whole when short, else its first [`MAX_QUOTE`]
/// characters and how long it was.
pub fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    cap(text, MAX_QUOTE)
}

/// `status` with its message cut to [`MAX_STATUS_MESSAGE`] characters (saying so, with the
/// full length), code and metadata kept.
pub fn capped(status: tonic::Status) -> tonic::Status {
    if status.message().chars().count() <= MAX_STATUS_MESSAGE {
        return status;
    }
    let message = cap(status.message(), MAX_STATUS_MESSAGE).into_owned();
    tonic::Status::with_metadata(status.code(), message, status.metadata().clone())
}

/// `text` whole when it has at most `max` characters, else its first `max` and how long it was.
pub fn cap(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return std::borrow::Cow::Borrowed(text);
    };
    std::borrow::Cow::Owned(format!(
        "{}… ({} characters in all)",
        &text[..cut],
        text.chars().count()
    ))
}

#[cfg(test)]
mod cap_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn long_messages_and_quotes_are_cut_and_say_how_long_they_were() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(10_000);
        let quoted = quote(&long);
        assert!(quoted.starts_with(&"é".repeat(MAX_QUOTE)));
        assert!(quoted.ends_with("… (10000 characters in all)"), "{quoted}");
        let status = capped(tonic::Status::invalid_argument(long));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().chars().count() < MAX_STATUS_MESSAGE + 40);
        assert!(status.message().ends_with("(10000 characters in all)"));
        let short = capped(tonic::Status::not_found("no model named `m`"));
        assert_eq!(short.message(), "no model named `m`");
    }
}
