//! Environment over file: the one lookup rule every setting follows.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::DeserializeOwned;

use super::env::{Env, parse_value};
use super::error::{ConfigError, Origin};
use super::file::{ConfigFile, RawValue};
use super::secret::Secret;

/// The injected environment plus the optional config file. Services extend the config
/// through this: `source.parse::<T>("MEND_MONITOR_WINDOW", "monitor.window")` for a
/// setting with a variable, `source.section::<MonitorSection>("monitor")` for a table.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    env: Env,
    file: Option<ConfigFile>,
}

impl ConfigSource {
    /// Combines an environment and an already-parsed file.
    pub fn new(env: Env, file: Option<ConfigFile>) -> Self {
        Self { env, file }
    }

    /// The injected environment.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The config file, when `MEND_CONFIG` named one.
    pub fn file(&self) -> Option<&ConfigFile> {
        self.file.as_ref()
    }

    /// The error for a setting whose value parsed but is out of range: names the variable,
    /// the value as given and where it came from, and `reason`.
    pub fn invalid(&self, var: &str, file_key: &str, reason: &str) -> ConfigError {
        let (value, origin) = match self.raw(var, file_key) {
            Ok(Some(raw)) => (raw.text, raw.origin),
            _ => (String::new(), Origin::Env),
        };
        ConfigError::Invalid {
            var: var.to_owned(),
            value,
            origin,
            reason: reason.to_owned(),
        }
    }

    /// The raw text of a setting: the variable when set, else the file key, else `None`.
    pub fn raw(&self, var: &str, file_key: &str) -> Result<Option<RawValue>, ConfigError> {
        if let Some(text) = self.env.get(var) {
            return Ok(Some(RawValue {
                text: text.to_owned(),
                origin: Origin::Env,
            }));
        }
        match &self.file {
            Some(file) => Ok(file.raw(var, file_key)?.filter(|raw| !raw.text.is_empty())),
            None => Ok(None),
        }
    }

    /// A typed setting; the error names the variable, the value and its origin.
    pub fn parse<T>(&self, var: &str, file_key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(var, file_key)? {
            Some(raw) => parse_value(var, &raw.text, raw.origin).map(Some),
            None => Ok(None),
        }
    }

    /// A typed setting with a default.
    pub fn parse_or<T>(&self, var: &str, file_key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse(var, file_key)?.unwrap_or(default))
    }

    /// A secret setting; its value never appears in any error.
    pub fn secret(&self, var: &str, file_key: &str) -> Result<Option<Secret>, ConfigError> {
        Ok(self.raw(var, file_key)?.map(|raw| Secret::new(raw.text)))
    }

    /// A path to a file that must be readable now, so a bad mount fails at start-up
    /// instead of at the first TLS handshake or NATS connect.
    pub fn readable_file(&self, var: &str, file_key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(raw) = self.raw(var, file_key)? else {
            return Ok(None);
        };
        let path = PathBuf::from(&raw.text);
        match std::fs::File::open(&path).and_then(|file| check_not_directory(&file)) {
            Ok(()) => Ok(Some(path)),
            Err(source) => Err(ConfigError::UnreadableFile {
                var: var.to_owned(),
                path,
                origin: raw.origin,
                source,
            }),
        }
    }

    /// A service's `[name]` table, or `T::default()` without a file or table.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Default,
    {
        match &self.file {
            Some(file) => file.section(name),
            None => Ok(T::default()),
        }
    }
}

/// Opening a directory succeeds on Unix; reading it does not.
fn check_not_directory(file: &std::fs::File) -> std::io::Result<()> {
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    Ok(())
}
