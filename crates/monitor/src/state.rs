//! What survives a restart, per model: where to resume reading the data log (the first
//! sequence after the last completed window), the champion version the episodes belong to,
//! and which drift kinds are in an open episode, so a restart neither skips data nor
//! announces an episode twice. One small JSON file per model, replaced atomically.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use mend_bus::ModelName;
use serde::{Deserialize, Serialize};

use crate::episode::Episodes;

/// The saved position and episode flags of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    /// The next data-log sequence to read.
    pub resume_seq: u64,
    /// The champion the open episodes were found against.
    pub champion_version: Option<u64>,
    #[serde(default)]
    pub episodes: Episodes,
    /// Data windows completed so far (numbers reports and the performance chart).
    #[serde(default)]
    pub windows: u64,
    /// Consecutive windows each feature (and `prediction`) has drifted in, up to the last
    /// completed window: drift is confirmed only after `confirm_windows` in a row.
    #[serde(default)]
    pub streaks: BTreeMap<String, u32>,
    /// Where each streak in `streaks` began: the first window it drifted in. A drift event
    /// names this start, not the window that confirmed it, so a retrain after drift reads
    /// the labels from where the change began (states saved before this field have none: the
    /// confirming window's start stands in).
    #[serde(default)]
    pub streak_starts: BTreeMap<String, StreakStart>,
}

/// The first window of a drift streak, and the rows the streak has covered since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreakStart {
    /// Data-log sequence of the first entry of the streak's first window.
    pub from_seq: u64,
    /// Log time of that entry, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time_ms: Option<i64>,
    /// Rows in the streak's windows so far.
    pub rows: u64,
}

/// Where the states live: `<data dir>/monitor/<model>.json`.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(data_dir: &Path) -> Self {
        StateStore {
            dir: data_dir.join("monitor"),
        }
    }

    fn path(&self, model: &ModelName) -> PathBuf {
        self.dir.join(format!("{}.json", model.as_str()))
    }

    /// The saved state, or the start of the log when none was saved. A file that does not
    /// parse is reported and treated as absent: reading everything again is safe (reports
    /// are keyed by window, events by id), losing the monitor is not.
    pub async fn load(&self, model: &ModelName) -> ModelState {
        match tokio::fs::read(self.path(model)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(%model, %error, "unreadable monitor state; starting from the beginning");
                ModelState::default()
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => ModelState::default(),
            Err(error) => {
                tracing::warn!(%model, %error, "cannot read monitor state; starting from the beginning");
                ModelState::default()
            }
        }
    }

    /// Saves by writing a temporary file and renaming it over the old one, so a crash leaves
    /// either the old state or the new one.
    pub async fn save(&self, model: &ModelName, state: &ModelState) -> io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        let path = self.path(model);
        let temporary = path.with_extension("json.tmp");
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, &path).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::episode::Kind;

    #[tokio::test]
    async fn state_round_trips_and_defaults_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let model = ModelName::new("churn").unwrap();
        assert_eq!(store.load(&model).await, ModelState::default());
        let mut state = ModelState {
            resume_seq: 42,
            champion_version: Some(3),
            ..ModelState::default()
        };
        state.episodes.open(Kind::Data);
        store.save(&model, &state).await.unwrap();
        assert_eq!(store.load(&model).await, state);
        tokio::fs::write(dir.path().join("monitor/churn.json"), b"{not json")
            .await
            .unwrap();
        assert_eq!(store.load(&model).await, ModelState::default());
    }
}
