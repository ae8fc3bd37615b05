//! Every subject string and stream name of mend lives here, and nowhere else.
//!
//! Subjects are `<kind prefix>.<model>` (`data.rows.churn`, `model.promoted.churn`, …) and
//! dead letters are `deadletter.<original subject>`. A model name is one NATS token, so a
//! subscriber can always use `<prefix>.*` to hear every model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::BusError;

/// Stream holding the public events (`drift.>`, `retrain.>`, `model.>`, `alert.>`).
pub const EVENTS_STREAM: &str = "MEND_EVENTS";
/// Stream holding the data log (`data.>`, `predictions.>`).
pub const DATA_STREAM: &str = "MEND_DATA";
/// Stream holding dead letters (`deadletter.>`), so they survive restarts.
pub const DEADLETTER_STREAM: &str = "MEND_DEADLETTER";

/// Subjects captured by [`EVENTS_STREAM`]. Broad on purpose: a consumer filter such as
/// `model.>` must be a subset of a stream subject.
pub const EVENTS_STREAM_SUBJECTS: &[&str] = &["drift.>", "retrain.>", "model.>", "alert.>"];
/// Subjects captured by [`DATA_STREAM`]. `ingest.>` holds raw rows and labels that producers
/// publish for the ingest service to validate (see [`ingest_rows`]); they live with the data
/// so that their retention follows it.
pub const DATA_STREAM_SUBJECTS: &[&str] = &["data.>", "predictions.>", "ingest.>"];
/// Subjects captured by [`DEADLETTER_STREAM`].
pub const DEADLETTER_STREAM_SUBJECTS: &[&str] = &["deadletter.>"];

const DEADLETTER_PREFIX: &str = "deadletter";

/// Every subject family mend publishes, one per row of the subject table in DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectKind {
    Rows,
    Labels,
    Predictions,
    DriftDetected,
    RetrainRequested,
    ModelTrained,
    ModelRejected,
    ModelPromoted,
    ModelRolledBack,
    RetrainDecided,
    Alert,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 11] = [
        SubjectKind::Rows,
        SubjectKind::Labels,
        SubjectKind::Predictions,
        SubjectKind::DriftDetected,
        SubjectKind::RetrainRequested,
        SubjectKind::ModelTrained,
        SubjectKind::ModelRejected,
        SubjectKind::ModelPromoted,
        SubjectKind::ModelRolledBack,
        SubjectKind::RetrainDecided,
        SubjectKind::Alert,
    ];

    /// The subject without the model token, e.g. `model.promoted`.
    pub const fn prefix(self) -> &'static str {
        match self {
            SubjectKind::Rows => "data.rows",
            SubjectKind::Labels => "data.labels",
            SubjectKind::Predictions => "predictions",
            SubjectKind::DriftDetected => "drift.detected",
            SubjectKind::RetrainRequested => "retrain.requested",
            SubjectKind::ModelTrained => "model.trained",
            SubjectKind::ModelRejected => "model.rejected",
            SubjectKind::ModelPromoted => "model.promoted",
            SubjectKind::ModelRolledBack => "model.rolled_back",
            SubjectKind::RetrainDecided => "retrain.decided",
            SubjectKind::Alert => "alert",
        }
    }

    /// The subject for one model, e.g. `model.promoted.churn`.
    pub fn subject(self, model: &ModelName) -> String {
        format!("{}.{}", self.prefix(), model)
    }

    /// A filter matching this kind for every model, e.g. `model.promoted.*`.
    pub fn all_models(self) -> String {
        format!("{}.*", self.prefix())
    }

    /// The stream this kind is stored in.
    pub const fn stream(self) -> &'static str {
        match self {
            SubjectKind::Rows | SubjectKind::Labels | SubjectKind::Predictions => DATA_STREAM,
            _ => EVENTS_STREAM,
        }
    }

    /// Splits a concrete subject into its kind and model, if it is one of mend's.
    pub fn parse(subject: &str) -> Option<(SubjectKind, ModelName)> {
        let (prefix, model) = subject.rsplit_once('.')?;
        let kind = SubjectKind::ALL
            .into_iter()
            .find(|kind| kind.prefix() == prefix)?;
        let model = ModelName::new(model).ok()?;
        Some((kind, model))
    }
}

/// `data.rows.<model>`
pub fn rows(model: &ModelName) -> String {
    SubjectKind::Rows.subject(model)
}
/// `data.labels.<model>`
pub fn labels(model: &ModelName) -> String {
    SubjectKind::Labels.subject(model)
}
/// `predictions.<model>`
pub fn predictions(model: &ModelName) -> String {
    SubjectKind::Predictions.subject(model)
}
/// `drift.detected.<model>`
pub fn drift_detected(model: &ModelName) -> String {
    SubjectKind::DriftDetected.subject(model)
}
/// `retrain.requested.<model>`
pub fn retrain_requested(model: &ModelName) -> String {
    SubjectKind::RetrainRequested.subject(model)
}
/// `model.trained.<model>`
pub fn model_trained(model: &ModelName) -> String {
    SubjectKind::ModelTrained.subject(model)
}
/// `model.rejected.<model>`
pub fn model_rejected(model: &ModelName) -> String {
    SubjectKind::ModelRejected.subject(model)
}
/// `model.promoted.<model>`
pub fn model_promoted(model: &ModelName) -> String {
    SubjectKind::ModelPromoted.subject(model)
}
/// `retrain.decided.<model>`
pub fn retrain_decided(model: &ModelName) -> String {
    SubjectKind::RetrainDecided.subject(model)
}
/// `model.rolled_back.<model>`
pub fn model_rolled_back(model: &ModelName) -> String {
    SubjectKind::ModelRolledBack.subject(model)
}
/// `alert.<model>`
pub fn alert(model: &ModelName) -> String {
    SubjectKind::Alert.subject(model)
}

/// `ingest.rows.<model>`: unvalidated rows (`{"v":1,"rows":[...]}`) for the ingest service,
/// which appends the valid ones to `data.rows.<model>`.
pub fn ingest_rows(model: &ModelName) -> String {
    format!("{INGEST_ROWS_PREFIX}.{model}")
}
/// `ingest.labels.<model>`: unvalidated labels (`{"v":1,"labels":[...]}`) for the ingest service.
pub fn ingest_labels(model: &ModelName) -> String {
    format!("{INGEST_LABELS_PREFIX}.{model}")
}
/// The prefix of [`ingest_rows`] subjects; `ingest.rows.*` hears every model.
pub const INGEST_ROWS_PREFIX: &str = "ingest.rows";
/// The prefix of [`ingest_labels`] subjects.
pub const INGEST_LABELS_PREFIX: &str = "ingest.labels";

/// `deadletter.<original subject>`: where an undecodable message is copied.
pub fn deadletter(original_subject: &str) -> String {
    format!("{DEADLETTER_PREFIX}.{original_subject}")
}

/// A filter matching every dead letter.
pub fn deadletter_all() -> String {
    format!("{DEADLETTER_PREFIX}.>")
}

/// The stream that stores a subject or filter, decided by its first token.
pub fn stream_for(subject_or_filter: &str) -> Option<&'static str> {
    let first = subject_or_filter.split('.').next()?;
    match first {
        "drift" | "retrain" | "model" | "alert" => Some(EVENTS_STREAM),
        "data" | "predictions" | "ingest" => Some(DATA_STREAM),
        DEADLETTER_PREFIX => Some(DEADLETTER_STREAM),
        _ => None,
    }
}

/// Whether a concrete subject matches a filter with NATS wildcards (`*` one token, `>` the rest).
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut filter_tokens = filter.split('.');
    let mut subject_tokens = subject.split('.');
    loop {
        match (filter_tokens.next(), subject_tokens.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(expected), Some(actual)) if expected == actual => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks a subject to publish on: non-empty tokens, no wildcards, no whitespace.
pub fn validate_subject(subject: &str) -> Result<(), BusError> {
    validate_tokens(subject, false)
}

/// Checks a consumer filter: like a subject, but `*` tokens and a final `>` are allowed.
pub fn validate_filter(filter: &str) -> Result<(), BusError> {
    validate_tokens(filter, true)
}

fn validate_tokens(subject: &str, wildcards: bool) -> Result<(), BusError> {
    let invalid = |why: &str| BusError::InvalidSubject {
        subject: subject.to_owned(),
        reason: why.to_owned(),
    };
    if subject.is_empty() {
        return Err(invalid("empty"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(invalid("empty token"));
        }
        if token.chars().any(char::is_whitespace) {
            return Err(invalid("whitespace"));
        }
        let is_wildcard = *token == "*" || *token == ">";
        if !is_wildcard && (token.contains('*') || token.contains('>')) {
            return Err(invalid("wildcard inside a token"));
        }
        if is_wildcard && !wildcards {
            return Err(invalid("wildcards are not allowed when publishing"));
        }
        if *token == ">" && index + 1 != tokens.len() {
            return Err(invalid("`>` must be the last token"));
        }
    }
    Ok(())
}

/// A model name: one NATS token of `[A-Za-z0-9_-]`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

/// Longest model name accepted; keeps subjects and consumer names short.
pub const MAX_MODEL_NAME_LEN: usize = 64;

impl ModelName {
    pub fn new(name: impl Into<String>) -> Result<Self, BusError> {
        let name = name.into();
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if name.is_empty() || name.len() > MAX_MODEL_NAME_LEN || !valid_chars {
            return Err(BusError::InvalidModelName { name });
        }
        Ok(ModelName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelName {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelName::new(s)
    }
}

impl TryFrom<String> for ModelName {
    type Error = BusError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ModelName::new(value)
    }
}

impl From<ModelName> for String {
    fn from(value: ModelName) -> Self {
        value.0
    }
}

impl AsRef<str> for ModelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn builds_every_subject_of_the_design_table() {
        let churn = ModelName::new("churn").unwrap();
        assert_eq!(rows(&churn), "data.rows.churn");
        assert_eq!(labels(&churn), "data.labels.churn");
        assert_eq!(predictions(&churn), "predictions.churn");
        assert_eq!(drift_detected(&churn), "drift.detected.churn");
        assert_eq!(retrain_requested(&churn), "retrain.requested.churn");
        assert_eq!(model_trained(&churn), "model.trained.churn");
        assert_eq!(model_rejected(&churn), "model.rejected.churn");
        assert_eq!(model_promoted(&churn), "model.promoted.churn");
        assert_eq!(model_rolled_back(&churn), "model.rolled_back.churn");
        assert_eq!(retrain_decided(&churn), "retrain.decided.churn");
        assert_eq!(alert(&churn), "alert.churn");
        assert_eq!(
            deadletter("retrain.requested.churn"),
            "deadletter.retrain.requested.churn"
        );
    }

    #[test]
    fn every_subject_parses_back_and_lands_in_a_stream_that_captures_it() {
        let model = ModelName::new("fraud_v-2").unwrap();
        for kind in SubjectKind::ALL {
            let subject = kind.subject(&model);
            assert_eq!(SubjectKind::parse(&subject), Some((kind, model.clone())));
            assert_eq!(stream_for(&subject), Some(kind.stream()));
            let captured_by = match kind.stream() {
                EVENTS_STREAM => EVENTS_STREAM_SUBJECTS,
                _ => DATA_STREAM_SUBJECTS,
            };
            assert!(captured_by.iter().any(|filter| matches(filter, &subject)));
            assert!(matches(&kind.all_models(), &subject));
            validate_subject(&subject).unwrap();
        }
        assert_eq!(
            stream_for(&deadletter("data.rows.x")),
            Some(DEADLETTER_STREAM)
        );
        assert_eq!(stream_for(&ingest_rows(&model)), Some(DATA_STREAM));
        assert_eq!(ingest_labels(&model), "ingest.labels.fraud_v-2");
        assert!(matches("ingest.rows.*", &ingest_rows(&model)));
        assert_eq!(stream_for("unrelated.subject"), None);
    }

    #[test]
    fn model_names_are_single_tokens() {
        for good in ["churn", "a", "Fraud_2024-v1"] {
            ModelName::new(good).unwrap();
        }
        for bad in ["", "a.b", "a b", "*", ">", "churn!", &"x".repeat(65)] {
            assert!(ModelName::new(bad).is_err(), "{bad:?} must be rejected");
        }
        let parsed: Result<ModelName, _> = serde_json::from_str("\"a.b\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.d"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("deadletter.>", "deadletter.retrain.requested.m"));
    }

    #[test]
    fn subjects_and_filters_are_validated() {
        assert!(validate_subject("a.*").is_err());
        assert!(validate_subject("a..b").is_err());
        assert!(validate_subject("").is_err());
        validate_filter("a.*.c").unwrap();
        validate_filter("a.>").unwrap();
        assert!(validate_filter("a.>.c").is_err());
        assert!(validate_filter("a.b*").is_err());
    }
}
