#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Each drift statistic on fixed inputs against values computed independently with scipy 1.17.1
//! (numpy 2.4.6). The script that produced every number is quoted next to it.

use mend_core::drift::StatTest;
use mend_core::drift::chisquare::{chi_square, chi_square_against_shares, chi_square_homogeneity};
use mend_core::drift::divergence::{fill_zeroes, jensen_shannon, psi};
use mend_core::drift::ks::{KsMethod, ks_2samp};
use mend_core::drift::special::{chi2_sf, kolmogorov_sf, normal_sf};
use mend_core::drift::wasserstein::{normed, wasserstein};
use mend_core::drift::ztest::two_proportion_z;

const A: [f64; 25] = [
    0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82, 0.37,
    1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.52, -0.74, 0.13, 0.76,
];
const B: [f64; 30] = [
    1.21, 0.63, 0.96, 1.42, 0.27, 1.93, 0.88, 1.55, -0.12, 1.07, 0.49, 2.21, 1.36, 0.71, 1.01,
    0.19, 1.68, 0.94, 2.55, 0.33, 1.12, 0.8, 1.49, 0.58, 1.87, -0.4, 1.3, 0.99, 2.02, 0.66,
];

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} (±{tolerance})"
    );
}

/// `(i * 0.6180339887498949) % 1.0` for i in range(n): a deterministic uniform-ish sample that
/// Python computes bit-for-bit the same way.
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
fn ks_exact_unequal_sizes() {
    // stats.ks_2samp(A, B) -> (0.4533333333333333, 0.004796698304049328)
    let r = ks_2samp(&A, &B).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.453_333_333_333_333_3, 1e-12, "D");
    assert_close(r.p_value, 0.004_796_698_304_049_328, 1e-12, "p");
}

#[test]
fn ks_exact_equal_sizes() {
    // stats.ks_2samp(A, B[:25]) -> (0.44, 0.014838084605848645)
    let r = ks_2samp(&A, &B[..25]).unwrap();
    assert_close(r.statistic, 0.44, 1e-12, "D");
    assert_close(r.p_value, 0.014_838_084_605_848_645, 1e-12, "p");
}

#[test]
fn ks_with_ties() {
    // stats.ks_2samp([1,2,2,3,3,3,4,4,5,9], [2,3,3,3,4,5,5,6,7,7,8,9])
    //   -> (0.38333333333333336, 0.3182699653287888)
    let c = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0, 9.0];
    let d = [2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0, 7.0, 8.0, 9.0];
    let r = ks_2samp(&c, &d).unwrap();
    assert_close(r.statistic, 0.383_333_333_333_333_36, 1e-12, "D");
    assert_close(r.p_value, 0.318_269_965_328_788_8, 1e-12, "p");
}

#[test]
fn ks_exact_hundreds_of_values() {
    // x = golden(600); y = silver(900, 1.1); stats.ks_2samp(x, y)
    //   -> (0.03666666666666667, 0.7084786790331091)
    let r = ks_2samp(&golden(600), &silver(900, 1.1)).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.036_666_666_666_666_67, 1e-12, "D");
    assert_close(r.p_value, 0.708_478_679_033_109_1, 1e-9, "p");
}

#[test]
fn ks_asymptotic_above_ten_thousand() {
    // x = golden(12000); y = silver(11000, 1.02); stats.ks_2samp(x, y)  (method auto -> asymp,
    // kstwo.sf(d, round(en))) -> (0.007424242424242389, 0.9073963536488026). mend uses the
    // Kolmogorov limit with Stephens' correction: within 2e-3 here, closer in the tail.
    let r = ks_2samp(&golden(12_000), &silver(11_000, 1.02)).unwrap();
    assert_eq!(r.method, KsMethod::Asymptotic);
    assert_close(r.statistic, 0.007_424_242_424_242_389, 1e-12, "D");
    assert_close(r.p_value, 0.907_396_353_648_802_6, 2e-3, "p");
}

#[test]
fn chi_square_goodness_of_fit() {
    // stats.chisquare([16,18,16,14,12,12], [16,16,16,16,16,8]) -> (3.5, 0.6233876277495822)
    let r = chi_square(
        &[16.0, 18.0, 16.0, 14.0, 12.0, 12.0],
        &[16.0, 16.0, 16.0, 16.0, 16.0, 8.0],
    );
    assert_eq!(r.dof, 5);
    assert_close(r.statistic, 3.5, 1e-12, "X2");
    assert_close(r.p_value, 0.623_387_627_749_582_2, 1e-12, "p");

    // stats.chisquare([30,14,34,45,57,20], [0.2,0.1,0.15,0.25,0.2,0.1] * 200)
    //   -> (12.558333333333334, 0.027888602865038886)
    let r = chi_square_against_shares(
        &[30.0, 14.0, 34.0, 45.0, 57.0, 20.0],
        &[0.2, 0.1, 0.15, 0.25, 0.2, 0.1],
    );
    assert_close(r.statistic, 12.558_333_333_333_334, 1e-10, "X2");
    assert_close(r.p_value, 0.027_888_602_865_038_886, 1e-12, "p");
}

#[test]
fn chi_square_homogeneity_of_two_samples() {
    // stats.chi2_contingency([[120,90,60,30],[150,100,70,80]], correction=False)
    //   -> (13.34273913221282, 0.003951101065913864, dof 3)
    let r = chi_square_homogeneity(&[120.0, 90.0, 60.0, 30.0], &[150.0, 100.0, 70.0, 80.0]);
    assert_eq!(r.dof, 3);
    assert_close(r.statistic, 13.342_739_132_212_82, 1e-10, "X2");
    assert_close(r.p_value, 0.003_951_101_065_913_864, 1e-13, "p");
    // A category only the current sample has stays finite:
    // stats.chi2_contingency([[200,200,200,0],[50,60,40,30]], correction=False)
    //   -> (106.88888888888889, 5.126093689125985e-23)
    let r = chi_square_homogeneity(&[200.0, 200.0, 200.0, 0.0], &[50.0, 60.0, 40.0, 30.0]);
    assert_close(r.statistic, 106.888_888_888_888_89, 1e-10, "X2");
    assert_close(
        r.p_value / 5.126_093_689_125_985e-23,
        1.0,
        1e-9,
        "p relative",
    );
}

#[test]
fn a_category_the_reference_never_saw_is_certain_drift_for_goodness_of_fit() {
    let r = chi_square_against_shares(&[10.0, 10.0, 1.0], &[0.5, 0.5, 0.0]);
    assert!(r.statistic.is_infinite());
    assert_eq!(r.p_value, 0.0);
}

#[test]
fn chi_square_survival_function() {
    // stats.chi2.sf(3.84, 1) = 0.05004352124870519; chi2.sf(250, 200) = 0.009379131668826098;
    // chi2.sf(0.5, 7) = 0.9994464813904249; chi2.sf(80, 10) = 5.020464318829132e-13
    assert_close(
        chi2_sf(3.84, 1.0),
        0.050_043_521_248_705_19,
        1e-13,
        "sf(3.84, 1)",
    );
    assert_close(
        chi2_sf(250.0, 200.0),
        0.009_379_131_668_826_098,
        1e-13,
        "sf(250, 200)",
    );
    assert_close(
        chi2_sf(0.5, 7.0),
        0.999_446_481_390_424_9,
        1e-13,
        "sf(0.5, 7)",
    );
    let tail = chi2_sf(80.0, 10.0);
    assert_close(
        tail / 5.020_464_318_829_132e-13,
        1.0,
        1e-9,
        "sf(80, 10) relative",
    );
}

#[test]
fn normal_and_kolmogorov_tails() {
    // stats.norm.sf(-1.0) = 0.8413447460685429
    assert_close(
        normal_sf(-1.0),
        0.841_344_746_068_542_9,
        1e-14,
        "norm.sf(-1)",
    );
    // stats.kstwobign.sf(0.5) = 0.9639452436648751, sf(1.0) = 0.26999967167735456,
    // sf(2.0) = 0.0006709252557796953
    assert_close(kolmogorov_sf(0.5), 0.963_945_243_664_875_1, 1e-13, "Q(0.5)");
    assert_close(kolmogorov_sf(1.0), 0.269_999_671_677_354_56, 1e-13, "Q(1)");
    assert_close(
        kolmogorov_sf(2.0),
        0.000_670_925_255_779_695_3,
        1e-15,
        "Q(2)",
    );
}

#[test]
fn two_proportion_z_test() {
    // Evidently's proportions_diff_z_stat_ind / proportions_diff_z_test, in numpy:
    // x1=420, n1=1000, x2=380, n2=800 -> z = -2.3334523779156067, p = 0.019624414976639803
    let r = two_proportion_z(420.0, 1000.0, 380.0, 800.0);
    assert_close(r.statistic, -2.333_452_377_915_606_7, 1e-12, "z");
    assert_close(r.p_value, 0.019_624_414_976_639_803, 1e-12, "p");
    let same = two_proportion_z(0.0, 10.0, 0.0, 20.0);
    assert_eq!(same.p_value, 1.0);
}

#[test]
fn wasserstein_distance_and_its_normalisation() {
    // stats.wasserstein_distance([0,1,3],[5,6,8]) = 5.0
    assert_close(
        wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]),
        5.0,
        1e-12,
        "W1",
    );
    // stats.wasserstein_distance(A, B) = 0.7718666666666666;
    // / max(np.std(A), 0.001) = 0.810159814274988
    let w = wasserstein(&A, &B);
    assert_close(w, 0.771_866_666_666_666_6, 1e-12, "W1(A, B)");
    let std_a = {
        let mean = A.iter().sum::<f64>() / A.len() as f64;
        (A.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / A.len() as f64).sqrt()
    };
    assert_close(normed(w, std_a), 0.810_159_814_274_988, 1e-12, "normed");
    assert_eq!(normed(0.5, 0.0), 500.0);
}

#[test]
fn jensen_shannon_distance_natural_log() {
    // distance.jensenshannon([0.1,0.4,0.5],[0.3,0.3,0.4]) = 0.18035965602712561
    // (Evidently 0.7.23 calls it with base=None; base=2 would give 0.21663402449519667)
    assert_close(
        jensen_shannon(&[0.1, 0.4, 0.5], &[0.3, 0.3, 0.4]),
        0.180_359_656_027_125_61,
        1e-14,
        "JS",
    );
    // distance.jensenshannon([10,0,30,60],[20,15,0,65]) = 0.4061443104174887
    assert_close(
        jensen_shannon(&[10.0, 0.0, 30.0, 60.0], &[20.0, 15.0, 0.0, 65.0]),
        0.406_144_310_417_488_7,
        1e-14,
        "JS with empty bins",
    );
}

#[test]
fn population_stability_index() {
    // Evidently's psi (get_binned_data zero fill, then sum((r-c)*ln(r/c))), in numpy:
    // psi([0.1]*10, [.05,.05,.1,.1,.1,.1,.1,.1,.15,.15]) = 0.10986122886681095
    // psi([.25,.25,.5,0], [.2,.3,.3,.2]) = 1.6418587818210688 (the empty bin becomes 0.0001)
    let current = [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15];
    assert_close(
        psi(&[0.1; 10], &current),
        0.109_861_228_866_810_95,
        1e-14,
        "PSI",
    );
    assert_close(
        psi(&[0.25, 0.25, 0.5, 0.0], &[0.2, 0.3, 0.3, 0.2]),
        1.641_858_781_821_068_8,
        1e-12,
        "PSI with an empty bin",
    );
    assert_eq!(fill_zeroes(&[0.5, 0.0]), vec![0.5, 0.0001]);
    assert_eq!(fill_zeroes(&[0.00005, 0.0])[1], 0.00005 / 1e6);
}

#[test]
fn a_p_value_at_its_threshold_is_not_drift_and_a_distance_at_its_threshold_is() {
    // The documented verdicts (drift::policy): a p-value test flags p < threshold, a distance
    // flags distance >= threshold. At exactly the threshold the two fall on opposite sides.
    for test in [StatTest::Ks, StatTest::ChiSquare, StatTest::ZTest] {
        assert!(!test.drifted(0.05, 0.05), "{test:?} at p = threshold");
        assert!(
            test.drifted(0.05_f64.next_down(), 0.05),
            "{test:?} just below"
        );
        assert!(
            !test.drifted(0.05_f64.next_up(), 0.05),
            "{test:?} just above"
        );
        // A p-value of 1 (identical samples) at a threshold of 1 is not drift either.
        assert!(!test.drifted(1.0, 1.0), "{test:?} at p = 1");
    }
    for test in [
        StatTest::Wasserstein,
        StatTest::JensenShannon,
        StatTest::Psi,
    ] {
        assert!(test.drifted(0.1, 0.1), "{test:?} at distance = threshold");
        assert!(
            !test.drifted(0.1_f64.next_down(), 0.1),
            "{test:?} just below"
        );
        assert!(test.drifted(0.1_f64.next_up(), 0.1), "{test:?} just above");
        // A distance of 0 (identical distributions) at a threshold of 0 is drift.
        assert!(test.drifted(0.0, 0.0), "{test:?} at distance 0");
    }
}
