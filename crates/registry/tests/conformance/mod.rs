//! The registry conformance suite: one async function per property, run against every
//! store (see `sqlite_store.rs` and `jetstream_store.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mend_registry::{
    AliasExpectation, AuditAction, DecisionNote, NewDecision, NewVersion, RegistryStore, SetAlias,
    StoreError, Trigger, TriggerKind, VersionMeta,
};

/// Distinct, recognisable artifact bytes for the `n`th registration.
pub fn artifact(n: u64) -> Bytes {
    Bytes::from(format!("artifact #{n} ").repeat(100).into_bytes())
}

pub fn new_version(model: &str, n: u64) -> NewVersion {
    let mut new = NewVersion::new(
        model,
        Trigger {
            event_id: format!("evt-{n}"),
            kind: TriggerKind::Drift,
        },
    );
    new.schema_hash = "schema-1".into();
    new.metrics
        .insert("holdout.accuracy".into(), 0.5 + n as f64 / 1000.0);
    new.actor = "trainer".into();
    new.reason = format!("registration {n}");
    new.trace_id = format!("trace-{n}");
    new
}

pub fn move_alias(model: &str, alias: &str, version: u64, expected: AliasExpectation) -> SetAlias {
    SetAlias {
        model: model.into(),
        alias: alias.into(),
        version,
        expected,
        actor: "trainer".into(),
        reason: format!("promote {version}"),
        trigger_event_id: format!("evt-promote-{version}"),
        trace_id: format!("trace-promote-{version}"),
    }
}

/// 16 concurrent registrations get the numbers 1..=16, each exactly once, each bound to the
/// artifact it uploaded, each with exactly one audit record.
pub async fn versions_have_no_gaps_or_duplicates_under_concurrency<S: RegistryStore>(
    store: Arc<S>,
) {
    let tasks: Vec<_> = (0..16u64)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let meta = store
                    .register(new_version("churn", n), artifact(n))
                    .await
                    .expect("register");
                (n, meta)
            })
        })
        .collect();
    let mut registered = Vec::new();
    for task in tasks {
        registered.push(task.await.expect("task"));
    }

    let mut versions: Vec<u64> = registered.iter().map(|(_, meta)| meta.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<_>>());

    for (n, meta) in &registered {
        let (stored, bytes) = store
            .artifact("churn", meta.version)
            .await
            .expect("artifact");
        assert_eq!(
            bytes,
            artifact(*n),
            "version {} holds another upload",
            meta.version
        );
        assert_eq!(&stored, meta);
        assert_eq!(stored.artifact_size, artifact(*n).len() as u64);
    }
    assert_eq!(
        store.model("churn").await.expect("model").latest_version,
        16
    );

    let audit = store.audit("churn", None, 100).await.expect("audit");
    assert_eq!(audit.next, None);
    let seqs: Vec<u64> = audit.items.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    assert!(
        audit
            .items
            .iter()
            .all(|r| r.action == AuditAction::Register)
    );
    let audited: BTreeSet<u64> = audit.items.iter().map(|record| record.version).collect();
    assert_eq!(audited, (1..=16).collect());
}

/// A stale compare-and-set fails with `Conflict` naming where the alias is, and of many
/// concurrent promotions from the same state exactly one wins.
pub async fn stale_compare_and_set_fails_with_conflict<S: RegistryStore>(store: Arc<S>) {
    for n in 1..=3 {
        store
            .register(new_version("churn", n), artifact(n))
            .await
            .expect("register");
    }

    let first = store
        .set_alias(move_alias("churn", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("create alias");
    assert_eq!((first.version, first.previous_version), (1, None));

    let error = store
        .set_alias(move_alias("churn", "champion", 2, AliasExpectation::Absent))
        .await
        .expect_err("alias already exists");
    assert!(
        matches!(
            &error,
            StoreError::Conflict {
                actual: Some(1),
                expected: AliasExpectation::Absent,
                ..
            }
        ),
        "{error:?}"
    );

    let second = store
        .set_alias(move_alias(
            "churn",
            "champion",
            2,
            AliasExpectation::Version(1),
        ))
        .await
        .expect("move alias");
    assert_eq!((second.version, second.previous_version), (2, Some(1)));

    let error = store
        .set_alias(move_alias(
            "churn",
            "champion",
            3,
            AliasExpectation::Version(1),
        ))
        .await
        .expect_err("stale expectation");
    assert!(
        matches!(
            &error,
            StoreError::Conflict {
                actual: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        store
            .resolve_alias("churn", "champion")
            .await
            .expect("resolve"),
        2
    );

    // Two (here eight) trainers promoting from the same champion: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .set_alias(move_alias(
                        "churn",
                        "champion",
                        3,
                        AliasExpectation::Version(2),
                    ))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(record) => {
                wins += 1;
                assert_eq!(record.previous_version, Some(2));
            }
            Err(StoreError::Conflict {
                actual: Some(3), ..
            }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        store
            .resolve_alias("churn", "champion")
            .await
            .expect("resolve"),
        3
    );

    let error = store
        .set_alias(move_alias("churn", "champion", 9, AliasExpectation::Any))
        .await
        .expect_err("no such version");
    assert!(
        matches!(error, StoreError::VersionNotFound { version: 9, .. }),
        "{error:?}"
    );
    let error = store
        .set_alias(move_alias("nope", "champion", 1, AliasExpectation::Any))
        .await
        .expect_err("no such model");
    assert!(
        matches!(error, StoreError::ModelNotFound { .. }),
        "{error:?}"
    );
}

/// Every change appends exactly one audit record, in order and with its who/why/trace; a
/// refused change appends nothing.
pub async fn audit_holds_exactly_one_record_per_change<S: RegistryStore>(store: Arc<S>) {
    for n in 1..=3 {
        store
            .register(new_version("churn", n), artifact(n))
            .await
            .expect("register");
    }
    store
        .set_alias(move_alias("churn", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("alias");
    store
        .set_alias(move_alias(
            "churn",
            "champion",
            3,
            AliasExpectation::Version(2),
        ))
        .await
        .expect_err("stale");
    store
        .set_alias(move_alias(
            "churn",
            "champion",
            3,
            AliasExpectation::Version(1),
        ))
        .await
        .expect("alias");
    store
        .register(new_version("other", 9), artifact(9))
        .await
        .expect("register other model");

    let audit = store.audit("churn", None, 0).await.expect("audit");
    let summary: Vec<_> = audit
        .items
        .iter()
        .map(|r| {
            (
                r.seq,
                r.action,
                r.alias.as_deref(),
                r.version,
                r.previous_version,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, AuditAction::Register, None, 1, None),
            (2, AuditAction::Register, None, 2, None),
            (3, AuditAction::Register, None, 3, None),
            (4, AuditAction::SetAlias, Some("champion"), 1, None),
            (5, AuditAction::SetAlias, Some("champion"), 3, Some(1)),
        ]
    );
    let registration = &audit.items[1];
    assert_eq!(registration.actor, "trainer");
    assert_eq!(registration.reason, "registration 2");
    assert_eq!(registration.trigger_event_id, "evt-2");
    assert_eq!(registration.trace_id, "trace-2");
    let promotion = &audit.items[4];
    assert_eq!(promotion.reason, "promote 3");
    assert_eq!(promotion.trigger_event_id, "evt-promote-3");
    assert_eq!(promotion.trace_id, "trace-promote-3");
    assert!(
        audit
            .items
            .windows(2)
            .all(|pair| pair[0].time_ms <= pair[1].time_ms)
    );

    let other = store.audit("other", None, 0).await.expect("audit");
    assert_eq!(other.items.len(), 1);
    assert_eq!(other.items[0].seq, 1);
}

/// Artifact bytes altered in storage are refused on read; the metadata stays readable.
pub async fn corrupted_artifact_is_refused<S, F>(store: Arc<S>, tamper: F)
where
    S: RegistryStore,
    F: AsyncFnOnce(VersionMeta),
{
    let meta = store
        .register(new_version("churn", 1), artifact(1))
        .await
        .expect("register");
    store
        .artifact("churn", 1)
        .await
        .expect("intact artifact reads");

    tamper(meta.clone()).await;

    let error = store
        .artifact("churn", 1)
        .await
        .expect_err("tampered artifact");
    match error {
        StoreError::CorruptArtifact {
            version, expected, ..
        } => {
            assert_eq!(version, 1);
            assert_eq!(expected, meta.artifact_sha256);
        }
        other => panic!("expected CorruptArtifact, got {other:?}"),
    }
    assert_eq!(store.version("churn", 1).await.expect("metadata"), meta);
}

/// Aliases resolve to where they were set, independently per alias and per model.
pub async fn aliases_resolve<S: RegistryStore>(store: Arc<S>) {
    for n in 1..=2 {
        store
            .register(new_version("churn", n), artifact(n))
            .await
            .expect("register");
    }
    store
        .register(new_version("fraud", 1), artifact(7))
        .await
        .expect("register");

    let error = store
        .resolve_alias("churn", "champion")
        .await
        .expect_err("no alias yet");
    assert!(
        matches!(error, StoreError::AliasNotFound { .. }),
        "{error:?}"
    );

    store
        .set_alias(move_alias("churn", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("champion");
    store
        .set_alias(move_alias("churn", "challenger", 2, AliasExpectation::Any))
        .await
        .expect("challenger");
    store
        .set_alias(move_alias("fraud", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("fraud champion");

    assert_eq!(
        store
            .resolve_alias("churn", "champion")
            .await
            .expect("resolve"),
        1
    );
    assert_eq!(
        store
            .resolve_alias("churn", "challenger")
            .await
            .expect("resolve"),
        2
    );
    assert_eq!(
        store
            .resolve_alias("fraud", "champion")
            .await
            .expect("resolve"),
        1
    );
    let summary = store.model("churn").await.expect("model");
    assert_eq!(summary.latest_version, 2);
    assert_eq!(
        summary.aliases.into_iter().collect::<Vec<_>>(),
        [("challenger".to_owned(), 2), ("champion".to_owned(), 1)]
    );
}

/// Paging returns every item exactly once, in order, with no empty last page.
pub async fn paging_covers_everything_once<S: RegistryStore>(store: Arc<S>) {
    for n in 1..=5 {
        store
            .register(new_version("churn", n), artifact(n))
            .await
            .expect("register");
    }
    for model in ["delta", "alpha", "charlie"] {
        store
            .register(new_version(model, 1), artifact(1))
            .await
            .expect("register");
    }

    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_versions("churn", cursor, 2).await.expect("list");
        pages.push(
            page.items
                .iter()
                .map(|meta| meta.version)
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5]]);

    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_models(cursor, 3).await.expect("list models");
        assert!(!page.items.is_empty());
        names.extend(page.items.iter().map(|summary| summary.name.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(names, ["alpha", "charlie", "churn", "delta"]);

    let first = store.audit("churn", None, 4).await.expect("audit");
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.next, Some(4));
    let rest = store.audit("churn", first.next, 4).await.expect("audit");
    assert_eq!(rest.items.iter().map(|r| r.seq).collect::<Vec<_>>(), [5]);
    assert_eq!(rest.next, None);
}

/// Unknown models and versions are `NotFound`; bad names are `InvalidArgument` naming the field.
pub async fn unknown_and_invalid_are_refused<S: RegistryStore>(store: Arc<S>) {
    let empty = store
        .list_models(None, 10)
        .await
        .expect("list an empty registry");
    assert_eq!((empty.items.len(), empty.next), (0, None));

    store
        .register(new_version("churn", 1), artifact(1))
        .await
        .expect("register");

    let error = store.version("nope", 1).await.expect_err("unknown model");
    assert!(
        matches!(error, StoreError::ModelNotFound { .. }),
        "{error:?}"
    );
    let error = store
        .artifact("churn", 2)
        .await
        .expect_err("unknown version");
    assert!(
        matches!(error, StoreError::VersionNotFound { version: 2, .. }),
        "{error:?}"
    );
    let error = store.model("nope").await.expect_err("unknown model");
    assert!(
        matches!(error, StoreError::ModelNotFound { .. }),
        "{error:?}"
    );
    let error = store
        .audit("nope", None, 10)
        .await
        .expect_err("unknown model");
    assert!(
        matches!(error, StoreError::ModelNotFound { .. }),
        "{error:?}"
    );
    let error = store
        .list_versions("nope", None, 10)
        .await
        .expect_err("unknown model");
    assert!(
        matches!(error, StoreError::ModelNotFound { .. }),
        "{error:?}"
    );

    let error = store
        .register(new_version("bad.name", 1), artifact(1))
        .await
        .expect_err("bad model name");
    assert!(
        matches!(error, StoreError::InvalidArgument { field: "model", .. }),
        "{error:?}"
    );
    let error = store
        .set_alias(move_alias("churn", "champ*on", 1, AliasExpectation::Any))
        .await
        .expect_err("bad alias name");
    assert!(
        matches!(error, StoreError::InvalidArgument { field: "alias", .. }),
        "{error:?}"
    );
    assert_eq!(
        store
            .audit("churn", None, 10)
            .await
            .expect("audit")
            .items
            .len(),
        1
    );
}

/// A watcher of one model sees that model's alias moves, in order, and nothing else.
pub async fn watch_sees_alias_moves<S: RegistryStore>(store: Arc<S>) {
    for model in ["churn", "fraud"] {
        for n in 1..=2 {
            store
                .register(new_version(model, n), artifact(n))
                .await
                .expect("register");
        }
    }
    let mut watch = store.watch_aliases("churn").await.expect("watch");

    store
        .set_alias(move_alias("fraud", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("fraud alias");
    store
        .set_alias(move_alias("churn", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("alias");
    store
        .set_alias(move_alias(
            "churn",
            "champion",
            2,
            AliasExpectation::Version(1),
        ))
        .await
        .expect("alias");

    let mut seen = Vec::new();
    for _ in 0..2 {
        let record = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("a move within 10 s")
            .expect("watch open")
            .expect("move");
        seen.push((
            record.model,
            record.alias,
            record.version,
            record.previous_version,
        ));
    }
    let champion = Some("champion".to_owned());
    assert_eq!(
        seen,
        [
            ("churn".to_owned(), champion.clone(), 1, None),
            ("churn".to_owned(), champion, 2, Some(1)),
        ]
    );
    let nothing_else = tokio::time::timeout(Duration::from_millis(300), watch.next()).await;
    assert!(
        nothing_else.is_err(),
        "unexpected extra move {nothing_else:?}"
    );
}

/// Registrations abandoned at arbitrary moments (the caller's future dropped mid-way, as
/// when a connection dies) leave no half-registered version: every version that exists
/// has its artifact and exactly one audit record, and numbering stays dense.
pub async fn abandoned_registrations_leave_no_partial_version<S: RegistryStore>(store: Arc<S>) {
    for n in 0..12u64 {
        let registration = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.register(new_version("churn", n), artifact(n)).await })
        };
        // Abort after a varying delay, from "immediately" to "probably done".
        tokio::time::sleep(Duration::from_millis(n * n / 2)).await;
        registration.abort();
        let _ = registration.await;
    }
    // No settling wait: a registration still running on a blocking thread may commit at any
    // time, before or after the next one, so the properties are checked on what is there
    // whenever it is read.
    let last = store
        .register(new_version("churn", 100), artifact(100))
        .await
        .expect("register after aborts");

    let versions = store.list_versions("churn", None, 0).await.expect("list");
    let numbers: Vec<u64> = versions.items.iter().map(|meta| meta.version).collect();
    let newest = numbers.last().copied().unwrap_or(0);
    assert!(newest >= last.version, "{numbers:?}");
    assert_eq!(numbers, (1..=newest).collect::<Vec<_>>(), "dense numbering");
    for meta in &versions.items {
        store
            .artifact("churn", meta.version)
            .await
            .expect("artifact of every version");
    }
    let audit = store.audit("churn", None, 0).await.expect("audit");
    let registered: Vec<u64> = audit
        .items
        .iter()
        .filter(|record| record.action == AuditAction::Register)
        .map(|record| record.version)
        .collect();
    // One registration record per version listed, in order (a late commit after the listing
    // may add the next number, never a gap or a repeat).
    assert_eq!(registered.get(..numbers.len()), Some(numbers.as_slice()));
    assert_eq!(
        registered,
        (1..=registered.len() as u64).collect::<Vec<_>>(),
        "dense registrations"
    );
}

/// A large artifact round-trips byte for byte.
pub async fn large_artifact_round_trips<S: RegistryStore>(store: Arc<S>) {
    let bytes: Bytes = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let meta = store
        .register(new_version("churn", 1), bytes.clone())
        .await
        .expect("register");
    assert_eq!(meta.artifact_size, bytes.len() as u64);
    let (_, stored) = store.artifact("churn", 1).await.expect("artifact");
    assert!(stored == bytes, "artifact bytes differ");
}

/// The outbox cursor starts at 0 for a new model, only moves forward, survives a reopen of
/// the store (checked by the runners), and is refused for a model the store does not know.
pub async fn outbox_cursor_moves_forward_only<S: RegistryStore>(store: Arc<S>) {
    store
        .register(new_version("outboxed", 1), artifact(1))
        .await
        .unwrap();
    assert_eq!(store.announced_seq("outboxed").await.unwrap(), 0);
    store.set_announced_seq("outboxed", 1).await.unwrap();
    assert_eq!(store.announced_seq("outboxed").await.unwrap(), 1);
    store.set_announced_seq("outboxed", 3).await.unwrap();
    store.set_announced_seq("outboxed", 2).await.unwrap();
    assert_eq!(
        store.announced_seq("outboxed").await.unwrap(),
        3,
        "a slower writer must not move the cursor back"
    );
    assert!(matches!(
        store.announced_seq("nosuch").await,
        Err(StoreError::ModelNotFound { .. })
    ));
    assert!(matches!(
        store.set_announced_seq("nosuch", 1).await,
        Err(StoreError::ModelNotFound { .. })
    ));
}

pub fn decision(model: &str, trigger: &str, decided: &str, version: Option<u64>) -> NewDecision {
    NewDecision {
        model: model.into(),
        trigger_event_id: trigger.into(),
        note: DecisionNote {
            decision: decided.into(),
            outcome: version.map(|_| "promoted".to_owned()),
            run_event_id: version.map(|_| trigger.to_owned()),
        },
        reason: format!("{decided} {trigger}"),
        version,
        actor: "mend-trainer".into(),
        trace_id: String::new(),
    }
}

/// Decisions join the audit log between the changes, numbered like them, moving nothing: the
/// champion stays, the next version number is unchanged, and a reopened log replays them.
/// An unknown model, an unknown decision, an empty reason and a version that does not exist
/// are refused, appending nothing.
pub async fn decisions_are_recorded_in_the_audit_log<S: RegistryStore>(store: Arc<S>) {
    store
        .register(new_version("churn", 1), artifact(1))
        .await
        .expect("register");
    store
        .set_alias(move_alias("churn", "champion", 1, AliasExpectation::Absent))
        .await
        .expect("alias");
    let deferred = store
        .record_decision(decision("churn", "drift-1", "deferred", None))
        .await
        .expect("deferred");
    assert_eq!(deferred.seq, 3);
    assert_eq!(deferred.action, AuditAction::Decision);
    store
        .register(new_version("churn", 2), artifact(2))
        .await
        .expect("register");
    let acted = store
        .record_decision(decision("churn", "drift-1", "acted", Some(2)))
        .await
        .expect("acted");
    assert_eq!(acted.seq, 5);
    assert_eq!(acted.version, 2);
    assert_eq!(
        acted.decision.as_ref().unwrap().outcome.as_deref(),
        Some("promoted")
    );

    // Nothing moved, and the next registration is version 3 at seq 6.
    assert_eq!(store.resolve_alias("churn", "champion").await.unwrap(), 1);
    assert_eq!(
        store
            .register(new_version("churn", 3), artifact(3))
            .await
            .unwrap()
            .version,
        3
    );

    for (bad, why) in [
        (
            decision("nosuch", "drift-1", "acted", None),
            "unknown model",
        ),
        (
            decision("churn", "drift-1", "pondered", None),
            "unknown decision",
        ),
        (
            NewDecision {
                reason: "  ".into(),
                ..decision("churn", "drift-1", "dropped", None)
            },
            "empty reason",
        ),
        (
            decision("churn", "drift-1", "acted", Some(99)),
            "no such version",
        ),
    ] {
        let refused = store.record_decision(bad).await;
        assert!(refused.is_err(), "{why}: {refused:?}");
    }

    let audit = store.audit("churn", None, 0).await.expect("audit");
    let actions: Vec<_> = audit.items.iter().map(|r| (r.seq, r.action)).collect();
    assert_eq!(
        actions,
        [
            (1, AuditAction::Register),
            (2, AuditAction::SetAlias),
            (3, AuditAction::Decision),
            (4, AuditAction::Register),
            (5, AuditAction::Decision),
            (6, AuditAction::Register),
        ]
    );
    assert_eq!(audit.items[2], deferred);
    assert_eq!(audit.items[4], acted);
    assert_eq!(audit.items[2].reason, "deferred drift-1");
    assert_eq!(audit.items[2].trigger_event_id, "drift-1");
}
