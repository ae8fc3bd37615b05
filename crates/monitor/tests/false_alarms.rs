#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The monitor's defaults keep false alarms rare and still find real drift quickly: a fixed-
//! seed slice of the measurement in `examples/monitor_defaults` (which prints the full tables
//! behind the defaults). Calm rows through the monitor's own tracker at the default settings
//! raise nothing; a 0.5-std shift of one feature and a flipped concept are found within a few
//! thousand rows; the default Page-Hinkley detector stays quiet on millions of calm labels.

#[path = "../examples/monitor_defaults/measure.rs"]
mod measure;

use std::sync::Arc;

use measure::{
    Knobs, calm, flip_delay, page_hinkley_calm_alarms, page_hinkley_delay, rotation_delay,
    shift_delay, train_model,
};
use mend_monitor::config::defaults;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;

fn default_knobs() -> Knobs {
    Knobs {
        window_rows: defaults::WINDOW_ROWS,
        confirm_windows: defaults::CONFIRM_WINDOWS,
        label_window: defaults::LABEL_WINDOW,
        accuracy_tolerance: defaults::ACCURACY_TOLERANCE,
        page_hinkley: true,
        trend: Some((TrendConfig::default().window, TrendConfig::default().z)),
    }
}

/// The smallest reference the demo keeps: a retrain on 2,000 rows profiles 1,600 training
/// rows and 400 holdout predictions, the noisiest baseline the monitor meets there.
fn small_reference_model() -> Arc<mend_core::Artifact> {
    Arc::new(train_model(2_000, 0).unwrap())
}

#[test]
fn calm_rows_and_labels_raise_nothing_at_the_defaults() {
    let model = small_reference_model();
    // 200,000 calm rows with their labels: 100 data windows, 400 label windows, 200,000
    // labels through Page-Hinkley (measured at the defaults: no alarm of any kind in
    // millions of calm rows and labels against this size of reference).
    let tally = calm(&model, default_knobs(), 200_000, true, 3);
    assert_eq!(tally.rows, 200_000);
    assert_eq!(
        (
            tally.data,
            tally.prediction,
            tally.performance_accuracy,
            tally.performance_page_hinkley
        ),
        (0, 0, 0, 0),
        "false alarms on calm data: {:?}",
        tally.features
    );
}

#[test]
fn a_half_std_shift_is_found_when_its_confirming_window_closes() {
    let model = small_reference_model();
    let knobs = default_knobs();
    let rows = shift_delay(&model, knobs, 0.5, 3, 20_000, 11).expect("the shift is found");
    assert_eq!(
        rows,
        knobs.window_rows * knobs.confirm_windows as usize,
        "found when the confirming window closes"
    );
}

#[test]
fn a_flipped_concept_is_found_within_a_few_hundred_labels() {
    let model = small_reference_model();
    let (labels, method) =
        flip_delay(&model, default_knobs(), 3_000, 5_000, 12).expect("the flip is found");
    assert_eq!(method, "page_hinkley");
    assert!(labels <= 300, "found after {labels} labels");
}

#[test]
fn a_gradual_rotation_is_found_by_the_trend_test_before_the_tolerance_sees_it() {
    let model = small_reference_model();
    // The heal bench's rotating stream: the boundary turns 180 degrees over 20,000 rows.
    let with_trend = rotation_delay(&model, default_knobs(), 20_000, 13).expect("found");
    let without = rotation_delay(
        &model,
        Knobs {
            trend: None,
            ..default_knobs()
        },
        20_000,
        13,
    );
    assert!(with_trend <= 6_500, "found after {with_trend} rows");
    assert!(
        without.is_none_or(|rows| rows > with_trend),
        "the trend test finds it first: {with_trend} against {without:?}"
    );
}

#[test]
fn the_default_detector_is_quiet_on_calm_error_streams() {
    let config = PageHinkleyConfig::default();
    // Champions right 85 % and 65 % of the time: 1,000,000 calm labels each.
    for p in [0.15, 0.35] {
        assert_eq!(
            page_hinkley_calm_alarms(config, p, 1_000_000, 21),
            0,
            "error rate {p}"
        );
        let (delay, change_error) =
            page_hinkley_delay(config, p, 1.0 - p, 3_000, 5_000, 22).expect("a flip is found");
        assert!(delay <= 300, "error rate {p}: flip found after {delay}");
        assert!(
            change_error.abs() <= 20,
            "change point off by {change_error}"
        );
    }
}
