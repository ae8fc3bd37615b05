//! A world's rows in the forms the rest of mend reads: a CSV-like table with `id` and `time`
//! columns, CSV text, and data-log records (rows and their labels).

use mend_core::frame::{RawTable, format_number};
use mend_core::record::{LabelRecord, RowRecord, Value};
use mend_core::values::Values;

use crate::world::{Generator, Sample};

impl Generator {
    /// A CSV-like table: `id,time,<features>[,label]`, ids and times counting from the given start.
    pub fn to_table(
        &self,
        sample: &Sample,
        with_labels: bool,
        first_id: u64,
        first_time: i64,
    ) -> RawTable {
        let mut headers = vec!["id".to_owned(), "time".to_owned()];
        headers.extend(self.feature_names());
        if with_labels {
            headers.push("label".into());
        }
        let classes = self.class_names();
        let n = sample.labels.len();
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let mut row = vec![
                (first_id + i as u64).to_string(),
                (first_time + i as i64).to_string(),
            ];
            row.extend(sample.numeric.row(i).iter().map(|x| format!("{x:.6}")));
            row.extend(sample.categorical.iter().map(|c| c[i].clone()));
            if with_labels {
                row.push(classes[sample.labels[i]].clone());
            }
            rows.push(row);
        }
        RawTable {
            headers,
            lines: (0..n as u64).map(|i| i + 2).collect(),
            rows,
        }
    }

    /// Data-log records (rows and their labels), ids `<prefix><n>`.
    pub fn to_records(
        &self,
        sample: &Sample,
        prefix: &str,
        first_id: u64,
        first_time: i64,
    ) -> (Vec<RowRecord>, Vec<LabelRecord>) {
        let names = self.feature_names();
        let classes = self.class_names();
        let d = self.spec().numeric;
        let mut rows = Vec::with_capacity(sample.labels.len());
        let mut labels = Vec::with_capacity(sample.labels.len());
        for i in 0..sample.labels.len() {
            let id = format!("{prefix}{}", first_id + i as u64);
            let time_ms = first_time + i as i64;
            let mut values = Values::with_capacity(names.len());
            for (j, name) in names.iter().enumerate().take(d) {
                values.insert(name.clone(), Value::Number(sample.numeric[[i, j]]));
            }
            for (f, col) in sample.categorical.iter().enumerate() {
                values.insert(names[d + f].clone(), Value::Text(col[i].clone()));
            }
            labels.push(LabelRecord {
                row_id: id.clone(),
                label: classes[sample.labels[i]].clone(),
                time_ms,
            });
            rows.push(RowRecord {
                id,
                time_ms,
                values,
            });
        }
        (rows, labels)
    }
}

/// Writes a table as CSV text.
pub fn table_to_csv(table: &RawTable) -> String {
    let mut out = String::new();
    out.push_str(&table.headers.join(","));
    out.push('\n');
    for row in &table.rows {
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Formats a number for CSV output.
pub fn fmt(x: f64) -> String {
    format_number(x)
}
