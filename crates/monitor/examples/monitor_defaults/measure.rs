//! The measurement behind the monitor's defaults, shared by the `monitor_defaults` example
//! (the full tables) and `tests/false_alarms.rs` (a fast, fixed-seed slice of it). Everything
//! runs through the monitor's own [`Tracker`]: the same windows, drift tests, confirmation,
//! label join, rolling accuracy and Page-Hinkley detector as the service, on rows drawn from
//! mend-worlds' synthetic [`Generator`] (five standard-normal numeric features and one
//! four-level categorical, a logistic labelling rule).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mend_bus::ModelName;
use mend_bus::events::DriftKind;
use mend_core::{Artifact, Frame, Schema, SchemaOverride, TrainSettings};
use mend_monitor::Champion;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;
use mend_monitor::state::ModelState;
use mend_monitor::tracker::{Entry, Tracker, TrackerSettings};
use mend_worlds::{Generator, Regime, SyntheticSpec};

/// Entries handed to the tracker per call (the service reads 5,000 per kind per read).
const CHUNK_ROWS: usize = 5_000;

/// A model trained on `rows` rows of the calm world (80 % train, profiled as the reference;
/// 20 % holdout, the prediction reference and the accuracy baseline), as the demo trains its
/// first model on 4,000 rows and retrains on 2,000. `seed` draws different training rows of
/// the same world.
pub fn train_model(rows: usize, seed: u64) -> Result<Artifact, String> {
    let mut generator = Generator::new(SyntheticSpec::default());
    generator.reseed(1_000 + seed);
    let sample = generator.sample(rows, &Regime::default());
    let table = generator.to_table(&sample, true, 0, 0);
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .map_err(|e| e.to_string())?;
    let frame = Frame::from_table(&schema, &table, true).map_err(|e| e.to_string())?;
    mend_core::train(&schema, &frame, &TrainSettings::default()).map_err(|e| e.to_string())
}

/// Rows (and labels) of the same world, with ids and data-log sequences counting up.
pub struct Stream {
    generator: Generator,
    next_id: u64,
    next_seq: u64,
}

impl Stream {
    pub fn new(seed: u64) -> Stream {
        let mut generator = Generator::new(SyntheticSpec::default());
        generator.reseed(50_000 + seed);
        Stream {
            generator,
            next_id: 0,
            next_seq: 1,
        }
    }

    /// The last sequence handed out.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// `n` rows; with `labels`, each row's label is logged right after it.
    pub fn entries(&mut self, n: usize, regime: &Regime, labels: bool) -> Vec<Entry> {
        let sample = self.generator.sample(n, regime);
        let (rows, label_records) =
            self.generator
                .to_records(&sample, "row-", self.next_id, 1_700_000_000_000);
        self.next_id += n as u64;
        let mut out = Vec::with_capacity(if labels { 2 * n } else { n });
        for (row, label) in rows.into_iter().zip(label_records) {
            out.push(Entry::Row {
                seq: self.next_seq,
                ms: 0,
                row,
            });
            self.next_seq += 1;
            if labels {
                out.push(Entry::Label {
                    seq: self.next_seq,
                    label,
                });
                self.next_seq += 1;
            }
        }
        out
    }
}

/// What the monitor is tuned by, in the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    pub window_rows: usize,
    pub confirm_windows: u32,
    pub label_window: usize,
    pub accuracy_tolerance: f64,
    /// Page-Hinkley on the error stream (River's defaults) or off.
    pub page_hinkley: bool,
    /// The accuracy-trend test (recent window, z), or off.
    pub trend: Option<(usize, f64)>,
}

pub fn settings(knobs: Knobs) -> TrackerSettings {
    TrackerSettings {
        window_rows: knobs.window_rows,
        window_ms: None,
        label_window: knobs.label_window,
        accuracy_tolerance: knobs.accuracy_tolerance,
        min_drifted_features: 1,
        confirm_windows: knobs.confirm_windows,
        join_rows: 100_000,
        policy: Default::default(),
        detector: PageHinkleyConfig {
            threshold: if knobs.page_hinkley {
                PageHinkleyConfig::default().threshold
            } else {
                f64::INFINITY
            },
            ..PageHinkleyConfig::default()
        },
        trend: knobs.trend.map_or(
            TrendConfig {
                window: 0,
                ..TrendConfig::default()
            },
            |(window, z)| TrendConfig { window, z },
        ),
        summary: Default::default(),
    }
}

fn tracker(artifact: &Arc<Artifact>, knobs: Knobs) -> Tracker {
    let champion = Champion {
        version: 1,
        artifact: Arc::clone(artifact),
    };
    let model = ModelName::new("synth").unwrap_or_else(|_| unreachable!("a valid name"));
    Tracker::new(model, settings(knobs), champion, ModelState::default())
}

/// Counts of what the tracker announced.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub rows: usize,
    pub labels: usize,
    pub data: usize,
    pub prediction: usize,
    pub performance_accuracy: usize,
    pub performance_page_hinkley: usize,
    /// Features named by data events, with how often.
    pub features: BTreeMap<String, usize>,
    /// Per window: the features (and `:prediction`) that drifted in it, before confirmation.
    pub raw: Vec<BTreeSet<String>>,
    /// Largest per-window score of each distance-judged feature.
    pub max_score: BTreeMap<String, f64>,
}

/// Streams `rows` calm rows (and their labels, when `labels`) through one tracker.
pub fn calm(artifact: &Arc<Artifact>, knobs: Knobs, rows: usize, labels: bool, seed: u64) -> Tally {
    let mut tracker = tracker(artifact, knobs);
    let mut stream = Stream::new(seed);
    let mut tally = Tally::default();
    let mut left = rows;
    while left > 0 {
        let n = left.min(CHUNK_ROWS);
        left -= n;
        let entries = stream.entries(n, &Regime::default(), labels);
        let out = tracker.process(entries, stream.last_seq());
        tally.rows += n;
        if labels {
            tally.labels += n;
        }
        for (report, _) in &out.reports {
            let mut drifted: BTreeSet<String> = report
                .drift
                .drifted_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            if report.drift.prediction.as_ref().is_some_and(|p| p.drifted) {
                drifted.insert(":prediction".to_owned());
            }
            tally.raw.push(drifted);
            for f in &report.drift.features {
                if let (Some(score), Some(test)) = (f.score, f.test)
                    && !test.is_p_value()
                {
                    let max = tally.max_score.entry(f.name.clone()).or_insert(0.0);
                    *max = max.max(score);
                }
            }
        }
        for a in out.announcements {
            match a.event.kind {
                DriftKind::Data => {
                    tally.data += 1;
                    for f in &a.event.features {
                        *tally.features.entry(f.feature.clone()).or_default() += 1;
                    }
                }
                DriftKind::Prediction => tally.prediction += 1,
                DriftKind::Performance => {
                    if a.event.features.iter().any(|f| f.method == "page_hinkley") {
                        tally.performance_page_hinkley += 1;
                    } else {
                        tally.performance_accuracy += 1;
                    }
                }
            }
        }
    }
    tally
}

/// Data-drift episodes the tracker's confirmation rule would start over `raw` verdicts with
/// `confirm` windows in a row (features only, or `:prediction` only): the same streak logic
/// as `Tracker::confirm`, replayed so one pass measures every `confirm`.
pub fn replay_alarms(raw: &[BTreeSet<String>], confirm: u32, prediction: bool) -> usize {
    let mut streaks: BTreeMap<&str, u32> = BTreeMap::new();
    let mut open = false;
    let mut alarms = 0;
    for window in raw {
        let mut next = BTreeMap::new();
        let mut confirmed = false;
        for name in window {
            if (name == ":prediction") != prediction {
                continue;
            }
            let streak = streaks.get(name.as_str()).copied().unwrap_or(0) + 1;
            confirmed |= streak >= confirm;
            next.insert(name.as_str(), streak);
        }
        streaks = next;
        if confirmed && !open {
            alarms += 1;
        }
        open = confirmed;
    }
    alarms
}

/// Rows from the start of a 0.5-std shift of `x0` until the data-drift event (`None`: not
/// within `max_rows`), after `calm_windows` calm windows.
pub fn shift_delay(
    artifact: &Arc<Artifact>,
    knobs: Knobs,
    shift: f64,
    calm_windows: usize,
    max_rows: usize,
    seed: u64,
) -> Option<usize> {
    let mut tracker = tracker(artifact, knobs);
    let mut stream = Stream::new(seed);
    for _ in 0..calm_windows {
        let entries = stream.entries(knobs.window_rows, &Regime::default(), false);
        tracker.process(entries, stream.last_seq());
    }
    let start = stream.last_seq() + 1;
    let regime = Regime {
        shift,
        ..Regime::default()
    };
    let step = knobs.window_rows.min(CHUNK_ROWS);
    let mut sent = 0;
    while sent < max_rows {
        let entries = stream.entries(step, &regime, false);
        sent += step;
        let out = tracker.process(entries, stream.last_seq());
        if let Some(event) = out.announcements.iter().find(|a| {
            a.event.kind == DriftKind::Data && a.event.features.iter().any(|f| f.feature == "x0")
        }) {
            let to = event.event.window.to_seq.unwrap_or(start);
            return Some((to + 1 - start) as usize);
        }
    }
    None
}

/// Rows into a gradual rotation of the decision boundary (0 to 180 degrees over `total`
/// rows, labeled as they come) until the first performance event (`None`: not at all).
pub fn rotation_delay(
    artifact: &Arc<Artifact>,
    knobs: Knobs,
    total: usize,
    seed: u64,
) -> Option<usize> {
    let mut tracker = tracker(artifact, knobs);
    let mut stream = Stream::new(seed);
    let step = 50;
    let mut sent = 0;
    while sent < total {
        let regime = Regime {
            rotation: std::f64::consts::PI * sent as f64 / total as f64,
            ..Regime::default()
        };
        let entries = stream.entries(step, &regime, true);
        sent += step;
        let out = tracker.process(entries, stream.last_seq());
        if out
            .announcements
            .iter()
            .any(|a| a.event.kind == DriftKind::Performance)
        {
            return Some(sent);
        }
    }
    None
}

/// Labels from the first label of a flipped concept until the performance event, and the
/// method that found it (`None`: not within `max_labels`), after `calm_labels` calm ones.
pub fn flip_delay(
    artifact: &Arc<Artifact>,
    knobs: Knobs,
    calm_labels: usize,
    max_labels: usize,
    seed: u64,
) -> Option<(usize, String)> {
    let mut tracker = tracker(artifact, knobs);
    let mut stream = Stream::new(seed);
    let mut left = calm_labels;
    while left > 0 {
        let n = left.min(CHUNK_ROWS);
        left -= n;
        let entries = stream.entries(n, &Regime::default(), true);
        tracker.process(entries, stream.last_seq());
    }
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    // Rows and labels alternate: the first flipped label is the entry after the next row.
    let first_label = stream.last_seq() + 2;
    let step = 50;
    let mut sent = 0;
    while sent < max_labels {
        let entries = stream.entries(step, &flipped, true);
        sent += step;
        let out = tracker.process(entries, stream.last_seq());
        if let Some(a) = out
            .announcements
            .iter()
            .find(|a| a.event.kind == DriftKind::Performance)
        {
            let to = a.event.window.to_seq.unwrap_or(first_label);
            let labels = (to.saturating_sub(first_label) / 2 + 1) as usize;
            let method = a
                .event
                .features
                .first()
                .map(|f| f.method.clone())
                .unwrap_or_default();
            return Some((labels, method));
        }
    }
    None
}

/// SplitMix64: a small seeded generator for Bernoulli error streams (no extra dependency).
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// 1 with probability `p`, else 0.
    pub fn bernoulli(&mut self, p: f64) -> f64 {
        f64::from(u8::from(self.next_f64() < p))
    }
}

/// Page-Hinkley alarms on `values` errors of a calm model with error rate `p` (the error
/// stream of a calm champion is a Bernoulli stream: the detector sees nothing else).
pub fn page_hinkley_calm_alarms(
    config: mend_monitor::detector::PageHinkleyConfig,
    p: f64,
    values: usize,
    seed: u64,
) -> usize {
    let mut detector = mend_monitor::detector::PageHinkley::new(config);
    let mut rng = SplitMix::new(seed);
    (0..values)
        .filter(|_| detector.update(rng.bernoulli(p)))
        .count()
}

/// Values from a jump of the error rate `from` → `to` (after `calm` calm values) until the
/// alarm, and the estimated change point's distance from the jump (`None`: not within
/// `max`, or an alarm before the jump).
pub fn page_hinkley_delay(
    config: mend_monitor::detector::PageHinkleyConfig,
    from: f64,
    to: f64,
    calm: usize,
    max: usize,
    seed: u64,
) -> Option<(usize, i64)> {
    let mut detector = mend_monitor::detector::PageHinkley::new(config);
    let mut rng = SplitMix::new(seed);
    for tag in 0..calm {
        if detector
            .update_tagged(rng.bernoulli(from), tag as u64)
            .is_some()
        {
            return None;
        }
    }
    for i in 0..max {
        let tag = (calm + i) as u64;
        if let Some(change) = detector.update_tagged(rng.bernoulli(to), tag) {
            return Some((i + 1, change as i64 - calm as i64));
        }
    }
    None
}
