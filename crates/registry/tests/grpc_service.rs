//! The registry gRPC service over loopback, driven by a real tonic client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription, InProcessBus, InProcessConfig};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::alias_precondition::State;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_proto::registry::v1::register_version_request::Part;
use mend_registry::service::CHUNK_BYTES;
use mend_registry::service::status::ALIAS_VERSION_METADATA;
use mend_testkit::eventually;
use service::{
    SOON, TOKEN, TestRegistry, authorized, get, header, register, set_alias, sha256_hex,
    upload_messages, with_token,
};
use tonic::{Code, Request};

/// A loadable model artifact `extra` bytes larger than the smallest one (the registry takes
/// only models it can serve).
fn artifact(extra: usize) -> Bytes {
    Bytes::from(mend_testkit::artifacts::model_bytes_of_size(
        mend_testkit::artifacts::min_model_len() + extra,
        0,
    ))
}

#[tokio::test]
async fn a_5_mb_artifact_uploaded_in_many_chunks_comes_back_intact() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let bytes = artifact(5 * 1024 * 1024 + 17);

    // 7 KiB chunks: hundreds of messages, none aligned with the download's chunking.
    let messages = upload_messages(header("churn"), &bytes, 7 * 1024);
    assert!(messages.len() > 700);
    let registered = client
        .register_version(authorized(futures::stream::iter(messages)))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(registered.version, 1);
    assert_eq!(registered.artifact_size, bytes.len() as u64);
    assert_eq!(registered.artifact_sha256, sha256_hex(&bytes));
    assert_eq!(registered.metrics["holdout.accuracy"], 0.9);
    assert!(registered.created_at_ms > 0);

    set_alias(
        &mut client,
        "churn",
        "champion",
        1,
        Some(State::Absent(true)),
    )
    .await
    .unwrap();
    for selector in [
        Some(Selector::Version(1)),
        Some(Selector::Alias("champion".into())),
        None,
    ] {
        let (meta, chunks) = get(&mut client, "churn", selector.clone()).await.unwrap();
        assert_eq!(meta, registered, "{selector:?}");
        assert_eq!(chunks.len(), 6, "5 MiB + 17 bytes in 1 MiB chunks");
        assert!(chunks.iter().all(|chunk| chunk.len() <= CHUNK_BYTES));
        assert_eq!(chunks.concat(), bytes.to_vec());
    }

    // Metadata only.
    let mut stream = client
        .get_version(pb::GetVersionRequest {
            model: "churn".into(),
            selector: None,
            skip_artifact: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_none());
}

#[tokio::test]
async fn a_100_mb_artifact_registers_in_one_chunk_or_many() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let bytes = artifact(100 * 1024 * 1024);
    for (chunk, version) in [(1024 * 1024, 1), (bytes.len(), 2)] {
        let messages = upload_messages(header("big"), &bytes, chunk);
        let registered = client
            .register_version(authorized(futures::stream::iter(messages)))
            .await
            .unwrap()
            .into_inner()
            .version
            .unwrap();
        assert_eq!(registered.version, version);
        assert_eq!(registered.artifact_size, bytes.len() as u64);
    }
    let (meta, chunks) = get(&mut client, "big", Some(Selector::Version(2)))
        .await
        .unwrap();
    assert_eq!(meta.artifact_sha256, sha256_hex(&bytes));
    assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), bytes.len());
}

#[tokio::test]
async fn an_artifact_over_the_configured_limit_is_refused() {
    let limit = (mend_testkit::artifacts::min_model_len() + 1000).to_string();
    let registry =
        TestRegistry::start_with(None, &[("MEND_REGISTRY_MAX_ARTIFACT_BYTES", &limit)]).await;
    let mut client = registry.client().await;
    let status = register(&mut client, "churn", &artifact(1001))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("header.artifact_size"),
        "{status:?}"
    );

    let mut no_size = upload_messages(header("churn"), &artifact(1001), 100);
    let Some(Part::Header(first)) = &mut no_size[0].part else {
        panic!()
    };
    first.artifact_size = 0;
    let status = client
        .register_version(futures::stream::iter(no_size))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    register(&mut client, "churn", &artifact(1000))
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_models_versions_and_aliases_are_not_found() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let status = get(&mut client, "nobody", None).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("nobody"));

    register(&mut client, "churn", &artifact(0)).await.unwrap();
    for selector in [Selector::Version(2), Selector::Alias("champion".into())] {
        let status = get(&mut client, "churn", Some(selector)).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let status = set_alias(&mut client, "churn", "champion", 9, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn writes_need_the_token_and_reads_do_not() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let messages = upload_messages(header("churn"), &artifact(100), 10);

    let status = client
        .register_version(futures::stream::iter(messages.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .register_version(with_token(futures::stream::iter(messages.clone()), "wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains(TOKEN));

    client
        .register_version(authorized(futures::stream::iter(messages)))
        .await
        .unwrap();
    let set = pb::SetAliasRequest {
        model: "churn".into(),
        alias: "champion".into(),
        version: 1,
        ..Default::default()
    };
    let status = client
        .set_alias(Request::new(set.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .set_alias(with_token(set, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // Reads: no token needed; and the refused writes left no trace.
    let audit = client
        .get_audit(pb::GetAuditRequest {
            model: "churn".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.records.len(), 1);
    let models = client
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(models.models.len(), 1);
    assert!(models.models[0].aliases.is_empty());
}

#[tokio::test]
async fn without_a_configured_token_writes_are_open() {
    let registry = TestRegistry::start_with(None, &[]).await;
    let mut client = registry.client().await;
    let messages = upload_messages(header("churn"), &artifact(100), 10);
    client
        .register_version(futures::stream::iter(messages))
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_naming_the_field() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    register(&mut client, "churn", &artifact(0)).await.unwrap();

    let mut no_trigger = header("churn");
    no_trigger.trigger = None;
    let status = client
        .register_version(authorized(futures::stream::iter(upload_messages(
            no_trigger,
            &artifact(10),
            5,
        ))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid header.trigger"),
        "{status:?}"
    );

    let mut corrupt = upload_messages(header("churn"), &artifact(10), 5);
    let Some(Part::Header(first)) = &mut corrupt[0].part else {
        panic!()
    };
    first.artifact_sha256 = sha256_hex(b"something else");
    let status = client
        .register_version(authorized(futures::stream::iter(corrupt)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("header.artifact_sha256"),
        "{status:?}"
    );

    let status = set_alias(&mut client, "churn", "no.dots", 1, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("invalid alias"), "{status:?}");

    let status = set_alias(
        &mut client,
        "churn",
        "champion",
        1,
        Some(State::Absent(false)),
    )
    .await
    .unwrap_err();
    assert!(
        status.message().starts_with("invalid expected.absent"),
        "{status:?}"
    );

    let status = get(&mut client, "churn", Some(Selector::Version(0)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid version"),
        "{status:?}"
    );

    let status = client
        .list_versions(pb::ListVersionsRequest {
            model: "churn".into(),
            page_size: 1,
            page_token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("invalid page_token"),
        "{status:?}"
    );

    // Nothing above was committed.
    let versions = client
        .list_versions(pb::ListVersionsRequest {
            model: "churn".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 1);
}

#[tokio::test]
async fn a_stale_compare_and_set_is_aborted_with_the_current_version() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    for _ in 0..3 {
        register(&mut client, "churn", &artifact(0)).await.unwrap();
    }
    let first = set_alias(
        &mut client,
        "churn",
        "champion",
        1,
        Some(State::Absent(true)),
    )
    .await
    .unwrap();
    assert_eq!(first.previous_version, None);

    // Two trainers both saw champion at 1; the second loses.
    let won = set_alias(&mut client, "churn", "champion", 2, Some(State::Version(1)))
        .await
        .unwrap();
    assert_eq!(won.previous_version, Some(1));
    let lost = set_alias(&mut client, "churn", "champion", 3, Some(State::Version(1)))
        .await
        .unwrap_err();
    assert_eq!(lost.code(), Code::Aborted);
    assert!(lost.message().contains("version 2"), "{lost:?}");
    assert_eq!(lost.metadata().get(ALIAS_VERSION_METADATA).unwrap(), "2");

    let absent = set_alias(
        &mut client,
        "churn",
        "champion",
        3,
        Some(State::Absent(true)),
    )
    .await
    .unwrap_err();
    assert_eq!(absent.code(), Code::Aborted);

    let (meta, _) = get(
        &mut client,
        "churn",
        Some(Selector::Alias("champion".into())),
    )
    .await
    .unwrap();
    assert_eq!(meta.version, 2);
}

#[tokio::test]
async fn listings_page_through_everything_once() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    for _ in 0..5 {
        register(&mut client, "churn", &artifact(0)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_versions(pb::ListVersionsRequest {
                model: "churn".into(),
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.versions.len() <= 2);
        seen.extend(page.versions.iter().map(|v| v.version));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);

    let audit = client
        .get_audit(pb::GetAuditRequest {
            model: "churn".into(),
            page_size: 3,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        audit.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(audit.next_page_token, "3");
}

#[tokio::test]
async fn the_audit_carries_actor_reason_and_the_callers_trace_id() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    register(&mut client, "churn", &artifact(0)).await.unwrap();
    let mut request = authorized(pb::SetAliasRequest {
        model: "churn".into(),
        alias: "champion".into(),
        version: 1,
        expected: None,
        actor: "trainer".into(),
        reason: "beat the champion".into(),
        trigger_event_id: "drift-42".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    client.set_alias(request).await.unwrap();
    let records = client
        .get_audit(pb::GetAuditRequest {
            model: "churn".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(records.len(), 2);
    let moved = &records[1];
    assert_eq!(moved.action, pb::AuditAction::SetAlias as i32);
    assert_eq!(moved.actor, "trainer");
    assert_eq!(moved.reason, "beat the champion");
    assert_eq!(moved.trigger_event_id, "drift-42");
    assert_eq!(moved.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn a_watch_sees_where_aliases_are_and_every_move() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    for _ in 0..3 {
        register(&mut client, "churn", &artifact(0)).await.unwrap();
    }
    set_alias(&mut client, "churn", "champion", 1, None)
        .await
        .unwrap();

    let mut watch = client
        .watch_aliases(pb::WatchAliasesRequest {
            model: "churn".into(),
            include_current: true,
        })
        .await
        .unwrap()
        .into_inner();
    let current = watch.message().await.unwrap().unwrap();
    assert!(current.current);
    assert_eq!((current.alias.as_str(), current.version), ("champion", 1));

    set_alias(&mut client, "churn", "champion", 3, None)
        .await
        .unwrap();
    set_alias(&mut client, "churn", "staging", 2, None)
        .await
        .unwrap();
    let moved = watch.message().await.unwrap().unwrap();
    assert!(!moved.current);
    assert_eq!(
        (
            moved.alias.as_str(),
            moved.version,
            moved.previous_version,
            moved.audit_seq
        ),
        ("champion", 3, Some(1), 5)
    );
    let staged = watch.message().await.unwrap().unwrap();
    assert_eq!((staged.alias.as_str(), staged.version), ("staging", 2));

    // Shutdown ends the watch instead of waiting for the client to hang up.
    registry.stop().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap();
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
}

#[tokio::test]
async fn an_upload_dropped_mid_way_leaves_no_version() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let bytes = artifact(4 * 1024 * 1024);
    let messages = upload_messages(header("churn"), &bytes, 64 * 1024);

    // The client sends the header and half the chunks, then its task is killed.
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let mut uploader = client.clone();
    let upload = tokio::spawn(async move {
        uploader
            .register_version(authorized(tokio_stream::wrappers::ReceiverStream::new(
                receiver,
            )))
            .await
    });
    for message in messages.iter().take(messages.len() / 2).cloned() {
        sender.send(message).await.unwrap();
    }
    // Wait until the client has taken every message off the channel and sent it on.
    eventually(SOON, "every message taken off the channel", || {
        let drained = sender.capacity() == sender.max_capacity();
        async move { drained.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    drop(sender);

    // A client that ends its stream early is refused, not registered short.
    let truncated: Vec<_> = messages.iter().take(messages.len() / 2).cloned().collect();
    let status = client
        .register_version(authorized(futures::stream::iter(truncated)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = get(&mut client, "churn", None).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Nothing of the model was committed: no audit record (the model does not even exist).
    match registry.store.audit("churn", None, 10).await {
        Ok(page) => assert!(page.items.is_empty(), "{:?}", page.items),
        Err(mend_registry::StoreError::ModelNotFound { .. }) => {}
        Err(other) => panic!("the audit could not be read: {other:?}"),
    }

    // The next complete upload is version 1: no gap where the dropped one was.
    let registered = client
        .register_version(authorized(futures::stream::iter(messages)))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(registered.version, 1);
}

#[tokio::test]
async fn champion_moves_are_published_as_promotions_and_rollbacks() {
    let bus = InProcessBus::new(InProcessConfig::default());
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let registry =
        TestRegistry::start_with(Some(Arc::clone(&bus)), &[("MEND_REGISTRY_TOKEN", TOKEN)]).await;
    let mut client = registry.client().await;
    let mut events = EventSubscription::subscribe(
        Arc::clone(&bus),
        // One filter, so the events arrive in the order they were published.
        ConsumerSpec::new("test", ["model.>"]),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        register(&mut client, "churn", &artifact(0)).await.unwrap();
    }
    set_alias(
        &mut client,
        "churn",
        "champion",
        1,
        Some(State::Absent(true)),
    )
    .await
    .unwrap();
    set_alias(&mut client, "churn", "staging", 2, None)
        .await
        .unwrap();
    set_alias(&mut client, "churn", "champion", 2, Some(State::Version(1)))
        .await
        .unwrap();
    let rollback = set_alias(&mut client, "churn", "champion", 1, Some(State::Version(2)))
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((
            delivery.envelope.id.clone(),
            delivery.envelope.event.clone(),
        ));
        delivery.ack().await.unwrap();
    }
    let Event::ModelPromoted(first) = &seen[0].1 else {
        panic!("{seen:?}")
    };
    assert_eq!((first.version, first.previous), (1, None));
    assert_eq!(first.metrics["holdout.accuracy"], 0.9);
    let Event::ModelPromoted(second) = &seen[1].1 else {
        panic!("{seen:?}")
    };
    assert_eq!((second.version, second.previous), (2, Some(1)));
    let Event::ModelRolledBack(back) = &seen[2].1 else {
        panic!("{seen:?}")
    };
    assert_eq!((back.from_version, back.to_version), (2, 1));
    assert_eq!(back.reason, rollback.reason);
    assert_eq!(seen[2].0, format!("registry-churn-{}", rollback.seq));

    // Nothing else (the staging move announced nothing).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_registry() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let registry = TestRegistry::start().await;
    let mut health = HealthClient::new(registry.channel().await);
    let status = eventually(SOON, "the registry reported serving", || {
        let mut health = health.clone();
        async move {
            let response = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "mend.registry.v1.Registry".into(),
                })
                .await
                .ok()?;
            let status = response.into_inner().status;
            (status == ServingStatus::Serving as i32).then_some(status)
        }
    })
    .await;
    assert_eq!(status, ServingStatus::Serving as i32);

    let mut reflection = ServerReflectionClient::new(registry.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"mend.registry.v1.Registry"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    registry.stop().await.unwrap();
    let after = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(after.is_err() || after.unwrap().into_inner().status != ServingStatus::Serving as i32);
}

#[tokio::test]
async fn a_registry_killed_mid_upload_restarts_with_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();

    // The first registry runs on its own runtime, so dropping that runtime kills it at
    // once, mid-upload, the way a killed process stops.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr_sender, addr_receiver) = tokio::sync::oneshot::channel();
    doomed.spawn({
        let data_dir = data_dir.clone();
        async move {
            let store = mend_registry::SqliteStore::open_in_dir(&data_dir)
                .await
                .unwrap();
            let registry = TestRegistry::start_on(Arc::new(store), None, &[]).await;
            addr_sender.send(registry.addr).unwrap();
            std::future::pending::<()>().await;
            drop(registry);
        }
    });
    let addr = addr_receiver.await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = mend_proto::registry::v1::registry_client::RegistryClient::new(channel);
    let bytes = artifact(4 * 1024 * 1024);
    let messages = upload_messages(header("churn"), &bytes, 64 * 1024);
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let upload = tokio::spawn(async move {
        client
            .register_version(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    for message in messages.iter().take(messages.len() / 2).cloned() {
        sender.send(message).await.unwrap();
    }
    eventually(SOON, "every message taken off the channel", || {
        let drained = sender.capacity() == sender.max_capacity();
        async move { drained.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.shutdown_background();
    let outcome = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.is_err(),
        "the upload cannot have succeeded: {outcome:?}"
    );

    // Restarted on the same data: no version, and the next upload is version 1.
    let store = mend_registry::SqliteStore::open_in_dir(&data_dir)
        .await
        .unwrap();
    let registry = TestRegistry::start_on(Arc::new(store), None, &[]).await;
    let mut client = registry.client().await;
    let status = get(&mut client, "churn", None).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let registered = client
        .register_version(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(registered.version, 1);
}

#[tokio::test]
async fn a_corrupted_artifact_is_data_loss_and_never_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let store = mend_registry::SqliteStore::open_in_dir(dir.path())
        .await
        .unwrap();
    let path = store.path().to_owned();
    let registry = TestRegistry::start_on(Arc::new(store), None, &[]).await;
    let mut client = registry.client().await;
    let meta = register(&mut client, "churn", &artifact(0)).await.unwrap();

    let connection = rusqlite::Connection::open(&path).unwrap();
    let changed = connection
        .execute(
            &format!(
                "UPDATE {} SET bytes = ?1 WHERE sha256 = ?2",
                mend_registry::sqlite::ARTIFACTS_TABLE
            ),
            rusqlite::params![b"tampered".to_vec(), meta.artifact_sha256],
        )
        .unwrap();
    assert_eq!(changed, 1);

    // The status comes before any message: not even the metadata is sent.
    let status = client
        .get_version(pb::GetVersionRequest {
            model: "churn".into(),
            selector: Some(Selector::Version(1)),
            skip_artifact: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
}

#[tokio::test]
async fn a_watch_snapshot_larger_than_its_buffer_arrives_whole() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    register(&mut client, "churn", &artifact(0)).await.unwrap();
    for i in 0..100 {
        set_alias(&mut client, "churn", &format!("alias-{i:03}"), 1, None)
            .await
            .unwrap();
    }
    let mut watch = client
        .watch_aliases(pb::WatchAliasesRequest {
            model: "churn".into(),
            include_current: true,
        })
        .await
        .unwrap()
        .into_inner();
    let mut snapshot = Vec::new();
    for _ in 0..100 {
        let current = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(current.current);
        snapshot.push(current.alias);
    }
    assert_eq!(snapshot.first().unwrap(), "alias-000");
    assert_eq!(snapshot.last().unwrap(), "alias-099");
}

/// A raw gRPC client uploads a model with one body byte flipped, announcing the sha256 of the
/// bytes it sends (so the upload's own checksum matches): the registry loads the artifact,
/// finds its header's sha256 does not match its body, and refuses it with INVALID_ARGUMENT.
/// No version is committed; the untouched model registers as version 1 right after.
#[tokio::test]
async fn a_tampered_artifact_is_refused_and_never_becomes_a_version() {
    let registry = TestRegistry::start().await;
    let mut client = registry.client().await;
    let model = artifact(0).to_vec();
    let newline = model.iter().position(|&b| b == b'\n').unwrap();
    let mut tampered = model.clone();
    tampered[newline + 50] ^= 0x01;
    let status = register(&mut client, "churn", &tampered).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("invalid artifact") && status.message().contains("checksum"),
        "{}",
        status.message()
    );
    let missing = get(&mut client, "churn", None).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "nothing was registered");

    let registered = register(&mut client, "churn", &model).await.unwrap();
    assert_eq!(registered.version, 1);
}
