//! The registry's own settings, on top of the shared [`MendConfig`]: read and checked before
//! anything binds.

use mend_runtime::Secret;
use mend_runtime::config::vars::MEND_REGISTRY_TOKEN;
use mend_runtime::config::{ConfigError, MendConfig, TlsConfig};

/// Largest artifact the registry accepts, in bytes. Default 256 MiB.
pub const MEND_REGISTRY_MAX_ARTIFACT_BYTES: &str = "MEND_REGISTRY_MAX_ARTIFACT_BYTES";

/// Uploads are held in memory until committed, so this bounds memory per upload too;
/// 256 MiB leaves room for a 100 MB model in the 512 MiB the Kubernetes manifest allows.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;

/// What the registry service needs beyond the shared config.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Bearer token that writes must carry (`MEND_REGISTRY_TOKEN`); `None`: writes are open.
    pub token: Option<Secret>,
    /// `MEND_REGISTRY_MAX_ARTIFACT_BYTES`.
    pub max_artifact_bytes: u64,
    /// gRPC server TLS (`MEND_TLS_*`).
    pub tls: TlsConfig,
}

impl RegistryConfig {
    /// Reads and checks the registry settings from `config`; call it before binding anything.
    pub fn from_mend(config: &MendConfig) -> Result<Self, ConfigError> {
        if config
            .registry_token
            .as_ref()
            .is_some_and(|token| token.expose().trim().is_empty())
        {
            return Err(ConfigError::Conflict {
                var: MEND_REGISTRY_TOKEN.to_owned(),
                reason: "is empty; unset it to leave writes open, or set a token".to_owned(),
            });
        }
        let max_artifact_bytes = config
            .env()
            .parse_or(MEND_REGISTRY_MAX_ARTIFACT_BYTES, DEFAULT_MAX_ARTIFACT_BYTES)?;
        if max_artifact_bytes == 0 {
            return Err(ConfigError::Conflict {
                var: MEND_REGISTRY_MAX_ARTIFACT_BYTES.to_owned(),
                reason: "is 0; no artifact could be registered".to_owned(),
            });
        }
        Ok(Self {
            token: config.registry_token.clone(),
            max_artifact_bytes,
            tls: config.tls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<RegistryConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RegistryConfig::from_mend(&MendConfig::from_map(&vars).unwrap())
    }

    #[test]
    fn defaults_and_overrides() {
        let defaults = settings(&[]).unwrap();
        assert!(defaults.token.is_none());
        assert_eq!(defaults.max_artifact_bytes, DEFAULT_MAX_ARTIFACT_BYTES);
        let set = settings(&[
            ("MEND_REGISTRY_TOKEN", "t0k"),
            (MEND_REGISTRY_MAX_ARTIFACT_BYTES, "1000"),
        ])
        .unwrap();
        assert_eq!(set.token.unwrap().expose(), "t0k");
        assert_eq!(set.max_artifact_bytes, 1000);
    }

    #[test]
    fn refuses_an_empty_token_and_a_zero_limit() {
        assert!(settings(&[("MEND_REGISTRY_TOKEN", " ")]).is_err());
        assert!(settings(&[(MEND_REGISTRY_MAX_ARTIFACT_BYTES, "0")]).is_err());
        assert!(settings(&[(MEND_REGISTRY_MAX_ARTIFACT_BYTES, "lots")]).is_err());
    }
}
