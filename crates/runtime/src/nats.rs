//! [`connect_options`]: the one place `MEND_NATS_*` becomes async-nats connect options,
//! so every service and `mend up` authenticate and use TLS the same way.
//!
//! Secrets go from [`crate::Secret`] straight into the options and nowhere else; the
//! options are never logged (their `Debug` would not redact them).

use std::path::PathBuf;

use async_nats::ConnectOptions;

use crate::config::vars::MEND_NATS_CREDS;
use crate::config::{NatsAuth, NatsConfig};

/// Why the connect options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NatsOptionsError {
    /// The `.creds` file was readable at start-up but is not a valid credentials file.
    #[error("{MEND_NATS_CREDS} {path}: not a usable NATS credentials file: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Connect options carrying the authentication and TLS settings of `nats`. Callers add
/// their own name, timeouts and callbacks on top.
pub async fn connect_options(nats: &NatsConfig) -> Result<ConnectOptions, NatsOptionsError> {
    let mut options = ConnectOptions::new();
    options = match &nats.auth {
        NatsAuth::None => options,
        NatsAuth::Token(token) => options.token(token.expose().to_owned()),
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().to_owned())
        }
        NatsAuth::Credentials(path) => options.credentials_file(path).await.map_err(|source| {
            NatsOptionsError::Credentials {
                path: path.clone(),
                source,
            }
        })?,
    };
    if let Some(ca) = &nats.tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some(identity) = &nats.tls.identity {
        options = options.add_client_certificate(identity.cert.clone(), identity.key.clone());
    }
    // A CA means the operator expects TLS: never fall back to plain text then.
    if nats.tls.required || nats.tls.ca.is_some() {
        options = options.require_tls(true);
    }
    Ok(options)
}
