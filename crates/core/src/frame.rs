//! Frames: columns of typed feature values, loaded from CSV (or records) against a schema.
//!
//! Loading never stops at the first bad cell: every bad cell is reported with its line, column,
//! value and reason, so a user can fix a file in one pass.

use std::borrow::Borrow;
use std::io::Read;

use crate::error::{CoreError, Result};
use crate::record::{RowRecord, Value};
use crate::schema::{FeatureKind, Schema, is_missing};

/// A bad cell, as loading reports it (defined beside [`CoreError`], which carries a list of
/// them).
pub use crate::error::RowError;

/// A CSV file as text cells, with the 1-based file line of each row (the header is line 1).
#[derive(Debug, Clone, Default)]
pub struct RawTable {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub lines: Vec<u64>,
}

/// Reads a CSV with a header row. A row with the wrong number of fields is an error naming its line.
pub fn read_csv<R: Read>(reader: R) -> Result<RawTable> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| CoreError::Csv(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(CoreError::Csv("the file has no header row".into()));
    }
    let mut table = RawTable {
        headers,
        ..RawTable::default()
    };
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                table.rows.push(record.iter().map(str::to_owned).collect());
                table.lines.push(line);
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("line {line}: {len} fields, but the header has {expected_len}")
                    }
                    _ => format!("line {line}: {e}"),
                };
                return Err(CoreError::Csv(reason));
            }
        }
    }
    Ok(table)
}

/// The values of one feature across the rows of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Missing values are NaN.
    Numeric(Vec<f64>),
    /// Missing values are `None`.
    Categorical(Vec<Option<String>>),
}

impl Column {
    fn with_capacity(kind: FeatureKind, n: usize) -> Column {
        match kind {
            FeatureKind::Numeric => Column::Numeric(Vec::with_capacity(n)),
            FeatureKind::Categorical => Column::Categorical(Vec::with_capacity(n)),
        }
    }

    fn select(&self, idx: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(idx.iter().map(|&i| v[i]).collect()),
            Column::Categorical(v) => {
                Column::Categorical(idx.iter().map(|&i| v[i].clone()).collect())
            }
        }
    }
}

/// Rows of features in schema order, with ids, event times and (optionally) class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub ids: Vec<String>,
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
    pub labels: Option<Vec<usize>>,
}

impl Frame {
    /// An empty frame shaped by the schema.
    pub fn empty(schema: &Schema, with_labels: bool) -> Frame {
        Frame {
            ids: Vec::new(),
            times: Vec::new(),
            columns: schema
                .features
                .iter()
                .map(|f| Column::with_capacity(f.kind, 0))
                .collect(),
            labels: with_labels.then(Vec::new),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Frame {
        Frame {
            ids: idx.iter().map(|&i| self.ids[i].clone()).collect(),
            times: idx.iter().map(|&i| self.times[i]).collect(),
            columns: self.columns.iter().map(|c| c.select(idx)).collect(),
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }

    /// Builds a frame from a CSV table. With `require_labels`, the label column must be present
    /// and every label a known class. Every bad cell is reported; any bad cell fails the load.
    pub fn from_table(schema: &Schema, table: &RawTable, require_labels: bool) -> Result<Frame> {
        let find = |name: &str| table.headers.iter().position(|h| h == name);
        let mut missing_cols = Vec::new();
        let feature_idx: Vec<usize> = schema
            .features
            .iter()
            .filter_map(|f| {
                let i = find(&f.name);
                if i.is_none() {
                    missing_cols.push(f.name.clone());
                }
                i
            })
            .collect();
        if !missing_cols.is_empty() {
            return Err(CoreError::Schema(format!(
                "the data lacks feature column(s): {}",
                missing_cols.join(", ")
            )));
        }
        let label_idx = find(&schema.label);
        if require_labels && label_idx.is_none() {
            return Err(CoreError::Schema(format!(
                "the data lacks the label column `{}`",
                schema.label
            )));
        }
        let id_idx = schema.id_column.as_deref().and_then(find);
        let time_idx = schema.time_column.as_deref().and_then(find);

        let n = table.rows.len();
        let mut frame = Frame {
            ids: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
            columns: schema
                .features
                .iter()
                .map(|f| Column::with_capacity(f.kind, n))
                .collect(),
            labels: label_idx.map(|_| Vec::with_capacity(n)),
        };
        let mut errors = Vec::new();
        for (r, row) in table.rows.iter().enumerate() {
            let line = table.lines.get(r).copied().unwrap_or(r as u64 + 2);
            let mut err = |col: &str, value: &str, reason: String| {
                errors.push(RowError {
                    line,
                    column: col.to_owned(),
                    value: value.to_owned(),
                    reason,
                })
            };
            let id = id_idx
                .map(|i| row[i].trim().to_owned())
                .unwrap_or_else(|| r.to_string());
            let time = match time_idx {
                Some(i) => match row[i].trim().parse::<f64>() {
                    Ok(t) if t.is_finite() => t as i64,
                    _ => {
                        err(
                            &table.headers[i],
                            &row[i],
                            "not a time (expected unix milliseconds)".into(),
                        );
                        0
                    }
                },
                None => r as i64,
            };
            frame.ids.push(id);
            frame.times.push(time);
            for ((feature, &ci), column) in schema
                .features
                .iter()
                .zip(&feature_idx)
                .zip(frame.columns.iter_mut())
            {
                let cell = &row[ci];
                let missing = is_missing(cell);
                if missing && !schema.allow_missing {
                    err(
                        &feature.name,
                        cell,
                        "missing value, and the schema does not allow missing values".into(),
                    );
                }
                match column {
                    Column::Numeric(v) => {
                        if missing {
                            v.push(f64::NAN);
                        } else {
                            match cell.trim().parse::<f64>() {
                                Ok(x) if x.is_finite() => v.push(x),
                                Ok(_) => {
                                    err(&feature.name, cell, "not a finite number".into());
                                    v.push(f64::NAN);
                                }
                                Err(_) => {
                                    err(&feature.name, cell, "not a number".into());
                                    v.push(f64::NAN);
                                }
                            }
                        }
                    }
                    Column::Categorical(v) => v.push((!missing).then(|| cell.trim().to_owned())),
                }
            }
            if let (Some(li), Some(labels)) = (label_idx, frame.labels.as_mut()) {
                let cell = row[li].trim();
                match schema.class_index(cell) {
                    Some(k) => labels.push(k),
                    None => {
                        let reason = if is_missing(cell) {
                            "missing label".to_owned()
                        } else {
                            format!("unknown class (known: {})", schema.classes.join(", "))
                        };
                        err(&schema.label, cell, reason);
                        labels.push(0);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(frame)
        } else {
            Err(CoreError::Rows(errors))
        }
    }

    /// Builds a frame from data-log records. Rows that do not fit the schema are returned with a
    /// reason instead of failing the whole batch, so valid rows are never lost.
    pub fn from_records<R: Borrow<RowRecord>>(
        schema: &Schema,
        rows: &[R],
    ) -> (Frame, Vec<(usize, String)>) {
        let mut frame = Frame::empty(schema, false);
        let mut rejected = Vec::new();
        // Values are checked before any is added, so a rejected row leaves no partial column.
        let mut cells: Vec<&Value> = Vec::with_capacity(schema.features.len());
        'rows: for (r, row) in rows.iter().enumerate() {
            let row = row.borrow();
            cells.clear();
            for f in &schema.features {
                let v = row.values.get(&f.name).unwrap_or(&Value::Missing);
                match (v, f.kind) {
                    (Value::Missing, _) if !schema.allow_missing => {
                        rejected.push((
                            r,
                            format!("feature `{}`: missing value not allowed", f.name),
                        ));
                        continue 'rows;
                    }
                    (Value::Number(x), FeatureKind::Numeric)
                        if x.is_infinite() || (x.is_nan() && !schema.allow_missing) =>
                    {
                        rejected.push((r, format!("feature `{}`: {x} is not allowed", f.name)));
                        continue 'rows;
                    }
                    (Value::Text(s), FeatureKind::Numeric)
                        if s.trim().parse::<f64>().is_err() && !is_missing(s) =>
                    {
                        rejected
                            .push((r, format!("feature `{}`: {:?} is not a number", f.name, s)));
                        continue 'rows;
                    }
                    _ => {}
                }
                cells.push(v);
            }
            frame.ids.push(row.id.clone());
            frame.times.push(row.time_ms);
            for (col, v) in frame.columns.iter_mut().zip(&cells) {
                match col {
                    Column::Numeric(c) => {
                        c.push(v.as_f64().filter(|x| x.is_finite()).unwrap_or(f64::NAN))
                    }
                    Column::Categorical(c) => c.push(match v {
                        Value::Text(s) if !is_missing(s) => Some(s.clone()),
                        Value::Number(x) => Some(format_number(*x)),
                        _ => None,
                    }),
                }
            }
        }
        (frame, rejected)
    }
}

/// Formats a number the way it would read in a CSV, so `3` and `"3"` are the same category.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}
