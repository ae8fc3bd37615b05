#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Statistical properties of the drift verdicts over many seeds: identical distributions flag
//! no more than the test's alpha; a 0.5 std shift is found; bad values never break a report.

use mend_core::drift::summary::FeatureLayout;
use mend_core::drift::{
    DriftPolicy, DriftReference, DriftReport, ReferenceFeature, StatTest, SummaryConfig,
    WindowSummary, compare_reference,
};
use mend_core::profile::{FeatureProfile, NumericProfile};
use mend_core::record::Value;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

fn normal_sample(rng: &mut StdRng, n: usize, mean: f64) -> Vec<f64> {
    let normal = Normal::new(mean, 1.0).unwrap();
    (0..n).map(|_| normal.sample(rng)).collect()
}

fn categorical_sample(rng: &mut StdRng, n: usize, weights: &[f64]) -> Vec<String> {
    let total: f64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut u = rng.random::<f64>() * total;
            for (i, w) in weights.iter().enumerate() {
                if u < *w {
                    return format!("k{i}");
                }
                u -= w;
            }
            format!("k{}", weights.len() - 1)
        })
        .collect()
}

fn layout() -> Vec<FeatureLayout> {
    vec![FeatureLayout::numeric("x"), FeatureLayout::categorical("c")]
}

fn summarise(x: &[f64], c: &[String], config: SummaryConfig) -> WindowSummary {
    let mut s = WindowSummary::new(&layout(), &[], config);
    for (v, k) in x.iter().zip(c) {
        s.push_number(0, *v);
        s.push_text(1, k);
        s.end_row();
    }
    s
}

/// Reference from data, window laid out for it, compared.
fn run(
    reference: (&[f64], &[String]),
    current: (&[f64], &[String]),
    sketch_only: bool,
    seed: u64,
) -> DriftReport {
    let config = SummaryConfig {
        seed,
        ..SummaryConfig::default()
    };
    let mut built = DriftReference::from_summary(&summarise(reference.0, reference.1, config));
    if sketch_only {
        // As from an artifact: the numeric feature is known only by its profile.
        built.features[0] = ReferenceFeature {
            profile: FeatureProfile::Numeric(NumericProfile::from_values("x", reference.0)),
            sample: None,
            distinct: None,
        };
    }
    let mut window = WindowSummary::for_reference(&built, config);
    for (v, k) in current.0.iter().zip(current.1) {
        window.push_number(0, *v);
        window.push_text(1, k);
        window.end_row();
    }
    compare_reference(&built, &window, &DriftPolicy::default())
}

const WEIGHTS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];

/// Counts flags of `x` and `c` over 200 seeds where both sides come from one distribution.
fn false_alarms(n_reference: usize, n_current: usize, sketch_only: bool) -> (usize, usize) {
    let (mut x_flags, mut c_flags) = (0, 0);
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let rx = normal_sample(&mut rng, n_reference, 0.0);
        let rc = categorical_sample(&mut rng, n_reference, &WEIGHTS);
        let cx = normal_sample(&mut rng, n_current, 0.0);
        let cc = categorical_sample(&mut rng, n_current, &WEIGHTS);
        let report = run((&rx, &rc), (&cx, &cc), sketch_only, seed);
        x_flags += usize::from(report.feature("x").unwrap().drifted);
        c_flags += usize::from(report.feature("c").unwrap().drifted);
    }
    (x_flags, c_flags)
}

#[test]
fn identical_distributions_flag_at_most_about_alpha_with_p_value_tests() {
    // Small reference: KS and chi-square at alpha = 0.05. Over 200 seeds the expected count is
    // 10 (sd ≈ 3.1); more than 20 would mean the tests are miscalibrated.
    let (x, c) = false_alarms(600, 800, false);
    assert!(x <= 20, "KS flagged {x} of 200 identical pairs");
    assert!(c <= 20, "chi-square flagged {c} of 200 identical pairs");
    // The same with the numeric reference known only by its quantile sketch.
    let (x, _) = false_alarms(600, 800, true);
    assert!(
        x <= 20,
        "KS against the sketch flagged {x} of 200 identical pairs"
    );
}

#[test]
fn identical_distributions_do_not_flag_with_distances() {
    // Large reference: Wasserstein and Jensen-Shannon at 0.1; sampling noise of 2,000 values
    // stays far below that.
    let (x, c) = false_alarms(5000, 3000, false);
    assert!(x <= 2, "Wasserstein flagged {x} of 200 identical pairs");
    assert!(c <= 2, "Jensen-Shannon flagged {c} of 200 identical pairs");
    let (x, _) = false_alarms(5000, 3000, true);
    assert!(x <= 2, "Wasserstein against the sketch flagged {x} of 200");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_half_std_shift_is_detected(
        seed in any::<u64>(),
        n_reference in 1000usize..6000,
        n_current in 1000usize..6000,
        sketch_only in any::<bool>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rx = normal_sample(&mut rng, n_reference, 0.0);
        let rc = categorical_sample(&mut rng, n_reference, &WEIGHTS);
        let cx = normal_sample(&mut rng, n_current, 0.5);
        let cc = categorical_sample(&mut rng, n_current, &WEIGHTS);
        let report = run((&rx, &rc), (&cx, &cc), sketch_only, seed);
        let x = report.feature("x").unwrap();
        let expected = if n_reference <= 1000 { StatTest::Ks } else { StatTest::Wasserstein };
        prop_assert_eq!(x.test, Some(expected));
        prop_assert!(x.drifted, "score {:?} n_ref {} n_cur {}", x.score, n_reference, n_current);
    }

    #[test]
    fn bad_values_are_counted_never_fatal(
        cells in prop::collection::vec(
            (prop_oneof![
                Just(Value::Missing),
                Just(Value::Number(f64::NAN)),
                Just(Value::Number(f64::INFINITY)),
                Just(Value::Text("x".into())),
                Just(Value::Text("".into())),
                (-5.0f64..5.0).prop_map(Value::Number),
             ],
             prop_oneof![
                Just(Value::Missing),
                Just(Value::Text("k0".into())),
                Just(Value::Text("k1".into())),
                Just(Value::Text("new".into())),
                Just(Value::Number(3.0)),
                "[a-z]{1,3}".prop_map(Value::Text),
             ]),
            0..300),
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rx = normal_sample(&mut rng, 500, 0.0);
        let rc = categorical_sample(&mut rng, 500, &[0.5, 0.5]);
        let config = SummaryConfig::default();
        let reference = DriftReference::from_summary(&summarise(&rx, &rc, config));
        let mut window = WindowSummary::for_reference(&reference, config);
        let mut present_x = 0u64;
        for (x, c) in &cells {
            if matches!(x, Value::Number(v) if v.is_finite()) {
                present_x += 1;
            }
            let row = [("x".to_owned(), x.clone()), ("c".to_owned(), c.clone())]
                .into_iter()
                .collect();
            window.push_values(&row);
        }
        let report = compare_reference(&reference, &window, &DriftPolicy::default());
        let x = report.feature("x").unwrap();
        prop_assert_eq!(x.current.count, present_x);
        prop_assert_eq!(report.current_rows, cells.len() as u64);
        if present_x == 0 {
            prop_assert!(x.score.is_none() && !x.drifted);
        }
        for f in &report.features {
            for v in [f.score, f.psi, f.jensen_shannon, f.p_value].into_iter().flatten() {
                prop_assert!(v.is_finite());
            }
            prop_assert!((0.0..=1.0).contains(&f.current.missing_rate));
        }
        let json = serde_json::to_string(&report).unwrap();
        let back: DriftReport = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, report);
    }
}
