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

/// `D = max |F_a(z) - F_b(z)|` over every value `z` of either sample, each empirical CDF counted
/// from its definition (`#{v <= z} / n`), not by the merge walk mend uses.
fn ks_d_by_counting(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    a.iter()
        .chain(&b)
        .map(|&z| {
            let fa = a.partition_point(|&v| v <= z) as f64 / n;
            let fb = b.partition_point(|&v| v <= z) as f64 / m;
            (fa - fb).abs()
        })
        .fold(0.0, f64::max)
}

/// The Kolmogorov distribution's survival function from its series (Kolmogorov 1933),
/// `Q(λ) = 2 Σ_{k>=1} (-1)^(k-1) exp(-2 k² λ²)`, the limit of `P(√en · D > λ)` for two samples
/// of `n` and `m` values, `en = nm / (n + m)`. Written out here, apart from mend's own. Below
/// λ = 0.2 it is 1 to twelve digits and the series would converge too slowly.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let sum: f64 = (1..=100)
        .map(|k: i32| {
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            let k = f64::from(k);
            sign * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    (2.0 * sum).clamp(0.0, 1.0)
}

/// `scipy.stats.kstwobign.isf(0.05)` (scipy 1.17.1): the 95th percentile of the Kolmogorov
/// distribution, the large-sample critical value of `√en · D` at alpha = 0.05.
const KOLMOGOROV_95: f64 = 1.358_098_639_322_550_7;

#[test]
fn the_written_out_kolmogorov_series_matches_scipy() {
    // kstwobign.sf(1.0) = 0.26999967167735456, kstwobign.sf(0.5) = 0.9639452436648751
    assert!((kolmogorov_q(KOLMOGOROV_95) - 0.05).abs() < 1e-12);
    assert!((kolmogorov_q(1.0) - 0.269_999_671_677_354_56).abs() < 1e-13);
    assert!((kolmogorov_q(0.5) - 0.963_945_243_664_875_1).abs() < 1e-13);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_half_std_shift_is_detected_on_large_references(
        seed in any::<u64>(),
        n_reference in 1001usize..6000,
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
        // More than 1,000 reference values: Wasserstein (drift::policy's table). A 0.5 std
        // shift moves every quantile by 0.5 std, a normed distance of about 0.5 against 0.1.
        prop_assert_eq!(x.test, Some(StatTest::Wasserstein));
        prop_assert!(x.drifted, "score {:?} n_ref {} n_cur {}", x.score, n_reference, n_current);
    }

    #[test]
    fn ks_on_small_references_agrees_with_the_kolmogorov_limit(
        seed in any::<u64>(),
        n_reference in 100usize..=1000,
        n_current in 100usize..=2000,
        shift in prop_oneof![Just(0.0), Just(0.25), Just(0.5)],
        sketch_only in any::<bool>(),
    ) {
        // Both samples fit the row sample (2,000 rows), so the window compares all of them.
        let mut rng = StdRng::seed_from_u64(seed);
        let rx = normal_sample(&mut rng, n_reference, 0.0);
        let rc = categorical_sample(&mut rng, n_reference, &WEIGHTS);
        let cx = normal_sample(&mut rng, n_current, shift);
        let cc = categorical_sample(&mut rng, n_current, &WEIGHTS);
        let report = run((&rx, &rc), (&cx, &cc), sketch_only, seed);
        let x = report.feature("x").unwrap();
        // At most 1,000 reference values of a continuous feature: KS (drift::policy's table).
        prop_assert_eq!(x.test, Some(StatTest::Ks));
        // D from the samples is exact. From the reference's 201-point sketch, read as a
        // piecewise-linear CDF, it is off by at most the sketch's spacing (1/200) plus one step
        // of the reference's ECDF (1/n); measured in Python on 300 such pairs: under half that.
        let d = ks_d_by_counting(&rx, &cx);
        let tolerance = if sketch_only { 0.005 + 1.0 / n_reference as f64 } else { 1e-12 };
        let reported = x.statistic.unwrap();
        prop_assert!(
            (reported - d).abs() <= tolerance,
            "D {} by counting {} (n {} m {} sketch {})", reported, d, n_reference, n_current,
            sketch_only
        );
        // Against the limit with Stephens' (1970) finite-size factor, λ = (r + 0.12 + 0.11/r) D,
        // r = √en. mend computes the exact p-value at these sizes; measured with scipy's exact
        // two-sample test over every attainable D for n in 100..=105, m in 100..=111 and over a
        // grid up to 1,000 x 2,000, the two differ by at most 0.042, and the exact test's
        // verdict at alpha = 0.05 changes within 1.6 % of the critical λ.
        let (n, m) = (n_reference as f64, n_current as f64);
        let r = (n * m / (n + m)).sqrt();
        let stephens = r + 0.12 + 0.11 / r;
        let p = x.p_value.unwrap();
        if !sketch_only {
            let limit = kolmogorov_q(stephens * d);
            prop_assert!(
                (p - limit).abs() < 0.05,
                "p {} limit {} (D {} n {} m {})", p, limit, d, n_reference, n_current
            );
        }
        let (low, high) = (stephens * (d - tolerance), stephens * (d + tolerance));
        let sizes = format!("n {n_reference} m {n_current} sketch {sketch_only}");
        if low > KOLMOGOROV_95 * 1.05 {
            prop_assert!(x.drifted, "λ >= {} but p {} ({})", low, p, sizes);
        } else if high < KOLMOGOROV_95 * 0.95 {
            prop_assert!(!x.drifted, "λ <= {} but p {} ({})", high, p, sizes);
        }
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
