//! One background task per model, a newer one replacing the older (the rollback guard and
//! the follow-up each watch only a model's latest promotion).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mend_bus::ModelName;
use tokio_util::sync::CancellationToken;

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
