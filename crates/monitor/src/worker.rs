//! One model's loop: find its champion, then poll the data log (`latest_seq`, then read
//! forward by sequence in bounded chunks), hand the entries to the [`Tracker`] on the
//! blocking pool, write the reports, publish the announcements and save the position. A
//! promotion (or the periodic check) that finds a new champion rebuilds the tracker against
//! it: new reference, fresh episodes, a fresh window. Any failure rebuilds the tracker from
//! the saved state and tries again on the next tick, so nothing is skipped.
//!
//! An announcement continues the trace of the newest entry of the chunk that tipped it (the
//! data log keeps each append's `traceparent`), so a heal is one trace from ingest on.

use std::sync::Arc;

use mend_bus::events::{Alert, Severity};
use mend_bus::message::{Headers, header};
use mend_bus::{Bus, DataKind, DataLog, DataLogExt, Envelope, ModelName, Window, publish_event};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::champion::{Champion, ChampionSource};
use crate::config::MonitorConfig;
use crate::follow::Signals;
use crate::metrics::MonitorMetrics;
use crate::reports::ReportStore;
use crate::state::{ModelState, StateStore};
use crate::tracker::{Entry, Outputs, Tracker, TrackerSettings};

/// Everything one model's loop uses.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub model: ModelName,
    /// What every model's loop shares.
    pub parts: WorkerParts,
    /// Promotions, rollbacks and rejections of this model, heard on the bus.
    pub signals: Arc<Signals>,
}

/// What every model's loop shares: a [`Worker`] without its model.
#[derive(Debug, Clone)]
pub(crate) struct WorkerParts {
    pub config: MonitorConfig,
    pub champions: Arc<dyn ChampionSource>,
    pub data_log: Arc<dyn DataLog>,
    pub bus: Option<Arc<dyn Bus>>,
    pub states: StateStore,
    pub reports: ReportStore,
    pub metrics: MonitorMetrics,
}

impl WorkerParts {
    /// The loop of `model`, woken by `signals`.
    pub fn worker(&self, model: ModelName, signals: Arc<Signals>) -> Worker {
        Worker {
            model,
            parts: self.clone(),
            signals,
        }
    }
}

/// Why one tick failed (logged; the next tick retries from the saved state).
#[derive(Debug, thiserror::Error)]
enum TickError {
    #[error("data log: {0}")]
    DataLog(#[from] mend_bus::DataLogError),
    #[error("bus: {0}")]
    Bus(#[from] mend_bus::BusError),
    #[error("reports or state: {0}")]
    Io(#[from] std::io::Error),
    #[error("the processing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Worker {
    fn settings(&self) -> TrackerSettings {
        TrackerSettings {
            window_rows: self.parts.config.window_rows,
            window_ms: self
                .parts
                .config
                .window_duration
                .map(|d| d.as_millis() as i64),
            label_window: self.parts.config.label_window,
            accuracy_tolerance: self.parts.config.accuracy_tolerance,
            min_drifted_features: self.parts.config.min_drifted_features,
            confirm_windows: self.parts.config.confirm_windows,
            join_rows: self.parts.config.join_rows,
            policy: self.parts.config.policy.clone(),
            detector: self.parts.config.page_hinkley,
            trend: self.parts.config.trend,
            summary: Default::default(),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tracker: Option<Tracker> = None;
        let mut champion_checked: Option<Instant> = None;
        let mut check_champion = true;
        loop {
            let due = champion_checked
                .is_none_or(|at| at.elapsed() >= self.parts.config.champion_refresh);
            if check_champion || due {
                champion_checked = Some(Instant::now());
                tracker = self.follow_champion(tracker).await;
            }
            check_champion = false;
            self.apply_rejections(tracker.as_mut()).await;
            if let Some(current) = tracker.take() {
                match self.tick(current).await {
                    Ok(current) => tracker = Some(current),
                    Err(error) => {
                        // The tracker is dropped: the next round rebuilds it from the saved
                        // state and reads again from there.
                        tracing::warn!(model = %self.model, %error, "monitor tick failed; resuming from the saved position");
                        champion_checked = None;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.parts.config.poll_interval) => {}
                () = self.signals.wake.notified() => {
                    check_champion = self.signals.take_champion_moved();
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Re-arms the open episodes for each rejection heard, saves that at once, and only then
    /// tells each rejection it is durable (its delivery is acknowledged then, so a restart in
    /// between hears it again). Without a tracker (no champion known yet, or the registry out
    /// of reach) a rejection that names a champion waits for one; one that names none has no
    /// episode to re-arm.
    async fn apply_rejections(&self, tracker: Option<&mut Tracker>) {
        let rejections = self.signals.take_rejections();
        if rejections.is_empty() {
            return;
        }
        let Some(tracker) = tracker else {
            for rejection in rejections {
                // A dropped sender hands the delivery back to the bus.
                if rejection.champion_version.is_none() {
                    let _ = rejection.applied.send(true);
                }
            }
            return;
        };
        let mut rearmed = Vec::new();
        for rejection in &rejections {
            rearmed.extend(tracker.rearm(rejection.champion_version));
        }
        let durable = if rearmed.is_empty() {
            true
        } else {
            tracing::info!(model = %self.model, kinds = ?rearmed.iter().map(|kind| kind_name(*kind)).collect::<Vec<_>>(), "retrain rejected: the next drifted verdict announces again");
            match self.save(&tracker.state).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(model = %self.model, %error, "cannot save the monitor state");
                    false
                }
            }
        };
        for rejection in rejections {
            let _ = rejection.applied.send(durable);
        }
    }

    /// Asks for the champion; keeps the tracker when it is unchanged, else builds one for the
    /// new champion (from the saved state, whose episodes end if they belonged to another).
    async fn follow_champion(&self, tracker: Option<Tracker>) -> Option<Tracker> {
        let champion = match self.parts.champions.champion(&self.model).await {
            Ok(Some(champion)) => champion,
            Ok(None) => {
                tracing::debug!(model = %self.model, "no champion yet; waiting");
                return tracker;
            }
            Err(error) => {
                tracing::warn!(model = %self.model, %error, "cannot fetch the champion; keeping the current one");
                return tracker;
            }
        };
        if let Some(tracker) = tracker
            && tracker.champion_version() == champion.version
        {
            return Some(tracker);
        }
        Some(self.build(champion).await)
    }

    async fn build(&self, champion: Champion) -> Tracker {
        let mut state = self.parts.states.load(&self.model).await;
        let switched = state
            .champion_version
            .is_some_and(|version| version != champion.version);
        if switched {
            // A new champion: its reference applies from here on, to fresh windows.
            let latest = self.latest_seq().await.unwrap_or(None);
            if let Some(latest) = latest {
                state.resume_seq = state.resume_seq.max(latest + 1);
            }
            tracing::info!(model = %self.model, version = champion.version, resume_seq = state.resume_seq, "new champion: switching the reference and starting a fresh episode");
        }
        let tracker = Tracker::new(self.model.clone(), self.settings(), champion, state);
        if let Err(error) = self.save(&tracker.state).await {
            tracing::warn!(model = %self.model, %error, "cannot save the monitor state");
        }
        tracker
    }

    /// Saves the model's state, counting a failure.
    async fn save(&self, state: &ModelState) -> std::io::Result<()> {
        let saved = self.parts.states.save(&self.model, state).await;
        if saved.is_err() {
            self.parts.metrics.state_save_failed(self.model.as_str());
        }
        saved
    }

    async fn latest_seq(&self) -> Result<Option<u64>, mend_bus::DataLogError> {
        let mut latest = None;
        for kind in DataKind::ALL {
            if let Some(seq) = self.parts.data_log.latest_seq(&self.model, kind).await? {
                latest = Some(latest.map_or(seq, |l: u64| l.max(seq)));
            }
        }
        Ok(latest)
    }

    /// Reads what is new (in bounded chunks) and processes it. On error the tracker is
    /// dropped.
    async fn tick(&self, mut tracker: Tracker) -> Result<Tracker, TickError> {
        loop {
            let latest = match self.latest_seq().await {
                Ok(Some(latest)) => latest,
                Ok(None) => return Ok(tracker),
                Err(error) => return Err(error.into()),
            };
            let from = tracker.next_seq();
            if latest < from {
                return Ok(tracker);
            }
            let to = latest.min(from.saturating_add(self.parts.config.read_chunk - 1));
            let (entries, trace) = self.read(from, to).await?;
            let (returned, outputs) = tokio::task::spawn_blocking(move || {
                let outputs = tracker.process(entries, to);
                (tracker, outputs)
            })
            .await?;
            tracker = returned;
            self.settle(&tracker, outputs, trace.as_ref()).await?;
            if to == latest {
                return Ok(tracker);
            }
        }
    }

    /// The entries of `from..=to`, and the trace context of the newest one that has one.
    async fn read(&self, from: u64, to: u64) -> Result<(Vec<Entry>, Option<Headers>), TickError> {
        let window = Window::sequence(from, Some(to));
        let mut entries: Vec<Entry> = Vec::new();
        let mut newest_trace = NewestTrace::default();
        for logged in self.parts.data_log.read_rows(&self.model, &window).await? {
            newest_trace.see(logged.seq, logged.traceparent);
            entries.push(Entry::Row {
                seq: logged.seq,
                ms: logged.appended_ms,
                row: logged.record,
            });
        }
        for logged in self
            .parts
            .data_log
            .read_predictions(&self.model, &window)
            .await?
        {
            newest_trace.see(logged.seq, logged.traceparent);
            entries.push(Entry::Prediction {
                seq: logged.seq,
                ms: logged.appended_ms,
                prediction: logged.record,
            });
        }
        for logged in self
            .parts
            .data_log
            .read_labels(&self.model, &window)
            .await?
        {
            newest_trace.see(logged.seq, logged.traceparent);
            entries.push(Entry::Label {
                seq: logged.seq,
                label: logged.record,
            });
        }
        entries.sort_by_key(Entry::seq);
        Ok((entries, newest_trace.headers()))
    }

    /// Writes reports, publishes announcements (each with a fixed id, so a retry after a
    /// crash is stored once), then saves the position: at least once, never skipped.
    ///
    /// An announcement continues `trace`, the trace of the newest data that tipped it, so
    /// the heal it starts is one trace with the ingest that brought the data in.
    async fn settle(
        &self,
        tracker: &Tracker,
        outputs: Outputs,
        trace: Option<&Headers>,
    ) -> Result<(), TickError> {
        let model = self.model.as_str();
        for (report, page) in &outputs.reports {
            self.parts.reports.write(report, page).await?;
            self.parts.metrics.window(model, report);
            tracing::info!(
                model,
                report_id = %report.id,
                data_alarm = report.alarm.data,
                prediction_alarm = report.alarm.prediction,
                dataset_drift = report.dataset_drift,
                feature_drift = ?report.feature_drift,
                prediction_drift = report.prediction_drift,
                drift_share = report.drift.drift_share,
                "window compared"
            );
        }
        if let Some(accuracy) = outputs.accuracy {
            self.parts.metrics.accuracy(model, accuracy);
        }
        for announcement in outputs.announcements {
            let kind = kind_name(announcement.event.kind);
            tracing::info!(model, kind, event_id = %announcement.id, features = ?announcement.event.features.iter().map(|f| f.feature.as_str()).collect::<Vec<_>>(), "drift detected");
            if let Some(bus) = &self.parts.bus {
                let span =
                    tracing::info_span!("announce_drift", model, kind, event_id = %announcement.id);
                if let Some(trace) = trace {
                    mend_bus::trace::set_parent_from(&span, trace);
                }
                let text = alert_text(model, &announcement.event);
                let mut envelope = Envelope::new(self.model.clone(), announcement.event);
                envelope.id = announcement.id.clone();
                let mut alert = Envelope::new(
                    self.model.clone(),
                    Alert {
                        severity: Severity::Warning,
                        text,
                        source: Some("monitor".to_owned()),
                        related_event_id: Some(announcement.id.clone()),
                    },
                );
                alert.id = format!("{}-alert", announcement.id);
                async {
                    publish_event(bus.as_ref(), &envelope).await?;
                    publish_event(bus.as_ref(), &alert).await
                }
                .instrument(span)
                .await?;
            }
            self.parts.metrics.event(model, kind);
        }
        self.save(&tracker.state).await?;
        Ok(())
    }
}

/// The `traceparent` of the entry with the highest sequence among those that carry one.
#[derive(Debug, Default)]
struct NewestTrace(Option<(u64, String)>);

impl NewestTrace {
    fn see(&mut self, seq: u64, traceparent: Option<String>) {
        let Some(traceparent) = traceparent else {
            return;
        };
        if self.0.as_ref().is_none_or(|(newest, _)| seq > *newest) {
            self.0 = Some((seq, traceparent));
        }
    }

    fn headers(self) -> Option<Headers> {
        self.0
            .map(|(_, traceparent)| Headers::from_iter([(header::TRACEPARENT, traceparent)]))
    }
}

fn kind_name(kind: mend_bus::events::DriftKind) -> &'static str {
    match kind {
        mend_bus::events::DriftKind::Data => "data",
        mend_bus::events::DriftKind::Prediction => "prediction",
        mend_bus::events::DriftKind::Performance => "performance",
    }
}

fn alert_text(model: &str, event: &mend_bus::events::DriftDetected) -> String {
    let names: Vec<&str> = event.features.iter().map(|f| f.feature.as_str()).collect();
    let report = event
        .report_id
        .as_deref()
        .map(|id| format!("; report {id}"))
        .unwrap_or_default();
    format!(
        "{} drift on model {model}: {}{report}",
        kind_name(event.kind),
        names.join(", ")
    )
}
