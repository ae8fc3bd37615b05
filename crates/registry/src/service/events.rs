//! Announcing champion moves: the registry is the one publisher of
//! `model.promoted.<model>` and `model.rolled_back.<model>`.
//!
//! After a committed move of the `champion` alias, a move to a higher version number is a
//! promotion and a move to a lower one a rollback (a first champion is a promotion; a
//! move to the same version announces nothing). The event id, which is also the
//! `Nats-Msg-Id`, is derived from the move's audit record, so a retried publish of the
//! same move is stored once.
//!
//! The audit log is the outbox: a move's record commits in the same transaction as the move,
//! and [`ChampionEvents`] publishes every record past the store's announced cursor, in order,
//! advancing the cursor after each publish. It drains a model right after each of its moves,
//! every model when the registry starts, failed models again every
//! [`RETRY_EVERY`], and every model every [`SWEEP_EVERY`] (moves another replica committed
//! before it crashed). So a move committed just before a crash, or while the bus was down, is
//! announced once the registry is back; and a publish repeated after a crash carries the same
//! message id, which the bus stores once within its duplicate window.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use mend_bus::events::{ModelPromoted, ModelRolledBack};
use mend_bus::{Bus, Envelope, Event, ModelName, publish_event};
use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::{AuditAction, AuditRecord, RegistryStore, StoreError, names};

/// How soon a model whose announcement failed is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often every model's outbox is checked, whatever happened in this process.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Audit records read per page while draining.
const DRAIN_PAGE: usize = 500;

/// Why a model's outbox could not be drained (it stays pending and is retried).
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("registry store: {0}")]
    Store(#[from] StoreError),
    #[error("publishing {event_id}: {reason}")]
    Publish { event_id: String, reason: String },
}

/// Publishes champion moves on a bus, from the registry's audit log (its outbox).
#[derive(Clone)]
pub struct ChampionEvents {
    bus: Arc<dyn Bus>,
    store: Arc<dyn RegistryStore>,
    /// One drain at a time, so two never publish the same record and the cursor moves in order.
    draining: Arc<Mutex<()>>,
    /// Models whose last drain failed.
    pending: Arc<StdMutex<BTreeSet<String>>>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for ChampionEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChampionEvents")
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

impl ChampionEvents {
    pub fn new(bus: Arc<dyn Bus>, store: Arc<dyn RegistryStore>) -> Self {
        Self {
            bus,
            store,
            draining: Arc::new(Mutex::new(())),
            pending: Arc::new(StdMutex::new(BTreeSet::new())),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The bus, which other registry events (forced retrains) go out on too.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Announces what `model`'s outbox holds now (call it after each committed change). A
    /// failure is logged and left to the background retry, never returned: the caller's
    /// change did happen.
    pub async fn after_commit(&self, model: &str) {
        if let Err(error) = self.drain(model).await {
            tracing::error!(model, %error, "champion move committed but not announced yet; retrying in the background");
            self.mark_pending(model);
        }
    }

    /// Publishes every champion move of `model` past the announced cursor, in order,
    /// advancing the cursor after each. Returns how many events were published.
    pub async fn drain(&self, model: &str) -> Result<usize, DrainError> {
        let _one_at_a_time = self.draining.lock().await;
        let mut cursor = self.store.announced_seq(model).await?;
        let mut published = 0;
        loop {
            let page = self.store.audit(model, Some(cursor), DRAIN_PAGE).await?;
            if page.items.is_empty() {
                break;
            }
            for record in &page.items {
                if let Some(envelope) = self.event_of(record).await {
                    self.publish(&envelope).await?;
                    published += 1;
                    self.store.set_announced_seq(model, record.seq).await?;
                }
                cursor = record.seq;
            }
            // Records that announce nothing (registrations, other aliases) move it in one write.
            self.store.set_announced_seq(model, cursor).await?;
            if page.next.is_none() {
                break;
            }
        }
        Ok(published)
    }

    /// Drains every model the store knows; returns how many failed.
    pub async fn drain_all(&self) -> Result<usize, StoreError> {
        let mut after = None;
        let mut failed = 0;
        loop {
            let page = self.store.list_models(after, 0).await?;
            for summary in &page.items {
                if let Err(error) = self.drain(&summary.name).await {
                    tracing::warn!(model = %summary.name, %error, "outbox not drained; retrying");
                    self.mark_pending(&summary.name);
                    failed += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(failed),
            }
        }
    }

    /// Drains every model at start, then retries failed models every [`RETRY_EVERY`] and
    /// sweeps every model every [`SWEEP_EVERY`], until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            let due = last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
            if due {
                match self.drain_all().await {
                    Ok(failed) => {
                        last_sweep = Some(tokio::time::Instant::now());
                        if failed > 0 {
                            tracing::warn!(
                                failed,
                                "some models' champion moves are not announced yet"
                            );
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not list models to drain the outbox; retrying");
                    }
                }
            }
            for model in self.take_pending() {
                if let Err(error) = self.drain(&model).await {
                    tracing::warn!(%model, %error, "outbox not drained; retrying");
                    self.mark_pending(&model);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    fn mark_pending(&self, model: &str) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(model.to_owned());
    }

    fn take_pending(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The event `record` means, with the promoted version's metrics, so readers need not ask.
    async fn event_of(&self, record: &AuditRecord) -> Option<Envelope> {
        if !is_champion_move(record) {
            return None;
        }
        let metrics = match self.store.version(&record.model, record.version).await {
            Ok(meta) => meta.metrics,
            Err(error) => {
                tracing::warn!(model = %record.model, version = record.version, %error, "publishing champion move without metrics");
                BTreeMap::new()
            }
        };
        champion_event(record, metrics)
    }

    async fn publish(&self, envelope: &Envelope) -> Result<(), DrainError> {
        match publish_event(self.bus.as_ref(), envelope).await {
            Ok(receipt) => {
                tracing::info!(
                    subject = %envelope.subject(),
                    event_id = %envelope.id,
                    duplicate = receipt.duplicate,
                    "champion move published"
                );
                Ok(())
            }
            Err(error) => Err(DrainError::Publish {
                event_id: envelope.id.clone(),
                reason: error.to_string(),
            }),
        }
    }
}

fn is_champion_move(record: &AuditRecord) -> bool {
    record.action == AuditAction::SetAlias && record.alias.as_deref() == Some(names::CHAMPION)
}

/// The event id of the move recorded as `record`: stable across retries of its publish.
pub fn event_id(record: &AuditRecord) -> String {
    format!("registry-{}-{}", record.model, record.seq)
}

/// The event a champion move means, if any.
pub fn champion_event(record: &AuditRecord, metrics: BTreeMap<String, f64>) -> Option<Envelope> {
    if !is_champion_move(record) {
        return None;
    }
    let trigger_event_id = Some(record.trigger_event_id.clone()).filter(|id| !id.is_empty());
    let event = match record.previous_version {
        Some(previous) if previous == record.version => return None,
        Some(previous) if previous > record.version => Event::ModelRolledBack(ModelRolledBack {
            from_version: previous,
            to_version: record.version,
            reason: record.reason.clone(),
            metrics: BTreeMap::new(),
        }),
        previous => Event::ModelPromoted(ModelPromoted {
            version: record.version,
            previous,
            reason: record.reason.clone(),
            metrics,
            trigger_event_id,
        }),
    };
    let model = ModelName::new(record.model.clone()).ok()?;
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.time_ms) * 1_000_000)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    Some(Envelope {
        id: event_id(record),
        time,
        model,
        event,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn moved(previous: Option<u64>, version: u64) -> AuditRecord {
        AuditRecord {
            seq: 7,
            time_ms: 1_700_000_000_000,
            model: "churn".into(),
            action: AuditAction::SetAlias,
            alias: Some("champion".into()),
            version,
            previous_version: previous,
            actor: "trainer".into(),
            reason: "beat the champion".into(),
            trigger_event_id: "drift-1".into(),
            trace_id: String::new(),
            decision: None,
        }
    }

    #[test]
    fn up_is_a_promotion_down_a_rollback_and_sideways_nothing() {
        let metrics = BTreeMap::from([("holdout.accuracy".to_owned(), 0.9)]);
        let promoted = champion_event(&moved(Some(2), 3), metrics.clone()).unwrap();
        assert_eq!(promoted.id, "registry-churn-7");
        assert_eq!(promoted.subject(), "model.promoted.churn");
        let Event::ModelPromoted(body) = &promoted.event else {
            panic!("not a promotion: {promoted:?}");
        };
        assert_eq!((body.version, body.previous), (3, Some(2)));
        assert_eq!(body.trigger_event_id.as_deref(), Some("drift-1"));
        assert_eq!(body.metrics, metrics);

        let first = champion_event(&moved(None, 1), BTreeMap::new()).unwrap();
        assert_eq!(first.subject(), "model.promoted.churn");

        let rolled_back = champion_event(&moved(Some(3), 2), BTreeMap::new()).unwrap();
        assert_eq!(rolled_back.subject(), "model.rolled_back.churn");
        let Event::ModelRolledBack(body) = &rolled_back.event else {
            panic!("not a rollback: {rolled_back:?}");
        };
        assert_eq!((body.from_version, body.to_version), (3, 2));

        assert!(champion_event(&moved(Some(2), 2), BTreeMap::new()).is_none());
        let mut other_alias = moved(Some(1), 2);
        other_alias.alias = Some("staging".into());
        assert!(champion_event(&other_alias, BTreeMap::new()).is_none());
    }
}
