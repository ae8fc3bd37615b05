//! Reports on disk: every completed window's [`MonitorReport`] as JSON and as a
//! self-contained HTML page in `<data dir>/reports/<model>/<id>.{json,html}`. Ids are the
//! window's last sequence, zero-padded, so they sort by time and a window read again after
//! a restart rewrites its own report instead of adding one. Only the newest `kept` stay.

use std::io;
use std::path::{Path, PathBuf};

use mend_bus::events::DataWindow;
use mend_core::drift::DriftReport;
use serde::{Deserialize, Serialize};

use crate::performance::PerformanceWindow;

/// One window's verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    pub id: String,
    pub model: String,
    pub champion_version: u64,
    pub window: DataWindow,
    pub created_ms: i64,
    /// Whether the window's data drifted by the monitor's rule (the dataset share, or at
    /// least `min_drifted_features` features).
    pub data_drift: bool,
    pub prediction_drift: bool,
    /// Features (and `:prediction`) whose drift is confirmed: drifted in enough windows in a
    /// row. A feature can be `drifted` in this window's table and not yet confirmed.
    pub confirmed: Vec<String>,
    /// Expected accuracy from predicted probabilities alone (CBPE).
    pub estimated_accuracy: Option<f64>,
    /// The latest judged run of labels, if any labels have arrived.
    pub performance: Option<PerformanceWindow>,
    pub drift: DriftReport,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub id: String,
    pub created_ms: i64,
    pub champion_version: u64,
    pub rows: u64,
    pub data_drift: bool,
    pub prediction_drift: bool,
    pub drift_share: f64,
    pub drifted_features: Vec<String>,
    pub accuracy: Option<f64>,
    pub estimated_accuracy: Option<f64>,
}

impl From<&MonitorReport> for ReportSummary {
    fn from(report: &MonitorReport) -> Self {
        ReportSummary {
            id: report.id.clone(),
            created_ms: report.created_ms,
            champion_version: report.champion_version,
            rows: report.drift.current_rows,
            data_drift: report.data_drift,
            prediction_drift: report.prediction_drift,
            drift_share: report.drift.drift_share,
            drifted_features: report
                .drift
                .drifted_names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
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
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other)
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
