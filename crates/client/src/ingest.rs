//! Data-log records as `mend.ingest.v1` batches, for anything that feeds the ingest service.

use mend_core::record::{LabelRecord, RowRecord, Value};
use mend_proto::ingest::v1 as pb;
use pb::feature_value::Kind;

/// A batch of rows for `model`.
pub fn row_batch(model: &str, rows: &[RowRecord]) -> pb::RowBatch {
    pb::RowBatch {
        model: model.to_owned(),
        rows: rows
            .iter()
            .map(|r| pb::Row {
                id: r.id.clone(),
                event_time_ms: r.time_ms,
                values: r
                    .values
                    .iter()
                    .map(|(name, value)| {
                        let kind = match value {
                            Value::Number(x) => Kind::Number(*x),
                            Value::Text(s) => Kind::Text(s.clone()),
                            Value::Missing => Kind::Missing(true),
                        };
                        (name.to_owned(), pb::FeatureValue { kind: Some(kind) })
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A batch of labels for `model`.
pub fn label_batch(model: &str, labels: &[LabelRecord]) -> pb::LabelBatch {
    pb::LabelBatch {
        model: model.to_owned(),
        labels: labels
            .iter()
            .map(|l| pb::Label {
                row_id: l.row_id.clone(),
                label: l.label.clone(),
                time_ms: l.time_ms,
            })
            .collect(),
    }
}
