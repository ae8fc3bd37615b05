//! `mend demo-offline`: the heal loop on a drifting synthetic stream, in one process, on
//! mend-core alone (no services).
//!
//! The stream has four acts: a stable world, covariate shift (inputs move, the rule stays), an
//! abrupt concept change (the rule flips) and a gradual one (the boundary rotates). Each batch is
//! predicted before its labels are seen (prequential), performance is compared with the
//! champion's holdout accuracy, and a drop past the tolerance triggers a retrain on the newest
//! window; the candidate is promoted only if it beats the champion on the same held-out rows.
//! A static model that is never retrained runs alongside for comparison.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use mend_core::{Artifact, Frame, Schema, TrainSettings, time_split};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use serde_json::json;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Rows per batch of traffic.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Most labeled rows a retrain learns from (the newest since the drift began).
    #[arg(long, default_value_t = 6_000)]
    window: usize,
    /// Accuracy drop below the champion's holdout accuracy that counts as drift.
    #[arg(long, default_value_t = 0.05)]
    tolerance: f64,
    /// A candidate must beat the champion by this much accuracy on the same holdout.
    #[arg(long, default_value_t = 0.01)]
    margin: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

struct Act {
    name: &'static str,
    batches: usize,
    regime: fn(usize) -> Regime,
}

const ACTS: [Act; 4] = [
    Act {
        name: "stable world",
        batches: 4,
        regime: |_| Regime {
            shift: 0.0,
            rotation: 0.0,
            flip: false,
            label_noise: 0.0,
        },
    },
    Act {
        name: "covariate shift: x0 moves +1.5 std, rule unchanged",
        batches: 4,
        regime: |_| Regime {
            shift: 1.5,
            rotation: 0.0,
            flip: false,
            label_noise: 0.0,
        },
    },
    Act {
        name: "abrupt concept change: the rule flips",
        batches: 5,
        regime: |_| Regime {
            shift: 0.0,
            rotation: 0.0,
            flip: true,
            label_noise: 0.0,
        },
    },
    Act {
        name: "gradual concept drift: the boundary rotates 15 degrees a batch",
        batches: 8,
        regime: |i| Regime {
            shift: 0.0,
            rotation: (15.0 * (i + 1) as f64).to_radians(),
            flip: true,
            label_noise: 0.0,
        },
    },
];

fn frame_of(
    g: &Generator,
    schema: &Schema,
    regime: &Regime,
    rows: usize,
    first: u64,
    stream: &mut Generator,
) -> Result<Frame> {
    let sample = stream.sample(rows, regime);
    let table = g.to_table(&sample, true, first, first as i64);
    Ok(Frame::from_table(schema, &table, true)?)
}

fn accuracy(model: &Artifact, frame: &Frame) -> Result<f64> {
    Ok(model.evaluate(frame)?.accuracy)
}

pub fn run(args: DemoArgs, json_out: bool) -> Result<()> {
    let started = Instant::now();
    let spec = SyntheticSpec {
        seed: args.seed,
        ..SyntheticSpec::default()
    };
    let mut stream = Generator::new(spec.clone());
    let namer = Generator::new(spec);
    let first = stream.sample(args.window, &Regime::default());
    let table = namer.to_table(&first, true, 0, 0);
    let settings = TrainSettings::default();
    let (schema, mut champion) = crate::world_client::train_first(&table, &settings)?;
    let static_model = champion.clone();
    let mut version = 1u32;
    let say = |line: String| {
        if !json_out {
            println!("{line}");
        }
    };
    say(format!(
        "mend demo: {} features, classes [{}], batches of {} rows",
        schema.features.len(),
        schema.classes.join(", "),
        args.batch
    ));
    say(format!(
        "[{:>6} rows] v1 trained on {} rows: holdout accuracy {:.3}",
        0, args.window, champion.metrics.accuracy
    ));

    let mut since_onset: Vec<Frame> = Vec::new();
    let mut row = args.window as u64;
    let (mut mend_correct, mut static_correct, mut seen) = (0.0, 0.0, 0.0);
    let (mut retrains, mut promotions, mut rejections) = (0, 0, 0);
    let mut events = Vec::new();
    for act in &ACTS {
        say(format!("\n== {}", act.name));
        for i in 0..act.batches {
            let regime = (act.regime)(i);
            let batch = frame_of(&namer, &schema, &regime, args.batch, row, &mut stream)?;
            let acc = accuracy(&champion, &batch)?;
            let acc_static = accuracy(&static_model, &batch)?;
            let n = batch.len() as f64;
            mend_correct += acc * n;
            static_correct += acc_static * n;
            seen += n;
            // DDM-style levels: below the warning level the batch may belong to a new concept
            // and is kept as a possible training window; below the drift level we retrain on it.
            let floor = champion.metrics.accuracy - args.tolerance;
            let warning = champion.metrics.accuracy - args.tolerance / 2.0;
            let mut line = format!(
                "[{:>6} rows] v{version} accuracy {acc:.3} (static v1 {acc_static:.3})",
                row
            );
            row += args.batch as u64;
            if acc >= warning {
                since_onset.clear();
            } else {
                since_onset.push(batch);
            }
            if acc >= floor {
                say(line);
                continue;
            }
            // Performance drift: retrain on the newest window, gate on its newest rows.
            retrains += 1;
            let t = Instant::now();
            let recent = concat(&since_onset, args.window);
            let candidate = mend_core::train(&schema, &recent, &settings)?;
            let (_, hold_idx) = time_split(&recent.times, settings.holdout_fraction)?;
            let holdout = recent.select(&hold_idx);
            let champ_on_holdout = accuracy(&champion, &holdout)?;
            let cand_on_holdout = candidate.metrics.accuracy;
            let ms = t.elapsed().as_millis();
            line.push_str(&format!(" < floor {floor:.3}: drift → retrained in {ms} ms on {} rows; candidate {cand_on_holdout:.3} vs champion {champ_on_holdout:.3} on the same holdout", recent.len()));
            if cand_on_holdout >= champ_on_holdout + args.margin {
                since_onset.clear();
                version += 1;
                promotions += 1;
                line.push_str(&format!(" → v{version} PROMOTED"));
                champion = candidate;
            } else {
                rejections += 1;
                line.push_str(" → rejected");
            }
            events.push(json!({"row": row, "accuracy": acc, "candidate": cand_on_holdout, "champion": champ_on_holdout, "promoted": version}));
            say(line);
        }
    }
    let mend_acc = mend_correct / seen;
    let static_acc = static_correct / seen;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rows": seen, "prequential_accuracy": mend_acc, "static_accuracy": static_acc,
                "retrains": retrains, "promotions": promotions, "rejections": rejections,
                "final_version": version, "events": events, "elapsed_ms": started.elapsed().as_millis(),
            }))?
        );
    } else {
        println!(
            "\nsummary: {seen} rows; prequential accuracy {mend_acc:.3} with healing vs {static_acc:.3} for the static model"
        );
        println!(
            "         {retrains} retrains, {promotions} promoted, {rejections} rejected; serving v{version}; {} ms",
            started.elapsed().as_millis()
        );
        println!(
            "(this demo runs the loop in one process on mend-core; the service loop over the bus follows the services)"
        );
    }
    Ok(())
}

/// The newest `rows` rows of the window, as one frame.
fn concat(window: &[Frame], rows: usize) -> Frame {
    let mut out = Frame {
        ids: vec![],
        times: vec![],
        columns: window[0]
            .columns
            .iter()
            .map(|c| match c {
                mend_core::Column::Numeric(_) => mend_core::Column::Numeric(vec![]),
                mend_core::Column::Categorical(_) => mend_core::Column::Categorical(vec![]),
            })
            .collect(),
        labels: Some(vec![]),
    };
    for f in window {
        out.ids.extend(f.ids.iter().cloned());
        out.times.extend(&f.times);
        for (o, c) in out.columns.iter_mut().zip(&f.columns) {
            match (o, c) {
                (mend_core::Column::Numeric(o), mend_core::Column::Numeric(c)) => o.extend(c),
                (mend_core::Column::Categorical(o), mend_core::Column::Categorical(c)) => {
                    o.extend(c.iter().cloned())
                }
                _ => {}
            }
        }
        if let (Some(o), Some(l)) = (out.labels.as_mut(), &f.labels) {
            o.extend(l);
        }
    }
    let n = out.len();
    let keep: Vec<usize> = (n.saturating_sub(rows)..n).collect();
    out.select(&keep)
}
