#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Window summaries compared with references: a trained model's profile (as the monitor does),
//! and a reference built from data (as `mend drift` does).

use mend_core::drift::ks::ks_2samp;
use mend_core::drift::policy::FeaturePolicy;
use mend_core::drift::{
    DriftPolicy, DriftReference, DriftReport, FeatureLayout, StatTest, SummaryConfig,
    WindowSummary, compare, compare_reference,
};
use mend_core::record::{Value, Values};
use mend_core::{Artifact, Frame, Schema, SchemaOverride, TrainSettings, read_csv};
use mend_worlds::{Generator, Regime, SyntheticSpec, table_to_csv};

fn frame_of(generator: &mut Generator, rows: usize, shift: f64) -> (Schema, Frame) {
    let sample = generator.sample(
        rows,
        &Regime {
            shift,
            ..Regime::default()
        },
    );
    let csv = table_to_csv(&generator.to_table(&sample, true, 0, 0));
    let table = read_csv(csv.as_bytes()).unwrap();
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .unwrap();
    let frame = Frame::from_table(&schema, &table, true).unwrap();
    (schema, frame)
}

/// A model trained on 4,000 unshifted rows (3,200 train, so the distance tests apply).
fn trained() -> (Generator, Artifact) {
    let mut g = Generator::new(SyntheticSpec::default());
    let (schema, frame) = frame_of(&mut g, 4000, 0.0);
    let artifact = mend_core::train(&schema, &frame, &TrainSettings::default()).unwrap();
    (g, artifact)
}

fn window_for(artifact: &Artifact, frame: &Frame) -> WindowSummary {
    let mut window = WindowSummary::for_profile(&artifact.profile, SummaryConfig::default());
    window.push_frame(frame).unwrap();
    let proba = artifact.predict_proba(frame).unwrap();
    for row in proba.rows() {
        window.push_probabilities(row.as_slice().unwrap());
    }
    window
}

#[test]
fn a_half_std_shift_in_one_feature_is_found_from_the_artifact_profile() {
    let (mut g, artifact) = trained();
    let (_, current) = frame_of(&mut g, 3000, 0.5);
    let report = compare(
        &artifact.profile,
        &window_for(&artifact, &current),
        &DriftPolicy::default(),
    );
    assert_eq!(report.drifted_names(), vec!["x0"]);
    let x0 = report.feature("x0").unwrap();
    assert_eq!(x0.test, Some(StatTest::Wasserstein));
    let w = x0.score.unwrap();
    assert!(
        (0.35..0.65).contains(&w),
        "normed Wasserstein of a 0.5 std shift: {w}"
    );
    assert!(x0.psi.unwrap() > 0.1, "PSI {:?}", x0.psi);
    assert_eq!(
        report.feature("c0").unwrap().test,
        Some(StatTest::JensenShannon)
    );
    assert_eq!(report.tested_features, 6);
    assert!(!report.dataset_drift);
    let prediction = report.prediction.as_ref().unwrap();
    assert_eq!(prediction.rows, 3000);
    assert_eq!(prediction.classes.len(), 1);
}

#[test]
fn fresh_rows_from_the_same_world_do_not_drift() {
    let (mut g, artifact) = trained();
    g.reseed(99);
    let (_, current) = frame_of(&mut g, 3000, 0.0);
    let report = compare(
        &artifact.profile,
        &window_for(&artifact, &current),
        &DriftPolicy::default(),
    );
    assert!(
        report.drifted_names().is_empty(),
        "{:?}",
        report.drifted_names()
    );
    for f in &report.features {
        assert!(f.score.unwrap() < 0.1, "{}: {:?}", f.name, f.score);
        assert!(f.psi.unwrap() < 0.05, "{}: PSI {:?}", f.name, f.psi);
    }
    assert!(!report.prediction.unwrap().drifted);
}

/// Summaries of the x0 column of a frame.
fn summary_of(frame: &Frame, schema: &Schema, config: SummaryConfig) -> WindowSummary {
    let mut s = WindowSummary::for_schema(schema, config);
    s.push_frame(frame).unwrap();
    s
}

fn column(frame: &Frame, i: usize) -> Vec<f64> {
    match &frame.columns[i] {
        mend_core::Column::Numeric(v) => v.clone(),
        mend_core::Column::Categorical(_) => panic!("numeric column expected"),
    }
}

#[test]
fn a_small_reference_gets_exact_ks_like_scipy() {
    let mut g = Generator::new(SyntheticSpec::default());
    let (schema, reference) = frame_of(&mut g, 800, 0.0);
    let (_, current) = frame_of(&mut g, 900, 0.2);
    let reference_summary = summary_of(&reference, &schema, SummaryConfig::default());
    let built = DriftReference::from_summary(&reference_summary);
    let mut window = WindowSummary::for_reference(&built, SummaryConfig::default());
    window.push_frame(&current).unwrap();
    let report = compare_reference(&built, &window, &DriftPolicy::default());
    let x0 = report.feature("x0").unwrap();
    assert_eq!(x0.test, Some(StatTest::Ks));
    let expected = ks_2samp(&column(&reference, 0), &column(&current, 0)).unwrap();
    assert_eq!(x0.statistic, Some(expected.statistic));
    assert_eq!(x0.p_value, Some(expected.p_value));
    // Four categories, small reference: chi-square.
    assert_eq!(
        report.feature("c0").unwrap().test,
        Some(StatTest::ChiSquare)
    );
    assert_eq!(report.reference_rows, 800);
    assert_eq!(report.current_rows, 900);
}

#[test]
fn the_quantile_sketch_gives_the_verdicts_of_the_full_sample() {
    // The monitor only has the artifact's sketch; `mend drift` has the reference sample. Their
    // scores must agree closely on the same data.
    let mut g = Generator::new(SyntheticSpec::default());
    let (schema, reference) = frame_of(&mut g, 5000, 0.0);
    let config = SummaryConfig {
        reservoir_size: 10_000,
        ..SummaryConfig::default()
    };
    let built = DriftReference::from_summary(&summary_of(&reference, &schema, config));
    let mut sketch_only = built.clone();
    for f in &mut sketch_only.features {
        f.sample = None;
        f.distinct = None;
    }
    for shift in [0.0, 0.1, 0.3] {
        let (_, current) = frame_of(&mut g, 2000, shift);
        let mut window = WindowSummary::for_reference(&built, config);
        window.push_frame(&current).unwrap();
        let exact = compare_reference(&built, &window, &DriftPolicy::default());
        let sketched = compare_reference(&sketch_only, &window, &DriftPolicy::default());
        for (a, b) in exact.features.iter().zip(&sketched.features) {
            let (sa, sb) = (a.score.unwrap(), b.score.unwrap());
            assert!(
                (sa - sb).abs() < 0.01,
                "{} shift {shift}: {sa} vs {sb}",
                a.name
            );
            assert_eq!(a.drifted, b.drifted, "{} shift {shift}", a.name);
        }
        // And KS from the sketch is within the sketch's resolution of KS on the sample.
        let ks_policy = DriftPolicy {
            small_reference_rows: usize::MAX,
            ..DriftPolicy::default()
        };
        let exact = compare_reference(&built, &window, &ks_policy);
        let sketched = compare_reference(&sketch_only, &window, &ks_policy);
        let (da, db) = (
            exact.feature("x0").unwrap().statistic.unwrap(),
            sketched.feature("x0").unwrap().statistic.unwrap(),
        );
        assert!((da - db).abs() < 0.006, "KS D {da} vs {db}");
    }
}

fn values(pairs: &[(&str, Value)]) -> Values {
    pairs.iter().map(|(k, v)| (*k, v.clone())).collect()
}

/// A reference of `n` rows: `x` = i mod 97 (many values), `colour` cycling red/green/blue.
fn small_reference(n: usize) -> DriftReference {
    let schema_like = [
        FeatureLayout::numeric("x"),
        FeatureLayout::categorical("colour"),
    ];
    let mut s = WindowSummary::new(&schema_like, &[], SummaryConfig::default());
    let colours = ["red", "green", "blue"];
    for i in 0..n {
        s.push_values(&values(&[
            ("x", Value::Number((i % 97) as f64)),
            ("colour", Value::Text(colours[i % 3].into())),
        ]));
    }
    DriftReference::from_summary(&s)
}

#[test]
fn unseen_categories_and_missing_values_are_counted_and_reported() {
    let reference = small_reference(600);
    let mut window = WindowSummary::for_reference(&reference, SummaryConfig::default());
    for i in 0..300 {
        let colour = match i % 10 {
            0 => Value::Text("purple".into()),
            1 | 2 => Value::Missing,
            3 => Value::Text("NA".into()),
            4 => Value::Text("teal".into()),
            5 if i % 20 == 5 => Value::Text("teal".into()),
            _ => Value::Text(["red", "green", "blue"][i % 3].into()),
        };
        let x = if i % 7 == 0 {
            Value::Missing
        } else if i % 11 == 0 {
            Value::Text("not a number".into())
        } else {
            Value::Number((i % 97) as f64)
        };
        window.push_values(&values(&[("x", x), ("colour", colour)]));
    }
    // A row that lacks a feature counts it as missing.
    window.push_values(&values(&[("x", Value::Number(1.0))]));
    let report = compare_reference(&reference, &window, &DriftPolicy::default());

    let colour = report.feature("colour").unwrap();
    assert_eq!(colour.test, Some(StatTest::ChiSquare));
    // 30 purple, 30 + 15 teal (i%10==4, and i%20==5); 90 missing of 301.
    let unseen = colour.unseen.as_ref().unwrap();
    assert_eq!(unseen.distinct, 2);
    assert_eq!(unseen.count, 75);
    assert_eq!(unseen.top[0], ("teal".to_owned(), 45));
    assert_eq!(unseen.top[1], ("purple".to_owned(), 30));
    assert!((colour.current.missing_rate - 91.0 / 301.0).abs() < 1e-12);
    assert_eq!(colour.reference.missing_rate, 0.0);
    // A quarter of the present values in categories the reference never had: drifted.
    assert!(colour.drifted);
    assert!(colour.p_value.unwrap() < 1e-9, "p {:?}", colour.p_value);
    assert!(colour.statistic.unwrap() > 50.0);
    assert!(colour.jensen_shannon.unwrap() > 0.1);

    let x = report.feature("x").unwrap();
    let missing = (0..300).filter(|i| i % 7 == 0 || i % 11 == 0).count() as f64;
    assert!((x.current.missing_rate - missing / 301.0).abs() < 1e-12);
    assert!(x.score.is_some());

    // Everything survives JSON.
    let json = serde_json::to_string(&report).unwrap();
    let back: DriftReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn a_reference_with_pooled_categories_takes_new_ones_as_other() {
    let layout = [FeatureLayout::categorical("city")];
    let config = SummaryConfig {
        max_categories: 50,
        ..SummaryConfig::default()
    };
    let mut s = WindowSummary::new(&layout, &[], config);
    for i in 0..5000 {
        s.push_text(0, &format!("city{}", i % 200));
        s.end_row();
    }
    let reference = DriftReference::from_summary(&s);
    let mut window = WindowSummary::for_reference(&reference, config);
    for i in 0..5000 {
        window.push_text(0, &format!("city{}", (i * 7) % 400));
        window.end_row();
    }
    let report = compare_reference(&reference, &window, &DriftPolicy::default());
    let city = report.feature("city").unwrap();
    // The reference pooled 150 of its 200 cities; new cities join that pool, not "unseen".
    assert!(city.unseen.is_none());
    assert_eq!(city.test, Some(StatTest::JensenShannon));
    assert!(city.score.unwrap().is_finite());
}

#[test]
fn memory_stays_bounded_by_the_configuration() {
    let layout = [
        FeatureLayout {
            bin_edges: Some(vec![0.0, 1.0, 2.0]),
            ..FeatureLayout::numeric("x")
        },
        FeatureLayout {
            known_categories: vec!["a".into()],
            ..FeatureLayout::categorical("id")
        },
    ];
    let config = SummaryConfig {
        reservoir_size: 500,
        max_categories: 100,
        seed: 3,
    };
    let mut s = WindowSummary::new(&layout, &[], config);
    for i in 0..200_000u32 {
        s.push_number(0, f64::from(i % 1000) / 400.0);
        s.push_text(1, &i.to_string());
        s.end_row();
    }
    let mend_core::drift::summary::FeatureSummary::Numeric(x) = &s.features[0] else {
        panic!()
    };
    assert_eq!(s.sample.rows(), 500);
    assert!(!s.sample.is_complete());
    assert_eq!(s.sorted_sample(0).unwrap().len(), 500);
    assert_eq!(s.sorted_sample(1), None);
    assert_eq!(x.count, 200_000);
    assert_eq!(x.bin_counts.iter().sum::<u64>(), 200_000);
    assert!(x.distinct_overflow);
    let mend_core::drift::summary::FeatureSummary::Categorical(id) = &s.features[1] else {
        panic!()
    };
    assert_eq!(id.counts.len(), 101);
    assert_eq!(id.overflow, 200_000 - 100);
}

#[test]
fn policy_overrides_pick_tests_thresholds_and_ignored_features() {
    let (mut g, artifact) = trained();
    let (_, current) = frame_of(&mut g, 3000, 0.5);
    let window = window_for(&artifact, &current);
    let mut policy = DriftPolicy::default();
    policy.features.insert(
        "x0".into(),
        FeaturePolicy {
            test: Some(StatTest::Psi),
            threshold: Some(10.0),
            ignore: false,
        },
    );
    policy.features.insert(
        "x1".into(),
        FeaturePolicy {
            test: Some(StatTest::Ks),
            threshold: Some(1.0),
            ignore: false,
        },
    );
    policy.features.insert(
        "x2".into(),
        FeaturePolicy {
            ignore: true,
            ..FeaturePolicy::default()
        },
    );
    let report = compare(&artifact.profile, &window, &policy);
    let x0 = report.feature("x0").unwrap();
    assert_eq!(
        (x0.test, x0.threshold, x0.drifted),
        (Some(StatTest::Psi), 10.0, false)
    );
    assert_eq!(x0.score, x0.psi);
    // A p-value is always below 1: KS at threshold 1 flags anything.
    let x1 = report.feature("x1").unwrap();
    assert_eq!(x1.test, Some(StatTest::Ks));
    assert!(x1.drifted);
    let x2 = report.feature("x2").unwrap();
    assert!(x2.ignored && !x2.drifted);
    assert_eq!(report.tested_features, 5);
    assert_eq!(report.drifted_names(), vec!["x1"]);
}

#[test]
fn wasserstein_from_an_artifact_counts_every_window_row() {
    // Against a profile (sketch only), the window counts every value between the sketch's
    // points: the normed distance matches the exact one on all rows to within 0.005 (the error
    // left is the linear reading of the sketch's wide end slices), where a 2,000-value sample
    // would be off by about 0.02.
    use mend_core::drift::ReferenceFeature;
    use mend_core::drift::wasserstein::wasserstein;
    use mend_core::profile::{FeatureProfile, NumericProfile};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let reference: Vec<f64> = (0..200_000).map(|_| normal.sample(&mut rng)).collect();
    let profile = NumericProfile::from_values("x", &reference);
    let built = DriftReference {
        rows: reference.len() as u64,
        features: vec![ReferenceFeature {
            profile: FeatureProfile::Numeric(profile.clone()),
            sample: None,
            distinct: None,
        }],
        prediction: None,
    };
    type Change = fn(f64) -> f64;
    let cases: [(&str, Change); 4] = [
        ("same", |x| x),
        ("shift 0.08", |x| x + 0.08),
        ("std x1.1", |x| x * 1.1),
        ("heavy tail", |x| if x > 2.0 { x * 3.0 } else { x }),
    ];
    for (name, change) in cases {
        let current: Vec<f64> = (0..200_000)
            .map(|_| change(normal.sample(&mut rng)))
            .collect();
        let mut window = WindowSummary::for_reference(&built, SummaryConfig::default());
        for &x in &current {
            window.push_number(0, x);
            window.end_row();
        }
        let report = compare_reference(&built, &window, &DriftPolicy::default());
        let x = report.feature("x").unwrap();
        assert_eq!(x.test, Some(StatTest::Wasserstein));
        assert!(x.notes.is_empty(), "{name}: {:?}", x.notes);
        let exact = wasserstein(&reference, &current) / profile.std;
        let got = x.score.unwrap();
        assert!(
            (got - exact).abs() < 0.005,
            "{name}: from counts {got}, exact {exact}"
        );
    }
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} (±{tolerance})"
    );
}

/// A model profile as an artifact keeps it, of one categorical feature `flag` present in 600
/// reference rows, 360 `no` and 240 `yes`, and no predictions.
fn flag_profile() -> mend_core::ReferenceProfile {
    use mend_core::Metrics;
    use mend_core::profile::{CategoricalProfile, FeatureProfile, PredictionProfile};
    mend_core::ReferenceProfile {
        rows: 600,
        features: vec![FeatureProfile::Categorical(CategoricalProfile {
            name: "flag".into(),
            count: 600,
            missing_rate: 0.0,
            frequencies: [("no".to_owned(), 0.6), ("yes".to_owned(), 0.4)]
                .into_iter()
                .collect(),
        })],
        prediction: PredictionProfile {
            classes: Vec::new(),
            probability_bins: Vec::new(),
            mean_probability: Vec::new(),
            predicted_share: Vec::new(),
        },
        holdout_metrics: Metrics {
            rows: 0,
            accuracy: 0.0,
            macro_precision: 0.0,
            macro_recall: 0.0,
            macro_f1: 0.0,
            roc_auc: None,
            log_loss: 0.0,
            brier: 0.0,
            per_class: Vec::new(),
            confusion: Vec::new(),
        },
    }
}

/// A window of 400 rows of `flag`: `yes` of them `yes`, the rest `no`.
fn flag_window(profile: &mend_core::ReferenceProfile, yes: usize) -> WindowSummary {
    let mut window = WindowSummary::for_profile(profile, SummaryConfig::default());
    for i in 0..400 {
        window.push_text(0, if i < yes { "yes" } else { "no" });
        window.end_row();
    }
    window
}

// The Z-test's expected numbers: Evidently's proportions_diff_z_stat_ind and
// proportions_diff_z_test on the share of the values after the first in sorted order (`yes`, or
// 1), written out in Python with scipy 1.17.1:
//   p1, p2, P = 240/600, 200/400, (240 + 200)/(600 + 400)
//   z = (p1 - p2) / math.sqrt(P * (1 - P) * (1/600 + 1/400))  -> -3.1209389196617954
//   2 * scipy.stats.norm.sf(abs(z))                           -> 0.0018027542196358795
// and with 180 of 400 in the window: z = -1.5694120514358607, p = 0.11655195774607754.
const Z_CASES: [(usize, f64, f64, bool); 2] = [
    (
        200,
        -3.120_938_919_661_795_4,
        0.001_802_754_219_635_879_5,
        true,
    ),
    (
        180,
        -1.569_412_051_435_860_7,
        0.116_551_957_746_077_54,
        false,
    ),
];

#[test]
fn a_binary_category_on_a_small_reference_is_judged_by_the_z_test() {
    // Two categories and a reference of at most 1,000 rows: Evidently's rule picks the
    // two-proportion Z-test, here through `compare` on a model's profile.
    let profile = flag_profile();
    for (yes, z, p, drifted) in Z_CASES {
        let report = compare(
            &profile,
            &flag_window(&profile, yes),
            &DriftPolicy::default(),
        );
        let flag = report.feature("flag").unwrap();
        assert_eq!(flag.test, Some(StatTest::ZTest), "{yes} yes");
        assert_eq!(flag.test.map(StatTest::label), Some("Z-test p-value"));
        assert_eq!(flag.threshold, 0.05);
        assert_close(flag.statistic.unwrap(), z, 1e-10, "z");
        assert_close(flag.p_value.unwrap(), p, 1e-12, "p");
        assert_eq!(flag.score, flag.p_value);
        assert_eq!(flag.drifted, drifted, "{yes} yes: p {:?}", flag.p_value);
    }
}

#[test]
fn a_numeric_feature_with_two_values_is_judged_by_the_z_test_too() {
    // The same counts as 0/1 numbers, with a reference built from data: the numeric feature
    // has two distinct values, so it is tested like a binary category.
    let mut reference = WindowSummary::new(
        &[FeatureLayout::numeric("bit")],
        &[],
        SummaryConfig::default(),
    );
    for i in 0..600 {
        reference.push_number(0, if i < 240 { 1.0 } else { 0.0 });
        reference.end_row();
    }
    let reference = DriftReference::from_summary(&reference);
    for (ones, z, p, drifted) in Z_CASES {
        let mut window = WindowSummary::for_reference(&reference, SummaryConfig::default());
        for i in 0..400 {
            window.push_number(0, if i < ones { 1.0 } else { 0.0 });
            window.end_row();
        }
        let report = compare_reference(&reference, &window, &DriftPolicy::default());
        let bit = report.feature("bit").unwrap();
        assert_eq!(bit.test, Some(StatTest::ZTest), "{ones} ones");
        assert_close(bit.statistic.unwrap(), z, 1e-10, "z");
        assert_close(bit.p_value.unwrap(), p, 1e-12, "p");
        assert_eq!(bit.drifted, drifted, "{ones} ones: p {:?}", bit.p_value);
    }
}

#[test]
fn a_score_exactly_at_a_features_threshold_falls_on_the_documented_side() {
    // A p-value test flags p < threshold; a distance flags distance >= threshold. The threshold
    // is set by policy to the very score the feature gets, then to the next float above it.
    let profile = flag_profile();
    let window = flag_window(&profile, 200);
    let judged = |test: StatTest, threshold: Option<f64>| {
        let mut policy = DriftPolicy::default();
        policy.features.insert(
            "flag".into(),
            FeaturePolicy {
                test: Some(test),
                threshold,
                ignore: false,
            },
        );
        let report = compare(&profile, &window, &policy);
        let flag = report.feature("flag").unwrap();
        assert_eq!(flag.test, Some(test));
        (flag.score.unwrap(), flag.drifted)
    };
    let (p, _) = judged(StatTest::ZTest, None);
    assert_eq!(judged(StatTest::ZTest, Some(p)), (p, false));
    assert_eq!(judged(StatTest::ZTest, Some(p.next_up())), (p, true));
    let (js, _) = judged(StatTest::JensenShannon, None);
    assert!(js > 0.0);
    assert_eq!(judged(StatTest::JensenShannon, Some(js)), (js, true));
    assert_eq!(
        judged(StatTest::JensenShannon, Some(js.next_up())),
        (js, false)
    );
}

/// Categorical features `f0`, `f1`, ...
fn categorical_layout(features: usize) -> Vec<FeatureLayout> {
    (0..features)
        .map(|f| FeatureLayout::categorical(&format!("f{f}")))
        .collect()
}

/// 300 rows where every feature cycles `a`, `b`, `c` except those in `all_a` (always `a`),
/// then `missing` rows where every feature is missing.
fn cycling(layout: &[FeatureLayout], all_a: &[usize], missing: usize) -> WindowSummary {
    let mut s = WindowSummary::new(layout, &[], SummaryConfig::default());
    for i in 0..300 {
        for f in 0..layout.len() {
            let value = if all_a.contains(&f) {
                "a"
            } else {
                ["a", "b", "c"][i % 3]
            };
            s.push_text(f, value);
        }
        s.end_row();
    }
    for _ in 0..missing {
        for f in 0..layout.len() {
            s.push_missing(f);
        }
        s.end_row();
    }
    s
}

#[test]
fn the_dataset_drifts_when_exactly_half_the_tested_features_drift() {
    // Five features of 300 reference rows (chi-square each); f4 is ignored by policy and
    // drifts in every window, so it must count neither as tested nor as drifted.
    let reference = DriftReference::from_summary(&cycling(&categorical_layout(5), &[], 0));
    let mut policy = DriftPolicy::default();
    policy.features.insert(
        "f4".into(),
        FeaturePolicy {
            ignore: true,
            ..FeaturePolicy::default()
        },
    );
    // Two of four: a share of exactly 0.5, the default threshold, is dataset drift.
    let half = compare_reference(
        &reference,
        &cycling(&reference.layout(), &[0, 1, 4], 0),
        &policy,
    );
    assert_eq!(half.drifted_names(), vec!["f0", "f1"]);
    assert_eq!((half.tested_features, half.drifted_features), (4, 2));
    assert_eq!(half.drift_share, 0.5);
    assert_eq!(half.dataset_drift_threshold, 0.5);
    assert!(half.dataset_drift);
    // One of four is not.
    let quarter = compare_reference(
        &reference,
        &cycling(&reference.layout(), &[0, 4], 0),
        &policy,
    );
    assert_eq!(quarter.drifted_names(), vec!["f0"]);
    assert_eq!((quarter.tested_features, quarter.drifted_features), (4, 1));
    assert_eq!(quarter.drift_share, 0.25);
    assert!(!quarter.dataset_drift);
}

#[test]
fn a_missing_rate_rising_by_more_than_the_policy_limit_is_drift() {
    // The present values are spread over a, b, c exactly as in the reference, so the test
    // itself (chi-square) sees nothing: only the missing values can make the feature drift.
    let judge = |reference: &DriftReference, missing: usize, limit: Option<f64>| {
        let policy = DriftPolicy {
            missing_rate_increase: limit,
            ..DriftPolicy::default()
        };
        let window = cycling(&reference.layout(), &[], missing);
        let report = compare_reference(reference, &window, &policy);
        let f0 = report.feature("f0").unwrap().clone();
        assert_eq!(f0.test, Some(StatTest::ChiSquare));
        assert!(f0.p_value.unwrap() > 0.99, "p {:?}", f0.p_value);
        f0
    };
    let complete = DriftReference::from_summary(&cycling(&categorical_layout(1), &[], 0));
    // 76 of 376 missing (0.2021) against none: more than 0.2 more.
    let over = judge(&complete, 76, Some(0.2));
    assert!(over.drifted);
    assert_eq!(over.notes, vec!["missing rate rose from 0.000 to 0.202"]);
    // 75 of 375 is 0.2 exactly: a rise of exactly the limit is not more than it.
    let at = judge(&complete, 75, Some(0.2));
    assert_eq!(at.current.missing_rate, 0.2);
    assert!(!at.drifted, "{:?}", at.notes);
    assert!(at.notes.is_empty(), "{:?}", at.notes);
    // Off by default, however many values go missing.
    assert!(!judge(&complete, 600, None).drifted);
    // The rise is counted from the reference's own rate: half missing there (300 of 600).
    let half_missing = DriftReference::from_summary(&cycling(&categorical_layout(1), &[], 300));
    // 450 of 750 (0.6) is a rise of 0.1; 900 of 1,200 (0.75) a rise of 0.25.
    assert!(!judge(&half_missing, 450, Some(0.2)).drifted);
    let risen = judge(&half_missing, 900, Some(0.2));
    assert!(risen.drifted);
    assert_eq!(risen.notes, vec!["missing rate rose from 0.500 to 0.750"]);
}

/// `(i * 0.6180339887498949) % 1.0` for i in range(n), as Python computes it bit for bit.
fn golden(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.618_033_988_749_894_9) % 1.0)
        .collect()
}

/// `((i * 0.4142135623730951) % 1.0) ** power` for i in range(n).
fn silver(n: usize, power: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 0.414_213_562_373_095_1) % 1.0).powf(power))
        .collect()
}

#[test]
fn small_references_of_any_size_get_scipys_exact_ks() {
    // Reference sizes other than 1,000, through a reference built from data and `compare`.
    // stats.ks_2samp(golden(n), silver(m, power)) with scipy 1.17.1 (method auto -> exact):
    //   (300, 500, 1.3) -> (0.09933333333333333, 0.04648778427608249)
    //   (750, 400, 1.2) -> (0.07166666666666667, 0.1298126234666609)
    //   (120, 150, 1.5) -> (0.15666666666666668, 0.0682955752592914)
    //   (999, 700, 1.3) -> (0.09839696839696839, 0.0006300484896969352)
    // Drift at p < 0.05: 0.0465 and 0.00063 are, 0.130 and 0.068 are not.
    let cases = [
        (
            300,
            500,
            1.3,
            0.099_333_333_333_333_33,
            0.046_487_784_276_082_49,
            true,
        ),
        (
            750,
            400,
            1.2,
            0.071_666_666_666_666_67,
            0.129_812_623_466_660_9,
            false,
        ),
        (
            120,
            150,
            1.5,
            0.156_666_666_666_666_68,
            0.068_295_575_259_291_4,
            false,
        ),
        (
            999,
            700,
            1.3,
            0.098_396_968_396_968_39,
            0.000_630_048_489_696_935_2,
            true,
        ),
    ];
    for (n, m, power, d, p, drifted) in cases {
        let mut reference = WindowSummary::new(
            &[FeatureLayout::numeric("x")],
            &[],
            SummaryConfig::default(),
        );
        for v in golden(n) {
            reference.push_number(0, v);
            reference.end_row();
        }
        let reference = DriftReference::from_summary(&reference);
        let mut window = WindowSummary::for_reference(&reference, SummaryConfig::default());
        for v in silver(m, power) {
            window.push_number(0, v);
            window.end_row();
        }
        let report = compare_reference(&reference, &window, &DriftPolicy::default());
        let x = report.feature("x").unwrap();
        assert_eq!(x.test, Some(StatTest::Ks), "reference of {n}");
        assert_close(x.statistic.unwrap(), d, 1e-12, "D");
        assert_close(x.p_value.unwrap(), p, 1e-9, "p");
        assert_eq!(x.drifted, drifted, "reference of {n}: p {p}");
    }
}
