//! mend-monitor: the part of mend that notices. Per model it tails the data log (rows,
//! predictions, labels), summarises windows of rows in bounded memory, compares each with the
//! champion's reference profile (data and prediction drift, Evidently's rules), joins labels
//! to their rows to track live performance (rolling accuracy and log-loss against the
//! holdout, a Page-Hinkley detector on the error stream, a label-free CBPE estimate), and
//! announces `drift.detected.<model>` and `alert.<model>` once per episode of drift (and once
//! more after each rejected retrain while the drift goes on).
//!
//! - [`run`] (`run.rs`): the entry point on a caller-bound HTTP listener, with [`MonitorDeps`];
//!   [`MendMonitor`], the service as `mend_runtime::host` runs it as `mend-monitor`.
//! - [`config`]: `MEND_MONITOR_*` settings ([`MonitorConfig`]).
//! - [`champion`]: where champions come from ([`ChampionSource`]: [`RegistryChampionSource`],
//!   [`InMemoryChampionSource`]).
//! - `watched.rs`: which models are watched (every model with a champion, discovered from
//!   the registry and from promotions, or an allow-list) and their loops.
//! - `worker.rs`: one model's loop (poll, read forward by sequence, settle, save).
//! - [`tracker`] (`tracker/mod.rs`): the pure per-model state machine, which routes entries
//!   and announces once per episode; its parts (`tracker/`): `scoring.rs` (the champion's
//!   probabilities), `window.rs` (the open window), `streaks.rs` (drift confirmed over windows
//!   in a row), `labels.rs` (the label join wired to scoring, Page-Hinkley and the trend),
//!   `events.rs` (the event builders), `episode_start.rs` (the start announcements name) and
//!   `page.rs` (the HTML page).
//! - [`episode`]: once per episode; [`detector`]: Page-Hinkley; [`performance`]: the label
//!   join, scoring, rolling windows and CBPE.
//! - [`state`]: the saved position per model, so a restart resumes where it stopped.
//! - [`reports`]: JSON and HTML reports on disk with retention; `http.rs`: their routes.
//! - `follow.rs`: promotions and rollbacks wake the model's loop, and a rejected candidate
//!   (`model.rejected`) re-arms its open episodes so the drift is announced again;
//!   [`metrics`]: Prometheus.

pub mod champion;
pub mod config;
pub mod detector;
pub mod episode;
mod follow;
mod http;
pub mod metrics;
pub mod performance;
pub mod reports;
mod run;
pub mod state;
pub mod tracker;
mod watched;
mod worker;

pub use champion::{
    Champion, ChampionError, ChampionSource, InMemoryChampionSource, RegistryChampionSource,
};
pub use config::MonitorConfig;
pub use http::reports_router;
pub use reports::{Alarm, MonitorReport, ReportParts, ReportStore, ReportSummary};
pub use run::{MendMonitor, MonitorDeps, MonitorServiceError, run, run_without_http};
