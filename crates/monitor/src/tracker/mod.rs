//! The per-model state machine, pure and synchronous (it runs on the blocking pool): data-log
//! entries go in, in sequence order; completed windows (report, page) and the events to
//! publish come out. It is rebuilt from the saved [`ModelState`] after a restart or an error,
//! which is why everything it decides is a function of the entries it read since
//! `resume_seq`.
//!
//! This module is the orchestration: it routes each entry to the parts, closes windows, and
//! turns verdicts into announcements once per episode. The parts, one concern each:
//!
//! - `scoring.rs`: the champion's probabilities for rows, and logged predictions' own.
//! - `window.rs`: the open data window (bounded summary, bounds, CBPE sums).
//! - `streaks.rs`: confirmation of drift over windows in a row, and the data-drift alarm.
//! - `labels.rs`: the label join, scoring, the Page-Hinkley detector and the accuracy trend
//!   wired together (the detector itself is [`crate::detector`], the scoring
//!   [`crate::performance`]).
//! - `events.rs`: the data, prediction and performance event builders.
//! - `episode_start.rs`: the start of its drift episode every announcement names.
//! - `page.rs`: a completed window's HTML page.

mod episode_start;
mod events;
#[cfg(test)]
mod fixtures;
mod labels;
mod page;
mod scoring;
mod streaks;
mod window;

use mend_bus::ModelName;
use mend_bus::events::{DriftDetected, DriftKind};
use mend_core::drift::{
    DriftPolicy, DriftReference, SummaryConfig, WindowSummary, compare_reference,
};
use mend_core::record::{LabelRecord, PredictionRecord, RowRecord, Values};

use crate::champion::Champion;
use crate::detector::PageHinkleyConfig;
use crate::performance::TrendConfig;
use crate::reports::{MonitorReport, ReportParts, report_id};
use crate::state::ModelState;
use events::Subject;
use labels::{Baseline, Judgement, LabelStream};
use streaks::PREDICTION;
use window::OpenWindow;

/// What the tracker is tuned by (from [`crate::MonitorConfig`]).
#[derive(Debug, Clone)]
pub struct TrackerSettings {
    pub window_rows: usize,
    /// When set, a window also closes once it spans this long (by log time, in ms).
    pub window_ms: Option<i64>,
    pub label_window: usize,
    pub accuracy_tolerance: f64,
    pub min_drifted_features: usize,
    pub confirm_windows: u32,
    pub join_rows: usize,
    pub policy: DriftPolicy,
    pub detector: PageHinkleyConfig,
    pub trend: TrendConfig,
    pub summary: SummaryConfig,
}

/// One data-log entry of any kind.
#[derive(Debug, Clone)]
pub enum Entry {
    Row {
        seq: u64,
        ms: i64,
        row: RowRecord,
    },
    Prediction {
        seq: u64,
        ms: i64,
        prediction: PredictionRecord,
    },
    Label {
        seq: u64,
        label: LabelRecord,
    },
}

impl Entry {
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Row { seq, .. } | Entry::Prediction { seq, .. } | Entry::Label { seq, .. } => {
                *seq
            }
        }
    }
}

/// An event to publish, with the id that makes publishing it twice store it once.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub id: String,
    pub event: DriftDetected,
}

/// What processing a batch of entries produced, in order.
#[derive(Debug, Default)]
pub struct Outputs {
    pub reports: Vec<(MonitorReport, String)>,
    pub announcements: Vec<Announcement>,
    pub accuracy: Option<f64>,
}

/// One model's monitor against one champion.
#[derive(Debug)]
pub struct Tracker {
    model: ModelName,
    settings: TrackerSettings,
    champion: Champion,
    reference: DriftReference,
    classes: Vec<String>,
    /// What is saved: where the open window starts, and the episodes.
    pub state: ModelState,
    next_seq: u64,
    window: OpenWindow,
    labels: LabelStream,
}

impl Tracker {
    /// A tracker resuming from `state`; a state saved against another champion starts a
    /// fresh episode.
    pub fn new(
        model: ModelName,
        settings: TrackerSettings,
        champion: Champion,
        mut state: ModelState,
    ) -> Tracker {
        if state.champion_version != Some(champion.version) {
            state.episodes.clear();
            state.streaks.clear();
            state.streak_starts.clear();
            state.champion_version = Some(champion.version);
        }
        let reference = DriftReference::from_profile(&champion.artifact.profile);
        let window = OpenWindow::new(WindowSummary::for_reference(&reference, settings.summary));
        let classes = champion.artifact.schema.classes.clone();
        let holdout = &champion.artifact.profile.holdout_metrics;
        let baseline = Baseline {
            accuracy: holdout.accuracy,
            log_loss: holdout.log_loss,
        };
        Tracker {
            model,
            labels: LabelStream::new(&settings, baseline),
            settings,
            champion,
            reference,
            classes,
            next_seq: state.resume_seq,
            state,
            window,
        }
    }

    pub fn champion_version(&self) -> u64 {
        self.champion.version
    }

    /// The next sequence to read.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Processes entries read from `next_seq` up to `read_to` (inclusive), sorted by sequence.
    pub fn process(&mut self, entries: Vec<Entry>, read_to: u64) -> Outputs {
        let mut out = Outputs::default();
        let rows: Vec<&RowRecord> = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Row { row, .. } => Some(row),
                _ => None,
            })
            .collect();
        let mut scored_rows = scoring::predict(&self.champion, &self.model, &rows).into_iter();
        for entry in entries {
            match entry {
                Entry::Row { seq, ms, row } => {
                    let probabilities = scored_rows.next().flatten();
                    self.add_row(seq, ms, row.id, &row.values, probabilities, &mut out);
                }
                Entry::Prediction {
                    seq,
                    ms,
                    prediction,
                } => {
                    let probabilities = scoring::logged(&prediction, &self.classes);
                    self.add_row(
                        seq,
                        ms,
                        prediction.row_id,
                        &prediction.values,
                        probabilities,
                        &mut out,
                    );
                }
                Entry::Label { seq, label } => {
                    let judgement = self.labels.label(seq, label, &self.classes);
                    self.settle_labels(seq, judgement, &mut out);
                }
            }
        }
        self.next_seq = self.next_seq.max(read_to.saturating_add(1));
        out
    }

    fn add_row(
        &mut self,
        seq: u64,
        ms: i64,
        id: String,
        values: &Values,
        probabilities: Option<Vec<f64>>,
        out: &mut Outputs,
    ) {
        // A time window closes before the first row past its span, which opens the next.
        if let Some(last) = self.window.overrun(self.settings.window_ms, ms) {
            self.complete_window(last, out);
        }
        self.window.push_row(seq, ms, values);
        if let Some(probabilities) = probabilities {
            self.window.push_probabilities(&probabilities);
            let judgement = self.labels.row(seq, id, probabilities, &self.classes);
            self.settle_labels(seq, judgement, out);
        }
        if self.window.rows() as usize >= self.settings.window_rows {
            self.complete_window(seq, out);
        }
    }

    /// Announces what a joined label (read at `seq`) showed: a Page-Hinkley alarm, and a full
    /// window's verdict, each once per episode of performance drift.
    fn settle_labels(&mut self, seq: u64, judgement: Judgement, out: &mut Outputs) {
        if let Some((change_seq, judged)) = judgement.alarm {
            tracing::info!(model = %self.model, seq, change_seq, "page-hinkley alarm on the error stream");
            if self.state.episodes.alarm(DriftKind::Performance) {
                let event = self.subject().page_hinkley(change_seq, seq, &judged);
                self.announce(event, out);
            }
        }
        if let Some(judged) = judgement.window {
            if self
                .state
                .episodes
                .observe(DriftKind::Performance, judged.drifted)
            {
                let event = self.subject().label_window(seq, &judged);
                self.announce(event, out);
            }
            out.accuracy = Some(judged.accuracy);
        }
    }

    fn subject(&self) -> Subject<'_> {
        Subject {
            model: &self.model,
            champion_version: self.champion.version,
        }
    }

    /// Queues an announcement. The first of an episode records where the episode began; one
    /// after a rejection re-armed the episode names that same start, so the retrain it asks
    /// for reads every row since the drift began, not only the latest evidence.
    fn announce(&mut self, mut announcement: Announcement, out: &mut Outputs) {
        episode_start::anchor(&mut self.state.episodes, &mut announcement);
        out.announcements.push(announcement);
    }

    /// The trainer rejected a candidate meant to replace `champion_version` (`None`: not
    /// named): every open episode is announced again by its next verdict that still shows
    /// the drift. A rejection about another champion changes nothing (its episodes ended
    /// when this one took over). Returns the kinds re-armed.
    pub fn rearm(&mut self, champion_version: Option<u64>) -> Vec<DriftKind> {
        if champion_version.is_some_and(|version| version != self.champion.version) {
            return Vec::new();
        }
        self.state.episodes.rearm()
    }

    fn complete_window(&mut self, last_seq: u64, out: &mut Outputs) {
        let report = compare_reference(
            &self.reference,
            self.window.summary(),
            &self.settings.policy,
        );
        let confirmed = streaks::confirm(
            &mut self.state,
            &report,
            self.window.streak_start(last_seq),
            self.settings.confirm_windows,
        );
        // The alarms (the four verdicts are named by the report): data drift is feature drift
        // confirmed in enough features, or in any while the dataset drifts.
        let data_alarm =
            streaks::data_alarm(&report, &confirmed, self.settings.min_drifted_features);
        let prediction_alarm = confirmed.contains(PREDICTION);
        let window = self.window.bounds(last_seq);
        let monitor_report = MonitorReport::new(ReportParts {
            id: report_id(last_seq),
            model: self.model.as_str().to_owned(),
            champion_version: self.champion.version,
            window: window.clone(),
            created_ms: now_ms(),
            data_alarm,
            confirmed: confirmed.iter().cloned().collect(),
            estimated_accuracy: self.window.estimated_accuracy(),
            performance: self.labels.last().cloned(),
            drift: report,
        });
        let page = page::page(
            &self.model,
            self.champion.version,
            self.state.windows + 1,
            &monitor_report,
            &self.labels.history(),
            self.labels.baseline().accuracy,
        );

        if self.state.episodes.observe(DriftKind::Data, data_alarm) {
            let features = confirmed.iter().filter(|name| name.as_str() != PREDICTION);
            let streak = streaks::streak_window(&self.state.streak_starts, features, &window);
            let event = self.subject().data(&monitor_report, &confirmed, streak);
            self.announce(event, out);
        }
        if self
            .state
            .episodes
            .observe(DriftKind::Prediction, prediction_alarm)
        {
            let streak = streaks::streak_window(
                &self.state.streak_starts,
                [PREDICTION.to_owned()].iter(),
                &window,
            );
            let event = self.subject().prediction(&monitor_report, streak);
            self.announce(event, out);
        }
        out.reports.push((monitor_report, page));

        self.window = OpenWindow::new(WindowSummary::for_reference(
            &self.reference,
            self.settings.summary,
        ));
        self.state.resume_seq = last_seq + 1;
        self.state.windows += 1;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_bus::events::DataWindow;
    use mend_core::record::Value;

    use super::fixtures::{tracker, wrong_answers};
    use super::*;
    use crate::episode::EpisodeStart;

    #[test]
    fn performance_drift_is_announced_once_per_episode_and_again_after_a_rejection() {
        // Saved against champion v2: its episode and streaks end with it.
        let mut saved = ModelState {
            resume_seq: 1,
            champion_version: Some(2),
            ..ModelState::default()
        };
        saved.episodes.open(DriftKind::Performance);
        saved.streaks.insert("x0".to_owned(), 2);
        let mut tracker = tracker(1, 1_000, saved);
        assert!(!tracker.state.episodes.performance && tracker.state.streaks.is_empty());
        assert_eq!(
            (tracker.state.champion_version, tracker.next_seq()),
            (Some(1), 1)
        );
        let baseline = tracker.labels.baseline().accuracy;
        assert!(
            baseline > 0.05,
            "0 must fall more than 0.05 below {baseline}"
        );
        let classes = tracker.classes.clone();
        let out = tracker.process(wrong_answers(1, &classes), 8);
        assert_eq!((out.accuracy, out.reports.len()), (Some(0.0), 0));
        let [first] = out.announcements.as_slice() else {
            panic!("one announcement: {:?}", out.announcements);
        };
        assert_eq!(first.id, "monitor-churn-performance-v1-8");
        assert_eq!(
            first.event.window,
            DataWindow::sequence(5, 8, 4),
            "the labels"
        );
        let accuracy = &first.event.features[0];
        assert_eq!(
            (accuracy.method.as_str(), accuracy.score),
            ("accuracy", baseline)
        );
        let start = EpisodeStart {
            from_seq: 5,
            from_time_ms: None,
        };
        assert_eq!(
            tracker.state.episodes.start(DriftKind::Performance),
            Some(start)
        );
        assert_eq!((tracker.next_seq(), tracker.state.resume_seq), (9, 1));

        let out = tracker.process(wrong_answers(9, &classes), 16);
        assert_eq!(out.accuracy, Some(0.0));
        assert!(out.announcements.is_empty(), "the episode is open");
        assert!(tracker.rearm(Some(2)).is_empty(), "about another champion");
        assert_eq!(tracker.rearm(None), [DriftKind::Performance]);
        let out = tracker.process(wrong_answers(17, &classes), 24);
        let [again] = out.announcements.as_slice() else {
            panic!("announced again: {:?}", out.announcements);
        };
        assert_eq!(again.id, "monitor-churn-performance-v1-24");
        let episode = DataWindow {
            from_seq: Some(5),
            to_seq: Some(24),
            ..DataWindow::default()
        };
        assert_eq!(again.event.window, episode, "from the episode's start");
    }

    #[test]
    fn a_full_window_is_reported_and_the_position_saved_after_it() {
        let mut tracker = tracker(1, 3, ModelState::default());
        let rows = (1..=4).map(|seq| Entry::Row {
            seq,
            ms: seq as i64 * 100,
            row: RowRecord {
                id: format!("row-{seq}"),
                time_ms: 0,
                values: Values::from([("x0", Value::Number(0.3)), ("x1", Value::Number(-0.2))]),
            },
        });
        let out = tracker.process(rows.collect(), 4);
        let [(report, page)] = out.reports.as_slice() else {
            panic!("one window of 3 rows, the fourth row opens the next");
        };
        assert_eq!(report.id, "00000000000000000003");
        let window = DataWindow {
            from_time_ms: Some(100),
            to_time_ms: Some(300),
            ..DataWindow::sequence(1, 3, 3)
        };
        assert_eq!(report.window, window);
        let estimate = report
            .estimated_accuracy
            .expect("the champion scored the rows");
        assert!(
            (0.5..=1.0).contains(&estimate),
            "a top probability of 2: {estimate}"
        );
        assert!(page.contains("window #1 (sequences 1–3, 3 rows) against champion v1"));
        assert!(
            out.announcements.is_empty(),
            "nothing is confirmed in one window"
        );
        assert_eq!((tracker.state.resume_seq, tracker.state.windows), (4, 1));
        assert_eq!(tracker.next_seq(), 5);
    }
}
