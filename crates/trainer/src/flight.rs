//! Single flight per model: one retrain of a model at a time, a short debounce so a burst of
//! triggers becomes one run, a cooldown after each run counted in labels (not in time, so a
//! stream heals the same at any pace), triggers arriving meanwhile coalesced into the one
//! next run, and failures retried with exponential backoff up to a limit, then an alert.
//!
//! Each model has one task owning its queue. A trigger is answered with the outcome of the
//! run that covered it, so its event is acked only once that outcome is durable. An alarm
//! raised at or before the data position the last successful run read up to is covered by it
//! already (a request: one made before that run started).
//!
//! The pacing, in data: after a run, an alarm waits until `cooldown_labels` labels have been
//! logged past the data that run read (requests do not wait: a person, a schedule or a
//! follow-up asks for a retrain now). When runs led by data drift alone (no labels saying the
//! champion lost performance) keep being rejected, the wait doubles with each, up to
//! `backoff_max_factor` times, so a world that moves while the model does not suffer is not
//! retrained every window. A performance alarm waits only the plain cooldown.
//!
//! Every trigger ends in one decision on record (`retrain.decided.<model>` and the
//! `trainer_decisions_total` metric): it acted (led a run), merged (into a run another led, or
//! covered by the last), or was dropped (the run had nothing to train on); an alarm that must
//! wait is first told it is deferred, and until how many labels.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mend_bus::events::{Decision, RetrainDecided, Severity};
use mend_bus::{DataKind, DataLogExt, Envelope, ModelName, Window, publish_event};
use mend_client::ClientError;
use mend_proto::registry::v1 as pb;
use opentelemetry::trace::TraceContextExt;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::heal::{Healer, RunOutcome};
use crate::trigger::{RetrainTrigger, data_drift_alone};
use crate::{alerts, lineage};

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
            last: LastRun::default(),
            cooldown_until: None,
            rejected_data_runs: 0,
            labels: LabelCount::default(),
            told_deferred: HashSet::new(),
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
    /// What the last run read, for coverage and the label cooldown.
    last: LastRun,
    /// The wall-clock guard after a run (`MEND_TRAINER_COOLDOWN_MS`; none by default).
    cooldown_until: Option<Instant>,
    /// Runs in a row led by data drift alone (no labels saying the champion lost
    /// performance) whose candidate was rejected: each doubles the label cooldown of the next
    /// such run, so a world that moves while the model does not suffer is not retrained
    /// every window.
    rejected_data_runs: u32,
    /// Labels logged since the last run's mark.
    labels: LabelCount,
    /// Triggers already told they were deferred (each is told once).
    told_deferred: HashSet<String>,
}

/// What the last successful run read.
#[derive(Debug, Default)]
struct LastRun {
    /// When the last run without a named window started: a request made before then is
    /// covered by it.
    started: Option<OffsetDateTime>,
    /// The data-log position that run read up to: an alarm raised at or before it is covered.
    covered_to: Option<u64>,
    /// The trigger that led it.
    leader: Option<String>,
}

/// Labels logged after a mark, counted incrementally (each look reads only what is new),
/// with their positions, so a deferred alarm is judged on the data up to exactly the label
/// that ended its wait.
#[derive(Debug, Default)]
struct LabelCount {
    /// The label position the count starts after (`None`: no run yet, nothing to wait for).
    mark: Option<u64>,
    next: u64,
    /// Positions of the labels logged after the mark, in order.
    seqs: Vec<u64>,
}

/// Labels read per look while counting.
const COUNT_CHUNK: usize = 10_000;
/// How often a deferred trigger looks at the label count (a CPU guard, not a policy: the
/// policy is the count).
const LABEL_POLL: Duration = Duration::from_millis(50);

impl LabelCount {
    fn restart(&mut self, mark: u64) {
        *self = LabelCount {
            mark: Some(mark),
            next: mark + 1,
            seqs: Vec::new(),
        };
    }

    fn counted(&self) -> usize {
        self.seqs.len()
    }

    /// The position of the `n`-th label after the mark, once it is logged.
    fn nth(&self, n: usize) -> Option<u64> {
        n.checked_sub(1).and_then(|i| self.seqs.get(i)).copied()
    }

    /// Counts what was logged since the last look, up to `want`.
    async fn advance(&mut self, log: &dyn mend_bus::DataLog, model: &ModelName, want: usize) {
        while self.mark.is_some() && self.seqs.len() < want {
            let window = Window::sequence(self.next, None).with_limit(COUNT_CHUNK);
            match log.read_labels(model, &window).await {
                Ok(fresh) => {
                    let Some(last) = fresh.last() else { return };
                    self.next = last.seq + 1;
                    self.seqs.extend(fresh.iter().map(|logged| logged.seq));
                }
                Err(error) => {
                    tracing::warn!(%model, %error, "cannot count labels; trying again");
                    return;
                }
            }
        }
    }
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
            self.settle_covered().await;
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
            self.settle_covered().await;
            if self.pending.is_empty() {
                continue;
            }
            if !self.wait_for_labels().await {
                return;
            }
            self.settle_covered().await;
            if self.pending.is_empty() {
                continue;
            }
            let (batch, anchor) = self.take_batch();
            let triggers: Vec<RetrainTrigger> =
                batch.iter().map(|job| job.trigger.clone()).collect();
            let span = run_span(&self.model, batch.iter().map(|job| &job.span));
            let started = OffsetDateTime::now_utc();
            let clock = Instant::now();
            // Where this run reads up to: where its alarms (or the label that ended their
            // wait) stand in the log, else the newest label now (a request).
            let mark = match anchor {
                Some(anchor) => Some(anchor),
                None => self.newest_label().await,
            };
            let outcome = tokio::select! {
                () = self.shutdown.cancelled() => return,
                outcome = self.attempt(&triggers, anchor).instrument(span) => outcome,
            };
            self.healer
                .metrics
                .run(self.model.as_str(), &outcome, clock.elapsed());
            self.after_run(&triggers, &outcome, started, mark);
            self.cooldown_until = Some(Instant::now() + self.healer.config.cooldown);
            self.decide_run(&triggers, &outcome).await;
            for job in batch {
                // The caller may have gone (its event redelivered elsewhere); nothing to do.
                let _ = job.done.send(outcome.clone());
            }
        }
    }

    /// Records what a finished run read (for coverage and the label cooldown) and whether it
    /// extends the streak of rejected runs for data drift alone.
    fn after_run(
        &mut self,
        triggers: &[RetrainTrigger],
        outcome: &RunOutcome,
        started: OffsetDateTime,
        mark: Option<u64>,
    ) {
        if matches!(outcome, RunOutcome::Failed { .. }) {
            return;
        }
        let names_window = triggers.first().is_some_and(|t| t.window.is_some());
        if !names_window {
            self.last.started = Some(started);
            self.last.covered_to = mark.max(self.last.covered_to);
            self.last.leader = triggers.first().map(|t| t.event_id.clone());
        }
        if let Some(mark) = mark {
            let from = self.labels.mark.map_or(mark, |previous| previous.max(mark));
            self.labels.restart(from);
        }
        let data_alone = data_drift_alone(triggers);
        match outcome {
            RunOutcome::Promoted { .. } | RunOutcome::Recalled { .. } => {
                self.rejected_data_runs = 0
            }
            RunOutcome::Rejected { .. } if data_alone => {
                self.rejected_data_runs = self.rejected_data_runs.saturating_add(1);
            }
            _ => {}
        }
    }

    /// The newest label's position, if any (logged on failure: the run reads the data as it
    /// stands anyway).
    async fn newest_label(&self) -> Option<u64> {
        match self
            .healer
            .data_log
            .latest_seq(&self.model, DataKind::Labels)
            .await
        {
            Ok(seq) => seq,
            Err(error) => {
                tracing::warn!(model = %self.model, %error, "cannot read where labels stand");
                None
            }
        }
    }

    /// Labels the pending triggers wait for after the last run's mark: none for requests
    /// (a person, a schedule or a follow-up asks for a retrain now), the cooldown for alarms,
    /// doubled for each rejected run in a row when every pending alarm is data drift alone.
    fn labels_needed(&self) -> (usize, u32) {
        if self.labels.mark.is_none() || self.pending.iter().any(|job| !job.trigger.is_alarm()) {
            return (0, 0);
        }
        let config = &self.healer.config;
        // Looked at every poll while alarms wait: no copies of the triggers.
        let doublings = if data_drift_alone(self.pending.iter().map(|job| &job.trigger)) {
            self.rejected_data_runs
        } else {
            0
        };
        let factor = 1_usize
            .checked_shl(doublings)
            .unwrap_or(usize::MAX)
            .min(config.backoff_max_factor);
        (config.cooldown_labels.saturating_mul(factor), doublings)
    }

    /// Waits until the pending alarms' label cooldown has passed (telling each alarm once
    /// that it is deferred, and until when), collecting new triggers meanwhile; false on
    /// shutdown.
    async fn wait_for_labels(&mut self) -> bool {
        loop {
            // The last promotion still on probation: its verdict (decided by the labels
            // after it) comes before the next retrain the alarms would start.
            let alarms_only = self.pending.iter().all(|job| job.trigger.is_alarm());
            let guarded = alarms_only && self.healer.guards.watching(&self.model);
            let (needed, doublings) = self.labels_needed();
            if needed == 0 && !guarded {
                return true;
            }
            let log = Arc::clone(&self.healer.data_log);
            self.labels.advance(log.as_ref(), &self.model, needed).await;
            let counted = self.labels.counted();
            if counted >= needed && !guarded {
                return true;
            }
            let mark = self.labels.mark.unwrap_or_default();
            let mut reasons = Vec::new();
            if counted < needed {
                reasons.push(if doublings > 0 {
                    format!(
                        "backing off: {doublings} retrain(s) in a row for data drift alone were rejected (the champion did not lose performance), so the next waits for {needed} labels after the data the last one read (seq {mark}; {counted} so far)"
                    )
                } else {
                    format!(
                        "cooldown: the last retrain read the data up to seq {mark}; the next waits for {needed} labels after it ({counted} so far)"
                    )
                });
            }
            if guarded {
                reasons.push(format!(
                    "the rollback guard of the last promotion has not given its verdict ({} labels after it)",
                    self.healer.config.guard.rows
                ));
            }
            let until = if guarded {
                needed.max(self.healer.config.guard.rows)
            } else {
                needed
            };
            self.tell_deferred(&reasons.join("; "), until).await;
            if !self.collect_until(Instant::now() + LABEL_POLL).await {
                return false;
            }
        }
    }

    /// Tells each pending trigger not told yet that it is deferred until `until` labels after
    /// the last run's data, and why.
    async fn tell_deferred(&mut self, reason: &str, until: usize) {
        let fresh: Vec<RetrainTrigger> = self
            .pending
            .iter()
            .filter(|job| !self.told_deferred.contains(&job.trigger.event_id))
            .map(|job| job.trigger.clone())
            .collect();
        for trigger in fresh {
            self.told_deferred.insert(trigger.event_id.clone());
            self.decide(
                &trigger,
                Decision::Deferred,
                reason.to_owned(),
                Outcome {
                    until_labels: Some(until as u64),
                    labels_seq: self.labels.mark,
                    ..Outcome::default()
                },
            )
            .await;
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

    /// Answers the triggers the last successful run already covered: an alarm raised at or
    /// before the position that run read up to, or a request made before it started (that
    /// run read every row the trigger could have been about).
    async fn settle_covered(&mut self) {
        let last = &self.last;
        let (covered, open): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| {
                let trigger = &job.trigger;
                if trigger.window.is_some() {
                    return false;
                }
                match (trigger.data_seq, last.covered_to, last.started) {
                    (Some(seq), Some(covered_to), _) => seq <= covered_to,
                    (None, _, Some(started)) => trigger.time < started,
                    _ => false,
                }
            });
        self.pending = open;
        for job in covered {
            tracing::info!(model = %self.model, event_id = %job.trigger.event_id, "trigger already covered by the last run");
            let reason = format!(
                "covered by the last run{}, which read the data this trigger is about",
                self.last
                    .leader
                    .as_ref()
                    .map(|leader| format!(" (led by {leader})"))
                    .unwrap_or_default()
            );
            let run_event_id = self.last.leader.clone();
            self.decide(
                &job.trigger,
                Decision::Merged,
                reason,
                Outcome {
                    run_event_id,
                    outcome: Some(RunOutcome::Covered.name()),
                    ..Outcome::default()
                },
            )
            .await;
            let _ = job.done.send(RunOutcome::Covered);
        }
    }

    /// The decisions on a run's triggers: the first led it, the others merged into it; a run
    /// skipped for want of rows drops them all with its reason.
    async fn decide_run(&mut self, triggers: &[RetrainTrigger], outcome: &RunOutcome) {
        let Some(leader) = triggers.first() else {
            return;
        };
        for (i, trigger) in triggers.iter().enumerate() {
            self.told_deferred.remove(&trigger.event_id);
            let (decision, reason) = match outcome {
                RunOutcome::Skipped { reason } => (Decision::Dropped, reason.clone()),
                RunOutcome::Failed { reason } => (
                    if i == 0 {
                        Decision::Acted
                    } else {
                        Decision::Merged
                    },
                    reason.clone(),
                ),
                RunOutcome::Rejected { reason, .. } if i == 0 => {
                    (Decision::Acted, format!("retrained: {reason}"))
                }
                _ if i == 0 => (Decision::Acted, format!("retrained: {}", outcome.name())),
                _ => (
                    Decision::Merged,
                    format!("merged into the run led by {}", leader.event_id),
                ),
            };
            self.decide(
                trigger,
                decision,
                reason,
                Outcome {
                    run_event_id: Some(leader.event_id.clone()),
                    outcome: Some(outcome.name()),
                    version: outcome.version(),
                    labels_seq: self.labels.mark,
                    until_labels: None,
                },
            )
            .await;
        }
    }

    /// Publishes one decision on `trigger` (`retrain.decided.<model>`) and counts it.
    async fn decide(
        &self,
        trigger: &RetrainTrigger,
        decision: Decision,
        reason: String,
        outcome: Outcome,
    ) {
        self.healer
            .metrics
            .decision(self.model.as_str(), decision.as_str());
        tracing::info!(
            model = %self.model,
            trigger = %trigger.event_id,
            kind = trigger.kind.as_str(),
            decision = decision.as_str(),
            outcome = outcome.outcome.unwrap_or("-"),
            %reason,
            "trigger decided"
        );
        let decided = RetrainDecided {
            trigger_event_id: trigger.event_id.clone(),
            trigger: trigger.kind.as_str().to_owned(),
            decision,
            reason,
            run_event_id: outcome.run_event_id,
            outcome: outcome.outcome.map(str::to_owned),
            version: outcome.version,
            until_labels: outcome.until_labels,
            labels_seq: outcome.labels_seq,
        };
        self.record_decision(&decided).await;
        let mut envelope = Envelope::new(self.model.clone(), decided);
        // One decision of each kind per trigger: a repeated publish is stored once.
        envelope.id = format!("decided-{}-{}", trigger.event_id, decision.as_str());
        if let Err(error) = publish_event(self.healer.bus.as_ref(), &envelope).await {
            tracing::warn!(model = %self.model, %error, "could not publish a decision");
        }
    }

    /// Puts a decision on the model's audit log in the registry, where `mend models audit`
    /// shows it beside the moves it led to. A model the registry does not know has no log
    /// (its triggers are dropped for that reason, on the bus only).
    async fn record_decision(&self, decided: &RetrainDecided) {
        let mut reason = decided.reason.clone();
        if let Some(until) = decided.until_labels {
            reason.push_str(&format!(
                "; judged again once {until} labels are logged past the last run's data"
            ));
        }
        let request = pb::RecordDecisionRequest {
            model: self.model.as_str().to_owned(),
            trigger_event_id: decided.trigger_event_id.clone(),
            decision: decided.decision.as_str().to_owned(),
            reason,
            outcome: decided.outcome.clone().unwrap_or_default(),
            run_event_id: decided.run_event_id.clone().unwrap_or_default(),
            version: decided.version,
            actor: lineage::ACTOR.to_owned(),
        };
        match self.healer.registry.record_decision(request).await {
            Ok(_) => {}
            Err(ClientError::NotFound(_)) => {
                tracing::debug!(model = %self.model, "no audit log for a model the registry does not know");
            }
            Err(error) => {
                tracing::warn!(model = %self.model, %error, "could not record a decision in the registry");
            }
        }
    }

    /// Whether the next run is a request naming its own window (which runs alone).
    fn head_runs_alone(&self) -> bool {
        self.pending
            .first()
            .is_some_and(|job| job.trigger.window.is_some())
    }

    /// The next run's triggers (its leader first) and where its window ends.
    ///
    /// A request naming its own window runs alone (ahead of alarms still waiting for labels).
    /// With a request that names none (a person's, a schedule's) every trigger is coalesced
    /// into one run on the data as it stands. Alarms alone are taken in data order: the run
    /// is led by the earliest, its window ends where that alarm was raised or, if it waited
    /// out the cooldown, at the label that ended the wait (whichever is later), and it takes
    /// every alarm raised up to there. So the same stream gives the same runs however fast
    /// it comes: alarms raised later wait their turn, whether they arrived together or not.
    fn take_batch(&mut self) -> (Vec<Job>, Option<u64>) {
        if let Some(named) = self
            .pending
            .iter()
            .position(|job| job.trigger.window.is_some())
            && (named == 0 || self.labels_needed().0 > 0)
        {
            let job = self.pending.remove(named);
            let anchor = job.trigger.window.as_ref().and_then(|window| window.to_seq);
            return (vec![job], anchor);
        }
        let (needed, _) = self.labels_needed();
        let alarms_alone = self
            .pending
            .iter()
            .filter(|job| job.trigger.window.is_none())
            .all(|job| job.trigger.is_alarm());
        // The earliest alarm leads. A performance alarm is raised on labels: its run reads up
        // to there (or to the label that ended its wait, if later). A data alarm is raised on
        // rows whose labels come later: its run reads up to the label that ended its wait, or
        // the labels as they stand when it did not wait.
        let leader = self
            .pending
            .iter()
            .filter(|job| job.trigger.window.is_none())
            .filter_map(|job| {
                job.trigger
                    .data_seq
                    .map(|seq| (seq, job.trigger.lost_performance()))
            })
            .min_by_key(|(seq, _)| *seq);
        let reached = (needed > 0).then(|| self.labels.nth(needed)).flatten();
        let anchor = match leader {
            Some((first, true)) if alarms_alone => {
                Some(reached.map_or(first, |reached| reached.max(first)))
            }
            Some(_) if alarms_alone => reached,
            _ => None,
        };
        let (mut batch, rest): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| {
                job.trigger.window.is_none()
                    && match (anchor, job.trigger.data_seq) {
                        (Some(anchor), Some(seq)) => seq <= anchor,
                        _ => true,
                    }
            });
        self.pending = rest;
        // The earliest alarm leads (it names the run); requests keep their order.
        if anchor.is_some() {
            batch.sort_by_key(|job| job.trigger.data_seq.unwrap_or(u64::MAX));
        }
        (batch, anchor)
    }

    /// Runs the retrain, retrying failures with exponential backoff.
    async fn attempt(&self, triggers: &[RetrainTrigger], anchor: Option<u64>) -> RunOutcome {
        let config = &self.healer.config;
        let mut delay = config.backoff;
        let mut attempt = 1;
        loop {
            self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let error = match self
                .healer
                .retrain_until(&self.model, triggers, anchor)
                .await
            {
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

/// What a decision says about the run it belongs to.
#[derive(Debug, Default)]
struct Outcome {
    run_event_id: Option<String>,
    outcome: Option<&'static str>,
    version: Option<u64>,
    until_labels: Option<u64>,
    labels_seq: Option<u64>,
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
