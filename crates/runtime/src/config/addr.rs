//! `host:port` addresses. The same variable both tells a service where to bind and tells
//! its clients where to find it, so the host may be a DNS name (`mend-registry:8002` in
//! Kubernetes), not only an IP literal.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A validated `host:port`. IPv6 literals are written `[::1]:8001`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAddr {
    host: String,
    port: u16,
}

impl ServiceAddr {
    /// An address from parts already known to be valid (defaults, tests).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host: an IP literal (without brackets) or a DNS name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port; 0 asks the OS for a free one when binding.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Binds a listener here, resolving a DNS name if needed.
    pub async fn bind(&self) -> std::io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind((self.host.as_str(), self.port)).await
    }

    /// The URI a gRPC or HTTP client dials: `http://host:port` or `https://host:port`.
    pub fn uri(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{self}")
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<SocketAddr> for ServiceAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::new(addr.ip().to_string(), addr.port())
    }
}

impl FromStr for ServiceAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains("://") {
            return Err("expected host:port without a scheme, e.g. 0.0.0.0:8001".to_owned());
        }
        if let Ok(socket) = text.parse::<SocketAddr>() {
            return Ok(socket.into());
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err("expected host:port, e.g. 127.0.0.1:8001".to_owned());
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if host.parse::<IpAddr>().is_ok() {
            return Ok(Self::new(host, port));
        }
        validate_dns_name(host)?;
        Ok(Self::new(host, port))
    }
}

/// Letters, digits, `-` and `_` in dot-separated labels; catches pasted URLs, paths,
/// spaces and stray brackets, which would otherwise fail late at bind or dial time.
fn validate_dns_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("host is empty".to_owned());
    }
    if host.len() > 253 {
        return Err("host name is longer than 253 characters".to_owned());
    }
    for label in host.split('.') {
        let well_formed = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !well_formed {
            return Err(format!("{host:?} is neither an IP address nor a host name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_ip_literals_and_dns_names() {
        assert_eq!(
            "127.0.0.1:8001".parse::<ServiceAddr>().unwrap(),
            ServiceAddr::new("127.0.0.1", 8001)
        );
        let v6 = "[::1]:8002".parse::<ServiceAddr>().unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.to_string(), "[::1]:8002");
        let dns = "mend-registry.mend.svc:8002"
            .parse::<ServiceAddr>()
            .unwrap();
        assert_eq!(dns.host(), "mend-registry.mend.svc");
        assert_eq!(dns.uri(true), "https://mend-registry.mend.svc:8002");
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for bad in [
            "8001",
            "localhost",
            "localhost:99999",
            "localhost:http",
            ":8001",
            "http://localhost:8001",
            "my host:8001",
            "a/b:8001",
            "-bad-.example:1",
        ] {
            let err = bad.parse::<ServiceAddr>().unwrap_err();
            assert!(!err.is_empty(), "{bad} should fail with a reason");
        }
    }
}
