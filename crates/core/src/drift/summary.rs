//! Bounded summaries of a window of rows: what drift detection keeps instead of the rows.
//!
//! Memory is bounded by features × (sampled rows + bins + categories), never by rows seen:
//! - numeric: count, missing, shifted sums for mean and variance, min, max, the feature's values
//!   in a seeded uniform sample of the window's rows (KS, Wasserstein), counts over the reference's decile edges (PSI and JS) and between the points of
//!   its quantile sketch, with the distance of values beyond its ends (Wasserstein over every
//!   row, not a sample), and the first few distinct values with counts (Evidently's "at most 5
//!   values" rule);
//! - categorical: counts per category, capped at `max_categories` new categories beyond the
//!   reference's (later ones are counted together as overflow);
//! - predictions: per class, a histogram of predicted probabilities over the reference's bins,
//!   their sum, and counts of the predicted class.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reservoir::RowSampler;
use crate::error::{CoreError, Result};
use crate::frame::{Column, Frame, format_number};
use crate::metrics::argmax;
use crate::profile::{PROBABILITY_BINS, bin_of, probability_bin};
use crate::record::{PredictionRecord, RowRecord, Value};
use crate::schema::{FeatureKind, Schema, is_missing};
use crate::values::{Name, Values};

/// Sizes of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Rows whose numeric values are kept (a uniform sample of the window's rows) for KS and
    /// Wasserstein.
    pub reservoir_size: usize,
    /// New categories (not in the reference) counted by name per categorical feature.
    pub max_categories: usize,
    /// Seed of the row sample, so a summary is reproducible.
    pub seed: u64,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            reservoir_size: 2000,
            max_categories: 1000,
            seed: 0x6d65_6e64,
        }
    }
}

/// Distinct numeric values tracked per feature: one more than the rule's 5 shows "more than 5".
pub const MAX_TRACKED_DISTINCT: usize = 6;

/// How a feature is laid out in a summary: its name and kind, and what the reference offers to
/// bin it by.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayout {
    pub name: String,
    pub kind: FeatureKind,
    /// Histogram edges (numeric), usually the reference's deciles.
    pub bin_edges: Option<Vec<f64>>,
    /// Categories always counted by name (categorical), usually the reference's.
    pub known_categories: Vec<String>,
    /// Points to count values between (numeric), usually the reference's quantile sketch.
    pub quantile_points: Option<Vec<f64>>,
}

impl FeatureLayout {
    /// A numeric feature with nothing to bin by.
    pub fn numeric(name: &str) -> FeatureLayout {
        FeatureLayout {
            name: name.to_owned(),
            kind: FeatureKind::Numeric,
            bin_edges: None,
            known_categories: Vec::new(),
            quantile_points: None,
        }
    }

    /// A categorical feature with no known categories.
    pub fn categorical(name: &str) -> FeatureLayout {
        FeatureLayout {
            kind: FeatureKind::Categorical,
            ..FeatureLayout::numeric(name)
        }
    }
}

/// Counts of values between quantile points `p_0 <= ... <= p_(K-1)`: `counts[c]` holds the
/// values with exactly `c` points below them, and the tails keep `Σ (p_0 - x)` below the first
/// point and `Σ (x - p_(K-1))` above the last, which is what the area between two CDFs needs.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileCounts {
    pub points: Vec<f64>,
    pub counts: Vec<u64>,
    pub below_distance: f64,
    pub above_distance: f64,
    /// Where to start looking for a value's cell: `lookup.starts[g]` points lie below grid
    /// cell `g - 1` of an even grid over the points' range (one cell of slack for rounding).
    lookup: CellLookup,
}

/// An even grid over `[first point, last point]` that narrows a value's cell to a few points,
/// so counting a value is a table read and a short scan instead of a binary search.
#[derive(Debug, Clone, PartialEq)]
struct CellLookup {
    /// The points, then [`LOOKUP_PAD`] infinities.
    padded: Vec<f64>,
    first: f64,
    /// Grid cells per unit of value (0 when the points span nothing).
    scale: f64,
    starts: Vec<u32>,
}

/// Grid cells per quantile point: a few, so a cell rarely holds more than one point.
const LOOKUP_CELLS_PER_POINT: usize = 4;
/// Steps [`CellLookup::points_below`] takes without branches.
const LOOKUP_PAD: usize = 2;

impl CellLookup {
    fn new(points: &[f64]) -> CellLookup {
        let padded: Vec<f64> = points
            .iter()
            .copied()
            .chain(std::iter::repeat_n(f64::INFINITY, LOOKUP_PAD))
            .collect();
        let (Some(&first), Some(&last)) = (points.first(), points.last()) else {
            return CellLookup {
                padded,
                first: 0.0,
                scale: 0.0,
                starts: Vec::new(),
            };
        };
        let cells = points.len() * LOOKUP_CELLS_PER_POINT;
        let span = last - first;
        if !(span > 0.0 && span.is_finite()) {
            return CellLookup {
                padded,
                first,
                scale: 0.0,
                starts: Vec::new(),
            };
        }
        let scale = cells as f64 / span;
        let starts = (0..cells)
            .map(|g| {
                // Points below the start of the cell before `g`: a lower bound for any value
                // the rounding of `(x - first) * scale` can put in cell `g`.
                let start = first + g.saturating_sub(1) as f64 / scale;
                points.partition_point(|&p| p < start) as u32
            })
            .collect();
        CellLookup {
            padded,
            first,
            scale,
            starts,
        }
    }

    /// How many points lie strictly below `x` (finite): `points.partition_point(|p| p < x)`.
    /// The points are kept followed by [`LOOKUP_PAD`] infinities: the first steps past the
    /// grid's lower bound are taken without branches (whether a value passes the next point is
    /// as random as the data, so a loop's exit was mispredicted about once a value).
    #[inline]
    fn points_below(&self, x: f64) -> usize {
        let padded = &self.padded;
        let mut below = if self.starts.is_empty() || x < self.first {
            0
        } else {
            let g = ((x - self.first) * self.scale) as usize;
            match self.starts.get(g) {
                Some(&start) => start as usize,
                None => self.starts.last().map_or(0, |&s| s as usize),
            }
        };
        let points = padded.len().saturating_sub(LOOKUP_PAD);
        if below + LOOKUP_PAD < padded.len() {
            for _ in 0..LOOKUP_PAD {
                below += usize::from(padded[below] < x);
            }
        }
        while below < points && padded[below] < x {
            below += 1;
        }
        below.min(points)
    }
}

impl QuantileCounts {
    fn new(points: Vec<f64>) -> QuantileCounts {
        let cells = points.len() + 1;
        QuantileCounts {
            lookup: CellLookup::new(&points),
            points,
            counts: vec![0; cells],
            below_distance: 0.0,
            above_distance: 0.0,
        }
    }

    fn push(&mut self, x: f64) {
        let cell = self.lookup.points_below(x);
        self.counts[cell] += 1;
        if let (Some(&first), Some(&last)) = (self.points.first(), self.points.last()) {
            if x < first {
                self.below_distance += first - x;
            } else if x > last {
                self.above_distance += x - last;
            }
        }
    }
}

/// Summary of one numeric feature over a window.
#[derive(Debug, Clone)]
pub struct NumericSummary {
    pub name: String,
    /// Present (finite) values.
    pub count: u64,
    /// Missing or non-finite values.
    pub missing: u64,
    /// The first value seen: sums are of `x - shift`, which keeps the variance exact to
    /// rounding without Welford's division per value.
    shift: f64,
    sum: f64,
    sum_squares: f64,
    pub min: f64,
    pub max: f64,
    pub bin_edges: Option<Vec<f64>>,
    pub bin_counts: Vec<u64>,
    /// Counts between the reference's quantile points, when the layout gave them.
    pub quantile_counts: Option<QuantileCounts>,
    /// Up to [`MAX_TRACKED_DISTINCT`] distinct values with their counts, in order seen.
    pub distinct: Vec<(f64, u64)>,
    /// Whether more distinct values were seen than tracked.
    pub distinct_overflow: bool,
}

impl NumericSummary {
    fn new(layout: &FeatureLayout) -> NumericSummary {
        let bins = layout
            .bin_edges
            .as_ref()
            .map(|e| e.len().saturating_sub(1).max(1))
            .unwrap_or(0);
        NumericSummary {
            name: layout.name.clone(),
            count: 0,
            missing: 0,
            shift: 0.0,
            sum: 0.0,
            sum_squares: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            bin_edges: layout.bin_edges.clone(),
            bin_counts: vec![0; bins],
            quantile_counts: layout
                .quantile_points
                .as_ref()
                .filter(|p| !p.is_empty() && p.iter().all(|x| x.is_finite()))
                .map(|p| QuantileCounts::new(p.clone())),
            distinct: Vec::new(),
            distinct_overflow: false,
        }
    }

    /// Adds a value; NaN and infinities count as missing (Evidently drops them too).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            self.missing += 1;
            return;
        }
        if self.count == 0 {
            self.shift = x;
        }
        self.count += 1;
        let d = x - self.shift;
        self.sum += d;
        self.sum_squares += d * d;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if let Some(edges) = &self.bin_edges {
            self.bin_counts[bin_index(x, edges)] += 1;
        }
        if let Some(q) = &mut self.quantile_counts {
            q.push(x);
        }
        if !self.distinct_overflow {
            if let Some((_, c)) = self.distinct.iter_mut().find(|(v, _)| *v == x) {
                *c += 1;
            } else if self.distinct.len() < MAX_TRACKED_DISTINCT {
                self.distinct.push((x, 1));
            } else {
                self.distinct_overflow = true;
            }
        }
    }

    pub fn push_missing(&mut self) {
        self.missing += 1;
    }

    /// Adds values in order, as [`NumericSummary::push`] one by one would (the same sums, in
    /// the same order), in a tight loop once nothing but the moments is left to track.
    pub fn push_all(&mut self, values: &[f64]) {
        let mut rest = values;
        while !self.distinct_overflow
            || self.count == 0
            || self.bin_edges.is_some()
            || self.quantile_counts.is_some()
        {
            let Some((&x, tail)) = rest.split_first() else {
                return;
            };
            self.push(x);
            rest = tail;
        }
        let shift = self.shift;
        let (mut count, mut missing) = (self.count, self.missing);
        let (mut sum, mut sum_squares) = (self.sum, self.sum_squares);
        let (mut min, mut max) = (self.min, self.max);
        for &x in rest {
            if x.is_finite() {
                let d = x - shift;
                count += 1;
                sum += d;
                sum_squares += d * d;
                min = min.min(x);
                max = max.max(x);
            } else {
                missing += 1;
            }
        }
        (self.count, self.missing) = (count, missing);
        (self.sum, self.sum_squares) = (sum, sum_squares);
        (self.min, self.max) = (min, max);
    }

    /// Mean of present values (`None` when there are none).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.shift + self.sum / self.count as f64)
    }

    /// Population standard deviation of present values.
    pub fn std(&self) -> Option<f64> {
        (self.count > 0).then(|| {
            let n = self.count as f64;
            let mean = self.sum / n;
            (self.sum_squares / n - mean * mean).max(0.0).sqrt()
        })
    }

    /// Share of missing values among all values.
    pub fn missing_rate(&self) -> f64 {
        rate(self.missing, self.count + self.missing)
    }

    /// Distinct values with counts, sorted by value, if no more than tracked were seen.
    pub fn distinct_values(&self) -> Option<Vec<(f64, u64)>> {
        if self.distinct_overflow {
            return None;
        }
        let mut v = self.distinct.clone();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(v)
    }
}

/// Summary of one categorical feature over a window.
#[derive(Debug, Clone)]
pub struct CategoricalSummary {
    pub name: String,
    pub count: u64,
    pub missing: u64,
    pub counts: HashMap<String, u64>,
    /// Categories counted by name beyond the known ones.
    new_categories: usize,
    max_new_categories: usize,
    /// Values of new categories past the cap, counted together.
    pub overflow: u64,
}

impl CategoricalSummary {
    fn new(layout: &FeatureLayout, config: &SummaryConfig) -> CategoricalSummary {
        CategoricalSummary {
            name: layout.name.clone(),
            count: 0,
            missing: 0,
            counts: layout
                .known_categories
                .iter()
                .map(|c| (c.clone(), 0))
                .collect(),
            new_categories: 0,
            max_new_categories: config.max_categories,
            overflow: 0,
        }
    }

    /// Adds a value (`None` or a missing marker is missing).
    pub fn push(&mut self, value: Option<&str>) {
        let Some(v) = value.map(str::trim).filter(|v| !is_missing(v)) else {
            self.missing += 1;
            return;
        };
        self.count += 1;
        if let Some(c) = self.counts.get_mut(v) {
            *c += 1;
        } else if self.new_categories < self.max_new_categories {
            self.counts.insert(v.to_owned(), 1);
            self.new_categories += 1;
        } else {
            self.overflow += 1;
        }
    }

    pub fn push_missing(&mut self) {
        self.missing += 1;
    }

    pub fn missing_rate(&self) -> f64 {
        rate(self.missing, self.count + self.missing)
    }

    /// Categories seen at least once, with counts, by name.
    pub fn observed(&self) -> BTreeMap<&str, u64> {
        self.counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (k.as_str(), *c))
            .collect()
    }
}

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

/// Summary of predicted probabilities over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionSummary {
    pub classes: Vec<String>,
    pub rows: u64,
    /// Per class, counts over [`PROBABILITY_BINS`] equal bins on [0, 1].
    pub bins: Vec<Vec<u64>>,
    pub probability_sum: Vec<f64>,
    /// Rows predicted as each class (argmax).
    pub predicted: Vec<u64>,
}

impl PredictionSummary {
    fn new(classes: &[String]) -> PredictionSummary {
        PredictionSummary {
            classes: classes.to_vec(),
            rows: 0,
            bins: vec![vec![0; PROBABILITY_BINS]; classes.len()],
            probability_sum: vec![0.0; classes.len()],
            predicted: vec![0; classes.len()],
        }
    }

    /// Adds one row of class probabilities (ignored unless it has one per class).
    pub fn push(&mut self, probabilities: &[f64]) {
        if probabilities.len() != self.classes.len() || probabilities.is_empty() {
            return;
        }
        self.rows += 1;
        for (c, &p) in probabilities.iter().enumerate() {
            self.bins[c][probability_bin(p)] += 1;
            self.probability_sum[c] += p;
        }
        self.predicted[argmax(probabilities.iter().copied())] += 1;
    }
}

/// The numeric values of a uniform sample of the window's rows, for KS and Wasserstein: kept row
/// by row (`values[slot * width + column]`, NaN where the row had no value), so taking a row in
/// costs one contiguous write rather than one scattered write per feature.
#[derive(Debug, Clone)]
pub struct RowSample {
    sampler: RowSampler,
    width: usize,
    values: Vec<f64>,
}

impl RowSample {
    fn new(capacity: usize, width: usize, seed: u64) -> RowSample {
        RowSample {
            sampler: RowSampler::new(if width == 0 { 0 } else { capacity }, seed),
            width,
            values: Vec::with_capacity(capacity.min(1 << 14) * width),
        }
    }

    /// The row at `slot`, emptied (all NaN) for a row taken in.
    fn claim(&mut self, slot: usize) -> &mut [f64] {
        claim(&mut self.values, self.width, slot)
    }

    /// The present values of numeric column `column` in the sampled rows, sorted ascending.
    pub fn sorted(&self, column: usize) -> Vec<f64> {
        if column >= self.width {
            return Vec::new();
        }
        let mut v: Vec<f64> = self
            .values
            .iter()
            .skip(column)
            .step_by(self.width)
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    /// Whether every row of the window is in the sample (the values are then exact).
    pub fn is_complete(&self) -> bool {
        self.sampler.is_complete()
    }

    /// Rows in the sample.
    pub fn rows(&self) -> usize {
        self.sampler.filled()
    }

    /// Rows the sample keeps at most.
    pub fn capacity(&self) -> usize {
        self.sampler.capacity()
    }
}

/// Row `slot` of a row-major sample `width` values wide, emptied (all NaN) for a row taken in
/// (slots are taken in order while the sample fills, so a new slot is always the next one).
fn claim(values: &mut Vec<f64>, width: usize, slot: usize) -> &mut [f64] {
    let start = slot * width;
    if start >= values.len() {
        values.resize(start + width, f64::NAN);
    } else {
        values[start..start + width].fill(f64::NAN);
    }
    &mut values[start..start + width]
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
                    self.sample.values[slot * self.sample.width + column] = x;
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
        let slot = self.sample.sampler.offer();
        if let Some(slot) = slot {
            self.sample.claim(slot);
        }
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
        let RowSample {
            sampler,
            width,
            values: kept_values,
        } = &mut self.sample;
        sampler.offer_many(rows, |row, slot| {
            let kept = claim(kept_values, *width, slot);
            for &(column, values) in &columns {
                let x = values[row];
                if x.is_finite() {
                    kept[column] = x;
                }
            }
        });
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

/// [`bin_of`], faster for the few edges of decile bins: counting the inner edges at or below
/// `x` has no branches to mispredict and vectorises, where a binary search waits on each step.
fn bin_index(x: f64, edges: &[f64]) -> usize {
    if edges.len() > 34 {
        return bin_of(x, edges);
    }
    let bins = edges.len().saturating_sub(1).max(1);
    let inner = if edges.len() > 2 {
        &edges[1..edges.len() - 1]
    } else {
        &[][..]
    };
    let below = inner.iter().map(|&e| usize::from(e <= x)).sum::<usize>();
    below.min(bins - 1)
}

fn rate(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bin_index_agrees_with_bin_of() {
        let edges = [-1.0, 0.0, 0.0, 1.5, 2.0, 7.0];
        for x in [-5.0, -1.0, -0.5, 0.0, 0.1, 1.5, 1.9, 2.0, 6.9, 7.0, 100.0] {
            assert_eq!(bin_index(x, &edges), bin_of(x, &edges), "x = {x}");
        }
        assert_eq!(bin_index(3.0, &[1.0]), bin_of(3.0, &[1.0]));
        assert_eq!(bin_index(3.0, &[]), bin_of(3.0, &[]));
    }

    /// Values with repeats first (distinct tracking), then many, with gaps and non-finite ones.
    fn column(seed: u64, rows: usize) -> Vec<f64> {
        (0..rows as u64)
            .map(|i| {
                let h = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
                match (i, h % 13) {
                    (0..=9, _) => (i % 3) as f64,
                    (_, 0) => f64::NAN,
                    (_, 1) => f64::INFINITY,
                    _ => (h >> 11) as f64 / (1u64 << 53) as f64 * 10.0 - 5.0,
                }
            })
            .collect()
    }

    #[test]
    fn the_cell_lookup_counts_points_below_as_a_binary_search_does() {
        let normal: Vec<f64> = (1..200)
            .map(|i| {
                // Roughly normal quantiles: dense in the middle, sparse in the tails.
                let u = f64::from(i) / 200.0;
                (u / (1.0 - u)).ln() * 0.6
            })
            .collect();
        let ties = vec![-1.0, 0.0, 0.0, 0.0, 0.0, 2.5, 2.5, 1e6];
        for points in [normal, ties, vec![3.0], vec![3.0, 3.0], Vec::new()] {
            let lookup = CellLookup::new(&points);
            let mut probes: Vec<f64> = points.clone();
            probes.extend(points.iter().map(|p| p + 1e-12));
            probes.extend(points.iter().map(|p| p - 1e-12));
            probes.extend((0..4000).map(|i| f64::from(i) / 400.0 - 5.0));
            probes.extend([-1e300, 1e300, f64::MIN_POSITIVE, -0.0]);
            for x in probes {
                assert_eq!(
                    lookup.points_below(x),
                    points.partition_point(|&p| p < x),
                    "x = {x} in {points:?}"
                );
            }
        }
    }

    #[test]
    fn push_all_is_push_one_by_one() {
        let mut with_edges = FeatureLayout::numeric("x");
        with_edges.bin_edges = Some(vec![-5.0, -1.0, 0.0, 1.0, 5.0]);
        for layout in [FeatureLayout::numeric("x"), with_edges] {
            let values = column(3, 5_000);
            let mut one = NumericSummary::new(&layout);
            values.iter().for_each(|&x| one.push(x));
            let mut all = NumericSummary::new(&layout);
            for chunk in values.chunks(999) {
                all.push_all(chunk);
            }
            assert_eq!(format!("{one:?}"), format!("{all:?}"));
            assert!(all.distinct_overflow);
        }
        // All missing first: the shift waits for the first present value.
        let mut one = NumericSummary::new(&FeatureLayout::numeric("x"));
        let mut all = one.clone();
        let values = [
            f64::NAN,
            f64::NAN,
            2.0,
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
            9.0,
            f64::NAN,
            1.0,
        ];
        values.iter().for_each(|&x| one.push(x));
        all.push_all(&values);
        assert_eq!(format!("{one:?}"), format!("{all:?}"));
    }

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
        assert_eq!(x.sum, y.sum);
        let bad = by_block.push_block(2, &[vec![1.0], Vec::new(), vec![1.0, 2.0]]);
        assert!(bad.unwrap_err().to_string().contains("`a`"));
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
