//! `--health-check`: one readiness probe of the process's own HTTP port, for images that
//! have no shell and no curl (distroless): `["CMD", "/usr/local/bin/mend-server",
//! "--health-check"]` in a compose `healthcheck`.
//!
//! It reads the configuration the service reads (`MEND_HTTP_ADDR`, `MEND_TLS_*`, the
//! `MEND_CONFIG` file), sends one `GET /healthz` (readiness: 200 once ready, 503 while
//! starting or draining) to that port, on loopback when the service binds every interface
//! (`0.0.0.0`, `::`), and says what it found in one line: healthy only on 200.
//!
//! With `MEND_TLS_CERT`/`MEND_TLS_KEY` the port serves TLS only, so the probe speaks TLS. It
//! presents no client certificate (under mTLS a connection without one still reaches the
//! ops routes, `/healthz` among them) and trusts exactly the certificate `MEND_TLS_CERT`
//! names, the one the service presents: its own process, whatever names the certificate
//! carries and whether or not `MEND_TLS_CA` is set.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{MendConfig, ServiceAddr, TlsConfig};

/// The flag every service binary takes to probe itself instead of serving.
pub const HEALTH_CHECK_FLAG: &str = "--health-check";
/// The route probed: readiness.
pub const HEALTH_PATH: &str = "/healthz";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the whole exchange may take once connected (TLS handshake included).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// More than any answer of `/healthz`; a longer one is cut here.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// How much of the answer's body the failure line quotes.
const MAX_REASON_CHARS: usize = 200;

/// What the port answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body's first line, trimmed and cut at 200 characters (`waiting for: server`).
    pub reason: String,
}

/// Probes `config`'s HTTP port once: `Ok` with a line saying so when `/healthz` answers 200,
/// else `Err` with a line saying why (the status and the body's reason, or what failed on
/// the way, naming `MEND_HTTP_ADDR` and the address dialed). Blocking; at most about five
/// seconds per address tried.
pub fn health_check(config: &MendConfig) -> Result<String, String> {
    let http = &config.http_addr;
    let addrs = probe_addrs(http)?;
    let tls = client_tls(&config.tls)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut failures = Vec::new();
    for addr in addrs {
        let url = format!("{scheme}://{addr}{HEALTH_PATH}");
        match probe(addr, tls.as_ref()) {
            Ok(answer) if answer.status == 200 => {
                return Ok(format!("ready: GET {url} answered 200"));
            }
            Ok(answer) => {
                let reason = if answer.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", answer.reason)
                };
                return Err(format!(
                    "not ready: GET {url} answered {}{reason}",
                    answer.status
                ));
            }
            Err(failure) => failures.push(format!("{url}: {failure}")),
        }
    }
    let hint = if tls.is_some() {
        " (MEND_TLS_CERT is set, so the probe speaks TLS and trusts only that certificate)"
    } else {
        " (no MEND_TLS_CERT, so the probe speaks plain HTTP)"
    };
    Err(format!(
        "not ready: MEND_HTTP_ADDR {http}: {}{hint}",
        failures.join("; ")
    ))
}

/// Where to dial: loopback of the same family for an unspecified host (the service binds
/// every interface), the address itself for an IP, every resolved address for a name.
fn probe_addrs(http: &ServiceAddr) -> Result<Vec<SocketAddr>, String> {
    let port = http.port();
    if port == 0 {
        return Err(format!(
            "not ready: MEND_HTTP_ADDR {http} has port 0 (a port the OS picks), so there is no \
             known port to probe"
        ));
    }
    match http.host().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => {
            Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)])
        }
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => {
            Ok(vec![SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)])
        }
        Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Err(_) => {
            let addrs: Vec<SocketAddr> = (http.host(), port)
                .to_socket_addrs()
                .map_err(|error| {
                    format!("not ready: cannot resolve MEND_HTTP_ADDR {http}: {error}")
                })?
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "not ready: MEND_HTTP_ADDR {http} resolves to no address"
                ));
            }
            Ok(addrs)
        }
    }
}

/// One `GET /healthz` to `addr`, over TLS when `tls` is given.
fn probe(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<ProbeAnswer, String> {
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot connect: {error}"))?;
    let deadline = Instant::now() + EXCHANGE_TIMEOUT;
    tcp.set_nodelay(true)
        .map_err(|error| format!("cannot set up the connection: {error}"))?;
    let request = format!(
        "GET {HEALTH_PATH} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: mend-health-check\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    let raw = match tls {
        None => exchange(tcp, request.as_bytes(), deadline)?,
        Some(config) => {
            let connection =
                rustls::ClientConnection::new(Arc::clone(config), ServerName::from(addr.ip()))
                    .map_err(|error| format!("tls: {error}"))?;
            let stream = rustls::StreamOwned::new(connection, tcp);
            exchange(stream, request.as_bytes(), deadline)
                .map_err(|error| format!("tls: {error}"))?
        }
    };
    parse_response(&raw)
}

/// A stream whose socket takes timeouts: the TCP stream itself, or TLS over it.
trait Timed: Read + Write {
    fn socket(&self) -> &TcpStream;
}

impl Timed for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl Timed for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn socket(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// Writes `request` and reads the answer until it is complete, the peer closes, or
/// `deadline` passes.
fn exchange(mut stream: impl Timed, request: &[u8], deadline: Instant) -> Result<Vec<u8>, String> {
    arm(stream.socket(), deadline)?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|error| format!("cannot send the request: {error}"))?;
    let mut raw = Vec::with_capacity(512);
    let mut chunk = [0_u8; 2048];
    loop {
        arm(stream.socket(), deadline)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => {
                raw.extend_from_slice(chunk.get(..read).unwrap_or_default());
                if raw.len() >= MAX_RESPONSE_BYTES || is_complete(&raw) {
                    break;
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify, after answering.
            Err(error) if error.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "no complete answer within {} s",
                    EXCHANGE_TIMEOUT.as_secs()
                ));
            }
            Err(error) => return Err(format!("cannot read the answer: {error}")),
        }
    }
    if raw.is_empty() {
        return Err("the connection closed without an answer".to_owned());
    }
    Ok(raw)
}

/// Gives the next socket operation the time left until `deadline`.
fn arm(socket: &TcpStream, deadline: Instant) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!(
            "no complete answer within {} s",
            EXCHANGE_TIMEOUT.as_secs()
        ));
    }
    socket
        .set_read_timeout(Some(left))
        .and_then(|()| socket.set_write_timeout(Some(left)))
        .map_err(|error| format!("cannot set a timeout: {error}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The head (lowercased) and the offset where the body starts, once the head is complete.
fn split_head(raw: &[u8]) -> Option<(String, usize)> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(raw.get(..end)?).to_ascii_lowercase();
    Some((head, end + 4))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then_some(value.trim())
    })
}

/// Whether `raw` holds a whole answer: its `Content-Length`, or the last chunk.
fn is_complete(raw: &[u8]) -> bool {
    let Some((head, body_start)) = split_head(raw) else {
        return false;
    };
    let body = raw.get(body_start..).unwrap_or_default();
    if header(&head, "transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    match header(&head, "content-length").and_then(|value| value.parse::<usize>().ok()) {
        Some(length) => body.len() >= length,
        None => false,
    }
}

/// The status and the body's first line.
pub fn parse_response(raw: &[u8]) -> Result<ProbeAnswer, String> {
    let not_http = || {
        let start =
            String::from_utf8_lossy(raw.get(..raw.len().min(40)).unwrap_or_default()).into_owned();
        format!("the answer is not HTTP/1.1: {start:?}")
    };
    let (head, body_start) = split_head(raw).ok_or_else(not_http)?;
    let mut status_line = head.lines().next().unwrap_or_default().split_whitespace();
    let status = match (status_line.next(), status_line.next()) {
        (Some(version), Some(code)) if version.starts_with("http/") => {
            code.parse::<u16>().map_err(|_| not_http())?
        }
        _ => return Err(not_http()),
    };
    let body = raw.get(body_start..).unwrap_or_default();
    let body = if header(&head, "transfer-encoding").is_some_and(|value| value.contains("chunked"))
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let text = String::from_utf8_lossy(&body);
    let reason: String = text
        .trim()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    Ok(ProbeAnswer { status, reason })
}

/// The data of a chunked body, as far as it is well formed.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(body, b"\r\n") {
        let size_line = String::from_utf8_lossy(body.get(..line_end).unwrap_or_default());
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let start = line_end + 2;
        let Some(data) = body.get(start..start.saturating_add(size)) else {
            out.extend_from_slice(body.get(start..).unwrap_or_default());
            break;
        };
        if size == 0 {
            break;
        }
        out.extend_from_slice(data);
        body = body.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// The TLS client for a port that serves TLS (`MEND_TLS_CERT` set), else `None`.
fn client_tls(tls: &TlsConfig) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let Some(identity) = &tls.identity else {
        return Ok(None);
    };
    let unreadable = |reason: String| {
        format!(
            "not ready: cannot read the certificate MEND_TLS_CERT names ({}): {reason}",
            identity.cert.display()
        )
    };
    let expected = CertificateDer::pem_file_iter(&identity.cert)
        .map_err(|error| unreadable(error.to_string()))?
        .next()
        .ok_or_else(|| unreadable("it holds no certificate".to_owned()))?
        .map_err(|error| unreadable(error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = OwnCertificate {
        expected,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("not ready: tls: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Trusts one certificate: the service's own (`MEND_TLS_CERT`). The probe dials its own
/// process on loopback, so the usual name and chain checks would only stand in the way
/// (certificates name the service's DNS name, not `127.0.0.1`); the handshake signatures are
/// still verified against that certificate's key.
#[derive(Debug)]
struct OwnCertificate {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the port presented a certificate other than the one MEND_TLS_CERT names"
                    .to_owned(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_status_and_reason_from_sized_and_chunked_answers() {
        let sized = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 21\r\n\r\n\
                      waiting for: server\n\n";
        assert!(is_complete(sized));
        assert_eq!(
            parse_response(sized).unwrap(),
            ProbeAnswer {
                status: 503,
                reason: "waiting for: server".to_owned()
            }
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nready\n\r\n0\r\n\r\n";
        assert!(is_complete(chunked));
        assert_eq!(
            parse_response(chunked).unwrap(),
            ProbeAnswer {
                status: 200,
                reason: "ready".to_owned()
            }
        );
        assert!(!is_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nrea"
        ));
    }

    #[test]
    fn refuses_what_is_not_http() {
        let error = parse_response(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").unwrap_err();
        assert!(error.contains("not HTTP"), "{error}");
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn an_unspecified_host_is_probed_on_loopback() {
        let v4 = probe_addrs(&"0.0.0.0:8080".parse().unwrap()).unwrap();
        assert_eq!(v4, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        let v6 = probe_addrs(&"[::]:8080".parse().unwrap()).unwrap();
        assert_eq!(v6, vec!["[::1]:8080".parse::<SocketAddr>().unwrap()]);
        let own = probe_addrs(&"10.1.2.3:9000".parse().unwrap()).unwrap();
        assert_eq!(own, vec!["10.1.2.3:9000".parse::<SocketAddr>().unwrap()]);
        let error = probe_addrs(&"0.0.0.0:0".parse().unwrap()).unwrap_err();
        assert!(error.contains("port 0"), "{error}");
    }
}
