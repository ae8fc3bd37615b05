//! One background task per model, a newer one replacing the older (the rollback guard and
//! the follow-up each watch only a model's latest promotion).
//! [`Watched`] is what both do while they wait: check the champion and read the labels logged
//! since their last look.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mend_bus::{DataLog, DataLogExt, Logged, ModelName, Window};
use mend_client::RegistryClient;
use mend_core::record::LabelRecord;
use tokio_util::sync::CancellationToken;

use crate::registry;

/// The running task of each model: its number (unique in the process) and how to stop it.
#[derive(Debug, Default)]
pub struct PerModel {
    running: Mutex<HashMap<ModelName, (u64, CancellationToken)>>,
    next_id: AtomicU64,
}

impl PerModel {
    /// Registers a new task for `model` under `parent`, cancelling the one it replaces; `None`
    /// when `replace` is off and one runs. Returns the task's number and token.
    pub fn begin(
        &self,
        model: &ModelName,
        parent: &CancellationToken,
        replace: bool,
    ) -> Option<(u64, CancellationToken)> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !replace && running.contains_key(model) {
            return None;
        }
        let token = parent.child_token();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some((_, older)) = running.insert(model.clone(), (id, token.clone())) {
            older.cancel();
        }
        Some((id, token))
    }

    /// Whether a task of `model` runs.
    pub fn is_running(&self, model: &ModelName) -> bool {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.contains_key(model)
    }

    /// Forgets task `id` of `model` once it ended, unless a newer one replaced it.
    pub fn end(&self, model: &ModelName, id: u64) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running
            .get(model)
            .is_some_and(|(running_id, _)| *running_id == id)
        {
            running.remove(model);
        }
    }
}

/// Whether the watched version is still the champion, as a watcher looking every poll sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChampionCheck {
    Still,
    /// The champion is now this (`None`: no champion).
    Moved(Option<u64>),
    /// The registry could not be read (logged); look again next time.
    Unknown,
}

/// What waiting for the labels after a promotion ended with.
#[derive(Debug)]
pub enum LabelsAfter {
    /// The first labels logged after the promotion, in log order.
    Labels(Vec<Logged<LabelRecord>>),
    /// The champion moved on first (to this; `None`: no champion).
    ChampionMoved(Option<u64>),
}

/// A promoted `version` of `model` being watched (by the rollback guard or a follow-up,
/// named `what` in the logs) while it stays the champion.
#[derive(Clone, Copy)]
pub struct Watched<'a> {
    pub data_log: &'a dyn DataLog,
    pub registry: &'a RegistryClient,
    pub model: &'a ModelName,
    pub version: u64,
    pub what: &'a str,
}

impl Watched<'_> {
    pub async fn champion(&self) -> ChampionCheck {
        let model = self.model;
        match registry::champion_version(self.registry, model.as_str()).await {
            Ok(Some(champion)) if champion == self.version => ChampionCheck::Still,
            Ok(other) => ChampionCheck::Moved(other),
            Err(error) => {
                tracing::warn!(%model, %error, "{} cannot read the champion; trying again", self.what);
                ChampionCheck::Unknown
            }
        }
    }

    /// Waits, looking every `poll`, until `needed` labels have been logged after `labels_seq`
    /// while the version stays the champion. Each look reads only the labels logged since the
    /// last one; a failed read is logged and tried again at the next look.
    pub async fn labels_after(
        &self,
        labels_seq: u64,
        needed: usize,
        poll: Duration,
    ) -> LabelsAfter {
        let (model, what) = (self.model, self.what);
        let mut labels: Vec<Logged<LabelRecord>> = Vec::with_capacity(needed);
        let mut next = labels_seq + 1;
        while labels.len() < needed {
            tokio::time::sleep(poll).await;
            match self.champion().await {
                ChampionCheck::Still => {}
                ChampionCheck::Moved(other) => return LabelsAfter::ChampionMoved(other),
                ChampionCheck::Unknown => continue,
            }
            let window = Window::sequence(next, None).with_limit(needed - labels.len());
            match self.data_log.read_labels(model, &window).await {
                Ok(fresh) => {
                    next = fresh.last().map_or(next, |last| last.seq + 1);
                    labels.extend(fresh);
                    tracing::debug!(%model, labeled = labels.len(), needed, "{what} waiting for labels");
                }
                Err(error) => {
                    tracing::warn!(%model, %error, "{what} cannot read labels; trying again");
                }
            }
        }
        LabelsAfter::Labels(labels)
    }
}

/// Longest pause between attempts to resume while the registry is unreachable.
const RESUME_MAX_DELAY: Duration = Duration::from_secs(30);

/// At trainer start: runs `resume` (which resumes what an earlier trainer left running and
/// returns what it resumed), again with doubling pauses from `first_delay` while it fails
/// (the registry not up yet), until it succeeds or `shutdown`. `what` names it in the logs.
pub async fn resume_with_backoff<T, E, Fut>(
    what: &str,
    first_delay: Duration,
    shutdown: CancellationToken,
    mut resume: impl FnMut() -> Fut,
) where
    Fut: Future<Output = Result<Vec<T>, E>>,
    E: std::fmt::Display,
{
    let mut delay = first_delay.max(Duration::from_millis(100));
    loop {
        match resume().await {
            Ok(resumed) => {
                tracing::info!(resumed = resumed.len(), "pending {what} resumed");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, retry_ms = delay.as_millis() as u64, "cannot resume {what} yet");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RESUME_MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_newer_task_cancels_the_older_and_outlives_its_end() {
        let tasks = PerModel::default();
        let model = ModelName::new("m").unwrap();
        let root = CancellationToken::new();
        let (first, first_token) = tasks.begin(&model, &root, true).unwrap();
        assert!(tasks.begin(&model, &root, false).is_none(), "one runs");
        let (second, second_token) = tasks.begin(&model, &root, true).unwrap();
        assert!(first_token.is_cancelled() && !second_token.is_cancelled());
        tasks.end(&model, first);
        assert!(
            tasks.begin(&model, &root, false).is_none(),
            "the newer still runs"
        );
        tasks.end(&model, second);
        assert!(tasks.begin(&model, &root, false).is_some());
    }
}
