//! A completed window's HTML page: the drift report under a title naming the model and a line
//! naming the window and the champion, opening with the monitor's verdicts (the lines `mend
//! report` prints for the same report), with the accuracy of the judged label windows over
//! time against the champion's holdout accuracy.

use mend_bus::ModelName;
use mend_core::report::{PageOptions, html};

use crate::reports::MonitorReport;

/// The page of `report`, the `number`th window compared with champion `champion_version` of
/// `model`; `history` is the accuracy per judged label window, `baseline_accuracy` the
/// champion's holdout accuracy.
pub(super) fn page(
    model: &ModelName,
    champion_version: u64,
    number: u64,
    report: &MonitorReport,
    history: &[(String, f64)],
    baseline_accuracy: f64,
) -> String {
    let title = format!("Drift report: {}", model.as_str());
    let subtitle = subtitle(number, champion_version, report);
    // The page opens with the same lines `mend report` prints for this report.
    let verdicts = report.verdicts();
    html(
        &report.drift,
        &PageOptions {
            title: &title,
            subtitle: Some(&subtitle),
            performance: history,
            performance_baseline: Some(baseline_accuracy),
            verdicts: Some(&verdicts),
        },
    )
}

/// `window #3 (sequences 601–900, 300 rows) against champion v2, estimated accuracy (CBPE)
/// 0.874`.
fn subtitle(number: u64, champion_version: u64, report: &MonitorReport) -> String {
    let estimate = report
        .estimated_accuracy
        .map(|e| format!(", estimated accuracy (CBPE) {e:.3}"))
        .unwrap_or_default();
    format!(
        "window #{number} (sequences {}–{}, {} rows) against champion v{champion_version}{estimate}",
        report.window.from_seq.unwrap_or_default(),
        report.window.to_seq.unwrap_or_default(),
        report.drift.current_rows,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_bus::events::DataWindow;

    use super::super::fixtures::{feature, model, monitor_report, report};
    use super::*;

    fn calm() -> MonitorReport {
        monitor_report(
            report(vec![feature("x0", false)], false),
            DataWindow::sequence(101, 400, 300),
            Some(0.8137),
        )
    }

    #[test]
    fn the_subtitle_names_the_window_and_the_champion() {
        assert_eq!(
            subtitle(3, 2, &calm()),
            "window #3 (sequences 101–400, 300 rows) against champion v2, estimated accuracy \
             (CBPE) 0.814"
        );
        // The rows are the comparison's; no estimate without scored rows.
        let mut drift = report(vec![feature("x0", false)], false);
        drift.current_rows = 250;
        let unscored = monitor_report(drift, DataWindow::default(), None);
        assert_eq!(
            subtitle(1, 7, &unscored),
            "window #1 (sequences 0–0, 250 rows) against champion v7"
        );
    }

    #[test]
    fn the_page_opens_with_the_monitor_verdicts() {
        let page = page(&model(), 2, 3, &calm(), &[], 0.9);
        assert!(page.contains("<title>Drift report: churn</title>"));
        assert!(page.contains("<h1>Drift report: churn</h1>"));
        assert!(page.contains(
            "<p class=\"muted sub\">window #3 (sequences 101–400, 300 rows) against champion \
             v2, estimated accuracy (CBPE) 0.814</p>"
        ));
        // The monitor's alarm line first (the drift report's own verdicts have none).
        assert!(
            page.contains(
                "<div class=\"summary\"><p class=\"verdict good\">alarm: no (nothing drifted)</p>"
            ),
            "{page}"
        );
        assert!(
            !page.contains("Performance over time"),
            "no label judged yet"
        );
    }

    #[test]
    fn the_page_charts_accuracy_against_the_holdout() {
        let history = [
            ("labels to #300".to_owned(), 0.85),
            ("labels to #600".to_owned(), 0.8),
        ];
        let page = page(&model(), 2, 3, &calm(), &history, 0.9);
        assert!(page.contains("<h2>Performance over time</h2>"));
        assert!(page.contains("accuracy per window; dashed: baseline 0.9000"));
    }
}
