//! The injected environment: a map of variables handed in by `main` (from the process) or
//! by a test (from a literal), so parsing never touches global state.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::error::{ConfigError, Origin};

/// Environment variables, injected. Empty values count as unset, because compose files
/// and Kubernetes manifests often write `MEND_NATS_URL=` to mean "not set".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Wraps a map, e.g. a literal in a test.
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars }
    }

    /// Snapshots the process environment. Call it once, in `main`. Variables whose name
    /// or value is not UTF-8 are skipped; none of ours can be.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self { vars }
    }

    /// The value of `name`, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Parses `name` as `T`; `Ok(None)` when unset. The error names the variable and
    /// the bad value, so services get good messages for their own variables for free.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse_value(name, text, Origin::Env).map(Some)
    }

    /// Like [`Env::parse`], with a default for an unset variable.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse(name)?.unwrap_or(default))
    }
}

/// Parses one value, turning `FromStr`'s error into one that names its variable.
pub(crate) fn parse_value<T>(var: &str, text: &str, origin: Origin) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    text.parse().map_err(|err: T::Err| ConfigError::Invalid {
        var: var.to_owned(),
        value: text.to_owned(),
        origin,
        reason: err.to_string(),
    })
}

impl From<HashMap<String, String>> for Env {
    fn from(vars: HashMap<String, String>) -> Self {
        Self::from_map(vars)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_map(
            iter.into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

/// Names only: values may be secrets (tokens, passwords, URLs with credentials).
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn typed_getter_names_the_variable_and_value_in_its_error() {
        let env: Env = [("MEND_MONITOR_WINDOW", "ten"), ("MEND_EMPTY", "")]
            .into_iter()
            .collect();
        let err = env.parse::<u32>("MEND_MONITOR_WINDOW").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("MEND_MONITOR_WINDOW"), "{message}");
        assert!(message.contains("\"ten\""), "{message}");
        assert_eq!(err.var(), "MEND_MONITOR_WINDOW");
        assert_eq!(env.parse::<u32>("MEND_EMPTY").unwrap(), None);
        assert_eq!(env.parse_or::<u32>("MEND_UNSET", 7).unwrap(), 7);
    }

    #[test]
    fn debug_lists_names_but_never_values() {
        let env: Env = [("MEND_NATS_TOKEN", "s3cr3t")].into_iter().collect();
        let debug = format!("{env:?}");
        assert!(debug.contains("MEND_NATS_TOKEN"));
        assert!(!debug.contains("s3cr3t"));
    }
}
