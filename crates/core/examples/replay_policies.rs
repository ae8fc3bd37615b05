//! Offline replay of retraining policies on the heal bench's streams: the live system replaced
//! by fixed rules, so the ceiling of a policy can be read without the noise of a live run.
//!
//! The streams are `mend bench-heal`'s ([`HalfTurn`]: `gradual` is still for the first half,
//! then the boundary turns 180 degrees over the second; `rotating` turns over the whole stream),
//! drawn from
//! the same generator and seeds, with the same first champion (4,000 rows of the initial world,
//! the newest 20 % held out), in batches of 500 rows scored prequentially. A policy retrains
//! from a given row every so many rows on the newest `window` rows (oldest 80 % trained on, as
//! the trainer does), and its new model answers `latency` batches later. The blind retrainers
//! start at their cadence and have no latency, as in the bench, whose blind figures this
//! reproduces (retrains are counted while they can still serve a batch: the bench also counts
//! the blind one's last, at the final row). A *trend* model also fits the time trend of every
//! weight over its window (all of it, no holdout) and serves the weights extrapolated
//! `horizon` rows past its newest row.
//!
//! `cargo run --release -p mend-core --example replay_policies -- [gradual|rotating] [seeds]`
//! (default: gradual, seeds 1 to 10).

use std::error::Error;

use mend_core::model::{LogisticModel, LogisticSettings};
use mend_worlds::{Generator, HalfTurn, Regime, Sample, SyntheticSpec};
use ndarray::Array2;

const LEVELS: [&str; 4] = ["red", "green", "blue", "gold"];
const BATCH: usize = 500;
const TOTAL: usize = 20_000;
const FIRST_ROWS: usize = 4_000;
/// Numeric features plus the one-hot levels of the one categorical feature.
const INPUTS: usize = 5 + LEVELS.len();

type Res<T> = Result<T, Box<dyn Error>>;

/// One labeled row: inputs, class, stream position.
struct Row {
    x: [f64; INPUTS],
    y: usize,
    t: f64,
}

fn inputs(sample: &Sample, i: usize) -> [f64; INPUTS] {
    let mut x = [0.0; INPUTS];
    for (j, v) in x.iter_mut().take(5).enumerate() {
        *v = sample.numeric[[i, j]];
    }
    for (l, level) in LEVELS.iter().enumerate() {
        x[5 + l] = f64::from(u8::from(sample.categorical[0][i] == *level));
    }
    x
}

fn rows_of(samples: &[Sample], first_row: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for (b, sample) in samples.iter().enumerate() {
        for i in 0..sample.labels.len() {
            rows.push(Row {
                x: inputs(sample, i),
                y: sample.labels[i],
                t: (first_row + b * BATCH + i) as f64,
            });
        }
    }
    rows
}

fn fit(x: &Array2<f64>, rows: &[Row]) -> Res<LogisticModel> {
    let y: Vec<usize> = rows.iter().map(|r| r.y).collect();
    let classes = ["no".to_owned(), "yes".to_owned()];
    Ok(LogisticModel::fit(x.view(), &y, 2, &classes, &LogisticSettings::default(), 1)?.0)
}

fn fit_plain(rows: &[Row]) -> Res<LogisticModel> {
    let mut x = Array2::zeros((rows.len(), INPUTS));
    for (i, r) in rows.iter().enumerate() {
        for j in 0..INPUTS {
            x[[i, j]] = r.x[j];
        }
    }
    fit(&x, rows)
}

/// Inputs `x`, `x * tau` and `tau` (tau: thousands of rows before the newest); served with
/// tau at `horizon` rows ahead.
fn fit_trend(rows: &[Row], horizon: f64) -> Res<LogisticModel> {
    let newest = rows.last().map_or(0.0, |r| r.t);
    let mut x = Array2::zeros((rows.len(), 2 * INPUTS + 1));
    for (i, r) in rows.iter().enumerate() {
        let tau = (r.t - newest) / 1_000.0;
        for j in 0..INPUTS {
            x[[i, j]] = r.x[j];
            x[[i, INPUTS + j]] = r.x[j] * tau;
        }
        x[[i, 2 * INPUTS]] = tau;
    }
    let m = fit(&x, rows)?;
    let ahead = horizon / 1_000.0;
    Ok(LogisticModel {
        n_inputs: INPUTS,
        n_classes: 2,
        coef: (0..INPUTS)
            .map(|j| m.coef[j] + m.coef[INPUTS + j] * ahead)
            .collect(),
        intercept: vec![m.intercept[0] + m.coef[2 * INPUTS] * ahead],
    })
}

fn right(model: &LogisticModel, sample: &Sample) -> usize {
    let mut out = [0.0; 2];
    (0..sample.labels.len())
        .filter(|&i| {
            model.predict_row(&inputs(sample, i), &mut out);
            usize::from(out[1] > 0.5) == sample.labels[i]
        })
        .count()
}

#[derive(Clone, Copy)]
enum Kind {
    /// The newest `window` rows, the oldest 80 % of them trained on.
    Plain { window: usize },
    /// The newest `window` rows, all of them, trend extrapolated `horizon` rows.
    Trend { window: usize, horizon: f64 },
}

struct Policy {
    name: String,
    kind: Kind,
    /// First retrain once this many stream rows are in.
    start: usize,
    every: usize,
    /// Batches between a retrain and its model answering.
    latency: usize,
}

fn train(kind: Kind, stream: &[Sample], upto: usize) -> Res<LogisticModel> {
    let rows = rows_of(&stream[..=upto], 0);
    match kind {
        Kind::Plain { window } => {
            let rows = &rows[rows.len().saturating_sub(window)..];
            let keep = rows.len() - rows.len() / 5;
            fit_plain(&rows[..keep])
        }
        Kind::Trend { window, horizon } => {
            fit_trend(&rows[rows.len().saturating_sub(window)..], horizon)
        }
    }
}

/// Prequential accuracy and retrains of one policy on one stream.
fn replay(stream: &[Sample], first: &LogisticModel, p: &Policy) -> Res<(f64, usize)> {
    let mut model = first.clone();
    let mut pending: Vec<(usize, LogisticModel)> = Vec::new();
    let (mut ok, mut n, mut retrains, mut next) = (0, 0, 0, p.start);
    for (b, sample) in stream.iter().enumerate() {
        if let Some(k) = pending.iter().position(|(at, _)| *at == b) {
            model = pending.remove(k).1;
        }
        ok += right(&model, sample);
        n += sample.labels.len();
        let rows = (b + 1) * BATCH;
        if rows >= next && rows < TOTAL {
            next = rows + p.every;
            retrains += 1;
            pending.push((b + 1 + p.latency, train(p.kind, stream, b)?));
        }
    }
    Ok((ok as f64 / n.max(1) as f64, retrains))
}

fn policies(stream: &str) -> Vec<Policy> {
    let mut out: Vec<Policy> = [1_000, 2_000, 3_000]
        .into_iter()
        .map(|every| Policy {
            name: format!("blind every {every}, window 2000"),
            kind: Kind::Plain { window: 2_000 },
            start: every,
            every,
            latency: 0,
        })
        .collect();
    // Where the monitor first flags the change in the live bench, roughly.
    let found = if stream == "rotating" { 5_500 } else { 11_000 };
    for (start, every, latency) in [
        (found, 2_000, 1),
        (found, 2_000, 0),
        (found, 1_500, 1),
        (found, 1_000, 1),
        (found, 1_000, 0),
        (found - 1_500, 2_000, 0),
    ] {
        out.push(Policy {
            name: format!("from {start} every {every}, window 1000, {latency} batch late"),
            kind: Kind::Plain { window: 1_000 },
            start,
            every,
            latency,
        });
    }
    for (window, horizon) in [
        (2_000, 0.0),
        (4_000, 0.0),
        (4_000, 1_000.0),
        (4_000, 2_000.0),
    ] {
        out.push(Policy {
            name: format!(
                "from {found} every 2000, trend window {window} +{horizon} rows, 1 batch late"
            ),
            kind: Kind::Trend { window, horizon },
            start: found,
            every: 2_000,
            latency: 1,
        });
    }
    out
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stream_name = args.first().map_or("gradual", String::as_str).to_owned();
    let turn = match stream_name.as_str() {
        "gradual" => HalfTurn::SecondHalf,
        "rotating" => HalfTurn::Whole,
        other => return Err(format!("unknown stream {other:?}; use gradual or rotating").into()),
    };
    let seeds: Vec<u64> = match args.get(1) {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()?,
        None => (1..=10).collect(),
    };
    let mut worlds = Vec::new();
    for &seed in &seeds {
        let mut g = Generator::new(SyntheticSpec {
            seed,
            ..SyntheticSpec::default()
        });
        let first = rows_of(&[g.sample(FIRST_ROWS, &Regime::default())], 0);
        let first = fit_plain(&first[..FIRST_ROWS - FIRST_ROWS / 5])?;
        let stream: Vec<Sample> = (0..TOTAL / BATCH)
            .map(|b| g.sample(BATCH, &turn.regime(b * BATCH, TOTAL)))
            .collect();
        worlds.push((first, stream));
    }
    println!("{stream_name} stream, seeds {seeds:?}: mean prequential accuracy, retrains");
    for policy in policies(&stream_name) {
        let mut total = 0.0;
        let mut retrains = 0;
        for (first, stream) in &worlds {
            let (accuracy, r) = replay(stream, first, &policy)?;
            total += accuracy;
            retrains = r;
        }
        println!(
            "{:<62} {:.4}  {retrains:>2}",
            policy.name,
            total / worlds.len().max(1) as f64
        );
    }
    Ok(())
}
