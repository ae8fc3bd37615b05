//! `mend demo`: the heal loop through the real services, in one process.
//!
//! Starts registry, inference server, ingest, monitor and trainer (as `mend up` does, on free
//! loopback ports and a fresh data directory), trains and registers a first model, then streams
//! a drifting world through them: each batch is answered by the server over the Open Inference
//! Protocol (the accuracy of those answers is measured before the labels are known), then its rows
//! and labels go in through ingest. Nothing else is scripted: the monitor notices drift, the
//! trainer retrains and gates, the registry promotes, and the server swaps. The timeline prints
//! what the bus says as it happens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use mend_bus::events::{DriftDetected, DriftKind, Event};
use mend_bus::{ConsumerSpec, EventSubscription};
use mend_core::{Frame, TrainSettings};
use mend_worlds::{Generator, Regime, SyntheticSpec};

use crate::stack::{Launch, Stack};
use crate::world_client::{correct, infer, now_ms, request, send};

const MODEL: &str = "churn";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Rows per batch of traffic.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Where the demo keeps its stores and reports (emptied first); default `demo` inside
    /// `MEND_DATA_DIR` when that is set, else `mend-data/demo`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
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
        regime: |_| Regime::default(),
    },
    Act {
        name: "covariate shift: x0 moves +1.5 std, the rule is unchanged",
        batches: 5,
        regime: |_| Regime {
            shift: 1.5,
            ..Regime::default()
        },
    },
    Act {
        name: "abrupt concept change: the rule flips",
        batches: 6,
        regime: |_| Regime {
            flip: true,
            ..Regime::default()
        },
    },
    Act {
        name: "gradual concept drift: the boundary rotates 12 degrees a batch",
        batches: 8,
        regime: |i| Regime {
            flip: true,
            rotation: (12.0 * (i + 1) as f64).to_radians(),
            ..Regime::default()
        },
    },
];

/// Runs `mend demo`; `launch` starts the services as `mend up` does.
pub fn run(args: DemoArgs, json: bool, launch: Launch) -> Result<()> {
    if args.batch < 100 {
        bail!("--batch must be at least 100 rows");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(demo(args, json, launch))
}

/// The demo's own directory: `--data-dir`, else `demo` under `MEND_DATA_DIR`, else
/// `mend-data/demo` (never the data directory itself, which the demo empties).
fn demo_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        std::env::var_os("MEND_DATA_DIR")
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| PathBuf::from("mend-data"), PathBuf::from)
            .join("demo")
    })
}

async fn demo(args: DemoArgs, json: bool, launch: Launch) -> Result<()> {
    let started = Instant::now();
    let data_dir = demo_dir(args.data_dir.clone());
    let window = (args.batch * 2).to_string();
    // The demo's settings alone: nothing from the environment.
    let vars: BTreeMap<String, String> = [
        ("MEND_LOG", "error".to_owned()),
        ("MEND_SERVER_MODELS", MODEL.to_owned()),
        ("MEND_SERVER_SAMPLE_RATE", "0".to_owned()),
        ("MEND_SERVER_RECONCILE_MS", "1000".to_owned()),
        ("MEND_MONITOR_MODELS", MODEL.to_owned()),
        ("MEND_MONITOR_WINDOW_ROWS", args.batch.to_string()),
        ("MEND_MONITOR_LABEL_WINDOW", (args.batch / 2).to_string()),
        ("MEND_MONITOR_POLL_MS", "100".to_owned()),
        ("MEND_TRAINER_WINDOW_ROWS", window),
        ("MEND_TRAINER_MIN_ROWS", (args.batch / 2).to_string()),
        ("MEND_TRAINER_DEBOUNCE_MS", "100".to_owned()),
        ("MEND_TRAINER_COOLDOWN_MS", "500".to_owned()),
        ("MEND_TRAINER_GUARD_ROWS", args.batch.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut stack = Stack::start(launch, &vars, data_dir.clone()).await?;
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    say(format!(
        "mend demo: registry, server, ingest, monitor and trainer up in {} ms (data in {})",
        started.elapsed().as_millis(),
        data_dir.display()
    ));

    // Everything the services announce, printed as it happens.
    let mut events = EventSubscription::subscribe(
        stack.bus.clone(),
        ConsumerSpec::new("mend-demo", ["drift.detected.>", "model.>"]),
    )
    .await
    .context("failed to follow the bus")?;
    let (timeline_tx, mut timeline_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Event)>();
    tokio::spawn(async move {
        while let Some(delivery) = events.next().await {
            let event = delivery.envelope.event.clone();
            let _ = delivery.ack().await;
            if timeline_tx.send((Instant::now(), event)).is_err() {
                break;
            }
        }
    });

    // The first model, trained on the stable world and made champion.
    let spec = SyntheticSpec {
        seed: args.seed,
        ..SyntheticSpec::default()
    };
    let mut world = Generator::new(spec);
    let first = world.sample(args.batch * 4, &Regime::default());
    let table = world.to_table(&first, true, 0, 0);
    let (schema, v1) = crate::world_client::train_first(&table, &TrainSettings::default())?;
    stack
        .seed_champion(MODEL, &schema, &v1, "mend-demo", "demo-initial")
        .await?;
    say(format!(
        "v1 trained on {} rows, holdout accuracy {:.3}, champion",
        args.batch * 4,
        v1.metrics.accuracy
    ));

    let probe = request(MODEL, "demo", &world, &world.probe());
    stack
        .wait_for_version(&probe, "1", Duration::from_secs(10))
        .await?;

    let (mut seen, mut healed_right, mut static_right) = (0usize, 0usize, 0usize);
    let (mut retrains, mut promotions, mut rejections, mut rollbacks) = (0, 0, 0, 0);
    let mut first_drift_batch: Option<Instant> = None;
    let mut heal_latencies = Vec::new();
    let mut last_version = "1".to_owned();
    let mut next_id = 0u64;
    let mut timeline = Vec::new();
    for act in &ACTS {
        say(format!("\n== {}", act.name));
        for i in 0..act.batches {
            let regime = (act.regime)(i);
            let sample = world.sample(args.batch, &regime);
            let asked = Instant::now();
            let (version, predicted) =
                infer(&mut stack.oip, MODEL, "demo", &world, &sample).await?;
            let right = correct(&world, &sample, &predicted);
            let v1_right = {
                let table = world.to_table(&sample, true, 0, 0);
                let frame = Frame::from_table(&schema, &table, true)?;
                (v1.evaluate(&frame)?.accuracy * sample.labels.len() as f64).round() as usize
            };
            seen += sample.labels.len();
            healed_right += right;
            static_right += v1_right;
            if version != last_version {
                if let Some(since) = first_drift_batch.take() {
                    heal_latencies.push(asked.duration_since(since));
                }
                last_version = version.clone();
            }
            let acc = right as f64 / sample.labels.len() as f64;
            let acc_static = v1_right as f64 / sample.labels.len() as f64;
            say(format!(
                "[{:>6} rows] served by v{version}: accuracy {acc:.3} (static v1 {acc_static:.3})",
                next_id
            ));
            if (regime.flip || regime.shift != 0.0) && first_drift_batch.is_none() && acc < 0.75 {
                first_drift_batch = Some(Instant::now());
            }
            send(&mut stack.ingest, MODEL, &world, &sample, next_id, now_ms()).await?;
            next_id += sample.labels.len() as u64;
            // Give the loop a moment, then print whatever it said.
            let settle = Instant::now() + Duration::from_millis(400);
            while let Ok(Some((at, event))) =
                tokio::time::timeout_at(settle.into(), timeline_rx.recv()).await
            {
                let line = describe(
                    &event,
                    &mut retrains,
                    &mut promotions,
                    &mut rejections,
                    &mut rollbacks,
                );
                say(format!(
                    "             {:>6} ms  {line}",
                    at.duration_since(started).as_millis()
                ));
                timeline.push(serde_json::json!({"ms": at.duration_since(started).as_millis() as u64, "event": line}));
            }
        }
    }
    let http_addr = stack.http_addr.clone();
    // The data directory stays for a look afterwards (`mend up --data-dir`, printed below); a
    // service failing on the way down changes nothing the demo showed.
    let _ = stack.stop_keeping_data().await;

    let healed = healed_right as f64 / seen as f64;
    let stat = static_right as f64 / seen as f64;
    let report = latest_report(&data_dir);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rows": seen, "prequential_accuracy": healed, "static_accuracy": stat,
                "retrains": retrains, "promotions": promotions, "rejections": rejections, "rollbacks": rollbacks,
                "final_version": last_version, "heal_latency_ms": heal_latencies.iter().map(|d| d.as_millis() as u64).collect::<Vec<_>>(),
                "timeline": timeline, "report": report, "elapsed_ms": started.elapsed().as_millis() as u64,
            }))?
        );
        return Ok(());
    }
    println!(
        "\nsummary: {seen} rows answered; prequential accuracy {healed:.3} with mend vs {stat:.3} for the model that is never retrained"
    );
    println!(
        "         {retrains} models trained, {promotions} promoted, {rejections} rejected, {rollbacks} rolled back; serving v{last_version}"
    );
    if !heal_latencies.is_empty() {
        let ms: Vec<String> = heal_latencies
            .iter()
            .enumerate()
            .map(|(i, d)| format!("heal {} took {} ms", i + 1, d.as_millis()))
            .collect();
        println!(
            "         heal latency, from the first batch that went wrong to the new version answering: {}",
            ms.join(", ")
        );
    }
    println!(
        "         every decision: `mend models audit {MODEL}` against a running registry; reports: {}",
        report.unwrap_or_else(|| "none written".into())
    );
    println!("         took {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "         (the monitor served its reports at http://{http_addr}/reports/{MODEL} while it ran)"
    );
    println!(
        "         to look again: `mend up --data-dir {dir} &`, then `mend models audit {MODEL}` and \
         `mend report {MODEL}` (or open http://127.0.0.1:8080/ in a browser)",
        dir = data_dir.display()
    );
    Ok(())
}

/// A performance alarm in words, each number named: the accuracy the labels showed, against
/// what, and the drop (or the trend's test statistic) that raised it.
fn performance_text(d: &DriftDetected) -> String {
    let metric = |name: &str| d.metrics.get(name).copied().unwrap_or(f64::NAN);
    let labels = metric("labels");
    match d.features.first() {
        Some(f) if f.method == "accuracy_trend" => format!(
            "accuracy falling: {:.3} on the newest labels against {:.3} on the {:.0} before \
             (trend z {:.2}, threshold {:.2})",
            metric("trend.recent_accuracy"),
            metric("trend.older_accuracy"),
            metric("trend.older_labels"),
            f.score,
            f.threshold
        ),
        Some(f) => format!(
            "accuracy {:.3} on the last {labels:.0} labels against a baseline of {:.3} \
             (a drop of {:.3}; tolerance {:.3})",
            metric("accuracy"),
            metric("baseline_accuracy"),
            f.score,
            f.threshold
        ),
        None => format!(
            "accuracy {:.3} on the last {labels:.0} labels",
            metric("accuracy")
        ),
    }
}

fn describe(
    event: &Event,
    retrains: &mut u32,
    promotions: &mut u32,
    rejections: &mut u32,
    rollbacks: &mut u32,
) -> String {
    match event {
        Event::DriftDetected(d) => {
            let features: Vec<String> = d
                .features
                .iter()
                .filter(|f| f.drifted)
                .map(|f| format!("{} ({} {:.3})", f.feature, f.method, f.score))
                .collect();
            let what = if features.is_empty() {
                String::new()
            } else {
                format!(": {}", features.join(", "))
            };
            if d.kind == DriftKind::Performance {
                return format!(
                    "monitor: performance drift detected: {}",
                    performance_text(d)
                );
            }
            format!("monitor: {:?} drift detected{what}", d.kind).to_lowercase()
        }
        Event::ModelTrained(t) => {
            *retrains += 1;
            let acc = t
                .metrics
                .get("candidate.accuracy")
                .or_else(|| t.metrics.get("accuracy"))
                .copied()
                .unwrap_or(f64::NAN);
            // The trainer's own follow-up comes as a request; name it for what it is.
            let trigger = if t
                .trigger_event_id
                .as_deref()
                .is_some_and(|id| id.starts_with(mend_trainer::follow_up::ID_PREFIX))
            {
                "follow-up: is accuracy still sliding?".to_owned()
            } else {
                t.trigger.clone().unwrap_or_default()
            };
            format!(
                "trainer: v{} trained ({trigger}), holdout accuracy {acc:.3}",
                t.version
            )
        }
        Event::ModelRejected(r) => {
            *rejections += 1;
            format!("trainer: candidate rejected: {}", r.reason)
        }
        Event::ModelPromoted(p) => {
            // The first model's registration is a promotion too, but not a heal.
            if p.previous.is_some() {
                *promotions += 1;
            }
            format!(
                "registry: v{} promoted to champion (was {}): {}",
                p.version,
                p.previous.map(|v| format!("v{v}")).unwrap_or("none".into()),
                p.reason
            )
        }
        Event::ModelRolledBack(r) => {
            *rollbacks += 1;
            format!(
                "registry: rolled back v{} -> v{}: {}",
                r.from_version, r.to_version, r.reason
            )
        }
        other => format!("{:?}", other.kind()),
    }
}

fn latest_report(data_dir: &std::path::Path) -> Option<String> {
    let dir = data_dir.join("reports").join(MODEL);
    let mut html: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    html.sort();
    html.last().map(|p| p.display().to_string())
}
