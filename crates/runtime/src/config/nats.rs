//! NATS connection settings. Unset URL means the embedded in-process bus.
//!
//! Everything a service needs to reach a secured, clustered NATS: the URL, one
//! authentication method, TLS files, and how many replicas the streams and buckets it
//! creates should have. `crate::nats` turns this into async-nats connect options.

use std::fmt;
use std::path::PathBuf;

use super::error::ConfigError;
use super::secret::Secret;
use super::source::ConfigSource;
use super::tls::TlsIdentity;
use super::vars::{
    MEND_NATS_CREDS, MEND_NATS_NKEY, MEND_NATS_PASSWORD, MEND_NATS_REPLICAS, MEND_NATS_TLS_CA,
    MEND_NATS_TLS_CERT, MEND_NATS_TLS_KEY, MEND_NATS_TLS_REQUIRED, MEND_NATS_TOKEN, MEND_NATS_URL,
    MEND_NATS_USER,
};

/// Stream replicas when `MEND_NATS_REPLICAS` is unset: right for a single server.
pub const DEFAULT_REPLICAS: usize = 1;
/// JetStream's own limit on replicas.
pub const MAX_REPLICAS: usize = 5;

/// How to authenticate to NATS; at most one method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (or credentials inside the URL).
    #[default]
    None,
    /// `MEND_NATS_TOKEN`.
    Token(Secret),
    /// `MEND_NATS_USER` and `MEND_NATS_PASSWORD`.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `MEND_NATS_CREDS`: a readable `.creds` file.
    Credentials(PathBuf),
    /// `MEND_NATS_NKEY`: a readable file holding an nkey user seed.
    Nkey(PathBuf),
}

/// `MEND_NATS_TLS_*`. Every path was readable when the config was loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// CA bundle the NATS server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for servers that verify clients.
    pub identity: Option<TlsIdentity>,
    /// Refuse a connection that does not use TLS.
    pub required: bool,
}

impl NatsTls {
    /// Whether any TLS setting is given.
    pub fn is_configured(&self) -> bool {
        self.ca.is_some() || self.identity.is_some() || self.required
    }
}

/// `MEND_NATS_URL` and its authentication, TLS and replica settings.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// One or more server URLs, comma separated, as async-nats accepts them.
    pub url: String,
    /// Authentication.
    pub auth: NatsAuth,
    /// TLS to the NATS server.
    pub tls: NatsTls,
    /// `MEND_NATS_REPLICAS`: copies of each stream and bucket mend creates (1..=5).
    pub replicas: usize,
}

impl NatsConfig {
    pub(crate) fn from_source(source: &ConfigSource) -> Result<Option<Self>, ConfigError> {
        let auth = auth_from_source(source)?;
        let tls = tls_from_source(source)?;
        let replicas = replicas_from_source(source)?;
        let Some(raw) = source.raw(MEND_NATS_URL, "nats.url")? else {
            let stray = auth_var(&auth)
                .map(|var| (var, "takes no credentials"))
                .or_else(|| tls_var(&tls).map(|var| (var, "does not use TLS")))
                .or_else(|| {
                    replicas
                        .is_some()
                        .then_some((MEND_NATS_REPLICAS, "has no replicas"))
                });
            if let Some((var, what)) = stray {
                return Err(ConfigError::Conflict {
                    var: var.to_owned(),
                    reason: format!("is set but {MEND_NATS_URL} is not; the embedded bus {what}"),
                });
            }
            return Ok(None);
        };
        if let Err(reason) = validate_urls(&raw.text) {
            return Err(ConfigError::Invalid {
                var: MEND_NATS_URL.to_owned(),
                value: redact_userinfo(&raw.text),
                origin: raw.origin,
                reason,
            });
        }
        Ok(Some(Self {
            url: raw.text,
            auth,
            tls,
            replicas: replicas.unwrap_or(DEFAULT_REPLICAS),
        }))
    }
}

/// The URL may carry `user:password@`; only the redacted form is ever printed.
impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redact_userinfo(&self.url))
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("replicas", &self.replicas)
            .finish()
    }
}

fn auth_from_source(source: &ConfigSource) -> Result<NatsAuth, ConfigError> {
    let creds = source.readable_file(MEND_NATS_CREDS, "nats.creds")?;
    let nkey = source.readable_file(MEND_NATS_NKEY, "nats.nkey")?;
    let token = source.secret(MEND_NATS_TOKEN, "nats.token")?;
    let user = source.raw(MEND_NATS_USER, "nats.user")?.map(|raw| raw.text);
    let password = source.secret(MEND_NATS_PASSWORD, "nats.password")?;

    let user_password = match (user, password) {
        (Some(user), Some(password)) => Some(NatsAuth::UserPassword { user, password }),
        (None, None) => None,
        (Some(_), None) => return Err(needs(MEND_NATS_USER, MEND_NATS_PASSWORD)),
        (None, Some(_)) => return Err(needs(MEND_NATS_PASSWORD, MEND_NATS_USER)),
    };
    let mut chosen: Vec<NatsAuth> = Vec::new();
    chosen.extend(creds.map(NatsAuth::Credentials));
    chosen.extend(nkey.map(NatsAuth::Nkey));
    chosen.extend(token.map(NatsAuth::Token));
    chosen.extend(user_password);
    match chosen.len() {
        0 => Ok(NatsAuth::None),
        1 => Ok(chosen.remove(0)),
        _ => {
            let vars: Vec<&str> = chosen.iter().filter_map(auth_var).collect();
            Err(ConfigError::Conflict {
                var: vars.join(" and "),
                reason: "are set together; choose one NATS authentication method".to_owned(),
            })
        }
    }
}

fn tls_from_source(source: &ConfigSource) -> Result<NatsTls, ConfigError> {
    let ca = source.readable_file(MEND_NATS_TLS_CA, "nats.tls_ca")?;
    let cert = source.readable_file(MEND_NATS_TLS_CERT, "nats.tls_cert")?;
    let key = source.readable_file(MEND_NATS_TLS_KEY, "nats.tls_key")?;
    let required = source
        .parse::<bool>(MEND_NATS_TLS_REQUIRED, "nats.tls_required")?
        .unwrap_or(false);
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsIdentity { cert, key }),
        (None, None) => None,
        (Some(_), None) => return Err(needs(MEND_NATS_TLS_CERT, MEND_NATS_TLS_KEY)),
        (None, Some(_)) => return Err(needs(MEND_NATS_TLS_KEY, MEND_NATS_TLS_CERT)),
    };
    Ok(NatsTls {
        ca,
        identity,
        required,
    })
}

fn tls_var(tls: &NatsTls) -> Option<&'static str> {
    if tls.ca.is_some() {
        Some(MEND_NATS_TLS_CA)
    } else if tls.identity.is_some() {
        Some(MEND_NATS_TLS_CERT)
    } else if tls.required {
        Some(MEND_NATS_TLS_REQUIRED)
    } else {
        None
    }
}

/// `None` when unset, so a stray setting without a URL can be reported.
fn replicas_from_source(source: &ConfigSource) -> Result<Option<usize>, ConfigError> {
    let Some(raw) = source.raw(MEND_NATS_REPLICAS, "nats.replicas")? else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        var: MEND_NATS_REPLICAS.to_owned(),
        value: raw.text.clone(),
        origin: raw.origin.clone(),
        reason,
    };
    let replicas: usize = raw.text.trim().parse().map_err(|err| {
        invalid(format!(
            "expected a whole number from 1 to {MAX_REPLICAS}: {err}"
        ))
    })?;
    if !(1..=MAX_REPLICAS).contains(&replicas) {
        return Err(invalid(format!(
            "must be from 1 to {MAX_REPLICAS} (JetStream's limit); use 3 for a three-node cluster"
        )));
    }
    Ok(Some(replicas))
}

fn needs(set: &str, missing: &str) -> ConfigError {
    ConfigError::Conflict {
        var: set.to_owned(),
        reason: format!("is set but {missing} is not; set both or neither"),
    }
}

fn auth_var(auth: &NatsAuth) -> Option<&'static str> {
    match auth {
        NatsAuth::None => None,
        NatsAuth::Token(_) => Some(MEND_NATS_TOKEN),
        NatsAuth::UserPassword { .. } => Some(MEND_NATS_USER),
        NatsAuth::Credentials(_) => Some(MEND_NATS_CREDS),
        NatsAuth::Nkey(_) => Some(MEND_NATS_NKEY),
    }
}

/// A light check that catches pasted HTTP URLs and empty list items; async-nats does
/// the full parse when it connects.
fn validate_urls(text: &str) -> Result<(), String> {
    for url in text.split(',').map(str::trim) {
        if url.is_empty() {
            return Err("has an empty entry in its comma-separated list".to_owned());
        }
        let rest = match url.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
                    return Err(format!(
                        "scheme {scheme:?} is not one of nats, tls, ws, wss (e.g. nats://nats:4222)"
                    ));
                }
                rest
            }
            None => url,
        };
        let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host_port = host_port.trim_end_matches('/');
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err("has no host (e.g. nats://nats:4222)".to_owned());
        }
        if host_port.contains(char::is_whitespace) || host_port.contains('/') {
            return Err(format!("{host_port:?} is not a host[:port]"));
        }
    }
    Ok(())
}

/// `nats://user:pass@host` → `nats://***@host`, for every URL in a list.
pub(crate) fn redact_userinfo(text: &str) -> String {
    text.split(',')
        .map(|url| {
            let (scheme, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (format!("{scheme}://"), rest),
                None => (String::new(), url),
            };
            match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}***@{host}"),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_every_url() {
        assert_eq!(
            redact_userinfo("nats://u:p@a:4222,tls://tok@b:4222,c:4222"),
            "nats://***@a:4222,tls://***@b:4222,c:4222"
        );
    }

    #[test]
    fn accepts_usual_forms_and_rejects_http() {
        assert!(validate_urls("nats://nats:4222").is_ok());
        assert!(validate_urls("nats://a:4222, nats://b:4222").is_ok());
        assert!(validate_urls("localhost:4222").is_ok());
        assert!(validate_urls("http://nats:4222").is_err());
        assert!(validate_urls("nats://").is_err());
        assert!(validate_urls("nats://a:4222,").is_err());
    }
}
