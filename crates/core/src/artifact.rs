//! The model artifact: one self-contained, versioned, checksummed file.
//!
//! Layout: a header line `MEND-MODEL <format version> sha256:<hex of the body>` and a JSON body
//! with the schema, fitted preprocessing, weights, holdout metrics, reference profile and training
//! metadata. Loading refuses a wrong magic, a newer format and a body whose sha256 does not match,
//! before anything in the body is trusted.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};
use crate::metrics::Metrics;
use crate::model::{FitReport, Model, TrainSettings};
use crate::preprocess::Preprocessor;
use crate::profile::ReferenceProfile;
use crate::schema::Schema;

/// The artifact format this build writes and the newest it reads.
///
/// - 1: a logistic model (`model` held its weights, `training.settings` the logistic settings
///   beside the general ones). Still read: it loads as format 2.
/// - 2: `model` is tagged with its `family`, and `training.settings.algorithm` holds the
///   family with its own settings.
pub const FORMAT_VERSION: u32 = 2;
const MAGIC: &str = "MEND-MODEL";

/// How and on what a model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingMeta {
    pub rows_train: usize,
    pub rows_holdout: usize,
    /// Event-time window of the training data (unix ms, or row order when the data has none).
    pub time_min: i64,
    pub time_max: i64,
    /// The oldest event time in the holdout.
    pub holdout_from: i64,
    pub duration_ms: u64,
    pub trained_at_ms: i64,
    pub settings: TrainSettings,
    pub fit: FitReport,
    pub mend_version: String,
}

/// A trained model with everything needed to serve it and watch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub format_version: u32,
    pub schema: Schema,
    pub preprocessor: Preprocessor,
    /// The fitted model, of any family.
    pub model: Model,
    /// Metrics on the holdout (the newest rows of the training data).
    pub metrics: Metrics,
    pub profile: ReferenceProfile,
    pub training: TrainingMeta,
}

/// sha256 of bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Artifact {
    /// Serialises to the file layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(self)
            .map_err(|e| CoreError::Artifact(format!("cannot serialise: {e}")))?;
        let mut out = format!(
            "{MAGIC} {} sha256:{}\n",
            self.format_version,
            sha256_hex(&body)
        )
        .into_bytes();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses and verifies an artifact file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact> {
        let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| {
            CoreError::Artifact("not a mend model artifact (no header line)".into())
        })?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| {
            CoreError::Artifact("not a mend model artifact (header is not text)".into())
        })?;
        let mut parts = header.split(' ');
        if parts.next() != Some(MAGIC) {
            return Err(CoreError::Artifact(
                "not a mend model artifact (wrong magic)".into(),
            ));
        }
        let version: u32 = parts
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| CoreError::Artifact("header has no format version".into()))?;
        if version > FORMAT_VERSION {
            return Err(CoreError::NewerFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let expected = parts
            .next()
            .and_then(|s| s.strip_prefix("sha256:"))
            .ok_or_else(|| CoreError::Artifact("header has no sha256".into()))?
            .to_owned();
        let body = &bytes[newline + 1..];
        let actual = sha256_hex(body);
        if actual != expected {
            return Err(CoreError::Checksum { expected, actual });
        }
        let mut body: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| CoreError::Artifact(format!("body does not parse: {e}")))?;
        let body_version = body
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if body_version != Some(u64::from(version)) {
            return Err(CoreError::Artifact(format!(
                "header says format {version}, body says {}",
                body_version.map_or_else(|| "none".to_owned(), |v| v.to_string())
            )));
        }
        if version == 1 {
            upgrade_format_1(&mut body)?;
        }
        let mut artifact: Artifact = serde_json::from_value(body)
            .map_err(|e| CoreError::Artifact(format!("body does not parse: {e}")))?;
        artifact.preprocessor.rebuild_lookup();
        artifact.validate()?;
        Ok(artifact)
    }

    /// Reads and verifies an artifact.
    pub fn read_from<R: std::io::Read>(mut reader: R) -> Result<Artifact> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Artifact::from_bytes(&bytes)
    }

    /// Checks that schema, preprocessing and weights agree with each other.
    pub fn validate(&self) -> Result<()> {
        self.schema.validate()?;
        self.model.validate()?;
        if self.preprocessor.steps.len() != self.schema.features.len() {
            return Err(CoreError::Artifact(format!(
                "preprocessing has {} steps for {} features",
                self.preprocessor.steps.len(),
                self.schema.features.len()
            )));
        }
        if self.preprocessor.width() != self.model.n_inputs() {
            return Err(CoreError::Artifact(format!(
                "preprocessing yields {} inputs, the model takes {}",
                self.preprocessor.width(),
                self.model.n_inputs()
            )));
        }
        if self.model.n_classes() != self.schema.classes.len() {
            return Err(CoreError::Artifact(format!(
                "the model has {} classes, the schema {}",
                self.model.n_classes(),
                self.schema.classes.len()
            )));
        }
        if self.training.settings.algorithm.family() != self.model.family() {
            return Err(CoreError::Artifact(format!(
                "the model is {}, its training settings say {}",
                self.model.family(),
                self.training.settings.algorithm.family()
            )));
        }
        Ok(())
    }
}

/// Rewrites a format-1 body as format 2: format 1 knew one family, logistic, whose weights
/// were `model` itself and whose settings sat among the general ones.
fn upgrade_format_1(body: &mut serde_json::Value) -> Result<()> {
    use serde_json::{Map, Value};
    const LOGISTIC_SETTINGS: [&str; 5] = [
        "l2",
        "max_iterations",
        "tolerance",
        "class_weight",
        "solver",
    ];
    let malformed = |what: &str| CoreError::Artifact(format!("format 1 body has no {what}"));
    let family = || Value::String("logistic".to_owned());
    body.get_mut("model")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("model object"))?
        .insert("family".to_owned(), family());
    let settings = body
        .pointer_mut("/training/settings")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("training settings object"))?;
    let mut algorithm = Map::new();
    algorithm.insert("family".to_owned(), family());
    for key in LOGISTIC_SETTINGS {
        if let Some(value) = settings.remove(key) {
            algorithm.insert(key.to_owned(), value);
        }
    }
    settings.insert("algorithm".to_owned(), Value::Object(algorithm));
    body["format_version"] = Value::from(FORMAT_VERSION);
    Ok(())
}
