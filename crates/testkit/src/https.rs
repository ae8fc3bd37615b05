//! A minimal HTTP/1.1 client over TLS (or plain text) for tests of the services' HTTP
//! ports: one request per connection, the status code and body back, or why it failed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// One request: method, path and an optional JSON body.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub json: Option<&'a str>,
}

impl<'a> HttpRequest<'a> {
    pub fn get(path: &'a str) -> Self {
        HttpRequest {
            method: "GET",
            path,
            json: None,
        }
    }

    pub fn post_json(path: &'a str, json: &'a str) -> Self {
        HttpRequest {
            method: "POST",
            path,
            json: Some(json),
        }
    }
}

/// The client's TLS side: the CA bundle it trusts, and its certificate and key, if any.
#[derive(Debug, Clone, Copy)]
pub struct ClientTls<'a> {
    pub trust: &'a Path,
    pub identity: Option<(&'a Path, &'a Path)>,
}

/// The certificates a mutual-TLS check uses, from the runtime's test fixtures directory:
/// `ca.pem`, `client.pem`/`.key` (signed by it), `other-client.pem`/`.key` (another CA,
/// `other-ca.pem`).
#[derive(Debug, Clone)]
pub struct MtlsFixtures {
    ca: std::path::PathBuf,
    other_ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    other_cert: std::path::PathBuf,
    other_key: std::path::PathBuf,
}

impl MtlsFixtures {
    pub fn in_dir(dir: &Path) -> Self {
        MtlsFixtures {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
            other_cert: dir.join("other-client.pem"),
            other_key: dir.join("other-client.key"),
        }
    }

    /// Trusts the CA and shows a certificate it signed.
    pub fn client(&self) -> ClientTls<'_> {
        ClientTls {
            trust: &self.ca,
            identity: Some((&self.cert, &self.key)),
        }
    }

    /// Trusts the CA and shows no certificate.
    pub fn anonymous(&self) -> ClientTls<'_> {
        ClientTls {
            trust: &self.ca,
            identity: None,
        }
    }

    /// Trusts another CA (so not the service's certificate) and shows a good certificate.
    pub fn wrong_ca(&self) -> ClientTls<'_> {
        ClientTls {
            trust: &self.other_ca,
            identity: Some((&self.cert, &self.key)),
        }
    }

    /// Trusts the CA and shows a certificate another CA signed.
    pub fn foreign(&self) -> ClientTls<'_> {
        ClientTls {
            trust: &self.ca,
            identity: Some((&self.other_cert, &self.other_key)),
        }
    }
}

/// Sends `request` over TLS; the status and body, or why the exchange failed.
pub async fn https(
    addr: SocketAddr,
    request: &HttpRequest<'_>,
    tls: ClientTls<'_>,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls.trust).map_err(|error| error.to_string())? {
        roots
            .add(cert.map_err(|error| error.to_string())?)
            .map_err(|error| error.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots);
    let config = match tls.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| error.to_string())?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|error| error.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| error.to_string())?
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| error.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|error| error.to_string())?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|error| format!("handshake: {error}"))?;
    exchange(stream, request).await
}

/// Sends `request` in plain text; the status and body, or why nothing HTTP came back.
pub async fn plain(addr: SocketAddr, request: &HttpRequest<'_>) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| error.to_string())?;
    exchange(tcp, request).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &HttpRequest<'_>,
) -> Result<(u16, String), String> {
    let body = request.json.unwrap_or("");
    let content_type = if request.json.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n",
        request.method,
        request.path,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|error| format!("write: {error}"))?;
    stream
        .write_all(body.as_bytes())
        .await
        .map_err(|error| format!("write: {error}"))?;
    let mut answer = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(format!("read: {error}")),
        Err(_) => return Err("no answer within 10 s".into()),
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
