//! Reports on disk: every completed window's [`MonitorReport`] as JSON and as a
//! self-contained HTML page in `<data dir>/reports/<model>/<id>.{json,html}`. Ids are the
//! window's last sequence, zero-padded, so they sort by time and a window read again after
//! a restart rewrites its own report instead of adding one. Only the newest `kept` stay.

use std::io;
use std::path::{Path, PathBuf};

use mend_bus::events::DataWindow;
use mend_core::drift::DriftReport;
use mend_core::drift::verdict::{ALARM, PERFORMANCE_DRIFT, Verdict};
use serde::{Deserialize, Serialize};

use crate::performance::PerformanceWindow;

/// The streak key of prediction drift in [`MonitorReport::confirmed`] (no feature is named so:
/// features come from a schema whose names are column headers, and `:` marks this as ours).
pub const PREDICTION_STREAK: &str = ":prediction";

/// One window's verdicts, in the vocabulary of [`mend_core::drift::verdict`]: `feature_drift`,
/// `dataset_drift`, `prediction_drift` and `performance_drift` say what this window (and the
/// latest judged labels) show; `alarm` says what the monitor raises `drift.detected` for, which
/// is drift that persisted: feature drift in `confirm_windows` windows in a row. So a window
/// can show feature drift in one of six features (no dataset drift) and be part of a data-drift
/// alarm, and every surface (this JSON, the page, `mend report`) says exactly that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    pub id: String,
    pub model: String,
    pub champion_version: u64,
    pub window: DataWindow,
    pub created_ms: i64,
    /// Feature drift: the features whose test drifted in this window (the names of
    /// `drift.features` with `drifted`).
    #[serde(default)]
    pub feature_drift: Vec<String>,
    /// Dataset drift: the share rule on this window (`drift.dataset_drift`: at least
    /// `drift.dataset_drift_threshold` of the tested features drifted).
    #[serde(default)]
    pub dataset_drift: bool,
    /// Prediction drift: this window's predicted probabilities moved
    /// (`drift.prediction.drifted`). Reports written before the verdicts were named said
    /// here whether prediction drift was confirmed; that is `alarm.prediction` now.
    pub prediction_drift: bool,
    /// Performance drift: the latest judged run of labels (`performance.drifted`); `None`
    /// until labels have been judged.
    #[serde(default)]
    pub performance_drift: Option<bool>,
    /// What the monitor alarms on (and announces once per episode).
    #[serde(default)]
    pub alarm: Alarm,
    /// The data-drift alarm, the same as `alarm.data` (kept for readers of older reports):
    /// feature drift confirmed in at least `min_drifted_features` features, or in any while
    /// the dataset drifts. Not dataset drift: see `dataset_drift`.
    pub data_drift: bool,
    /// Features (and `:prediction`) whose drift is confirmed: drifted in enough windows in a
    /// row. A feature can be `drifted` in this window's table and not yet confirmed.
    pub confirmed: Vec<String>,
    /// Expected accuracy from predicted probabilities alone (CBPE).
    pub estimated_accuracy: Option<f64>,
    /// The latest judged run of labels, if any labels have arrived.
    pub performance: Option<PerformanceWindow>,
    pub drift: DriftReport,
}

/// The monitor's alarms in a report: the kinds of `drift.detected` the drift it shows calls
/// for (each announced once per episode, not once per report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// Data drift: confirmed feature drift (see [`MonitorReport::data_drift`]).
    pub data: bool,
    /// Prediction drift confirmed: drifted in `confirm_windows` windows in a row.
    pub prediction: bool,
    /// Performance drift in the latest judged run of labels.
    pub performance: bool,
}

impl Alarm {
    /// The kinds raised, as the events name them (`data, performance`), or `no`.
    pub fn kinds(&self) -> String {
        let kinds: Vec<&str> = [
            (self.data, "data"),
            (self.prediction, "prediction"),
            (self.performance, "performance"),
        ]
        .into_iter()
        .filter_map(|(raised, kind)| raised.then_some(kind))
        .collect();
        if kinds.is_empty() {
            "no".to_owned()
        } else {
            kinds.join(", ")
        }
    }
}

/// What a window's report is made of; [`MonitorReport::new`] names the verdicts.
#[derive(Debug, Clone)]
pub struct ReportParts {
    pub id: String,
    pub model: String,
    pub champion_version: u64,
    pub window: DataWindow,
    pub created_ms: i64,
    /// The data-drift alarm, decided by the tracker.
    pub data_alarm: bool,
    pub confirmed: Vec<String>,
    pub estimated_accuracy: Option<f64>,
    pub performance: Option<PerformanceWindow>,
    pub drift: DriftReport,
}

impl MonitorReport {
    /// A report with its verdict fields derived from its parts (so they cannot disagree
    /// with the comparison they summarise).
    pub fn new(parts: ReportParts) -> Self {
        let mut report = MonitorReport {
            id: parts.id,
            model: parts.model,
            champion_version: parts.champion_version,
            window: parts.window,
            created_ms: parts.created_ms,
            feature_drift: Vec::new(),
            dataset_drift: false,
            prediction_drift: false,
            performance_drift: None,
            alarm: Alarm::default(),
            data_drift: parts.data_alarm,
            confirmed: parts.confirmed,
            estimated_accuracy: parts.estimated_accuracy,
            performance: parts.performance,
            drift: parts.drift,
        };
        report.name_verdicts();
        report
    }

    /// Sets the verdict fields from the comparison, the alarm and the labels; also run on
    /// every report read from disk, so one written before these fields existed (or before
    /// `prediction_drift` meant this window's) is served the same as a new one.
    pub fn name_verdicts(&mut self) {
        self.feature_drift = self.window_feature_drift();
        self.dataset_drift = self.drift.dataset_drift;
        self.prediction_drift = self.window_prediction_drift();
        self.performance_drift = self.performance.as_ref().map(|p| p.drifted);
        self.alarm = self.alarms();
    }

    fn window_feature_drift(&self) -> Vec<String> {
        self.drift
            .drifted_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn window_prediction_drift(&self) -> bool {
        self.drift.prediction.as_ref().is_some_and(|p| p.drifted)
    }

    /// The alarms, from the fields every report has carried (a report written before
    /// `alarm` existed reads the same).
    pub fn alarms(&self) -> Alarm {
        Alarm {
            data: self.data_drift,
            prediction: self.confirmed.iter().any(|name| name == PREDICTION_STREAK),
            performance: self.performance.as_ref().is_some_and(|p| p.drifted),
        }
    }

    /// The report's verdicts, in the order every surface shows them: the alarm, dataset
    /// drift, feature drift, prediction drift, performance drift. The HTML page opens with
    /// these lines and `mend report` prints them.
    pub fn verdicts(&self) -> Vec<Verdict> {
        vec![
            self.alarm_verdict(),
            self.drift.dataset_verdict(),
            self.drift.feature_verdict(),
            self.drift.prediction_verdict(),
            self.performance_verdict(),
        ]
    }

    /// `alarm: yes (data: feature drift confirmed in x0)`, or why there is none.
    fn alarm_verdict(&self) -> Verdict {
        let alarm = self.alarms();
        let features: Vec<&str> = self
            .confirmed
            .iter()
            .map(String::as_str)
            .filter(|name| *name != PREDICTION_STREAK)
            .collect();
        let mut raised = Vec::new();
        if alarm.data {
            raised.push(format!(
                "data: feature drift confirmed in {}",
                features.join(", ")
            ));
        }
        if alarm.prediction {
            raised.push("prediction: prediction drift confirmed".to_owned());
        }
        if alarm.performance {
            raised.push("performance: accuracy fell on the latest labels".to_owned());
        }
        if !raised.is_empty() {
            return Verdict::new(ALARM, Some(true), raised.join("; "));
        }
        let detail = if !features.is_empty() {
            format!(
                "feature drift confirmed in {}, too few features for a data-drift alarm",
                features.join(", ")
            )
        } else if !self.drift.drifted_names().is_empty() || self.window_prediction_drift() {
            "drift in this window is not confirmed yet: it must persist for several windows in \
             a row"
                .to_owned()
        } else {
            "nothing drifted".to_owned()
        };
        Verdict::new(ALARM, Some(false), detail)
    }

    /// Performance drift of the latest judged run of labels.
    fn performance_verdict(&self) -> Verdict {
        let Some(p) = &self.performance else {
            return Verdict::new(PERFORMANCE_DRIFT, None, "no labels judged yet");
        };
        let mut detail = format!(
            "accuracy {:.4} on {} labels, baseline {:.4}, tolerance {:.2}",
            p.accuracy, p.labels, p.baseline_accuracy, p.tolerance
        );
        if p.detector_alarm {
            detail.push_str("; Page-Hinkley alarm");
        }
        if let Some(trend) = p.trend.as_ref().filter(|t| t.drifted) {
            detail.push_str(&format!(
                "; accuracy trend z {:.2} >= {:.2}",
                trend.z, trend.threshold
            ));
        }
        Verdict::new(PERFORMANCE_DRIFT, Some(p.drifted), detail)
    }
}

/// One line of a listing, with the report's verdicts named as in [`MonitorReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub id: String,
    pub created_ms: i64,
    pub champion_version: u64,
    pub rows: u64,
    /// The monitor's alarms.
    #[serde(default)]
    pub alarm: Alarm,
    /// The data-drift alarm, the same as `alarm.data` (not dataset drift).
    pub data_drift: bool,
    /// Dataset drift: the share rule.
    #[serde(default)]
    pub dataset_drift: bool,
    /// Prediction drift in this window.
    pub prediction_drift: bool,
    /// Performance drift in the latest judged labels (`None`: none judged yet).
    #[serde(default)]
    pub performance_drift: Option<bool>,
    pub drift_share: f64,
    /// Feature drift: the features that drifted in this window.
    #[serde(default)]
    pub feature_drift: Vec<String>,
    /// The same as `feature_drift` (kept for older readers).
    pub drifted_features: Vec<String>,
    pub accuracy: Option<f64>,
    pub estimated_accuracy: Option<f64>,
}

impl From<&MonitorReport> for ReportSummary {
    fn from(report: &MonitorReport) -> Self {
        let feature_drift = report.window_feature_drift();
        ReportSummary {
            id: report.id.clone(),
            created_ms: report.created_ms,
            champion_version: report.champion_version,
            rows: report.drift.current_rows,
            alarm: report.alarms(),
            data_drift: report.data_drift,
            dataset_drift: report.drift.dataset_drift,
            prediction_drift: report.window_prediction_drift(),
            performance_drift: report.performance.as_ref().map(|p| p.drifted),
            drift_share: report.drift.drift_share,
            drifted_features: feature_drift.clone(),
            feature_drift,
            accuracy: report.performance.as_ref().map(|p| p.accuracy),
            estimated_accuracy: report.estimated_accuracy,
        }
    }
}

/// The id of the window ending at `last_seq`.
pub fn report_id(last_seq: u64) -> String {
    format!("{last_seq:020}")
}

/// Whether `id` can name a report (and so a file): digits only.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The reports directory of a data dir.
#[derive(Debug, Clone)]
pub struct ReportStore {
    dir: PathBuf,
    kept: usize,
}

impl ReportStore {
    pub fn new(data_dir: &Path, kept: usize) -> Self {
        ReportStore {
            dir: data_dir.join("reports"),
            kept: kept.max(1),
        }
    }

    fn model_dir(&self, model: &str) -> PathBuf {
        self.dir.join(model)
    }

    /// Writes a report's JSON and HTML, then deletes the oldest past the retention.
    pub async fn write(&self, report: &MonitorReport, html: &str) -> io::Result<()> {
        let dir = self.model_dir(&report.model);
        tokio::fs::create_dir_all(&dir).await?;
        let json = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
        write_atomic(&dir.join(format!("{}.json", report.id)), &json).await?;
        write_atomic(&dir.join(format!("{}.html", report.id)), html.as_bytes()).await?;
        let ids = self.ids(&report.model).await?;
        if ids.len() > self.kept {
            for old in &ids[..ids.len() - self.kept] {
                for extension in ["json", "html"] {
                    let _ = tokio::fs::remove_file(dir.join(format!("{old}.{extension}"))).await;
                }
            }
        }
        Ok(())
    }

    /// The models that have reports, in name order.
    pub async fn models(&self) -> io::Result<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut models = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            if let Some(name) = entry.file_name().to_str()
                && mend_bus::ModelName::new(name).is_ok()
                && entry.file_type().await?.is_dir()
            {
                models.push(name.to_owned());
            }
        }
        models.sort();
        Ok(models)
    }

    /// Report ids of a model, oldest first (none when the model has no reports).
    pub async fn ids(&self, model: &str) -> io::Result<Vec<String>> {
        // Model names come from URLs: only a valid name may become a path.
        if mend_bus::ModelName::new(model).is_err() {
            return Ok(Vec::new());
        }
        let mut entries = match tokio::fs::read_dir(self.model_dir(model)).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut ids = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && valid_id(id)
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// A report, or `None` when there is no such report.
    pub async fn get(&self, model: &str, id: &str) -> io::Result<Option<MonitorReport>> {
        let Some(bytes) = self.read(model, id, "json").await? else {
            return Ok(None);
        };
        let mut report: MonitorReport = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        report.name_verdicts();
        Ok(Some(report))
    }

    /// A report's HTML page.
    pub async fn html(&self, model: &str, id: &str) -> io::Result<Option<Vec<u8>>> {
        self.read(model, id, "html").await
    }

    /// Summaries of a model's reports, newest first.
    pub async fn list(&self, model: &str) -> io::Result<Vec<ReportSummary>> {
        let mut out = Vec::new();
        for id in self.ids(model).await?.iter().rev() {
            // A report deleted by retention between listing and reading is simply skipped.
            if let Ok(Some(report)) = self.get(model, id).await {
                out.push(ReportSummary::from(&report));
            }
        }
        Ok(out)
    }

    async fn read(&self, model: &str, id: &str, extension: &str) -> io::Result<Option<Vec<u8>>> {
        if !valid_id(id) || mend_bus::ModelName::new(model).is_err() {
            return Ok(None);
        }
        match tokio::fs::read(self.model_dir(model).join(format!("{id}.{extension}"))).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, path).await
}
