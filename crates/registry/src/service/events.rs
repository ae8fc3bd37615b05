//! Announcing champion moves: the registry is the one publisher of
//! `model.promoted.<model>` and `model.rolled_back.<model>`.
//!
//! After a committed move of the `champion` alias, a move to a higher version number is a
//! promotion and a move to a lower one a rollback (a first champion is a promotion; a
//! move to the same version announces nothing). The event id, which is also the
//! `Nats-Msg-Id`, is derived from the move's audit record, so a retried publish of the
//! same move is stored once. The alias is the truth and events are notifications: a
//! failed publish is logged, not returned to the caller, whose move did happen (servers
//! also reconcile with the registry periodically).

use std::collections::BTreeMap;
use std::sync::Arc;

use mend_bus::events::{ModelPromoted, ModelRolledBack};
use mend_bus::{Bus, Envelope, Event, ModelName, publish_event};
use time::OffsetDateTime;

use crate::{AuditAction, AuditRecord, RegistryStore, names};

/// Publishes champion moves on a bus.
#[derive(Clone, Debug)]
pub struct ChampionEvents {
    bus: Arc<dyn Bus>,
}

impl ChampionEvents {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    /// The bus, which other registry events (forced retrains) go out on too.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Publishes the event of `record`, if it is a champion move that means one.
    pub async fn announce(&self, store: &dyn RegistryStore, record: &AuditRecord) {
        if !is_champion_move(record) {
            return;
        }
        // The promoted version's metrics travel with the event, so readers need not ask.
        let metrics = match store.version(&record.model, record.version).await {
            Ok(meta) => meta.metrics,
            Err(error) => {
                tracing::warn!(model = %record.model, version = record.version, %error, "publishing champion move without metrics");
                BTreeMap::new()
            }
        };
        let Some(envelope) = champion_event(record, metrics) else {
            return;
        };
        match publish_event(self.bus.as_ref(), &envelope).await {
            Ok(receipt) => tracing::info!(
                subject = %envelope.subject(),
                event_id = %envelope.id,
                duplicate = receipt.duplicate,
                "champion move published"
            ),
            Err(error) => tracing::error!(
                model = %record.model,
                audit_seq = record.seq,
                event_id = %envelope.id,
                %error,
                "champion moved but its event could not be published; servers will reconcile"
            ),
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
