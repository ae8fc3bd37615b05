//! The optional TOML file named by `MEND_CONFIG`.
//!
//! Runtime settings live at the top level and in `[nats]`, `[otel]` and `[tls]`; any
//! other table (`[server]`, `[monitor]`, …) belongs to a service, which deserializes it
//! into its own struct with [`ConfigFile::section`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::{ConfigError, Origin};
use super::vars::MEND_CONFIG;

/// A parsed config file. `Debug` shows the path and table names only, since values may
/// be secrets.
#[derive(Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

/// A value from the environment or the file, as text, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawValue {
    /// The value as text (TOML numbers and booleans are rendered).
    pub text: String,
    /// Its origin, for error messages.
    pub origin: Origin,
}

impl ConfigFile {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::UnreadableFile {
            var: MEND_CONFIG.to_owned(),
            path: path.to_owned(),
            origin: Origin::Env,
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses TOML text as if read from `path` (which is only used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table = toml::from_str(text).map_err(|source| ConfigError::FileSyntax {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value at a dotted key (`nats.url`), if present.
    pub fn get(&self, dotted_key: &str) -> Option<&toml::Value> {
        let mut parts = dotted_key.split('.');
        let first = parts.next()?;
        parts.try_fold(self.table.get(first)?, |value, part| value.get(part))
    }

    /// The value at `dotted_key` as text, for settings that also come from a variable.
    /// A table or array where a single value belongs is an error naming `var`.
    pub fn raw(&self, var: &str, dotted_key: &str) -> Result<Option<RawValue>, ConfigError> {
        let Some(value) = self.get(dotted_key) else {
            return Ok(None);
        };
        let origin = Origin::File {
            path: self.path.clone(),
            key: dotted_key.to_owned(),
        };
        let text = match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Datetime(datetime) => datetime.to_string(),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: format!("<{}>", value.type_str()),
                    origin,
                    reason: "expected a single string or number".to_owned(),
                });
            }
        };
        Ok(Some(RawValue { text, origin }))
    }

    /// Deserializes table `[name]` into a service's own struct; a missing table gives
    /// `T::default()`. Use `#[serde(default, deny_unknown_fields)]` on `T` to catch typos.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Default,
    {
        let Some(value) = self.table.get(name) else {
            return Ok(T::default());
        };
        value
            .clone()
            .try_into()
            .map_err(|source| ConfigError::Section {
                path: self.path.clone(),
                section: name.to_owned(),
                source: Box::new(source),
            })
    }

    /// Fails on keys the runtime owns but does not know (typos), leaving service tables
    /// alone: `scalars` are the known top-level keys, `tables` the runtime-owned tables
    /// with their known keys.
    pub(crate) fn check_known_keys(
        &self,
        scalars: &[&str],
        tables: &[(&str, &[&str])],
    ) -> Result<(), ConfigError> {
        for (key, value) in &self.table {
            if let Some((_, known)) = tables.iter().find(|(table, _)| table == key) {
                let Some(inner) = value.as_table() else {
                    return Err(self.unknown(key, tables.iter().map(|(table, _)| *table)));
                };
                for inner_key in inner.keys() {
                    if !known.contains(&inner_key.as_str()) {
                        return Err(
                            self.unknown(&format!("{key}.{inner_key}"), known.iter().copied())
                        );
                    }
                }
            } else if !value.is_table() && !scalars.contains(&key.as_str()) {
                return Err(self.unknown(key, scalars.iter().copied()));
            }
        }
        Ok(())
    }

    fn unknown<'a>(&self, key: &str, known: impl Iterator<Item = &'a str>) -> ConfigError {
        ConfigError::UnknownKey {
            path: self.path.clone(),
            key: key.to_owned(),
            known: known.collect::<Vec<_>>().join(", "),
        }
    }
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.table.keys().map(String::as_str).collect();
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("keys", &keys)
            .finish()
    }
}
