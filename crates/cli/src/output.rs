//! Human-readable tables and number formatting for the CLI.

use mend_core::Metrics;

/// Renders rows as an aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn f4(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.4}")
    }
}

/// Summary and per-class tables for metrics, plus the confusion matrix.
pub fn metrics(m: &Metrics) -> String {
    let summary = table(
        &[
            "rows", "accuracy", "macro_f1", "roc_auc", "log_loss", "brier",
        ],
        &[vec![
            m.rows.to_string(),
            f4(m.accuracy),
            f4(m.macro_f1),
            m.roc_auc.map(f4).unwrap_or_else(|| "-".into()),
            f4(m.log_loss),
            f4(m.brier),
        ]],
    );
    let per_class = table(
        &["class", "precision", "recall", "f1", "support"],
        &m.per_class
            .iter()
            .map(|c| {
                vec![
                    c.class.clone(),
                    f4(c.precision),
                    f4(c.recall),
                    f4(c.f1),
                    c.support.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let mut headers = vec!["true \\ predicted".to_owned()];
    headers.extend(m.per_class.iter().map(|c| c.class.clone()));
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let confusion = table(
        &header_refs,
        &m.confusion
            .iter()
            .zip(&m.per_class)
            .map(|(row, c)| {
                std::iter::once(c.class.clone())
                    .chain(row.iter().map(usize::to_string))
                    .collect()
            })
            .collect::<Vec<_>>(),
    );
    format!("{summary}\n\n{per_class}\n\n{confusion}")
}
