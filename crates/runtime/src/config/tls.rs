//! TLS file paths for gRPC servers and clients.

use std::path::PathBuf;

use super::error::ConfigError;
use super::source::ConfigSource;
use super::vars::{MEND_TLS_CA, MEND_TLS_CERT, MEND_TLS_KEY};

/// A certificate chain and its private key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsIdentity {
    /// `MEND_TLS_CERT`.
    pub cert: PathBuf,
    /// `MEND_TLS_KEY`.
    pub key: PathBuf,
}

/// `MEND_TLS_*`. Every path was readable when the config was loaded.
///
/// A server uses TLS when it has an identity and, given a CA as well, requires client
/// certificates signed by it (mTLS). A client uses TLS when it has a CA to trust and
/// presents the identity, if any, as its client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate and key, set together or not at all.
    pub identity: Option<TlsIdentity>,
    /// CA bundle.
    pub ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether gRPC servers should serve TLS.
    pub fn server_enabled(&self) -> bool {
        self.identity.is_some()
    }

    /// Whether gRPC clients should dial TLS.
    pub fn client_enabled(&self) -> bool {
        self.ca.is_some()
    }

    pub(crate) fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let cert = source.readable_file(MEND_TLS_CERT, "tls.cert")?;
        let key = source.readable_file(MEND_TLS_KEY, "tls.key")?;
        let ca = source.readable_file(MEND_TLS_CA, "tls.ca")?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsIdentity { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Conflict {
                    var: MEND_TLS_CERT.to_owned(),
                    reason: format!("is set but {MEND_TLS_KEY} is not; set both or neither"),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Conflict {
                    var: MEND_TLS_KEY.to_owned(),
                    reason: format!("is set but {MEND_TLS_CERT} is not; set both or neither"),
                });
            }
        };
        Ok(Self { identity, ca })
    }
}
