//! The schema of a model's input: which features it reads, of what kind, and its classes.
//!
//! A schema is inferred from a CSV (a column is numeric when every present value parses as a
//! number) and can be corrected by an override file. Its hash is stable: it depends only on the
//! schema's content, so two artifacts with the same inputs and classes share it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

/// How a feature is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// One input feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
}

/// What a model reads and predicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub features: Vec<Feature>,
    /// The label column in training data.
    pub label: String,
    /// Class names, in the order of the model's probability columns.
    pub classes: Vec<String>,
    /// A column holding the row id, if any (not a feature).
    #[serde(default)]
    pub id_column: Option<String>,
    /// A column holding the event time, if any (not a feature); orders the time split.
    #[serde(default)]
    pub time_column: Option<String>,
    /// Whether a missing value is accepted at predict time (it is imputed). Default true.
    #[serde(default = "default_true")]
    pub allow_missing: bool,
}

fn default_true() -> bool {
    true
}

/// Kind override for one column in a schema override file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnOverride {
    Numeric,
    Categorical,
    Ignore,
}

/// A schema override file (JSON): corrects what inference guessed.
///
/// ```json
/// {"columns": {"zip": "categorical", "name": "ignore"}, "id_column": "id",
///  "time_column": "ts", "classes": ["no", "yes"], "allow_missing": false}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaOverride {
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnOverride>,
    #[serde(default)]
    pub id_column: Option<String>,
    #[serde(default)]
    pub time_column: Option<String>,
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub allow_missing: Option<bool>,
}

impl SchemaOverride {
    /// Parses an override file's content.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| CoreError::Schema(format!("override file: {e}")))
    }
}

/// A column's kind from its cells: categorical only when most of its present values are not
/// numbers. A numeric column with a few bad cells (a typo, a stray `abc`) stays numeric, so
/// building its frame names each bad cell (line, column, value) instead of the column silently
/// turning categorical; a column that really is categorical in part needs a schema override.
pub fn infer_kind<'a>(cells: impl Iterator<Item = &'a String>) -> FeatureKind {
    let (mut numbers, mut others) = (0usize, 0usize);
    for cell in cells.filter(|c| !is_missing(c)) {
        if cell.trim().parse::<f64>().is_ok() {
            numbers += 1;
        } else {
            others += 1;
        }
    }
    if others > numbers {
        FeatureKind::Categorical
    } else {
        FeatureKind::Numeric
    }
}

/// Whether a CSV cell counts as missing.
pub fn is_missing(cell: &str) -> bool {
    let t = cell.trim();
    t.is_empty()
        || t.eq_ignore_ascii_case("na")
        || t.eq_ignore_ascii_case("nan")
        || t.eq_ignore_ascii_case("null")
        || t.eq_ignore_ascii_case("none")
}

impl Schema {
    /// Infers a schema from a header and rows of text cells.
    ///
    /// Columns named `id`/`row_id` and `time`/`timestamp`/`event_time` are taken as id and time
    /// columns unless the override says otherwise. Classes are the distinct labels, sorted.
    pub fn infer(
        headers: &[String],
        rows: &[Vec<String>],
        label: &str,
        over: &SchemaOverride,
    ) -> Result<Schema> {
        let label_idx = headers.iter().position(|h| h == label).ok_or_else(|| {
            CoreError::Schema(format!(
                "label column `{label}` is not in the header ({})",
                headers.join(", ")
            ))
        })?;
        for name in over.columns.keys() {
            if !headers.contains(name) {
                return Err(CoreError::Schema(format!(
                    "override names column `{name}`, which is not in the data"
                )));
            }
        }
        let pick = |explicit: &Option<String>, guesses: &[&str]| -> Result<Option<String>> {
            match explicit {
                Some(name) if headers.contains(name) => Ok(Some(name.clone())),
                Some(name) => Err(CoreError::Schema(format!(
                    "override names column `{name}`, which is not in the data"
                ))),
                None => Ok(headers
                    .iter()
                    .find(|h| guesses.contains(&h.as_str()))
                    .cloned()),
            }
        };
        let id_column = pick(&over.id_column, &["id", "row_id"])?;
        let time_column = pick(
            &over.time_column,
            &["time", "timestamp", "event_time", "time_ms"],
        )?;

        let mut features = Vec::new();
        for (i, name) in headers.iter().enumerate() {
            if i == label_idx
                || Some(name) == id_column.as_ref()
                || Some(name) == time_column.as_ref()
            {
                continue;
            }
            let kind = match over.columns.get(name) {
                Some(ColumnOverride::Ignore) => continue,
                Some(ColumnOverride::Numeric) => FeatureKind::Numeric,
                Some(ColumnOverride::Categorical) => FeatureKind::Categorical,
                None => infer_kind(rows.iter().filter_map(|r| r.get(i))),
            };
            features.push(Feature {
                name: name.clone(),
                kind,
            });
        }
        if features.is_empty() {
            return Err(CoreError::Schema(
                "no feature columns left after the label, id and time columns".into(),
            ));
        }
        let classes = match &over.classes {
            Some(c) => c.clone(),
            None => {
                let set: BTreeSet<&str> = rows
                    .iter()
                    .filter_map(|r| r.get(label_idx))
                    .map(|s| s.trim())
                    .filter(|s| !is_missing(s))
                    .collect();
                set.into_iter().map(str::to_owned).collect()
            }
        };
        let schema = Schema {
            features,
            label: label.to_owned(),
            classes,
            id_column,
            time_column,
            allow_missing: over.allow_missing.unwrap_or(true),
        };
        schema.validate()?;
        Ok(schema)
    }

    /// Checks the schema's own consistency.
    pub fn validate(&self) -> Result<()> {
        if self.classes.len() < 2 {
            return Err(CoreError::Schema(format!(
                "label `{}` needs at least two classes, found {:?}",
                self.label, self.classes
            )));
        }
        let mut seen = BTreeSet::new();
        for f in &self.features {
            if !seen.insert(f.name.as_str()) {
                return Err(CoreError::Schema(format!(
                    "feature `{}` appears twice",
                    f.name
                )));
            }
        }
        let mut classes = BTreeSet::new();
        for c in &self.classes {
            if !classes.insert(c.as_str()) {
                return Err(CoreError::Schema(format!("class `{c}` appears twice")));
            }
        }
        Ok(())
    }

    /// Index of a class name.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    /// Index of a feature by name.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Whether every feature is numeric (the model then accepts one `[N, F]` tensor).
    pub fn all_numeric(&self) -> bool {
        self.features.iter().all(|f| f.kind == FeatureKind::Numeric)
    }

    /// A stable sha256 (hex) of what the schema means: features, kinds, label, classes, and the
    /// missing-value policy. Field order in a file and id/time columns do not change it.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mend-schema-v1\n");
        for f in &self.features {
            let kind = match f.kind {
                FeatureKind::Numeric => "n",
                FeatureKind::Categorical => "c",
            };
            h.update(format!("f:{}:{}\n", kind, f.name.len()));
            h.update(f.name.as_bytes());
            h.update(b"\n");
        }
        h.update(format!("label:{}\n", self.label));
        for c in &self.classes {
            h.update(format!("class:{}:", c.len()));
            h.update(c.as_bytes());
            h.update(b"\n");
        }
        h.update(format!("missing:{}\n", self.allow_missing));
        hex::encode(h.finalize())
    }
}
