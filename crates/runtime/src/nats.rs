//! [`connect_options`]: the one place `MEND_NATS_*` becomes async-nats connect options,
//! so every service and `mend up` authenticate and use TLS the same way.
//!
//! Secrets go from [`crate::Secret`] straight into the options and nowhere else; the
//! options are never logged (their `Debug` would not redact them).

use std::path::PathBuf;

use async_nats::ConnectOptions;

use crate::config::vars::{MEND_NATS_CREDS, MEND_NATS_NKEY};
use crate::config::{NatsAuth, NatsConfig};

/// Why the connect options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NatsOptionsError {
    /// The nkey file could not be read or holds no user seed.
    #[error("{MEND_NATS_NKEY} {path}: {reason}")]
    Nkey { path: PathBuf, reason: String },
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
        NatsAuth::Nkey(path) => options.nkey(read_nkey_seed(path).await?),
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

/// The nkey user seed in `path`: the first line starting with `SU` (a `.nk` file as `nk -gen
/// user` writes it, or the seed alone), never printed.
async fn read_nkey_seed(path: &std::path::Path) -> Result<String, NatsOptionsError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|error| NatsOptionsError::Nkey {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("SU"))
        .map(str::to_owned)
        .ok_or_else(|| NatsOptionsError::Nkey {
            path: path.to_owned(),
            reason: "holds no nkey user seed (a line starting with SU)".to_owned(),
        })
}
