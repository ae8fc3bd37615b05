//! What recall costs a run: judging ten stored past versions on the run's held-out rows,
//! against training the run's candidate, on the same window.
//!
//! `cargo run --release -p mend-trainer --example recall_cost [WINDOW_ROWS]` (default 5,000:
//! a fifth, 1,000 rows, is held out and every past version is scored on it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use mend_core::TrainSettings;
use mend_trainer::evaluate::{train_and_compare, train_and_compare_with_past};
use mend_worlds::{Generator, Regime, SyntheticSpec};

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("WINDOW_ROWS is a number"))
        .unwrap_or(5_000);
    let spec = SyntheticSpec {
        numeric: 8,
        categorical: 2,
        ..SyntheticSpec::default()
    };
    let mut world = Generator::new(spec);
    let window = |world: &mut Generator, seed: u64, regime: &Regime| {
        world.reseed(seed);
        let sample = world.sample(rows, regime);
        let (rows, labels) = world.to_records(&sample, "r", 0, 1_000);
        (
            rows,
            labels.into_iter().map(|l| l.label).collect::<Vec<_>>(),
        )
    };
    let settings = TrainSettings::default();
    // Ten past versions, half of each concept.
    let past: Vec<Arc<mend_core::Artifact>> = (0..10)
        .map(|k| {
            let regime = Regime {
                flip: k % 2 == 1,
                ..Regime::default()
            };
            let (r, l) = window(&mut world, 100 + k, &regime);
            Arc::new(
                train_and_compare(&r, &l, None, &settings)
                    .unwrap()
                    .candidate,
            )
        })
        .collect();
    let (r, l) = window(&mut world, 1, &Regime::default());
    let champion = train_and_compare(&r, &l, None, &settings)
        .unwrap()
        .candidate;
    let (r, l) = window(&mut world, 2, &Regime::default());

    let runs = 7;
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let plain = train_and_compare(&r, &l, Some(&champion), &settings).unwrap();
        without.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let judged =
            train_and_compare_with_past(&r, &l, Some(&champion), &past, &settings).unwrap();
        with.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(judged.past_metrics.len(), 10);
        assert_eq!(plain.holdout_rows, judged.holdout_rows);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (without, with) = (median(&mut without), median(&mut with));
    println!(
        "window {rows} rows ({} held out), median of {runs}: train and judge the candidate {without:.1} ms; \
         with 10 past versions judged too {with:.1} ms; recall adds {:.1} ms ({:.0}% of the run)",
        rows / 5,
        with - without,
        100.0 * (with - without) / without
    );
}
