//! Single flight per model: one retrain of a model at a time, a debounce so a burst of
//! triggers becomes one run, a cooldown after each run, triggers arriving meanwhile coalesced
//! into the one next run, and failures retried with exponential backoff up to a limit, then
//! an alert.
//!
//! Each model has one task owning its queue. A trigger is answered with the outcome of the
//! run that covered it, so its event is acked only once that outcome is durable. A trigger
//! that happened before the start of the last successful run is covered by it already (that
//! run read every row the trigger could have been about).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mend_bus::ModelName;
use mend_bus::events::Severity;
use opentelemetry::trace::TraceContextExt;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::alerts;
use crate::heal::{Healer, RunOutcome};
use crate::trigger::RetrainTrigger;

/// Longest wait between attempts, whatever the backoff doubles to.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

struct Job {
    trigger: RetrainTrigger,
    done: oneshot::Sender<RunOutcome>,
    /// The span of the event that brought the trigger; the run it leads continues its trace.
    span: tracing::Span,
}

/// The per-model queues; cheap to clone.
#[derive(Clone)]
pub struct Flights {
    healer: Healer,
    shutdown: CancellationToken,
    queues: Arc<Mutex<HashMap<ModelName, mpsc::UnboundedSender<Job>>>>,
    runs: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("runs", &self.runs())
            .finish_non_exhaustive()
    }
}

impl Flights {
    pub fn new(healer: Healer, shutdown: CancellationToken) -> Self {
        Flights {
            healer,
            shutdown,
            queues: Arc::new(Mutex::new(HashMap::new())),
            runs: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Retrain attempts started so far (for tests and metrics).
    pub fn runs(&self) -> u64 {
        self.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues a trigger; the receiver gets the outcome of the run that covers it, or is
    /// dropped when the trainer shuts down first. A run led by this trigger is a child of
    /// `span` (the event's), so drift, retrain, registration and promotion are one trace.
    pub fn submit(
        &self,
        model: &ModelName,
        trigger: RetrainTrigger,
        span: tracing::Span,
    ) -> oneshot::Receiver<RunOutcome> {
        let (done, outcome) = oneshot::channel();
        let mut job = Job {
            trigger,
            done,
            span,
        };
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        // A queue whose task ended (only at shutdown) is replaced, so a send never vanishes.
        for _ in 0..2 {
            let sender = queues
                .entry(model.clone())
                .or_insert_with(|| self.spawn_flight(model.clone()));
            match sender.send(job) {
                Ok(()) => return outcome,
                Err(mpsc::error::SendError(returned)) => {
                    queues.remove(model);
                    job = returned;
                }
            }
        }
        // Dropping the job drops its sender: the caller sees the trainer is stopping.
        outcome
    }

    fn spawn_flight(&self, model: ModelName) -> mpsc::UnboundedSender<Job> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let flight = Flight {
            model,
            healer: self.healer.clone(),
            shutdown: self.shutdown.clone(),
            runs: Arc::clone(&self.runs),
            receiver,
            pending: Vec::new(),
            last_started: None,
            cooldown_until: None,
        };
        tokio::spawn(flight.run());
        sender
    }
}

/// The span of one run over the triggers' event spans: a child of the first (the trigger
/// that names the run, see `Healer::retrain`), so the run continues its trace, and linked
/// to the others, whose traces the coalesced run ends as well.
pub fn run_span<'a>(
    model: &ModelName,
    mut events: impl Iterator<Item = &'a tracing::Span>,
) -> tracing::Span {
    let Some(first) = events.next() else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(parent: first, "retrain_run", %model, coalesced = tracing::field::Empty);
    let mut coalesced = 0_u64;
    for event in events {
        coalesced += 1;
        // An event without trace context has an invalid span context; `add_link` skips it.
        span.add_link(event.context().span().span_context().clone());
    }
    span.record("coalesced", coalesced);
    span
}

struct Flight {
    model: ModelName,
    healer: Healer,
    shutdown: CancellationToken,
    runs: Arc<std::sync::atomic::AtomicU64>,
    receiver: mpsc::UnboundedReceiver<Job>,
    pending: Vec<Job>,
    last_started: Option<OffsetDateTime>,
    cooldown_until: Option<Instant>,
}

impl Flight {
    async fn run(mut self) {
        loop {
            if self.pending.is_empty() {
                let job = tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    job = self.receiver.recv() => job,
                };
                let Some(job) = job else { return };
                self.pending.push(job);
            }
            self.settle_covered();
            if self.pending.is_empty() {
                continue;
            }
            // A request that names its own window runs alone (see `take_batch`): nothing can
            // be coalesced into it, so waiting out the debounce would only delay it.
            let debounce = if self.head_runs_alone() {
                Duration::ZERO
            } else {
                self.healer.config.debounce
            };
            let debounce_end = Instant::now() + debounce;
            let start_at = self
                .cooldown_until
                .map_or(debounce_end, |cooldown| cooldown.max(debounce_end));
            if !self.collect_until(start_at).await {
                return;
            }
            self.settle_covered();
            if self.pending.is_empty() {
                continue;
            }
            let batch = self.take_batch();
            let triggers: Vec<RetrainTrigger> =
                batch.iter().map(|job| job.trigger.clone()).collect();
            let span = run_span(&self.model, batch.iter().map(|job| &job.span));
            let started = OffsetDateTime::now_utc();
            let clock = Instant::now();
            let outcome = tokio::select! {
                () = self.shutdown.cancelled() => return,
                outcome = self.attempt(&triggers).instrument(span) => outcome,
            };
            self.healer
                .metrics
                .run(self.model.as_str(), &outcome, clock.elapsed());
            let names_window = triggers.first().is_some_and(|t| t.window.is_some());
            if !matches!(outcome, RunOutcome::Failed { .. }) && !names_window {
                self.last_started = Some(started);
            }
            self.cooldown_until = Some(Instant::now() + self.healer.config.cooldown);
            for job in batch {
                // The caller may have gone (its event redelivered elsewhere); nothing to do.
                let _ = job.done.send(outcome.clone());
            }
        }
    }

    /// Pulls triggers into `pending` until `deadline`; false on shutdown.
    async fn collect_until(&mut self, deadline: Instant) -> bool {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep_until(deadline) => return true,
                job = self.receiver.recv() => match job {
                    Some(job) => self.pending.push(job),
                    None => return true,
                },
            }
        }
    }

    /// Answers the triggers the last successful run already covered.
    fn settle_covered(&mut self) {
        let Some(last_started) = self.last_started else {
            return;
        };
        let (covered, open): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| job.trigger.window.is_none() && job.trigger.time < last_started);
        self.pending = open;
        for job in covered {
            tracing::info!(model = %self.model, event_id = %job.trigger.event_id, "trigger already covered by the last run");
            let _ = job.done.send(RunOutcome::Covered);
        }
    }

    /// Whether the next run is a request naming its own window (which runs alone).
    fn head_runs_alone(&self) -> bool {
        self.pending
            .first()
            .is_some_and(|job| job.trigger.window.is_some())
    }

    /// The next run's triggers: a request naming its own window runs alone; every other
    /// trigger is coalesced into one run.
    fn take_batch(&mut self) -> Vec<Job> {
        if self.head_runs_alone() {
            return vec![self.pending.remove(0)];
        }
        let (batch, rest): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| job.trigger.window.is_none());
        self.pending = rest;
        batch
    }

    /// Runs the retrain, retrying failures with exponential backoff.
    async fn attempt(&self, triggers: &[RetrainTrigger]) -> RunOutcome {
        let config = &self.healer.config;
        let mut delay = config.backoff;
        let mut attempt = 1;
        loop {
            self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let error = match self.healer.retrain(&self.model, triggers).await {
                Ok(outcome) => return outcome,
                Err(error) => error,
            };
            let primary_id = triggers
                .first()
                .map(|t| t.event_id.clone())
                .unwrap_or_default();
            if !error.is_retryable() {
                let reason = error.to_string();
                tracing::warn!(model = %self.model, %reason, "retrain skipped");
                alerts::raise(
                    self.healer.bus.as_ref(),
                    &self.model,
                    Severity::Warning,
                    format!("{}: retrain skipped: {reason}", self.model),
                    Some(primary_id.clone()),
                    &format!("skipped-{primary_id}"),
                )
                .await;
                return RunOutcome::Skipped { reason };
            }
            if attempt >= config.max_attempts {
                let reason = format!("gave up after {attempt} attempts: {error}");
                tracing::error!(model = %self.model, %reason, "retrain failed");
                alerts::raise(
                    self.healer.bus.as_ref(),
                    &self.model,
                    Severity::Critical,
                    format!("{}: retrain failed repeatedly: {reason}", self.model),
                    Some(primary_id.clone()),
                    &format!("failed-{primary_id}"),
                )
                .await;
                return RunOutcome::Failed { reason };
            }
            tracing::warn!(model = %self.model, attempt, %error, ?delay, "retrain failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{TraceContextExt, TracerProvider};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps every finished span.
    #[derive(Debug, Clone, Default)]
    struct Collected(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collected {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_coalesced_run_continues_the_first_trace_and_links_the_others() {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collected.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("flight-test")));
        let model = ModelName::new("churn").unwrap();
        let (first_trace, linked) = tracing::subscriber::with_default(subscriber, || {
            let events: Vec<tracing::Span> = (0..3)
                .map(|i| tracing::info_span!("event", i))
                .chain([tracing::Span::none()])
                .collect();
            let trace_of = |span: &tracing::Span| span.context().span().span_context().clone();
            let run = run_span(&model, events.iter());
            assert_eq!(
                trace_of(&run).trace_id(),
                trace_of(&events[0]).trace_id(),
                "the run continues the first trigger's trace"
            );
            let linked: Vec<_> = events[1..3].iter().map(trace_of).collect();
            (trace_of(&events[0]).trace_id(), linked)
        });
        provider.force_flush().unwrap();
        let spans = collected.0.lock().unwrap();
        let run = spans
            .iter()
            .find(|span| span.name == "retrain_run")
            .expect("the run span was exported");
        assert_eq!(run.span_context.trace_id(), first_trace);
        let links: Vec<_> = run.links.iter().map(|l| l.span_context.clone()).collect();
        assert_eq!(links, linked, "one link per other traced trigger");
        assert!(
            run.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "coalesced" && kv.value.as_str() == "3"),
            "{:?}",
            run.attributes
        );
    }
}
