//! Configuration errors. Every variant names the variable (and, for file values, the
//! file and key) so an operator can fix a bad deployment from the message alone.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The process environment (or the injected map standing in for it).
    Env,
    /// A key of the TOML file named by `MEND_CONFIG`.
    File {
        /// The config file.
        path: PathBuf,
        /// The dotted key inside it, e.g. `nats.url`.
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env => f.write_str("from the environment"),
            Self::File { path, key } => write!(f, "from key `{key}` in {}", path.display()),
        }
    }
}

/// A configuration problem found before any port is bound.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("{var}={value:?} ({origin}) is invalid: {reason}")]
    Invalid {
        /// The variable name, e.g. `MEND_SERVER_ADDR`.
        var: String,
        /// The offending value (secrets never reach this variant).
        value: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong and, where useful, what would be right.
        reason: String,
    },

    /// A variable names a file that cannot be opened.
    #[error("{var}={path:?} ({origin}) names a file that cannot be read: {source}")]
    UnreadableFile {
        /// The variable that named the file.
        var: String,
        /// The path as given.
        path: PathBuf,
        /// Where the value came from.
        origin: Origin,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Two settings that cannot be used together, or one that needs another.
    #[error("{var} {reason}")]
    Conflict {
        /// The variable that is set.
        var: String,
        /// What it conflicts with or needs.
        reason: String,
    },

    /// The file named by `MEND_CONFIG` is not valid TOML.
    #[error("MEND_CONFIG={path:?}: not valid TOML: {source}")]
    FileSyntax {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        #[source]
        source: Box<toml::de::Error>,
    },

    /// The config file has a key nobody reads, most likely a typo.
    #[error("MEND_CONFIG={path:?}: unknown key `{key}` (known keys: {known})")]
    UnknownKey {
        /// The config file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// The keys accepted at that level.
        known: String,
    },

    /// A service's `[section]` of the config file does not match its struct.
    #[error("MEND_CONFIG={path:?}: section [{section}] is invalid: {source}")]
    Section {
        /// The config file.
        path: PathBuf,
        /// The table name, e.g. `monitor`.
        section: String,
        /// serde's message naming the field.
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl ConfigError {
    /// The variable (or `MEND_CONFIG` for file-level problems) this error is about.
    pub fn var(&self) -> &str {
        match self {
            Self::Invalid { var, .. }
            | Self::UnreadableFile { var, .. }
            | Self::Conflict { var, .. } => var,
            Self::FileSyntax { .. } | Self::UnknownKey { .. } | Self::Section { .. } => {
                super::vars::MEND_CONFIG
            }
        }
    }
}
