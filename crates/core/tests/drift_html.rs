#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTML report: one self-contained page that shows the verdicts and never lets data become
//! markup.

use mend_core::drift::Verdict;
use mend_core::drift::summary::FeatureLayout;
use mend_core::drift::{
    DriftPolicy, DriftReference, SummaryConfig, WindowSummary, compare_reference,
};
use mend_core::report::escape::escape;
use mend_core::report::{PageOptions, html};

fn report() -> mend_core::drift::DriftReport {
    let layout = [
        FeatureLayout::numeric("<b>income</b>"),
        FeatureLayout::categorical("plan"),
    ];
    let mut reference = WindowSummary::new(&layout, &[], SummaryConfig::default());
    for i in 0..2000 {
        reference.push_number(0, f64::from(i % 100));
        reference.push_text(1, ["basic", "pro"][i as usize % 2]);
        reference.end_row();
    }
    let built = DriftReference::from_summary(&reference);
    let mut window = WindowSummary::for_reference(&built, SummaryConfig::default());
    for i in 0..1000 {
        window.push_number(0, f64::from(i % 100) + 40.0);
        window.push_text(
            1,
            ["basic", "pro", "<script>alert(1)</script>"][i as usize % 3],
        );
        window.end_row();
    }
    compare_reference(&built, &window, &DriftPolicy::default())
}

#[test]
fn the_page_is_self_contained_and_shows_every_feature() {
    let report = report();
    assert!(report.dataset_drift);
    let performance = vec![
        ("w1".to_owned(), 0.91),
        ("w2".to_owned(), 0.89),
        ("w3".to_owned(), 0.71),
    ];
    let page = html(
        &report,
        &PageOptions {
            title: "churn: window 7",
            subtitle: Some("reference a.csv vs current b.csv"),
            performance: &performance,
            performance_baseline: Some(0.9),
            verdicts: None,
        },
    );
    assert!(page.starts_with("<!DOCTYPE html>"));
    // The page opens with the report's verdicts, worded as the CLI prints them.
    assert!(page.contains("dataset drift: yes (2 of 2 features drifted, share 1.00 &gt;= 0.50)"));
    for verdict in report.verdicts() {
        assert!(page.contains(&escape(&verdict.line())), "{verdict}");
    }
    assert!(page.contains("feature drift: yes (&lt;b&gt;income&lt;/b&gt;: "));
    // One plot per feature, plus the performance chart.
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("<polyline"));
    assert!(page.contains("w3: 0.7100"));
    // No external assets: no scripts, links or remote URLs (the SVG namespace is not fetched).
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert_eq!(
        page.matches("http").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    // Data is escaped.
    assert!(page.contains("&lt;b&gt;income&lt;/b&gt;"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn the_performance_chart_is_optional() {
    let page = html(&report(), &PageOptions::default());
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(!page.contains("Performance over time"));
    assert!(page.contains("<title>Drift report</title>"));
}

#[test]
fn a_callers_verdicts_replace_the_reports_own() {
    let report = report();
    let verdicts = [
        Verdict::new(
            "alarm",
            Some(false),
            "drift in this window is not yet confirmed",
        ),
        report.dataset_verdict(),
        report.feature_verdict(),
        report.prediction_verdict(),
    ];
    let page = html(
        &report,
        &PageOptions {
            verdicts: Some(&verdicts),
            ..PageOptions::default()
        },
    );
    assert!(page.contains(
        "<p class=\"verdict good\">alarm: no (drift in this window is not yet confirmed)</p>"
    ));
    assert!(page.contains("<p class=\"verdict bad\">dataset drift: yes ("));
    assert!(page.contains(
        "<p class=\"verdict unmeasured\">prediction drift: not measured (no predictions to \
         compare)</p>"
    ));
    // In the order given: the alarm first.
    let alarm = page.find("alarm: no").unwrap();
    let dataset = page.find("dataset drift: yes").unwrap();
    assert!(alarm < dataset);
}
