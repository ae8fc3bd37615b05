//! Measures the monitor's false alarms and detection delays for a grid of settings, to choose
//! its defaults with evidence (findings in the README's configuration notes).
//!
//! ```text
//! cargo run --release -p mend-monitor --example monitor_defaults -- [--rows N] [--seeds S]
//! ```
//!
//! `--rows`: calm rows streamed per setting and seed (default 200,000); `--seeds`: models
//! trained per reference size, each on different rows of the same world (default 5). Prints
//! Markdown tables: data and prediction drift alarms per 1,000,000 calm rows by reference
//! size, window rows and confirmation windows, with the delay to detect a 0.5-std shift of
//! one feature; performance alarms per 1,000,000 calm labels by label window and tolerance,
//! and by Page-Hinkley, with the delay to detect a flipped concept.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod measure;

use std::sync::Arc;
use std::time::Instant;

use measure::{
    Knobs, calm, flip_delay, page_hinkley_calm_alarms, page_hinkley_delay, replay_alarms,
    rotation_delay, shift_delay, train_model,
};
use mend_core::Artifact;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;

/// Page-Hinkley settings tried (delta, threshold, alpha): River's defaults first.
const DETECTORS: [(f64, f64, f64); 12] = [
    (0.005, 50.0, 0.9999),
    (0.005, 100.0, 0.9999),
    (0.005, 200.0, 0.9999),
    (0.005, 50.0, 1.0),
    (0.005, 100.0, 1.0),
    (0.01, 50.0, 1.0),
    (0.01, 75.0, 1.0),
    (0.01, 100.0, 1.0),
    (0.02, 50.0, 1.0),
    (0.02, 75.0, 1.0),
    (0.02, 100.0, 1.0),
    (0.03, 50.0, 1.0),
];
/// Error rates of a calm champion (accuracy 0.85, 0.75, 0.65).
const ERROR_RATES: [f64; 3] = [0.15, 0.25, 0.35];

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    let args: Vec<String> = std::env::args().collect();
    let text = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str);
    text.split(',')
        .map(|v| {
            v.trim()
                .parse()
                .ok()
                .expect("a comma-separated list of numbers")
        })
        .collect()
}

fn section(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--section") {
        Some(i) => args.get(i + 1).is_some_and(|s| s == name || s == "all"),
        None => true,
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// One champion per seed, trained on `reference` rows.
fn models(reference: usize, seeds: u64) -> Vec<Arc<Artifact>> {
    (0..seeds)
        .map(|seed| Arc::new(train_model(reference, seed).expect("trains")))
        .collect()
}

/// `f(seed, model)` for each seed's model.
fn per_seed<T>(models: &[Arc<Artifact>], f: impl Fn(u64, &Arc<Artifact>) -> T) -> Vec<T> {
    models
        .iter()
        .enumerate()
        .map(|(seed, model)| f(seed as u64, model))
        .collect()
}

fn per_million(count: usize, rows: usize) -> f64 {
    count as f64 * 1_000_000.0 / rows.max(1) as f64
}

fn summary(delays: &[Option<usize>]) -> String {
    let found: Vec<usize> = delays.iter().flatten().copied().collect();
    if found.is_empty() {
        return "not found".to_owned();
    }
    let mean = found.iter().sum::<usize>() as f64 / found.len() as f64;
    let max = found.iter().max().copied().unwrap_or(0);
    let missed = delays.len() - found.len();
    let missed = if missed > 0 {
        format!(", {missed} missed")
    } else {
        String::new()
    };
    format!("{mean:.0} (max {max}{missed})")
}

fn main() {
    let rows = arg("--rows", 200_000);
    let seeds = arg("--seeds", 5) as u64;
    let reference_rows: Vec<usize> = list("--references", "2000,4000,12000");
    let windows: Vec<usize> = list("--windows", "500,1000,2000,5000");
    let confirms: Vec<u32> = list("--confirms", "1,2,3");
    let label_windows: Vec<usize> = list("--label-windows", "500,1000,2000");
    let tolerances: Vec<f64> = list("--tolerances", "0.05,0.1");
    let started = Instant::now();
    println!(
        "calm rows per setting and seed: {rows}; seeds: {seeds}; totals per row below are over {} rows\n",
        rows as u64 * seeds
    );

    if section("defaults") {
        defaults_table(rows, seeds, &reference_rows);
    }
    if section("detector") {
        detector_tables(arg("--detector-values", 10_000_000));
    }
    if section("data") {
        data_table(rows, seeds, &reference_rows, &windows, &confirms);
    }
    if section("performance") {
        performance_table(rows, seeds, &reference_rows, &label_windows, &tolerances);
    }
    if section("trend") {
        let trend_windows: Vec<usize> = list("--trend-windows", "500,1000,2000");
        let trend_z: Vec<f64> = list("--trend-z", "3,3.5,4");
        trend_table(rows, seeds, &reference_rows, &trend_windows, &trend_z);
    }
    println!("\nmeasured in {:.1} s", started.elapsed().as_secs_f64());
}

/// The shipped defaults end to end: calm rows with their labels through the tracker (data,
/// prediction and performance alarms together), a 0.5-std shift and a flipped concept.
fn defaults_table(rows: usize, seeds: u64, reference_rows: &[usize]) {
    use mend_monitor::config::defaults;
    let knobs = Knobs {
        window_rows: defaults::WINDOW_ROWS,
        confirm_windows: defaults::CONFIRM_WINDOWS,
        label_window: defaults::LABEL_WINDOW,
        accuracy_tolerance: defaults::ACCURACY_TOLERANCE,
        page_hinkley: true,
        trend: Some((TrendConfig::default().window, TrendConfig::default().z)),
    };
    println!(
        "## The defaults (window {} rows, confirm {}, label window {}, tolerance {}, Page-Hinkley {:?})\n",
        knobs.window_rows,
        knobs.confirm_windows,
        knobs.label_window,
        knobs.accuracy_tolerance,
        PageHinkleyConfig::default()
    );
    println!(
        "| reference rows (train/holdout) | calm rows (with labels) | data alarms /1M | prediction alarms /1M | performance alarms /1M (accuracy, page-hinkley) | 0.5-std shift found after rows | flip found after labels, method |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &reference in reference_rows {
        let models = models(reference, seeds);
        let tallies: Vec<_> = models
            .iter()
            .enumerate()
            .map(|(seed, model)| calm(model, knobs, rows, true, 300 + seed as u64))
            .collect();
        let total: usize = tallies.iter().map(|t| t.rows).sum();
        let data: usize = tallies.iter().map(|t| t.data).sum();
        let prediction: usize = tallies.iter().map(|t| t.prediction).sum();
        let accuracy: usize = tallies.iter().map(|t| t.performance_accuracy).sum();
        let page_hinkley: usize = tallies.iter().map(|t| t.performance_page_hinkley).sum();
        let shifts: Vec<Option<usize>> = models
            .iter()
            .enumerate()
            .map(|(seed, model)| shift_delay(model, knobs, 0.5, 3, 50_000, 400 + seed as u64))
            .collect();
        let flips: Vec<Option<(usize, String)>> = models
            .iter()
            .enumerate()
            .map(|(seed, model)| flip_delay(model, knobs, 3_000, 20_000, 500 + seed as u64))
            .collect();
        let delays: Vec<Option<usize>> =
            flips.iter().map(|f| f.as_ref().map(|(n, _)| *n)).collect();
        let mut methods: Vec<String> = flips.iter().flatten().map(|(_, m)| m.clone()).collect();
        methods.sort();
        methods.dedup();
        println!(
            "| {reference} ({}/{}) | {total} | {:.1} ({data}) | {:.1} ({prediction}) | {:.1} ({accuracy}, {page_hinkley}) | {} | {}, {} |",
            reference * 4 / 5,
            reference / 5,
            per_million(data, total),
            per_million(prediction, total),
            per_million(accuracy + page_hinkley, total),
            summary(&shifts),
            summary(&delays),
            methods.join("/"),
        );
    }
    println!();
}

fn detector_tables(values: usize) {
    println!("## Page-Hinkley on the error stream\n");
    println!(
        "| delta | threshold | alpha | error rate | alarms /1M calm labels | flip (p to 1-p) found after labels: mean (max) | change-point error: mean abs (max abs) | +0.15 error rate found after: mean (max) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &(delta, threshold, alpha) in &DETECTORS {
        let config = PageHinkleyConfig {
            delta,
            threshold,
            alpha,
            ..PageHinkleyConfig::default()
        };
        for &p in &ERROR_RATES {
            let alarms = page_hinkley_calm_alarms(config, p, values, 7);
            let flips: Vec<_> = (0..200)
                .map(|seed| page_hinkley_delay(config, p, 1.0 - p, 3_000, 20_000, 1_000 + seed))
                .collect();
            let delays: Vec<Option<usize>> = flips.iter().map(|f| f.map(|(d, _)| d)).collect();
            let errors: Vec<i64> = flips.iter().flatten().map(|(_, e)| e.abs()).collect();
            let mean_error = errors.iter().sum::<i64>() as f64 / errors.len().max(1) as f64;
            let max_error = errors.iter().max().copied().unwrap_or(0);
            let slow: Vec<Option<usize>> = (0..200)
                .map(|seed| {
                    page_hinkley_delay(config, p, p + 0.15, 3_000, 50_000, 5_000 + seed)
                        .map(|(d, _)| d)
                })
                .collect();
            println!(
                "| {delta} | {threshold} | {alpha} | {p} | {:.1} ({alarms}) | {} | {mean_error:.1} ({max_error}) | {} |",
                per_million(alarms, values),
                summary(&delays),
                summary(&slow),
            );
        }
    }
    println!();
}

fn data_knobs(window_rows: usize, confirm_windows: u32) -> Knobs {
    Knobs {
        window_rows,
        confirm_windows,
        label_window: 1_000_000,
        accuracy_tolerance: 1.0,
        page_hinkley: false,
        trend: None,
    }
}

fn data_table(
    rows: usize,
    seeds: u64,
    reference_rows: &[usize],
    windows: &[usize],
    confirms: &[u32],
) {
    println!("## Data and prediction drift\n");
    println!(
        "| reference rows (train/holdout) | window rows | confirm | data alarms /1M calm rows | prediction alarms /1M | max calm distance (feature) | 0.5-std shift found after rows: mean (max) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &reference in reference_rows {
        let models = models(reference, seeds);
        for &window in windows {
            let tallies: Vec<_> = models
                .iter()
                .enumerate()
                .map(|(seed, model)| calm(model, data_knobs(window, 1), rows, false, seed as u64))
                .collect();
            let total_rows: usize = tallies.iter().map(|t| t.rows).sum();
            let (max_feature, max_score) = tallies
                .iter()
                .flat_map(|t| t.max_score.iter())
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(f, s)| (f.clone(), *s))
                .unwrap_or_default();
            for &confirm in confirms {
                let data: usize = tallies
                    .iter()
                    .map(|t| replay_alarms(&t.raw, confirm, false))
                    .sum();
                let prediction: usize = tallies
                    .iter()
                    .map(|t| replay_alarms(&t.raw, confirm, true))
                    .sum();
                let delays: Vec<Option<usize>> = models
                    .iter()
                    .enumerate()
                    .map(|(seed, model)| {
                        shift_delay(
                            model,
                            data_knobs(window, confirm),
                            0.5,
                            3,
                            50_000,
                            100 + seed as u64,
                        )
                    })
                    .collect();
                println!(
                    "| {reference} ({}/{}) | {window} | {confirm} | {:.1} ({data}) | {:.1} ({prediction}) | {max_score:.3} ({max_feature}) | {} |",
                    reference * 4 / 5,
                    reference / 5,
                    per_million(data, total_rows),
                    per_million(prediction, total_rows),
                    summary(&delays),
                );
            }
        }
    }
}

fn performance_table(
    rows: usize,
    seeds: u64,
    reference_rows: &[usize],
    label_windows: &[usize],
    tolerances: &[f64],
) {
    println!("\n## Performance drift (the rolling accuracy rule; Page-Hinkley above)\n");
    println!(
        "| reference rows (holdout) | label window | tolerance | Page-Hinkley | alarms /1M calm labels | flip found after labels: mean (max), method |"
    );
    println!("|---|---|---|---|---|---|");
    let label_settings: Vec<(usize, f64, bool)> = label_windows
        .iter()
        .flat_map(|&l| tolerances.iter().map(move |&t| (l, t, false)))
        .collect();
    for &reference in reference_rows {
        let models = models(reference, seeds);
        for &(label_window, tolerance, page_hinkley) in &label_settings {
            let knobs = Knobs {
                window_rows: 1_000_000,
                confirm_windows: 1,
                label_window,
                accuracy_tolerance: tolerance,
                page_hinkley,
                trend: None,
            };
            let tallies: Vec<_> = models
                .iter()
                .enumerate()
                .map(|(seed, model)| calm(model, knobs, rows, true, seed as u64))
                .collect();
            let labels: usize = tallies.iter().map(|t| t.labels).sum();
            let alarms: usize = tallies
                .iter()
                .map(|t| t.performance_accuracy + t.performance_page_hinkley)
                .sum();
            let flips: Vec<Option<(usize, String)>> = models
                .iter()
                .enumerate()
                .map(|(seed, model)| flip_delay(model, knobs, 3_000, 20_000, 200 + seed as u64))
                .collect();
            let delays: Vec<Option<usize>> =
                flips.iter().map(|f| f.as_ref().map(|(n, _)| *n)).collect();
            let mut methods: Vec<String> = flips.iter().flatten().map(|(_, m)| m.clone()).collect();
            methods.sort();
            methods.dedup();
            println!(
                "| {reference} ({}) | {label_window} | {} | {} | {:.1} ({alarms}) | {}, {} |",
                reference / 5,
                if tolerance >= 1.0 {
                    "off".to_owned()
                } else {
                    format!("{tolerance}")
                },
                if page_hinkley { "on" } else { "off" },
                per_million(alarms, labels),
                summary(&delays),
                methods.join("/"),
            );
        }
    }
}

/// The accuracy-trend test alone (tolerance and Page-Hinkley off): alarms on calm labels, and
/// how far into a gradual rotation of the boundary (0 to 180 degrees over 20,000 rows, the
/// heal bench's `rotating` stream) it first fires.
fn trend_table(rows: usize, seeds: u64, reference_rows: &[usize], windows: &[usize], zs: &[f64]) {
    println!("\n## Performance drift: the accuracy-trend test alone\n");
    println!(
        "| reference rows | trend window | z | alarms /1M calm labels | gradual rotation found after rows: mean (max) | flip found after labels: mean (max) |"
    );
    println!("|---|---|---|---|---|---|");
    for &reference in reference_rows {
        let models = models(reference, seeds);
        for &window in windows {
            for &z in zs {
                let knobs = Knobs {
                    window_rows: 1_000_000,
                    confirm_windows: 1,
                    label_window: mend_monitor::config::defaults::LABEL_WINDOW,
                    accuracy_tolerance: 1.0,
                    page_hinkley: false,
                    trend: Some((window, z)),
                };
                let tallies = per_seed(&models, |seed, model| calm(model, knobs, rows, true, seed));
                let labels: usize = tallies.iter().map(|t| t.labels).sum();
                let alarms: usize = tallies.iter().map(|t| t.performance_accuracy).sum();
                let rotations = per_seed(&models, |seed, model| {
                    rotation_delay(model, knobs, 20_000, 600 + seed)
                });
                let flips = per_seed(&models, |seed, model| {
                    flip_delay(model, knobs, 3_000, 20_000, 200 + seed).map(|f| f.0)
                });
                println!(
                    "| {reference} | {window} | {z} | {:.1} ({alarms}) | {} | {} |",
                    per_million(alarms, labels),
                    summary(&rotations),
                    summary(&flips),
                );
            }
        }
    }
}
