//! The trainer's safety branches reached through real races in the running system (a real
//! trainer, the real registry service, the bus): a rollback guard that gives up when a person
//! moves the champion while it waits for labels or for their rows, a rollback that loses its
//! compare-and-set to a person's move, the guard's margin exactly at and just beyond its
//! boundary, and a candidate rejected because a person promoted a version while it was being
//! retrained.
//!
//! A race that timing alone almost never produces is made deterministic by an [`Intruder`]:
//! a second client of the registry that lies in wait between the registry service and its
//! store and makes its own move, through the registry's API, the moment the trainer's change
//! arrives and before it is applied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use mend_bus::events::{Decision, DriftDetected, DriftKind, Event};
use mend_bus::{DataKind, DataLog, DataLogError, DataLogExt, ModelName, RawEntry, Stored, Window};
use mend_client::{CHAMPION, RegistryClient};
use mend_core::record::{LabelRecord, RowRecord};
use mend_core::{Artifact, TrainSettings};
use mend_proto::registry::v1 as pb;
use mend_registry::{
    AliasWatch, ModelSummary, NewDecision, NewVersion, Page, SetAlias, StoreError, VersionMeta,
};
use mend_trainer::evaluate::{live_accuracy, train_and_compare};
use mend_trainer::guard::GUARDED_ALIAS;
use mend_trainer::lineage::{ACTOR, tags};
use mend_trainer::{GuardVerdict, TrainerConfig};
use support::{Backend, Harness, Store, World, concept_a, concept_b, model, test_config, within};
use tokio::sync::{broadcast, watch};

fn drift() -> DriftDetected {
    DriftDetected {
        kind: DriftKind::Performance,
        window: Default::default(),
        features: Vec::new(),
        dataset_share: 0.5,
        dataset_drift: true,
        report_id: None,
        champion_version: Some(1),
        metrics: Default::default(),
    }
}

/// What the intruder does when the change it waits for arrives.
type Act = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The change an intruder waits for, and what it does then.
struct Ambush {
    when: Box<dyn Fn(&SetAlias) -> bool + Send>,
    act: Act,
}

/// Another actor of the registry, lying in wait between the registry service and its store:
/// armed with an alias change to wait for, it acts once, the moment that change reaches the
/// store and before it is applied, as a request that landed just ahead of it would.
#[derive(Clone, Default)]
struct Intruder {
    ambush: Arc<Mutex<Option<Ambush>>>,
    acted: Arc<AtomicBool>,
}

impl Intruder {
    /// Waits for the first alias change `when` accepts, and runs `act` just before it.
    fn arm(
        &self,
        when: impl Fn(&SetAlias) -> bool + Send + 'static,
        act: impl Future<Output = ()> + Send + 'static,
    ) {
        *self.ambush.lock().unwrap() = Some(Ambush {
            when: Box::new(when),
            act: Box::pin(act),
        });
    }

    /// Whether the ambush went off (and its act finished).
    fn acted(&self) -> bool {
        self.acted.load(Ordering::SeqCst)
    }

    /// The registry's store with this intruder in front of it.
    fn wrap(&self, store: Store) -> Store {
        Arc::new(Interposed {
            inner: store,
            intruder: self.clone(),
        })
    }

    /// The act, if `change` is what the ambush waits for (it goes off once).
    fn sprung_by(&self, change: &SetAlias) -> Option<Act> {
        let mut ambush = self.ambush.lock().unwrap_or_else(PoisonError::into_inner);
        ambush
            .take_if(|ambush| (ambush.when)(change))
            .map(|ambush| ambush.act)
    }
}

/// The registry's real store, with an [`Intruder`] looking at every alias change first.
struct Interposed {
    inner: Store,
    intruder: Intruder,
}

#[async_trait::async_trait]
impl mend_registry::RegistryStore for Interposed {
    async fn register(&self, new: NewVersion, artifact: Bytes) -> Result<VersionMeta, StoreError> {
        self.inner.register(new, artifact).await
    }

    async fn version(&self, model: &str, version: u64) -> Result<VersionMeta, StoreError> {
        self.inner.version(model, version).await
    }

    async fn artifact(
        &self,
        model: &str,
        version: u64,
    ) -> Result<(VersionMeta, Bytes), StoreError> {
        self.inner.artifact(model, version).await
    }

    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<u64, StoreError> {
        self.inner.resolve_alias(model, alias).await
    }

    async fn model(&self, model: &str) -> Result<ModelSummary, StoreError> {
        self.inner.model(model).await
    }

    async fn list_models(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<ModelSummary, String>, StoreError> {
        self.inner.list_models(after, limit).await
    }

    async fn list_versions(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<VersionMeta, u64>, StoreError> {
        self.inner.list_versions(model, after, limit).await
    }

    async fn set_alias(&self, change: SetAlias) -> Result<mend_registry::AuditRecord, StoreError> {
        if let Some(act) = self.intruder.sprung_by(&change) {
            act.await;
            self.intruder.acted.store(true, Ordering::SeqCst);
        }
        self.inner.set_alias(change).await
    }

    async fn record_decision(
        &self,
        new: NewDecision,
    ) -> Result<mend_registry::AuditRecord, StoreError> {
        self.inner.record_decision(new).await
    }

    async fn audit(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<mend_registry::AuditRecord, u64>, StoreError> {
        self.inner.audit(model, after, limit).await
    }

    async fn announced_seq(&self, model: &str) -> Result<u64, StoreError> {
        self.inner.announced_seq(model).await
    }

    async fn set_announced_seq(&self, model: &str, seq: u64) -> Result<(), StoreError> {
        self.inner.set_announced_seq(model, seq).await
    }

    async fn watch_aliases(&self, model: &str) -> Result<AliasWatch, StoreError> {
        self.inner.watch_aliases(model).await
    }
}

/// The harness's data log, telling the test the newest label any reader has been handed.
#[derive(Debug)]
struct LabelsSeen {
    inner: Arc<dyn DataLog>,
    newest: watch::Sender<u64>,
}

#[async_trait::async_trait]
impl DataLog for LabelsSeen {
    async fn append_keyed(
        &self,
        model: &ModelName,
        kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<Stored>, DataLogError> {
        self.inner.append_keyed(model, kind, entries).await
    }

    fn max_entry_bytes(&self) -> Option<usize> {
        self.inner.max_entry_bytes()
    }

    async fn append_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        payloads: Vec<Bytes>,
    ) -> Result<Vec<u64>, DataLogError> {
        self.inner.append_raw(model, kind, payloads).await
    }

    async fn read_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        let entries = self.inner.read_raw(model, kind, window).await?;
        if kind == DataKind::Labels
            && let Some(last) = entries.last()
        {
            self.newest.send_if_modified(|newest| {
                let newer = last.seq > *newest;
                if newer {
                    *newest = last.seq;
                }
                newer
            });
        }
        Ok(entries)
    }

    async fn latest_seq(
        &self,
        model: &ModelName,
        kind: DataKind,
    ) -> Result<Option<u64>, DataLogError> {
        self.inner.latest_seq(model, kind).await
    }
}

/// Seeds version 1 on the old concept, logs 1,000 labeled rows of a new one, starts a
/// trainer with `config`, and lets a drift alarm promote version 2, which a rollback guard
/// then watches against version 1. Returns the guard verdicts, subscribed before the
/// promotion.
async fn drift_promotes_version_2(
    harness: &mut Harness,
    world: &mut World,
    config: TrainerConfig,
) -> broadcast::Receiver<(ModelName, u64, GuardVerdict)> {
    harness.champion_on_a_then_b(world).await;
    harness.start_trainer(config).await;
    let verdicts = harness.trainer.as_ref().unwrap().guard_verdicts();
    harness.publish(drift()).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    verdicts
}

/// A person moves the champion from `from` to `to` through the registry's API, with
/// compare-and-set (as `mend models promote` does).
async fn move_by_hand(registry: &RegistryClient, actor: &str, from: u64, to: u64) {
    registry
        .set_alias(pb::SetAliasRequest {
            model: "churn".into(),
            alias: CHAMPION.into(),
            version: to,
            expected: Some(pb::AliasPrecondition {
                state: Some(pb::alias_precondition::State::Version(from)),
            }),
            actor: actor.into(),
            reason: format!("{actor} moves the champion by hand"),
            trigger_event_id: String::new(),
        })
        .await
        .expect("the move by hand goes through");
}

/// Who moved the champion to which version, oldest first, by the registry's audit log.
async fn champion_moves(harness: &Harness) -> Vec<(String, u64)> {
    harness
        .registry
        .audit("churn")
        .await
        .unwrap()
        .into_iter()
        .filter(|record| {
            record.action == pb::AuditAction::SetAlias as i32 && record.alias == CHAMPION
        })
        .map(|record| (record.actor, record.version))
        .collect()
}

/// The trainer's count of rollbacks of `churn`, by its metrics (0 before the first).
fn rollbacks(harness: &Harness) -> u64 {
    let exposition = harness.metrics.encode().unwrap();
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(r#"mend_trainer_rollbacks_total{model="churn"} "#))
        .map_or(0, |count| count.parse().unwrap())
}

async fn guarded_version(harness: &Harness) -> Option<u64> {
    mend_trainer::registry::alias_version(&harness.registry, "churn", GUARDED_ALIAS)
        .await
        .unwrap()
}

fn moves(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected
        .iter()
        .map(|(actor, version)| ((*actor).to_owned(), *version))
        .collect()
}

/// (a) The guard waits for the labels after the promotion; none come. A person rolls back by
/// hand meanwhile: the guard gives up on a champion that is no longer its own instead of
/// waiting on, judging or moving anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_gives_up_when_a_person_moves_the_champion_before_its_labels_come() {
    let mut harness = Harness::start(Backend::InProcess).await;
    let mut world = World::new();
    let mut verdicts = drift_promotes_version_2(&mut harness, &mut world, test_config()).await;

    move_by_hand(&harness.registry, "operator", 2, 1).await;

    let (watched, version, verdict) = within(30, verdicts.recv()).await.unwrap();
    assert_eq!((watched, version), (model(), 2));
    assert_eq!(
        verdict,
        GuardVerdict::Abandoned {
            reason: "the champion is now Some(1)".into()
        }
    );
    assert_eq!(
        champion_moves(&harness).await,
        moves(&[("test", 1), (ACTOR, 2), ("operator", 1)]),
        "the guard moved nothing"
    );
    assert_eq!(
        guarded_version(&harness).await,
        None,
        "no verdict on record"
    );
    assert_eq!(rollbacks(&harness), 0);
    harness.stop().await;
}

/// (a) The guard has all its labels, but their rows have not arrived (a row sent after its
/// label): it waits for them, looking at the champion every poll. A person rolls back by hand
/// while it does: it gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_gives_up_when_a_person_moves_the_champion_while_it_waits_for_the_rows() {
    let mut harness = Harness::start(Backend::InProcess).await;
    let (newest, mut seen) = watch::channel(0);
    harness.data_log = Arc::new(LabelsSeen {
        inner: Arc::clone(&harness.data_log),
        newest,
    });
    let mut world = World::new();
    let mut config = test_config();
    config.guard.rows = 8;
    let mut verdicts = drift_promotes_version_2(&mut harness, &mut world, config).await;

    // The guard's 8 labels, without their rows.
    let (_, labels) = world.records(8, &concept_a());
    let seqs = harness
        .data_log
        .append_labels(&model(), &labels)
        .await
        .unwrap();
    let last = *seqs.last().unwrap();
    // Nothing but the guard reads labels now: once it has been handed the last of its 8, it
    // is done waiting for labels and waits for their rows.
    within(30, seen.wait_for(|newest| *newest >= last))
        .await
        .unwrap();
    move_by_hand(&harness.registry, "operator", 2, 1).await;

    let (_, version, verdict) = within(30, verdicts.recv()).await.unwrap();
    assert_eq!(version, 2);
    assert_eq!(
        verdict,
        GuardVerdict::Abandoned {
            reason: "the champion is now Some(1)".into()
        }
    );
    assert_eq!(
        champion_moves(&harness).await,
        moves(&[("test", 1), (ACTOR, 2), ("operator", 1)]),
        "the guard moved nothing"
    );
    assert_eq!(
        guarded_version(&harness).await,
        None,
        "no verdict on record"
    );
    assert_eq!(rollbacks(&harness), 0);
    harness.stop().await;
}

/// (b) The guard finds version 2 worse live and moves the champion back with compare-and-set;
/// a person's own rollback lands just ahead of it. The guard's move conflicts, and it gives
/// up: no second move, no rollback counted or alerted by the trainer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_loses_its_compare_and_set_to_a_person_gives_up() {
    let intruder = Intruder::default();
    let mut harness =
        Harness::start_with_store(Backend::InProcess, |store| intruder.wrap(store)).await;
    let mut world = World::new();
    let mut verdicts = drift_promotes_version_2(&mut harness, &mut world, test_config()).await;
    let registry = harness.registry.clone();
    intruder.arm(
        |change| {
            change.alias == CHAMPION
                && change.actor == ACTOR
                && change.reason.starts_with("rollback guard:")
        },
        async move { move_by_hand(&registry, "operator", 2, 1).await },
    );

    // The world goes back to the old concept: version 2 does worse live than version 1.
    harness.append(&world.records(300, &concept_a())).await;

    let (_, version, verdict) = within(30, verdicts.recv()).await.unwrap();
    assert_eq!(version, 2);
    assert!(intruder.acted(), "the person moved first");
    let reason = match verdict {
        GuardVerdict::Abandoned { reason } => reason,
        other => panic!("not abandoned: {other:?}"),
    };
    assert!(
        reason.starts_with("the champion moved before the rollback"),
        "{reason}"
    );
    assert!(reason.contains("is at version 1"), "{reason}");
    assert_eq!(
        champion_moves(&harness).await,
        moves(&[("test", 1), (ACTOR, 2), ("operator", 1)]),
        "only the person's rollback is on record"
    );
    assert_eq!(harness.champion_version().await, Some(1));
    assert_eq!(rollbacks(&harness), 0);
    // The rollback announced on the bus is the person's.
    let rolled_back = harness
        .wait_for(30, |e| matches!(&e.event, Event::ModelRolledBack(_)))
        .await;
    let Event::ModelRolledBack(rolled_back) = rolled_back.event else {
        unreachable!()
    };
    assert_eq!((rolled_back.from_version, rolled_back.to_version), (2, 1));
    assert_eq!(rolled_back.reason, "operator moves the champion by hand");
    harness.stop().await;
}

/// A guard judging on 8 labeled rows with a margin of 0.25: every live accuracy it can see
/// (k/8), the margin and their sums are exact in binary floating point, so the boundary is
/// exactly where the rule puts it.
fn margin_config() -> TrainerConfig {
    let mut config = test_config();
    config.guard.rows = 8;
    config.guard.margin = 0.25;
    config
}

/// The class `model` predicts for `row`, by the trainer's own live scoring.
fn predicted(model: &Artifact, row: &RowRecord) -> String {
    let row = std::slice::from_ref(row);
    model
        .schema
        .classes
        .iter()
        .find(|class| live_accuracy(model, row, std::slice::from_ref(*class)).unwrap() > 0.5)
        .cloned()
        .expect("the model scores the row")
}

fn other_class(model: &Artifact, class: &str) -> String {
    model
        .schema
        .classes
        .iter()
        .find(|other| *other != class)
        .cloned()
        .expect("two classes")
}

/// Rows of `pool` labeled so that `new` and `old` are right or wrong on each exactly as
/// `plan` says (`(new right, old right)`, in that order).
fn rows_judged(
    pool: &(Vec<RowRecord>, Vec<LabelRecord>),
    new: &Artifact,
    old: &Artifact,
    plan: &[(bool, bool)],
) -> (Vec<RowRecord>, Vec<LabelRecord>) {
    let (rows, labels) = pool;
    let mut said: Vec<Option<(String, String)>> = vec![None; rows.len()];
    let mut used = vec![false; rows.len()];
    let (mut picked_rows, mut picked_labels) = (Vec::new(), Vec::new());
    for &(new_right, old_right) in plan {
        let mut found = None;
        for (i, row) in rows.iter().enumerate() {
            if used[i] {
                continue;
            }
            let (says_new, says_old) = said[i]
                .get_or_insert_with(|| (predicted(new, row), predicted(old, row)))
                .clone();
            let agree = says_new == says_old;
            let label = match (new_right, old_right) {
                (true, true) => agree.then_some(says_new),
                (true, false) => (!agree).then_some(says_new),
                (false, true) => (!agree).then_some(says_old),
                (false, false) => agree.then(|| other_class(new, &says_new)),
            };
            if let Some(label) = label {
                found = Some((i, label));
                break;
            }
        }
        let (i, label) = found.expect("the pool holds a row for every planned outcome");
        used[i] = true;
        picked_rows.push(rows[i].clone());
        picked_labels.push(LabelRecord {
            label,
            ..labels[i].clone()
        });
    }
    (picked_rows, picked_labels)
}

/// Promotes version 2 under [`margin_config`], logs the guard's 8 rows labeled so that
/// version 2 and version 1 come out as `plan` says, and returns the guard's verdict.
async fn guard_verdict_on(harness: &mut Harness, plan: &[(bool, bool)]) -> GuardVerdict {
    let mut world = World::new();
    let mut verdicts = drift_promotes_version_2(harness, &mut world, margin_config()).await;
    let new = mend_trainer::registry::version(&harness.registry, "churn", 2)
        .await
        .unwrap()
        .artifact;
    let old = mend_trainer::registry::version(&harness.registry, "churn", 1)
        .await
        .unwrap()
        .artifact;
    let pool = world.records(4_000, &concept_a());
    harness.append(&rows_judged(&pool, &new, &old, plan)).await;
    let (_, version, verdict) = within(30, verdicts.recv()).await.unwrap();
    assert_eq!(version, 2);
    verdict
}

/// (c) Version 2 is right on 4 of 8 rows (0.5), version 1 on 6 (0.75): worse by exactly the
/// margin, 0.25, which is allowed. Version 2 stays, and the verdict is on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_worse_live_by_exactly_the_margin_is_kept() {
    let mut harness = Harness::start(Backend::InProcess).await;
    let plan = [
        (true, false),
        (false, true),
        (false, true),
        (false, true),
        (true, true),
        (true, true),
        (true, true),
        (false, false),
    ];
    let verdict = guard_verdict_on(&mut harness, &plan).await;
    assert_eq!(
        verdict,
        GuardVerdict::Kept {
            new_accuracy: 0.5,
            old_accuracy: 0.75
        }
    );
    assert_eq!(guarded_version(&harness).await, Some(2));
    assert_eq!(harness.champion_version().await, Some(2));
    assert_eq!(rollbacks(&harness), 0);
    harness.stop().await;
}

/// (c) The same, but version 1 is right on one row more (7 of 8, 0.875): version 2 is worse
/// by 0.375, one row beyond the margin, and is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_worse_live_by_one_row_beyond_the_margin_is_rolled_back() {
    let mut harness = Harness::start(Backend::InProcess).await;
    let plan = [
        (true, false),
        (false, true),
        (false, true),
        (false, true),
        (true, true),
        (true, true),
        (true, true),
        (false, true),
    ];
    let verdict = guard_verdict_on(&mut harness, &plan).await;
    assert_eq!(
        verdict,
        GuardVerdict::RolledBack {
            new_accuracy: 0.5,
            old_accuracy: 0.875
        }
    );
    let rolled_back = harness
        .wait_for(30, |e| matches!(&e.event, Event::ModelRolledBack(_)))
        .await;
    let Event::ModelRolledBack(rolled_back) = rolled_back.event else {
        unreachable!()
    };
    assert_eq!((rolled_back.from_version, rolled_back.to_version), (2, 1));
    assert_eq!(harness.champion_version().await, Some(1));
    assert_eq!(rollbacks(&harness), 1);
    harness.stop().await;
}

/// A version a person trained on `records` herself and registered by hand (not promoted).
async fn register_by_hand(
    harness: &Harness,
    (rows, labels): &(Vec<RowRecord>, Vec<LabelRecord>),
) -> u64 {
    let labels: Vec<String> = labels.iter().map(|l| l.label.clone()).collect();
    let artifact = train_and_compare(rows, &labels, None, &TrainSettings::default())
        .unwrap()
        .candidate;
    let header = pb::RegisterVersionHeader {
        model: "churn".into(),
        schema_hash: artifact.schema.hash(),
        trigger: Some(pb::Trigger {
            event_id: "alice-notebook".into(),
            kind: pb::TriggerKind::Manual as i32,
        }),
        parent_version: Some(1),
        actor: "alice".into(),
        reason: "trained by hand".into(),
        ..pb::RegisterVersionHeader::default()
    };
    harness
        .registry
        .register(header, Bytes::from(artifact.to_bytes().unwrap()))
        .await
        .unwrap()
        .version
}

/// (d) A drift alarm retrains from champion version 1. While the run goes on, a person
/// promotes a version of her own (2): her move lands after the trainer read the champion and
/// just before its compare-and-set. The trainer's candidate (3) passed its gate, but the
/// champion is no longer the one it beat: it is rejected, and the person's choice stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_promoting_during_a_retrain_makes_the_trainer_reject_its_candidate() {
    let intruder = Intruder::default();
    let mut harness =
        Harness::start_with_store(Backend::InProcess, |store| intruder.wrap(store)).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    let hers = register_by_hand(&harness, &world.records(1_000, &concept_b())).await;
    assert_eq!(hers, 2);
    let registry = harness.registry.clone();
    intruder.arm(
        |change| change.alias == CHAMPION && change.actor == ACTOR,
        async move { move_by_hand(&registry, "alice", 1, 2).await },
    );
    harness.start_trainer(test_config()).await;

    let trigger = harness.publish(drift()).await;
    let rejected = harness
        .wait_for(
            60,
            |e| matches!(&e.event, Event::ModelRejected(r) if r.version == Some(3)),
        )
        .await;
    let Event::ModelRejected(rejected) = rejected.event else {
        unreachable!()
    };
    assert!(intruder.acted(), "the person moved first");
    assert!(
        rejected
            .reason
            .starts_with("the champion moved during the retrain"),
        "{}",
        rejected.reason
    );
    assert!(
        rejected.reason.contains("is at version 2"),
        "{}",
        rejected.reason
    );
    assert_eq!(rejected.champion_version, Some(1));
    assert_eq!(
        rejected.trigger_event_id.as_deref(),
        Some(trigger.id.as_str())
    );

    let decided = harness
        .wait_for(30, |e| {
            matches!(&e.event, Event::RetrainDecided(d)
                if d.trigger_event_id == trigger.id && d.decision == Decision::Acted)
        })
        .await;
    let Event::RetrainDecided(decided) = decided.event else {
        unreachable!()
    };
    assert_eq!(decided.outcome.as_deref(), Some("rejected"));
    assert_eq!(decided.version, Some(3));
    assert!(
        decided
            .reason
            .starts_with("retrained: the champion moved during the retrain"),
        "{}",
        decided.reason
    );
    // The same decision in the registry's audit log, beside the moves: only the person's.
    let audit = harness.registry.audit("churn").await.unwrap();
    let recorded = audit
        .iter()
        .find(|record| {
            record.action == pb::AuditAction::Decision as i32
                && record.trigger_event_id == trigger.id
                && record.decision == Decision::Acted.as_str()
        })
        .expect("the decision is on record");
    assert_eq!(
        (recorded.outcome.as_str(), recorded.version),
        ("rejected", 3)
    );
    assert_eq!(
        champion_moves(&harness).await,
        moves(&[("test", 1), ("alice", 2)]),
        "the trainer never promoted over the person"
    );
    assert_eq!(harness.champion_version().await, Some(2));
    // Rejected for the race, not by the gate: the candidate did beat version 1.
    let v3 = harness
        .versions()
        .await
        .into_iter()
        .find(|v| v.version == 3)
        .unwrap();
    assert_eq!(v3.tags[tags::GATE], tags::PASS);
    let exposition = harness.metrics.encode().unwrap();
    assert!(
        exposition.contains(r#"mend_trainer_retrains_total{model="churn",outcome="rejected"} 1"#),
        "{exposition}"
    );
    harness.stop().await;
}
