//! A minimal HTTP/1.1 client for `http://` webhooks over `tokio::net::TcpStream`: one POST
//! per connection (`Connection: close`), status line read, body ignored. Enough for Slack-
//! style receivers behind a cluster-internal URL or a local relay; no TLS.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head read before giving up on finding the status line.
const MAX_HEAD: usize = 8 * 1024;

/// A parsed `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text.strip_prefix("http://").ok_or_else(|| {
            format!("`{text}` is not an http:// URL (https is not supported; use a local relay)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!(
                "`{text}`: credentials in the URL are not supported"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{text}`: `{port}` is not a port"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(format!("`{text}` has no valid host"));
        }
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: not an HTTP response: {head:?}")]
    Malformed { url: String, head: String },
}

/// POSTs a JSON body with extra headers; `Ok` on any 2xx status.
pub async fn post_json(
    url: &HttpUrl,
    body: &[u8],
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<u16, HttpError> {
    let exchange = async {
        let io = |source| HttpError::Io {
            url: url.to_string(),
            source,
        };
        let mut stream = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(io)?;
        let host = if url.port == 80 {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mend-trainer\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.path,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut response = Vec::with_capacity(256);
        let mut buffer = [0u8; 1024];
        while !response.windows(2).any(|w| w == b"\r\n") && response.len() < MAX_HEAD {
            let read = stream.read(&mut buffer).await.map_err(io)?;
            if read == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..read]);
        }
        parse_status(&response).ok_or_else(|| HttpError::Malformed {
            url: url.to_string(),
            head: String::from_utf8_lossy(&response[..response.len().min(100)]).into_owned(),
        })
    };
    let status = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.to_string(),
            timeout,
        })??;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(HttpError::Status {
            url: url.to_string(),
            status,
        })
    }
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status(response: &[u8]) -> Option<u16> {
    let line_end = response.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&response[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_http_urls_and_refuses_others() {
        let url: HttpUrl = "http://hooks.local:8080/services/x?y=1".parse().unwrap();
        assert_eq!(url.host, "hooks.local");
        assert_eq!(url.port, 8080);
        assert_eq!(url.path, "/services/x?y=1");
        let bare: HttpUrl = "http://relay".parse().unwrap();
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        assert!("https://hooks.slack.com/x".parse::<HttpUrl>().is_err());
        assert!("http://:80/".parse::<HttpUrl>().is_err());
        assert!("http://host:99999/".parse::<HttpUrl>().is_err());
    }

    #[test]
    fn reads_the_status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 500 Oops\r\n"), Some(500));
        assert_eq!(parse_status(b"SSH-2.0\r\n"), None);
    }
}
