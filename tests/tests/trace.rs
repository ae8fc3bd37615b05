#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One heal is one trace. Rows of a flipped world go in through ingest inside a producer's
//! span; the monitor notices the drift and announces it; the trainer retrains, registers and
//! promotes through the registry; the server swaps on the promotion event. Every service
//! runs as a task of this process over a real `nats-server -js`, and every span is collected
//! in memory: the spans each service opened for its part of the heal must all carry the
//! producer's trace id, carried across gRPC metadata, data-log and event headers.
//!
//! A test binary of its own, because it installs the process-wide subscriber and
//! propagator. Services are told apart by span target (the crate: `mend_ingest::…`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mend_worlds::{Generator, SyntheticSpec};
use opentelemetry::global;
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use support::Options;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The services of a heal, by the crate their spans come from.
const SERVICES: [&str; 5] = [
    "mend_ingest",
    "mend_monitor",
    "mend_trainer",
    "mend_registry",
    "mend_server",
];

/// Keeps every finished span in memory.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Collected {
    /// The crate of each span of `trace`, with the span names seen for it.
    fn services_in(&self, trace: TraceId) -> BTreeMap<String, BTreeSet<String>> {
        let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for span in self.0.lock().unwrap().iter() {
            if span.span_context.trace_id() != trace {
                continue;
            }
            let target = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "target")
                .map(|kv| kv.value.as_str().into_owned())
                .unwrap_or_default();
            let service = target.split("::").next().unwrap_or_default().to_owned();
            services
                .entry(service)
                .or_default()
                .insert(span.name.to_string());
        }
        services
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The process-wide subscriber: mend's spans (and this test's) to an in-memory exporter,
/// and the W3C propagator gRPC metadata is read and written with.
fn install_collector() -> (Collected, SdkTracerProvider) {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    // Only mend's spans: h2, hyper and async-nats spans would swamp the exporter.
    let filter = Targets::new()
        .with_target("mend_", tracing::Level::INFO)
        .with_target("trace", tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("mend-tests")))
        .with(filter)
        .try_init()
        .expect("the only subscriber in this test binary");
    global::set_text_map_propagator(TraceContextPropagator::new());
    (collected, provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_heal_is_one_trace_across_every_service() {
    let (collected, provider) = install_collector();
    // The server's periodic reconcile is an hour away: within the test it swaps only on the
    // promotion event, whose span must join the heal's trace.
    let mut stack = support::start_with(Options {
        monitor: true,
        vars: vec![("MEND_SERVER_RECONCILE_MS", "3600000".into())],
        ..Options::default()
    })
    .await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    let flipped = support::flipped();
    world.reseed(31);
    let probe = world.sample(200, &flipped);
    let answered = stack.answer_from("1", &world, &probe, 30).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed once version 1 was served: {:?}",
        answered.errors
    );

    // A producer sends the changed world in one traced operation; no one asks for a retrain.
    let producer = tracing::info_span!("producer sends the flipped world");
    let heal_trace = producer.context().span().span_context().trace_id();
    assert_ne!(heal_trace, TraceId::INVALID, "the collector records spans");
    world.reseed(32);
    let fresh = world.sample(3_000, &flipped);
    stack
        .ingest(&world, &fresh, "live-")
        .instrument(producer.clone())
        .await;
    drop(producer);

    // The monitor notices, the trainer heals, the registry promotes, the server swaps.
    let answered = stack.answer_from("2", &world, &probe, 60).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );

    // The server's swap span ends after it starts serving v2: wait for it to be exported.
    let mut services = BTreeMap::new();
    for _ in 0..100 {
        services = collected.services_in(heal_trace);
        if SERVICES
            .iter()
            .all(|service| services.contains_key(*service))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<&str> = SERVICES
        .iter()
        .copied()
        .filter(|service| !services.contains_key(*service))
        .collect();
    assert!(
        missing.is_empty(),
        "services {missing:?} have no span in the heal's trace {heal_trace}; it holds {services:#?} ({} spans collected)",
        collected.count()
    );
    // Each service's span is the one for its step of the heal, not an incidental one.
    for (service, step) in [
        ("mend_ingest", "ingest_batch"),
        ("mend_monitor", "announce_drift"),
        ("mend_trainer", "retrain"),
        ("mend_registry", "set_alias"),
        ("mend_server", "swap_on_event"),
    ] {
        assert!(
            services[service].contains(step),
            "{service} has no `{step}` span in the heal's trace: {services:#?}"
        );
    }

    stack.stop().await;
    provider.shutdown().unwrap();
}
