#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The heal loop across services, over a real `nats-server -js`: rows and labels of a changed
//! world go in through ingest; either a user forces a retrain with a raw JSON publish (as with
//! the `nats` CLI) or the monitor notices the drift by itself; the trainer retrains, the registry
//! promotes, and the inference server answers with the new version, whose accuracy on the new
//! world has recovered.

mod support;

use bytes::Bytes;
use mend_proto::registry::v1 as registry_pb;
use mend_worlds::{Generator, Regime, SyntheticSpec};
use support::{MODEL, accuracy, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_retrain_heals_a_flipped_concept_across_services() {
    let mut stack = start(false).await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;

    // The server comes up serving version 1, which fails on the flipped world.
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    world.reseed(11);
    let probe = world.sample(1_000, &flipped);
    let (version, labels) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");
    let acc_before = accuracy(&world, &probe, &labels);
    assert!(
        acc_before < 0.35,
        "v1 should fail on the flipped world, got {acc_before}"
    );

    // The new world's rows and labels go in through ingest.
    world.reseed(12);
    let fresh = world.sample(5_000, &flipped);
    stack.ingest(&world, &fresh, "new-").await;

    // A user forces a retrain the way they would with `nats pub`.
    let raw = async_nats::connect(stack.nats.url()).await.unwrap();
    raw.publish(
        format!("retrain.requested.{MODEL}"),
        Bytes::from_static(br#"{"v":1,"reason":"the world flipped"}"#),
    )
    .await
    .unwrap();
    raw.flush().await.unwrap();

    // The server swaps to version 2 without failing a request, and it answers the new world
    // well.
    let answered = stack.answer_from("2", &world, &probe, 60).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );
    let labels = answered.labels;
    let acc_after = accuracy(&world, &probe, &labels);
    assert!(
        acc_after > 0.8,
        "v2 should have learned the flipped world, got {acc_after}"
    );

    // The record says why: registered by the trainer for the forced retrain, champion moved once.
    let audit = stack.registry.audit(MODEL).await.unwrap();
    let moves: Vec<(u64, Option<u64>)> = audit
        .iter()
        .filter(|r| r.alias == "champion")
        .map(|r| (r.version, r.previous_version))
        .collect();
    assert_eq!(moves, vec![(1, None), (2, Some(1))]);
    let v2 = stack
        .registry
        .list_versions(MODEL)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(
        v2.trigger.unwrap().kind,
        registry_pb::TriggerKind::Forced as i32
    );
    assert_eq!(v2.parent_version, Some(1));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_monitor_notices_a_flipped_concept_and_the_loop_heals_without_a_person() {
    let mut stack = start(true).await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    world.reseed(21);
    let probe = world.sample(1_000, &flipped);
    let (version, _) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");

    // Only data goes in: no one asks for a retrain.
    world.reseed(22);
    let fresh = world.sample(3_000, &flipped);
    stack.ingest(&world, &fresh, "live-").await;

    let answered = stack.answer_from("2", &world, &probe, 60).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );
    let acc_after = accuracy(&world, &probe, &answered.labels);
    assert!(
        acc_after > 0.8,
        "the healed model should fit the flipped world, got {acc_after}"
    );
    let v2 = stack
        .registry
        .list_versions(MODEL)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(
        v2.trigger.unwrap().kind,
        registry_pb::TriggerKind::Drift as i32,
        "retrained because the monitor saw drift"
    );
    stack.stop().await;
}
