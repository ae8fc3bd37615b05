//! The bounded summary of one window of rows: what drift detection keeps instead of the rows.
//!
//! Memory is bounded by features × (sampled rows + bins + categories), never by rows seen. This
//! file lays a window out and feeds it (value by value, row by row, by blocks of columns, by
//! name or from a frame); each part keeps one kind of summary:
//! - [`NumericSummary`] (`numeric_summary.rs`): count, missing, shifted sums for mean and
//!   variance, min, max, counts over the reference's decile edges (PSI and JS) and between the
//!   points of its quantile sketch ([`QuantileCounts`], `quantile_counts.rs`: Wasserstein over
//!   every row, not a sample), and the first few distinct values with counts (Evidently's "at
//!   most 5 values" rule);
//! - [`RowSample`] (`row_sample.rs`): the numeric values of a seeded uniform sample of the
//!   window's rows (KS, Wasserstein), kept row by row;
//! - [`CategoricalSummary`] (`categorical_summary.rs`): counts per category, capped at
//!   `max_categories` new categories beyond the reference's (later ones are counted together as
//!   overflow);
//! - [`PredictionSummary`] (`prediction_summary.rs`): per class, a histogram of predicted
//!   probabilities over the reference's bins, their sum, and counts of the predicted class.
//!
//! Those parts are private modules; their types are reached here, as `drift::summary::*`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{CoreError, Result};
use crate::frame::{Column, Frame, format_number};
use crate::record::{PredictionRecord, RowRecord, Value};
use crate::schema::{FeatureKind, Schema, is_missing};
use crate::values::{Name, Values};

// The layout and sizes, and the per-kind parts, at their public paths.
pub use super::categorical_summary::CategoricalSummary;
pub use super::common::{FeatureLayout, SummaryConfig};
pub use super::numeric_summary::{MAX_TRACKED_DISTINCT, NumericSummary};
pub use super::prediction_summary::PredictionSummary;
pub use super::quantile_counts::QuantileCounts;
pub use super::row_sample::RowSample;

/// One feature's summary.
// A summary holds one of these per feature, allocated once per window: the size difference
// costs nothing, while boxing would add an indirection to every value pushed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum FeatureSummary {
    Numeric(NumericSummary),
    Categorical(CategoricalSummary),
}

impl FeatureSummary {
    pub fn name(&self) -> &str {
        match self {
            FeatureSummary::Numeric(s) => &s.name,
            FeatureSummary::Categorical(s) => &s.name,
        }
    }

    fn push_missing(&mut self) {
        match self {
            FeatureSummary::Numeric(s) => s.push_missing(),
            FeatureSummary::Categorical(s) => s.push_missing(),
        }
    }
}

/// The bounded summary of one window of rows (and, optionally, of their predictions).
#[derive(Debug, Clone)]
pub struct WindowSummary {
    pub rows: u64,
    pub features: Vec<FeatureSummary>,
    pub prediction: PredictionSummary,
    pub config: SummaryConfig,
    /// The numeric values of a uniform sample of the rows.
    pub sample: RowSample,
    /// Per feature, its column in `sample` (numeric features only).
    sample_column: Vec<Option<usize>>,
    /// For the row being pushed value by value: `Some(slot)` once decided (`Some(None)` when
    /// the sample passes the row by), `None` before its first value.
    row_slot: Option<Option<usize>>,
    by_name: HashMap<String, usize>,
    /// Feature indices in name order, so a row's values (a map sorted by name) are matched to
    /// features in one walk instead of a lookup per feature.
    in_name_order: Vec<usize>,
    /// Per feature in name order, the shared name rows were last seen to use for it.
    known_names: Vec<Option<Name>>,
}

impl WindowSummary {
    /// An empty summary of features laid out as given, for a model with these classes (empty
    /// when predictions are not tracked).
    pub fn new(layout: &[FeatureLayout], classes: &[String], config: SummaryConfig) -> Self {
        let features = layout
            .iter()
            .map(|l| match l.kind {
                FeatureKind::Numeric => FeatureSummary::Numeric(NumericSummary::new(l)),
                FeatureKind::Categorical => {
                    FeatureSummary::Categorical(CategoricalSummary::new(l, &config))
                }
            })
            .collect();
        let mut numeric = 0;
        let sample_column: Vec<Option<usize>> = layout
            .iter()
            .map(|l| {
                (l.kind == FeatureKind::Numeric).then(|| {
                    numeric += 1;
                    numeric - 1
                })
            })
            .collect();
        WindowSummary {
            rows: 0,
            features,
            prediction: PredictionSummary::new(classes),
            config,
            sample: RowSample::new(config.reservoir_size, numeric, config.seed),
            sample_column,
            row_slot: None,
            by_name: layout
                .iter()
                .enumerate()
                .map(|(i, l)| (l.name.clone(), i))
                .collect(),
            in_name_order: {
                let mut order: Vec<usize> = (0..layout.len()).collect();
                order.sort_by(|&a, &b| layout[a].name.cmp(&layout[b].name));
                order
            },
            known_names: vec![None; layout.len()],
        }
    }

    /// An empty summary of a schema's features, with no reference bins (PSI is then binned
    /// from the row sample when compared).
    pub fn for_schema(schema: &Schema, config: SummaryConfig) -> Self {
        let layout: Vec<FeatureLayout> = schema
            .features
            .iter()
            .map(|f| match f.kind {
                FeatureKind::Numeric => FeatureLayout::numeric(&f.name),
                FeatureKind::Categorical => FeatureLayout::categorical(&f.name),
            })
            .collect();
        WindowSummary::new(&layout, &schema.classes, config)
    }

    /// Index of a feature by name.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Adds a value by feature index, read by the feature's kind: a number for numeric features
    /// (unparseable text counts as missing), a category otherwise. Out-of-range indices are
    /// ignored.
    pub fn push_text(&mut self, feature: usize, cell: &str) {
        match self.features.get_mut(feature) {
            Some(FeatureSummary::Numeric(_)) => {
                if is_missing(cell) {
                    self.push_missing(feature);
                } else {
                    self.push_number(feature, cell.trim().parse::<f64>().unwrap_or(f64::NAN));
                }
            }
            Some(FeatureSummary::Categorical(s)) => s.push(Some(cell)),
            None => debug_assert!(false, "feature index {feature} out of range"),
        }
    }

    /// Adds a number by feature index (for a categorical feature, as its CSV spelling).
    pub fn push_number(&mut self, feature: usize, x: f64) {
        match self.features.get_mut(feature) {
            Some(FeatureSummary::Numeric(s)) => {
                s.push(x);
                let column = self.sample_column[feature];
                // The row's slot is decided even for a missing value: every row is offered.
                if let (Some(slot), Some(column)) = (self.row_slot(), column)
                    && x.is_finite()
                {
                    self.sample.set(slot, column, x);
                }
            }
            Some(FeatureSummary::Categorical(s)) => {
                if x.is_finite() {
                    s.push(Some(&format_number(x)));
                } else {
                    s.push_missing();
                }
            }
            None => debug_assert!(false, "feature index {feature} out of range"),
        }
    }

    /// Counts a missing value by feature index.
    pub fn push_missing(&mut self, feature: usize) {
        if let Some(s) = self.features.get_mut(feature) {
            s.push_missing();
        }
    }

    /// The sample's slot for the row being pushed, deciding it at the row's first value (a row
    /// taken in starts with every value missing, so features it never gets stay missing).
    fn row_slot(&mut self) -> Option<usize> {
        if let Some(decided) = self.row_slot {
            return decided;
        }
        let slot = self.sample.offer_row();
        self.row_slot = Some(slot);
        slot
    }

    /// Marks the end of a row pushed value by value.
    pub fn end_row(&mut self) {
        // Every row is offered to the sample, even one with no numeric value.
        self.row_slot();
        self.row_slot = None;
        self.rows += 1;
    }

    /// Adds `rows` rows whose numeric values come column by column: `numbers[f]` holds numeric
    /// feature `f`'s value in each row (NaN or infinity when missing) and is ignored for
    /// categorical features, whose values in these rows go in with [`WindowSummary::push_text`]
    /// (without [`WindowSummary::end_row`]: the block counts its rows). The result is the
    /// same as pushing the rows one by one, but each column is folded in one pass and the row
    /// sample takes rows in whole.
    pub fn push_block<C: AsRef<[f64]>>(&mut self, rows: usize, numbers: &[C]) -> Result<()> {
        if numbers.len() != self.features.len() {
            return Err(CoreError::Input(format!(
                "the block has {} columns, the summary {} features",
                numbers.len(),
                self.features.len()
            )));
        }
        for (values, feature) in numbers.iter().zip(&self.features) {
            if let FeatureSummary::Numeric(s) = feature {
                let values = values.as_ref();
                if values.len() != rows {
                    return Err(CoreError::Input(format!(
                        "feature `{}`: the block has {} values for {rows} rows",
                        s.name,
                        values.len()
                    )));
                }
            }
        }
        debug_assert!(
            self.row_slot.is_none(),
            "a block pushed in the middle of a row"
        );
        let columns: Vec<(usize, &[f64])> = numbers
            .iter()
            .zip(&self.sample_column)
            .filter_map(|(values, column)| column.map(|c| (c, values.as_ref())))
            .collect();
        self.sample.offer_block(rows, &columns);
        for (values, feature) in numbers.iter().zip(self.features.iter_mut()) {
            if let FeatureSummary::Numeric(s) = feature {
                s.push_all(values.as_ref());
            }
        }
        self.rows += rows as u64;
        Ok(())
    }

    /// The present values of a numeric feature in the row sample, sorted ascending (`None`
    /// for a categorical feature or an index out of range).
    pub fn sorted_sample(&self, feature: usize) -> Option<Vec<f64>> {
        let column = (*self.sample_column.get(feature)?)?;
        Some(self.sample.sorted(column))
    }

    /// Adds one row of values by feature name, as the data log carries them; features the row
    /// lacks count as missing, names the summary does not know are ignored.
    pub fn push_values(&mut self, values: &Values) {
        // Both sides sorted by name: one merge walk (each feature's summary is independent, so
        // the order features are fed in does not change the result). A row's names are shared
        // with the rows decoded before it, so a name is usually recognised by its pointer,
        // without reading it.
        let entries = values.entries();
        let mut e = 0;
        for k in 0..self.in_name_order.len() {
            let i = self.in_name_order[k];
            let value = loop {
                let Some((key, value)) = entries.get(e) else {
                    break None;
                };
                if self.known_names[k]
                    .as_ref()
                    .is_some_and(|known| Arc::ptr_eq(known, key))
                {
                    e += 1;
                    break Some(value);
                }
                match (**key).cmp(self.features[i].name()) {
                    Ordering::Equal => {
                        // Holding it keeps the pointer from being reused for another name.
                        self.known_names[k] = Some(Arc::clone(key));
                        e += 1;
                        break Some(value);
                    }
                    Ordering::Less => e += 1,
                    Ordering::Greater => break None,
                }
            };
            match value {
                None | Some(Value::Missing) => self.push_missing(i),
                Some(Value::Number(x)) => self.push_number(i, *x),
                Some(Value::Text(t)) => self.push_text(i, t),
            }
        }
        self.end_row();
    }

    /// Adds one row of predicted probabilities (one per class).
    pub fn push_probabilities(&mut self, probabilities: &[f64]) {
        self.prediction.push(probabilities);
    }

    /// Adds a row as the data log carries it.
    pub fn push_row(&mut self, row: &RowRecord) {
        self.push_values(&row.values);
    }

    /// Adds the probabilities of a logged prediction. Its inputs are not counted here: push
    /// them with [`WindowSummary::push_values`] when predictions are the window's only rows.
    pub fn push_prediction(&mut self, prediction: &PredictionRecord) {
        let probabilities: Vec<f64> = prediction
            .probabilities
            .iter()
            .map(|&p| f64::from(p))
            .collect();
        self.prediction.push(&probabilities);
    }

    /// Adds every row of a frame whose columns follow this summary's layout.
    pub fn push_frame(&mut self, frame: &Frame) -> Result<()> {
        if frame.columns.len() != self.features.len() {
            return Err(CoreError::Input(format!(
                "the frame has {} columns, the summary {} features",
                frame.columns.len(),
                self.features.len()
            )));
        }
        // Check every kind first, so a mismatch leaves the summary untouched.
        for (column, summary) in frame.columns.iter().zip(&self.features) {
            let matches = matches!(
                (column, summary),
                (Column::Numeric(_), FeatureSummary::Numeric(_))
                    | (Column::Categorical(_), FeatureSummary::Categorical(_))
            );
            if !matches {
                return Err(CoreError::Input(format!(
                    "feature `{}`: the frame's column has another kind than the summary's",
                    summary.name()
                )));
            }
        }
        let mut numbers: Vec<&[f64]> = Vec::with_capacity(frame.columns.len());
        for (column, summary) in frame.columns.iter().zip(self.features.iter_mut()) {
            match (column, summary) {
                (Column::Numeric(values), FeatureSummary::Numeric(_)) => numbers.push(values),
                (Column::Categorical(values), FeatureSummary::Categorical(s)) => {
                    values.iter().for_each(|v| s.push(v.as_deref()));
                    numbers.push(&[]);
                }
                _ => numbers.push(&[]),
            }
        }
        self.push_block(frame.len(), &numbers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::drift::numeric_summary::tests::column;

    #[test]
    fn blocks_and_rows_make_the_same_summary_and_sample() {
        let layout = [
            FeatureLayout::numeric("a"),
            FeatureLayout::categorical("c"),
            FeatureLayout::numeric("b"),
        ];
        let config = SummaryConfig {
            reservoir_size: 700,
            ..SummaryConfig::default()
        };
        let rows = 20_000;
        let (a, b) = (column(1, rows), column(2, rows));
        let mut by_row = WindowSummary::new(&layout, &[], config);
        for r in 0..rows {
            by_row.push_number(0, a[r]);
            by_row.push_text(1, if r % 2 == 0 { "x" } else { "y" });
            // Row 5's `b` is never pushed: it must be missing in the sample, not stale.
            if r != 5 {
                by_row.push_number(2, b[r]);
            }
            by_row.end_row();
        }
        let mut by_block = WindowSummary::new(&layout, &[], config);
        let mut start = 0;
        for size in [1, 3, 500, 4096, 100_000] {
            let end = (start + size).min(rows);
            let mut b_block = b[start..end].to_vec();
            if (start..end).contains(&5) {
                b_block[5 - start] = f64::NAN;
            }
            for r in start..end {
                by_block.push_text(1, if r % 2 == 0 { "x" } else { "y" });
            }
            let numbers = [a[start..end].to_vec(), Vec::new(), b_block];
            by_block.push_block(end - start, &numbers).unwrap();
            start = end;
        }
        assert_eq!(start, rows);
        assert_eq!(by_row.rows, by_block.rows);
        assert_eq!(by_block.sample.rows(), 700);
        assert!(!by_block.sample.is_complete());
        for feature in [0, 2] {
            let sample = by_block.sorted_sample(feature).unwrap();
            assert_eq!(by_row.sorted_sample(feature).unwrap(), sample);
            assert!(sample.len() > 500 && sample.iter().all(|x| x.is_finite()));
        }
        // The missing count differs only by row 5's `b`, pushed as NaN in the block.
        let (FeatureSummary::Numeric(x), FeatureSummary::Numeric(y)) =
            (&by_row.features[2], &by_block.features[2])
        else {
            panic!("numeric")
        };
        assert_eq!((x.count, x.missing + 1), (y.count, y.missing));
        // Otherwise the same summary: the same values folded in the same order.
        let mut x = x.clone();
        x.push_missing();
        assert_eq!(format!("{x:?}"), format!("{y:?}"));
        let bad = by_block.push_block(2, &[vec![1.0], Vec::new(), vec![1.0, 2.0]]);
        assert!(bad.unwrap_err().to_string().contains("`a`"));
    }

    #[test]
    fn values_are_read_by_the_kind_of_their_feature() {
        let layout = [FeatureLayout::numeric("n"), FeatureLayout::categorical("c")];
        let mut s = WindowSummary::new(&layout, &[], SummaryConfig::default());
        // Numeric: text is parsed (trimmed); unparseable text and missing markers are missing.
        // Categorical: a number counts as its CSV spelling; a non-finite one is missing.
        s.push_text(0, " 2.5 ");
        s.push_number(1, 3.0);
        s.end_row();
        s.push_text(0, "abc");
        s.push_number(1, f64::NAN);
        s.end_row();
        s.push_text(0, "NA");
        s.push_text(1, "3");
        s.end_row();
        // A feature a row never gets is not counted at all.
        s.push_number(0, 4.5);
        s.end_row();
        assert_eq!(s.rows, 4);
        let (FeatureSummary::Numeric(n), FeatureSummary::Categorical(c)) =
            (&s.features[0], &s.features[1])
        else {
            panic!("a numeric then a categorical feature")
        };
        assert_eq!((n.count, n.missing, n.mean()), (2, 2, Some(3.5)));
        assert_eq!((c.count, c.missing), (2, 1));
        assert_eq!(c.observed().into_iter().collect::<Vec<_>>(), vec![("3", 2)]);
        // Only the numeric feature has a column in the row sample.
        assert_eq!(s.sorted_sample(0), Some(vec![2.5, 4.5]));
        assert_eq!(s.sorted_sample(1), None);
        assert_eq!(
            (s.feature_index("c"), s.feature_index("zeta")),
            (Some(1), None)
        );
    }

    #[test]
    fn values_by_name_reach_the_right_features_whatever_the_layout_order() {
        // Declared out of name order, with a row that lacks one feature and has an unknown one.
        let layout = [
            FeatureLayout::numeric("zeta"),
            FeatureLayout::categorical("colour"),
            FeatureLayout::numeric("alpha"),
        ];
        let config = SummaryConfig::default();
        let mut by_name = WindowSummary::new(&layout, &[], config);
        let mut by_index = WindowSummary::new(&layout, &[], config);
        for i in 0..50 {
            let build = move || {
                let mut row = Values::new();
                row.insert("zeta", Value::Number(f64::from(i)));
                row.insert("unknown", Value::Number(-1.0));
                if i % 3 != 0 {
                    row.insert("colour", Value::Text(format!("c{}", i % 2)));
                }
                row.insert("alpha", Value::Number(f64::from(i) * 0.5));
                row
            };
            // Rows built on another thread name the features with other shared copies: they
            // must be recognised by their text.
            let row = if i % 10 == 7 {
                std::thread::spawn(build).join().unwrap()
            } else {
                build()
            };
            by_name.push_values(&row);
            by_index.push_number(0, f64::from(i));
            if i % 3 != 0 {
                by_index.push_text(1, &format!("c{}", i % 2));
            } else {
                by_index.push_missing(1);
            }
            by_index.push_number(2, f64::from(i) * 0.5);
            by_index.end_row();
        }
        assert_eq!(by_name.rows, 50);
        for (a, b) in by_name.features.iter().zip(&by_index.features) {
            match (a, b) {
                (FeatureSummary::Numeric(a), FeatureSummary::Numeric(b)) => {
                    assert_eq!(format!("{a:?}"), format!("{b:?}"));
                }
                (FeatureSummary::Categorical(a), FeatureSummary::Categorical(b)) => {
                    let sorted = |s: &CategoricalSummary| {
                        let mut counts: Vec<(String, u64)> =
                            s.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
                        counts.sort();
                        (s.count, s.missing, counts)
                    };
                    assert_eq!(sorted(a), sorted(b));
                    assert_eq!(sorted(a).2.len(), 2);
                }
                _ => panic!("feature kinds differ"),
            }
        }
    }
}
