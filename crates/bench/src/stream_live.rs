//! The *mend* contender of `mend bench-heal --stream`: the real services in this process, out
//! of the box, fed the stream in batches.
//!
//! The services start as `mend up` starts them ([`Stack`]: in-process bus, SQLite in a fresh
//! data directory) with mend's default settings; the bench sets only what it needs to run
//! ([`stream_vars`]), and `MEND_*` variables in the environment still win. The first model is
//! trained on the train rows with the trainer's own train settings and registered as version 1
//! and champion. Then each batch, at the pace asked: the inference server answers it over the
//! Open Inference Protocol (a tensor per feature, and `row_id` naming rows `r<stream row>`),
//! its predictions are scored, its rows go in through ingest, and then every label whose row is
//! at least `label_delay` rows old. Nothing else is scripted. The bus is followed throughout:
//! drift alarms, the trainer's decisions on them, and model events, each with the stream row
//! served when it arrived.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use mend_bus::events::{Event, RetrainDecided};
use mend_bus::{Bus, ConsumerSpec, EventSubscription};
use mend_core::record::{LabelRecord, RowRecord, Value};
use mend_core::{Artifact, Column, Frame, Schema, TrainSettings};
use mend_proto::inference::model_infer_request::InferInputTensor;
use mend_proto::inference::{InferTensorContents, ModelInferRequest};
use serde_json::{Value as Json, json};

use crate::baselines::History;
use crate::stack::{Launch, Stack, effective_vars, run_dir};
use crate::world_client::{now_ms, send_labels, send_rows};

/// The model the stream's first model is registered as.
pub(crate) const MODEL: &str = "stream";
/// The id of the bench's inference requests.
const REQUEST_ID: &str = "bench-stream";
/// After the stream, the bench waits until the bus has been quiet this long...
const QUIET: Duration = Duration::from_secs(2);
/// ...but no longer than this in all.
const MAX_SETTLE: Duration = Duration::from_secs(20);

/// The variables the bench sets: only what it needs to run; everything else is mend's default.
pub(crate) fn stream_vars() -> Vec<(&'static str, String)> {
    vec![("MEND_LOG", "error".to_owned())]
}

/// How the stream is fed to the services.
pub(crate) struct Feed {
    pub rate: f64,
    pub batch: usize,
    pub label_delay: usize,
}

/// A bus event of the bench model, with the stream rows served when it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub at: Instant,
    pub row: u64,
    pub id: String,
    pub event: Event,
}

/// What the live run produced.
pub(crate) struct Live {
    pub first: Artifact,
    pub settings: TrainSettings,
    pub vars: BTreeMap<String, String>,
    pub right: Vec<bool>,
    pub log: Vec<Logged>,
    /// (stream row, version) each time the served version changed.
    pub versions: Vec<(usize, String)>,
    /// How far the stream fell behind its pace, in seconds.
    pub behind_s: f64,
}

/// Trains the first model, starts the services (with `launch`), streams, and collects what
/// happened.
pub(crate) async fn run(
    history: &History<'_>,
    feed: &Feed,
    data_dir: Option<&std::path::Path>,
    launch: Launch,
) -> Result<Live> {
    let vars = effective_vars(stream_vars());
    let mut stack = Stack::start(launch, &vars, run_dir(data_dir, "stream")).await?;
    let settings = mend_trainer::TrainerConfig::from_mend(&stack.config)
        .context("invalid trainer configuration")?
        .train;
    let train = history.rows(0..history.train_rows);
    let (schema, train_settings) = (history.schema.clone(), settings.clone());
    // Off the executor: the services share this runtime.
    let first =
        tokio::task::spawn_blocking(move || mend_core::train(&schema, &train, &train_settings))
            .await
            .context("training the first model panicked")?
            .context("failed to train the first model on the train rows")?;
    seed(&mut stack, history, &first).await?;
    let position = Arc::new(AtomicU64::new(0));
    let log = follow(stack.bus.clone(), position.clone()).await?;

    let rows = history.stream_rows();
    let classes = &history.schema.classes;
    let labels = history.frame.labels.as_deref().unwrap_or(&[]);
    let mut right = Vec::with_capacity(rows);
    let mut versions: Vec<(usize, String)> = Vec::new();
    let mut labels_sent = 0;
    let base_time = now_ms();
    let pace = Duration::from_secs_f64(feed.batch as f64 / feed.rate);
    let started = Instant::now();
    for (k, from) in (0..rows).step_by(feed.batch).enumerate() {
        tokio::time::sleep_until((started + pace.mul_f64(k as f64)).into()).await;
        let to = (from + feed.batch).min(rows);
        let frame = history.rows(history.train_rows + from..history.train_rows + to);
        let request = infer_request(history.schema, &frame, Some(from));
        let response = stack
            .oip
            .model_infer(request)
            .await
            .with_context(|| format!("inference failed on stream rows {from}..{to}"))?
            .into_inner();
        let predicted = mend_client::oip::labels(&response);
        if predicted.len() != to - from {
            bail!(
                "the server answered {} labels for {} rows",
                predicted.len(),
                to - from
            );
        }
        let truth = &labels[history.train_rows + from..history.train_rows + to];
        right.extend(
            predicted
                .iter()
                .zip(truth)
                .map(|(p, &t)| classes.get(t) == Some(p)),
        );
        if versions
            .last()
            .is_none_or(|(_, v)| *v != response.model_version)
        {
            versions.push((from, response.model_version.clone()));
        }
        let records = row_records(history.schema, &frame, from, base_time);
        send_rows(&mut stack.ingest, MODEL, &records).await?;
        // Serving stream row `to - 1` releases the labels of rows up to `to - 1 - delay`.
        let release = to.saturating_sub(feed.label_delay);
        if release > labels_sent {
            let records: Vec<LabelRecord> = (labels_sent..release)
                .map(|row| LabelRecord {
                    row_id: format!("r{row}"),
                    label: classes[labels[history.train_rows + row]].clone(),
                    time_ms: base_time + (row + feed.label_delay) as i64,
                })
                .collect();
            send_labels(&mut stack.ingest, MODEL, &records).await?;
            labels_sent = release;
        }
        position.store(to as u64, Ordering::Relaxed);
    }
    let behind_s = started.elapsed().as_secs_f64() - rows as f64 / feed.rate;
    settle(&log).await;
    let log: Vec<Logged> = log.lock().map(|l| l.clone()).unwrap_or_default();
    stack.stop().await?;
    Ok(Live {
        first,
        settings,
        vars,
        right,
        log,
        versions,
        behind_s: behind_s.max(0.0),
    })
}

/// Every drift alarm with the trainer's decision on it (the latest, when it was deferred and
/// judged again), or `none recorded`.
pub(crate) fn alarms(log: &[Logged]) -> Vec<Json> {
    let mut decisions: BTreeMap<&str, Vec<(u64, &RetrainDecided)>> = BTreeMap::new();
    for logged in log {
        if let Event::RetrainDecided(d) = &logged.event {
            decisions
                .entry(d.trigger_event_id.as_str())
                .or_default()
                .push((logged.row, d));
        }
    }
    log.iter()
        .filter_map(|logged| {
            let Event::DriftDetected(drift) = &logged.event else {
                return None;
            };
            let kind = serde_json::to_value(drift.kind)
                .ok()
                .and_then(|k| k.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut alarm = json!({
                "kind": kind,
                "row": logged.row,
                "event_id": logged.id,
                "decision": "none recorded",
                "reason": null,
                "outcome": null,
            });
            let made = decisions.get(logged.id.as_str());
            if let (Some(made), Json::Object(fields)) = (made, &mut alarm)
                && let Some((row, last)) = made.last()
            {
                fields.insert("decision".into(), json!(last.decision.as_str()));
                fields.insert("reason".into(), json!(last.reason));
                fields.insert("outcome".into(), json!(last.outcome));
                fields.insert("version".into(), json!(last.version));
                fields.insert("decided_row".into(), json!(row));
                fields.insert("decisions".into(), json!(made.len()));
            }
            Some(alarm)
        })
        .collect()
}

/// Registers `first` as version 1 and champion, and waits until the server answers with it.
async fn seed(stack: &mut Stack, history: &History<'_>, first: &Artifact) -> Result<()> {
    stack
        .seed_champion(MODEL, history.schema, first, "mend-bench", "bench-initial")
        .await?;
    let probe = infer_request(history.schema, &history.rows(0..1), None);
    stack
        .wait_for_version(&probe, "1", Duration::from_secs(20))
        .await
}

/// Waits until the bus has been quiet for [`QUIET`], at most [`MAX_SETTLE`].
async fn settle(log: &Arc<Mutex<Vec<Logged>>>) {
    let ended = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let last = log
            .lock()
            .ok()
            .and_then(|l| l.last().map(|e| e.at))
            .map_or(ended, |at| at.max(ended));
        if last.elapsed() >= QUIET || ended.elapsed() >= MAX_SETTLE {
            return;
        }
    }
}

/// Follows the bench model's drift alarms, retrain decisions and model events.
async fn follow(bus: Arc<dyn Bus>, position: Arc<AtomicU64>) -> Result<Arc<Mutex<Vec<Logged>>>> {
    let mut events = EventSubscription::subscribe(
        bus,
        ConsumerSpec::new(
            "mend-bench-stream",
            ["drift.detected.>", "retrain.decided.>", "model.>"],
        ),
    )
    .await
    .context("failed to follow the bus")?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let out = log.clone();
    tokio::spawn(async move {
        while let Some(delivery) = events.next().await {
            let envelope = delivery.envelope.clone();
            let _ = delivery.ack().await;
            // The seeded first champion is the bench's doing, not the loop's.
            if envelope.model.as_str() != MODEL
                || matches!(&envelope.event, Event::ModelPromoted(p) if p.version == 1)
            {
                continue;
            }
            let logged = Logged {
                at: Instant::now(),
                row: position.load(Ordering::Relaxed),
                id: envelope.id,
                event: envelope.event,
            };
            match out.lock() {
                Ok(mut log) => log.push(logged),
                Err(_) => break,
            }
        }
    });
    Ok(log)
}

/// An OIP request for every row of `frame`: a tensor per feature (FP64 for numeric features,
/// NaN when missing; BYTES for categorical ones, empty when missing) and, with `first_row`,
/// a `row_id` tensor naming the rows `r<first_row>..`.
fn infer_request(schema: &Schema, frame: &Frame, first_row: Option<usize>) -> ModelInferRequest {
    let rows = frame.len();
    let mut inputs: Vec<InferInputTensor> = schema
        .features
        .iter()
        .zip(&frame.columns)
        .map(|(feature, column)| {
            let (datatype, contents) = match column {
                Column::Numeric(values) => (
                    "FP64",
                    InferTensorContents {
                        fp64_contents: values.clone(),
                        ..Default::default()
                    },
                ),
                Column::Categorical(values) => (
                    "BYTES",
                    InferTensorContents {
                        bytes_contents: values
                            .iter()
                            .map(|v| Bytes::from(v.clone().unwrap_or_default()))
                            .collect(),
                        ..Default::default()
                    },
                ),
            };
            InferInputTensor {
                name: feature.name.clone(),
                datatype: datatype.into(),
                shape: vec![rows as i64],
                contents: Some(contents),
                ..Default::default()
            }
        })
        .collect();
    if let Some(first) = first_row {
        inputs.push(InferInputTensor {
            name: "row_id".into(),
            datatype: "BYTES".into(),
            shape: vec![rows as i64],
            contents: Some(InferTensorContents {
                bytes_contents: (first..first + rows)
                    .map(|row| Bytes::from(format!("r{row}")))
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    ModelInferRequest {
        model_name: MODEL.to_owned(),
        id: REQUEST_ID.to_owned(),
        inputs,
        ..Default::default()
    }
}

/// The rows of `frame` as data-log records, ids `r<first_row>..`, times from `base_time`.
fn row_records(schema: &Schema, frame: &Frame, first_row: usize, base_time: i64) -> Vec<RowRecord> {
    (0..frame.len())
        .map(|i| RowRecord {
            id: format!("r{}", first_row + i),
            time_ms: base_time + (first_row + i) as i64,
            values: schema
                .features
                .iter()
                .zip(&frame.columns)
                .map(|(feature, column)| {
                    let value = match column {
                        Column::Numeric(v) if v[i].is_nan() => Value::Missing,
                        Column::Numeric(v) => Value::Number(v[i]),
                        Column::Categorical(v) => v[i].clone().map_or(Value::Missing, Value::Text),
                    };
                    (feature.name.as_str(), value)
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn logged(row: u64, id: &str, event: Json) -> Logged {
        let event = match event["type"].as_str().unwrap() {
            "drift" => Event::DriftDetected(serde_json::from_value(event).unwrap()),
            _ => Event::RetrainDecided(serde_json::from_value(event).unwrap()),
        };
        Logged {
            at: Instant::now(),
            row,
            id: id.to_owned(),
            event,
        }
    }

    #[test]
    fn each_alarm_carries_the_trainers_last_decision_on_it_or_none_recorded() {
        let log = vec![
            logged(1_000, "d1", json!({"type": "drift", "kind": "data"})),
            logged(
                1_500,
                "t1",
                json!({"type": "decided", "trigger_event_id": "d1", "trigger": "drift",
                       "decision": "deferred", "reason": "too few labels", "until_labels": 500}),
            ),
            logged(2_000, "d2", json!({"type": "drift", "kind": "performance"})),
            logged(
                2_500,
                "t2",
                json!({"type": "decided", "trigger_event_id": "d1", "trigger": "drift",
                       "decision": "acted", "reason": "retrained", "outcome": "promoted",
                       "version": 2}),
            ),
            // A decision on a trigger that is no alarm (a forced retrain) lists nothing.
            logged(
                2_600,
                "t3",
                json!({"type": "decided", "trigger_event_id": "r1", "trigger": "forced",
                       "decision": "acted", "reason": "asked"}),
            ),
        ];
        let alarms = alarms(&log);
        assert_eq!(alarms.len(), 2, "{alarms:?}");
        assert_eq!(alarms[0]["kind"], "data");
        assert_eq!(alarms[0]["row"], 1_000);
        assert_eq!(alarms[0]["event_id"], "d1");
        assert_eq!(alarms[0]["decision"], "acted");
        assert_eq!(alarms[0]["outcome"], "promoted");
        assert_eq!(alarms[0]["version"], 2);
        assert_eq!(alarms[0]["decided_row"], 2_500);
        assert_eq!(alarms[0]["decisions"], 2);
        assert_eq!(alarms[1]["kind"], "performance");
        assert_eq!(alarms[1]["decision"], "none recorded");
        assert!(alarms[1]["reason"].is_null() && alarms[1]["outcome"].is_null());
    }
}
