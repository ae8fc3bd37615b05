//! The per-model state machine, pure and synchronous (it runs on the blocking pool): data-log
//! entries go in, in sequence order; completed windows (report, page) and the events to
//! publish come out. It holds the open window's bounded summary, the label join, the rolling
//! performance window and the Page-Hinkley detector, and it is rebuilt from the saved
//! [`ModelState`] after a restart or an error, which is why everything it decides is a
//! function of the entries it read since `resume_seq`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use mend_bus::ModelName;
use mend_bus::events::{DataWindow, DriftDetected, DriftKind, FeatureDrift};
use mend_core::Frame;
use mend_core::drift::{
    DriftPolicy, DriftReference, SummaryConfig, WindowSummary, compare_reference,
};
use mend_core::record::{LabelRecord, PredictionRecord, RowRecord, Values};
use mend_core::report::{PageOptions, html};

use crate::champion::Champion;
use crate::detector::{PageHinkley, PageHinkleyConfig};
use crate::episode::EpisodeStart;
use crate::performance::{
    AccuracyTrend, LabelWindow, PendingLabels, PerformanceWindow, RecentRows, TrendConfig,
    confidence, score,
};
use crate::reports::{MonitorReport, PREDICTION_STREAK, ReportParts, report_id};
use crate::state::{ModelState, StreakStart};

/// Accuracy points kept for the performance chart.
const HISTORY: usize = 60;
/// The streak key of prediction drift.
const PREDICTION: &str = PREDICTION_STREAK;

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
    window: WindowSummary,
    window_from: Option<u64>,
    window_last: Option<u64>,
    window_from_ms: Option<i64>,
    window_to_ms: Option<i64>,
    confidence_sum: f64,
    confidence_rows: u64,
    recent: RecentRows,
    pending: PendingLabels,
    labels: LabelWindow,
    detector: PageHinkley,
    /// The champion's accuracy on its newest labels against its older ones (since the
    /// tracker began with it: a restart starts the count again, as it does Page-Hinkley's).
    trend: AccuracyTrend,
    last_performance: Option<PerformanceWindow>,
    history: VecDeque<(String, f64)>,
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
        let window = WindowSummary::for_reference(&reference, settings.summary);
        let classes = champion.artifact.schema.classes.clone();
        Tracker {
            model,
            recent: RecentRows::new(settings.join_rows),
            pending: PendingLabels::new(settings.join_rows),
            detector: PageHinkley::new(settings.detector),
            trend: AccuracyTrend::new(settings.trend),
            settings,
            champion,
            reference,
            classes,
            next_seq: state.resume_seq,
            state,
            window,
            window_from: None,
            window_last: None,
            window_from_ms: None,
            window_to_ms: None,
            confidence_sum: 0.0,
            confidence_rows: 0,
            labels: LabelWindow::default(),
            last_performance: None,
            history: VecDeque::new(),
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
        let mut scored_rows = self.predict(&rows).into_iter();
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
                    let probabilities: Vec<f64> = prediction
                        .probabilities
                        .iter()
                        .map(|&p| f64::from(p))
                        .collect();
                    let probabilities =
                        (probabilities.len() == self.classes.len()).then_some(probabilities);
                    self.add_row(
                        seq,
                        ms,
                        prediction.row_id,
                        &prediction.values,
                        probabilities,
                        &mut out,
                    );
                }
                Entry::Label { seq, label } => self.add_label(seq, label, &mut out),
            }
        }
        self.next_seq = self.next_seq.max(read_to.saturating_add(1));
        out
    }

    /// The champion's probabilities for each row (`None` for a row it cannot score).
    fn predict(&self, rows: &[&RowRecord]) -> Vec<Option<Vec<f64>>> {
        if rows.is_empty() {
            return Vec::new();
        }
        let schema = &self.champion.artifact.schema;
        let (frame, rejected) = Frame::from_records(schema, rows);
        let mut out = vec![None; rows.len()];
        let proba = match self.champion.artifact.predict_proba(&frame) {
            Ok(proba) => proba,
            Err(error) => {
                tracing::warn!(model = %self.model, %error, "cannot score rows with the champion");
                return out;
            }
        };
        let mut rejected_rows = rejected.iter().map(|(index, _)| *index).peekable();
        let mut scored = proba.rows().into_iter();
        for (index, slot) in out.iter_mut().enumerate() {
            if rejected_rows.peek() == Some(&index) {
                rejected_rows.next();
                continue;
            }
            *slot = scored.next().map(|row| row.to_vec());
        }
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
        if let (Some(span), Some(from_ms), Some(last)) = (
            self.settings.window_ms,
            self.window_from_ms,
            self.window_last,
        ) && ms - from_ms >= span
        {
            self.complete_window(last, out);
        }
        self.window.push_values(values);
        self.window_from.get_or_insert(seq);
        self.window_last = Some(seq);
        self.window_from_ms.get_or_insert(ms);
        self.window_to_ms = Some(ms);
        if let Some(probabilities) = probabilities {
            self.window.push_probabilities(&probabilities);
            self.confidence_sum += confidence(&probabilities);
            self.confidence_rows += 1;
            if let Some((label, label_seq)) = self.pending.take(&id) {
                self.judge_label(seq, label_seq, &probabilities, &label, out);
            }
            self.recent.insert(id, probabilities);
        }
        if self.window.rows as usize >= self.settings.window_rows {
            self.complete_window(seq, out);
        }
    }

    fn add_label(&mut self, seq: u64, label: LabelRecord, out: &mut Outputs) {
        match self.recent.get(&label.row_id).map(<[f64]>::to_vec) {
            Some(probabilities) => self.judge_label(seq, seq, &probabilities, &label.label, out),
            None => self.pending.insert(label.row_id, label.label, seq),
        }
    }

    fn baselines(&self) -> (f64, f64) {
        let holdout = &self.champion.artifact.profile.holdout_metrics;
        (holdout.accuracy, holdout.log_loss)
    }

    /// Scores one label. `seq` is where the log has been read to (the label, or the row a
    /// waiting label joined), `label_seq` where the label itself was logged: a drift's start
    /// is named in label sequences, which is what the trainer filters its labels by.
    fn judge_label(
        &mut self,
        seq: u64,
        label_seq: u64,
        probabilities: &[f64],
        label: &str,
        out: &mut Outputs,
    ) {
        let Some(scored) = score(probabilities, &self.classes, label) else {
            return;
        };
        self.labels.push(label_seq, scored);
        self.trend.push(label_seq, scored.correct);
        let (baseline_accuracy, baseline_log_loss) = self.baselines();
        let tolerance = self.settings.accuracy_tolerance;
        let error = if scored.correct { 0.0 } else { 1.0 };
        if let Some(change_seq) = self.detector.update_tagged(error, label_seq) {
            self.labels.mark_alarm();
            tracing::info!(model = %self.model, seq, change_seq, "page-hinkley alarm on the error stream");
            if self.state.episodes.alarm(DriftKind::Performance) {
                let judged = self.labels.judge(
                    baseline_accuracy,
                    baseline_log_loss,
                    tolerance,
                    self.trend.judge(),
                );
                let event = self.performance_event(change_seq, seq, &judged, "page_hinkley");
                self.announce(event, out);
            }
        }
        if self.labels.labels() as usize >= self.settings.label_window {
            let judged = self.labels.judge(
                baseline_accuracy,
                baseline_log_loss,
                tolerance,
                self.trend.judge(),
            );
            self.labels = LabelWindow::default();
            if self
                .state
                .episodes
                .observe(DriftKind::Performance, judged.drifted)
            {
                // A slide only the trend test sees began within its recent labels.
                let (from_seq, method) = match &judged.trend {
                    Some(trend) if judged.drifted_by_trend_only() => {
                        (trend.from_seq, "accuracy_trend")
                    }
                    _ => (judged.first_seq.unwrap_or(seq), "accuracy"),
                };
                let event = self.performance_event(from_seq, seq, &judged, method);
                self.announce(event, out);
            }
            out.accuracy = Some(judged.accuracy);
            self.history
                .push_back((format!("labels to #{seq}"), judged.accuracy));
            while self.history.len() > HISTORY {
                self.history.pop_front();
            }
            self.last_performance = Some(judged);
        }
    }

    /// A performance drift event over labels `from_seq..=seq`: `from_seq` is the estimated
    /// change point (Page-Hinkley) or the first label of the window judged bad (accuracy).
    fn performance_event(
        &self,
        from_seq: u64,
        seq: u64,
        judged: &PerformanceWindow,
        method: &str,
    ) -> Announcement {
        let mut metrics = BTreeMap::new();
        metrics.insert("accuracy".to_owned(), judged.accuracy);
        metrics.insert("log_loss".to_owned(), judged.log_loss);
        metrics.insert("baseline_accuracy".to_owned(), judged.baseline_accuracy);
        metrics.insert("baseline_log_loss".to_owned(), judged.baseline_log_loss);
        metrics.insert("labels".to_owned(), judged.labels as f64);
        if let Some(trend) = &judged.trend {
            metrics.insert("trend.recent_accuracy".to_owned(), trend.recent_accuracy);
            metrics.insert("trend.older_accuracy".to_owned(), trend.older_accuracy);
            metrics.insert("trend.older_labels".to_owned(), trend.older_labels as f64);
            metrics.insert("trend.z".to_owned(), trend.z);
        }
        let (score, threshold) = match &judged.trend {
            Some(trend) if method == "accuracy_trend" => (trend.z, trend.threshold),
            _ => (
                (judged.baseline_accuracy - judged.accuracy).max(0.0),
                judged.tolerance,
            ),
        };
        Announcement {
            id: self.event_id("performance", seq),
            event: DriftDetected {
                kind: DriftKind::Performance,
                window: DataWindow {
                    from_seq: Some(from_seq.min(seq)),
                    to_seq: Some(seq),
                    rows: Some(judged.labels),
                    ..DataWindow::default()
                },
                features: vec![FeatureDrift {
                    feature: "accuracy".to_owned(),
                    method: method.to_owned(),
                    score,
                    threshold,
                    drifted: true,
                }],
                dataset_share: 0.0,
                dataset_drift: false,
                report_id: None,
                champion_version: Some(self.champion.version),
                metrics,
            },
        }
    }

    /// Queues an announcement. The first of an episode records where the episode began; one
    /// after a rejection re-armed the episode names that same start, so the retrain it asks
    /// for reads every row since the drift began, not only the latest evidence.
    fn announce(&mut self, mut announcement: Announcement, out: &mut Outputs) {
        let kind = announcement.event.kind;
        let window = &mut announcement.event.window;
        match self.state.episodes.start(kind) {
            Some(start) if window.from_seq != Some(start.from_seq) => {
                window.from_seq = Some(start.from_seq);
                window.from_time_ms = start.from_time_ms;
                // The count described the evidence window, not the whole episode.
                window.rows = None;
            }
            Some(_) => {}
            None => {
                if let Some(from_seq) = window.from_seq {
                    let start = EpisodeStart {
                        from_seq,
                        from_time_ms: window.from_time_ms,
                    };
                    self.state.episodes.set_start(kind, start);
                }
            }
        }
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

    fn event_id(&self, kind: &str, seq: u64) -> String {
        format!(
            "monitor-{}-{kind}-v{}-{seq}",
            self.model.as_str(),
            self.champion.version
        )
    }

    fn complete_window(&mut self, last_seq: u64, out: &mut Outputs) {
        let from_seq = self.window_from.unwrap_or(last_seq);
        let report = compare_reference(&self.reference, &self.window, &self.settings.policy);
        let confirmed = self.confirm(
            &report,
            StreakStart {
                from_seq,
                from_time_ms: self.window_from_ms,
                rows: self.window.rows,
            },
        );
        let confirmed_features = report
            .features
            .iter()
            .filter(|f| confirmed.contains(f.name.as_str()))
            .count();
        // The alarms (the four verdicts are named by the report): data drift is feature drift
        // confirmed in enough features, or in any while the dataset drifts.
        let data_alarm = confirmed_features > 0
            && (report.dataset_drift || confirmed_features >= self.settings.min_drifted_features);
        let prediction_alarm = confirmed.contains(PREDICTION);
        let id = report_id(last_seq);
        let mut window = DataWindow::sequence(from_seq, last_seq, self.window.rows);
        window.from_time_ms = self.window_from_ms;
        window.to_time_ms = self.window_to_ms;
        let estimated_accuracy =
            (self.confidence_rows > 0).then(|| self.confidence_sum / self.confidence_rows as f64);
        let monitor_report = MonitorReport::new(ReportParts {
            id: id.clone(),
            model: self.model.as_str().to_owned(),
            champion_version: self.champion.version,
            window: window.clone(),
            created_ms: now_ms(),
            data_alarm,
            confirmed: confirmed.iter().cloned().collect(),
            estimated_accuracy,
            performance: self.last_performance.clone(),
            drift: report,
        });
        let page = self.page(&monitor_report);

        if self.state.episodes.observe(DriftKind::Data, data_alarm) {
            let features = confirmed.iter().filter(|name| name.as_str() != PREDICTION);
            let streak = self.streak_window(features, &window);
            let event = self.data_event(&monitor_report, &confirmed, streak);
            self.announce(event, out);
        }
        if self
            .state
            .episodes
            .observe(DriftKind::Prediction, prediction_alarm)
        {
            let streak = self.streak_window([PREDICTION.to_owned()].iter(), &window);
            let event = self.prediction_event(&monitor_report, streak);
            self.announce(event, out);
        }
        out.reports.push((monitor_report, page));

        self.window = WindowSummary::for_reference(&self.reference, self.settings.summary);
        self.window_from = None;
        self.window_last = None;
        self.window_from_ms = None;
        self.window_to_ms = None;
        self.confidence_sum = 0.0;
        self.confidence_rows = 0;
        self.state.resume_seq = last_seq + 1;
        self.state.windows += 1;
    }

    /// Updates the drift streaks with a window's verdicts and returns what is confirmed:
    /// drifted in `confirm_windows` windows in a row. One window's verdict at Evidently's
    /// thresholds flags a calm feature now and then (a distance of 0.1 is within sampling
    /// noise of a 500-row window); a real shift persists. `window` is this window's start,
    /// which begins the streak of a name that did not drift in the window before.
    fn confirm(
        &mut self,
        report: &mend_core::drift::DriftReport,
        window: StreakStart,
    ) -> BTreeSet<String> {
        let mut drifted: Vec<&str> = report.drifted_names();
        if report.prediction.as_ref().is_some_and(|p| p.drifted) {
            drifted.push(PREDICTION);
        }
        let previous = std::mem::take(&mut self.state.streaks);
        let mut previous_starts = std::mem::take(&mut self.state.streak_starts);
        let mut confirmed = BTreeSet::new();
        for name in drifted {
            let streak = previous.get(name).copied().unwrap_or(0) + 1;
            if streak >= self.settings.confirm_windows {
                confirmed.insert(name.to_owned());
            }
            self.state.streaks.insert(name.to_owned(), streak);
            let start = match previous_starts.remove(name) {
                Some(start) if streak > 1 => StreakStart {
                    rows: start.rows + window.rows,
                    ..start
                },
                _ => window,
            };
            self.state.streak_starts.insert(name.to_owned(), start);
        }
        confirmed
    }

    /// The window an event about `names` reports: from the start of the earliest of their
    /// streaks (where the drift began) to the end of the window that confirmed it.
    fn streak_window<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
        confirming: &DataWindow,
    ) -> DataWindow {
        let earliest = names
            .filter_map(|name| self.state.streak_starts.get(name))
            .min_by_key(|start| start.from_seq);
        match earliest {
            Some(start)
                if confirming
                    .from_seq
                    .is_none_or(|from| start.from_seq <= from) =>
            {
                DataWindow {
                    from_seq: Some(start.from_seq),
                    from_time_ms: start.from_time_ms,
                    rows: Some(start.rows),
                    ..confirming.clone()
                }
            }
            _ => confirming.clone(),
        }
    }

    fn data_event(
        &self,
        report: &MonitorReport,
        confirmed: &BTreeSet<String>,
        window: DataWindow,
    ) -> Announcement {
        let features = report
            .drift
            .features
            .iter()
            .filter(|f| f.drifted && confirmed.contains(&f.name))
            .map(|f| FeatureDrift {
                feature: f.name.clone(),
                method: f.test.map(test_name).unwrap_or_default(),
                score: f.score.unwrap_or(0.0),
                threshold: f.threshold,
                drifted: true,
            })
            .collect();
        Announcement {
            id: self.event_id("data", window.to_seq.unwrap_or_default()),
            event: DriftDetected {
                kind: DriftKind::Data,
                window,
                features,
                dataset_share: report.drift.drift_share,
                dataset_drift: report.drift.dataset_drift,
                report_id: Some(report.id.clone()),
                champion_version: Some(self.champion.version),
                metrics: BTreeMap::new(),
            },
        }
    }

    fn prediction_event(&self, report: &MonitorReport, window: DataWindow) -> Announcement {
        let features = report
            .drift
            .prediction
            .iter()
            .flat_map(|p| {
                p.classes.iter().map(move |class| FeatureDrift {
                    feature: format!("prediction:{}", class.class),
                    method: "jensen_shannon".to_owned(),
                    score: class.jensen_shannon.unwrap_or(0.0),
                    threshold: p.threshold,
                    drifted: class.jensen_shannon.is_some_and(|js| js >= p.threshold),
                })
            })
            .collect();
        let mut metrics = BTreeMap::new();
        if let Some(estimate) = report.estimated_accuracy {
            metrics.insert("estimated_accuracy".to_owned(), estimate);
        }
        Announcement {
            id: self.event_id("prediction", window.to_seq.unwrap_or_default()),
            event: DriftDetected {
                kind: DriftKind::Prediction,
                window,
                features,
                dataset_share: report.drift.drift_share,
                dataset_drift: report.drift.dataset_drift,
                report_id: Some(report.id.clone()),
                champion_version: Some(self.champion.version),
                metrics,
            },
        }
    }

    fn page(&self, report: &MonitorReport) -> String {
        let title = format!("Drift report: {}", self.model.as_str());
        let estimate = report
            .estimated_accuracy
            .map(|e| format!(", estimated accuracy (CBPE) {e:.3}"))
            .unwrap_or_default();
        let subtitle = format!(
            "window #{} (sequences {}–{}, {} rows) against champion v{}{estimate}",
            self.state.windows + 1,
            report.window.from_seq.unwrap_or_default(),
            report.window.to_seq.unwrap_or_default(),
            report.drift.current_rows,
            self.champion.version,
        );
        let history: Vec<(String, f64)> = self.history.iter().cloned().collect();
        let (baseline, _) = self.baselines();
        // The page opens with the same lines `mend report` prints for this report.
        let verdicts = report.verdicts();
        html(
            &report.drift,
            &PageOptions {
                title: &title,
                subtitle: Some(&subtitle),
                performance: &history,
                performance_baseline: Some(baseline),
                verdicts: Some(&verdicts),
            },
        )
    }
}

fn test_name(test: mend_core::drift::StatTest) -> String {
    serde_json::to_value(test)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| test.label().to_owned())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
