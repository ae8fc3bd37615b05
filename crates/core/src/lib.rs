//! mend-core: the ML domain of mend, pure and synchronous (no I/O beyond reading a `Read`).
//!
//! - [`schema`]: features, kinds, label and classes; inference from CSV with overrides; stable hash.
//! - [`frame`]: typed columns loaded from CSV or data-log records, with per-cell errors.
//! - [`preprocess`]: median imputation, standard scaling, one-hot with an unknown bucket.
//! - [`model`]: the model boundary ([`Model`], [`TrainSettings`] with its [`model::Algorithm`])
//!   and each family; [`lbfgs`] is the optimiser of the logistic family.
//! - [`metrics`]: accuracy, precision/recall/F1, ROC AUC, log-loss, Brier, confusion matrix.
//! - [`profile`]: the reference profile of training data kept for drift detection.
//! - [`drift`]: drift statistics, bounded window summaries, and window-vs-reference reports.
//! - [`report`]: drift reports as self-contained HTML pages with inline SVG plots.
//! - [`artifact`]: the versioned, checksummed model file.
//! - [`pipeline`]: time-ordered split, train, evaluate, predict.
//! - [`record`]: rows, labels and predictions as the data log carries them.
//! - [`parallel`]: independent per-feature work on every core (scoped threads).

pub mod artifact;
pub mod drift;
pub mod error;
pub mod frame;
pub mod lbfgs;
pub mod metrics;
pub mod model;
pub mod parallel;
pub mod pipeline;
pub mod preprocess;
pub mod profile;
pub mod record;
pub mod report;
pub mod schema;
pub mod stats;
pub mod values;

pub use artifact::{Artifact, FORMAT_VERSION, sha256_hex};
pub use error::{CoreError, Result};
pub use frame::{Column, Frame, RawTable, RowError, read_csv};
pub use metrics::Metrics;
pub use model::{
    Algorithm, ClassWeight, Family, LogisticModel, LogisticSettings, Model, ModelSummary, Solver,
    TrainSettings,
};
pub use pipeline::{time_split, train};
pub use preprocess::Preprocessor;
pub use profile::ReferenceProfile;
pub use schema::{Feature, FeatureKind, Schema, SchemaOverride};
