//! A verified artifact ready to serve: the artifact itself plus a flat plan of its
//! preprocessing that the request path walks without touching enums or maps per value.

use std::collections::HashMap;

use bytes::Bytes;
use mend_core::preprocess::Step;
use mend_core::{Artifact, FeatureKind};

use crate::metrics::VersionMetrics;

/// How one feature becomes model inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FeaturePlan {
    /// One input at `offset`: the value, imputed and scaled exactly as `Step::scale` does.
    Numeric {
        offset: usize,
        median: f64,
        mean: f64,
        std: f64,
    },
    /// A one-hot block starting at `offset`; `feature` indexes the preprocessor's lookups.
    Categorical { offset: usize, feature: usize },
}

/// The artifact's preprocessing, flattened for the request path.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub features: Vec<FeaturePlan>,
    pub by_name: HashMap<String, usize>,
    /// Model inputs after preprocessing.
    pub width: usize,
    pub classes: usize,
    pub all_numeric: bool,
    pub allow_missing: bool,
}

impl Plan {
    fn of(artifact: &Artifact) -> Plan {
        let mut features = Vec::with_capacity(artifact.schema.features.len());
        let mut offset = 0;
        for (index, step) in artifact.preprocessor.steps.iter().enumerate() {
            features.push(match step {
                Step::Numeric { median, mean, std } => FeaturePlan::Numeric {
                    offset,
                    median: *median,
                    mean: *mean,
                    std: *std,
                },
                Step::Categorical { .. } => FeaturePlan::Categorical {
                    offset,
                    feature: index,
                },
            });
            offset += step.width();
        }
        Plan {
            features,
            by_name: artifact
                .schema
                .features
                .iter()
                .enumerate()
                .map(|(index, feature)| (feature.name.clone(), index))
                .collect(),
            width: artifact.preprocessor.width(),
            classes: artifact.schema.classes.len(),
            all_numeric: artifact.schema.all_numeric(),
            allow_missing: artifact.schema.allow_missing,
        }
    }
}

/// One version of one model, verified and planned. Requests hold an `Arc` of it, so a swap
/// never pulls it out from under them.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    /// `version` as text, as OIP responses carry it.
    pub version_text: String,
    pub artifact: Artifact,
    pub(crate) plan: Plan,
    /// Class names as ready-to-send BYTES elements.
    pub(crate) class_bytes: Vec<Bytes>,
    pub(crate) metrics: VersionMetrics,
}

/// Why an artifact cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("artifact of `{model}` version {version} is invalid: {source}")]
    Artifact {
        model: String,
        version: u64,
        #[source]
        source: mend_core::CoreError,
    },
    #[error(
        "artifact of `{model}` version {version} does not match its schema: feature {feature} is {kind:?} but its preprocessing is not"
    )]
    Mismatch {
        model: String,
        version: u64,
        feature: String,
        kind: FeatureKind,
    },
}

impl LoadedModel {
    /// Verifies (sha256, format, internal consistency) and plans an artifact file.
    pub fn from_bytes(
        name: &str,
        version: u64,
        bytes: &[u8],
        metrics: VersionMetrics,
    ) -> Result<LoadedModel, LoadError> {
        let artifact = Artifact::from_bytes(bytes).map_err(|source| LoadError::Artifact {
            model: name.to_owned(),
            version,
            source,
        })?;
        Self::from_artifact(name, version, artifact, metrics)
    }

    /// Plans an already verified artifact.
    pub fn from_artifact(
        name: &str,
        version: u64,
        artifact: Artifact,
        metrics: VersionMetrics,
    ) -> Result<LoadedModel, LoadError> {
        for (feature, step) in artifact
            .schema
            .features
            .iter()
            .zip(&artifact.preprocessor.steps)
        {
            let matches = matches!(
                (feature.kind, step),
                (FeatureKind::Numeric, Step::Numeric { .. })
                    | (FeatureKind::Categorical, Step::Categorical { .. })
            );
            if !matches {
                return Err(LoadError::Mismatch {
                    model: name.to_owned(),
                    version,
                    feature: feature.name.clone(),
                    kind: feature.kind,
                });
            }
        }
        let plan = Plan::of(&artifact);
        let class_bytes = artifact
            .schema
            .classes
            .iter()
            .map(|class| Bytes::from(class.clone().into_bytes()))
            .collect();
        Ok(LoadedModel {
            name: name.to_owned(),
            version,
            version_text: version.to_string(),
            artifact,
            plan,
            class_bytes,
            metrics,
        })
    }

    /// Feature names in schema order.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.artifact
            .schema
            .features
            .iter()
            .map(|f| f.name.as_str())
    }
}
