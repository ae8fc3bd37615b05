//! mend-trainer: the healing half of the loop. It hears `drift.detected.<model>` and
//! `retrain.requested.<model>`, retrains on the freshest labeled rows (those since the drift
//! began, when a drift event says where that was), proves the candidate
//! against the champion on the same held-out rows, registers it with its lineage, promotes it
//! with compare-and-set, watches it live, and rolls it back if it disappoints.
//!
//! - [`run`] / [`Trainer`] (`run.rs`): the service on caller-built [`TrainerDeps`];
//!   [`MendTrainer`], the service as `mend_runtime::host` runs it as `mend-trainer`.
//! - [`config`]: `MEND_TRAINER_*` settings ([`TrainerConfig`]).
//! - [`intake`]: the durable trigger consumer; a delivery is settled only when its run's
//!   outcome is durable.
//! - [`flight`]: one retrain per model at a time: debounce, cooldown, coalescing (the run
//!   continues the first trigger's trace and links the others'), retries with exponential
//!   backoff, then an alert.
//! - [`heal`]: one retrain start to finish ([`Healer`]), idempotent per event (invariant 6).
//! - `outcome.rs`: how a run ended ([`RunOutcome`], re-exported by [`heal`]); the flight, the
//!   intake and the metrics read it.
//! - [`window`]: labels joined with their rows from the data log (the newest N, those since a
//!   drift began, or a named range).
//! - [`evaluate`]: training and judging both models on the same holdout (blocking pool).
//! - [`gate`]: the promotion rule (invariant 2).
//! - [`recall`]: past champions judged beside every candidate; the best may be recalled when
//!   a world comes back.
//! - [`lineage`]: what a registration records: trigger, data window and rows hash, parent,
//!   settings, both models' metrics.
//! - [`registry`]: the registry calls the trainer makes, over `mend-client`.
//! - [`guard`]: the rollback guard after a promotion; its state lives in the registry's
//!   audit log, so a restarted trainer resumes a guard that had not concluded.
//! - [`follow_up`]: after a promotion for performance drift, a retrain on the newest labels
//!   once enough have come, to keep up with drift that goes on (gradual drift); the chain
//!   ends when a follow-up no longer wins clearly.
//! - [`alerts`] and [`webhook`]: `alert.<model>` events, forwarded to signed webhooks.
//! - [`metrics`]: retrains by outcome, their duration, rollbacks ([`TrainerMetrics`]).
//! - [`schedule`]: optional periodic retrains.
//! - [`trigger`]: what asks for a retrain.

pub mod alerts;
pub mod config;
mod error;
pub mod evaluate;
pub mod flight;
pub mod follow_up;
pub mod gate;
pub mod guard;
pub mod heal;
pub mod intake;
pub mod lineage;
pub mod metrics;
mod outcome;
mod per_model;
pub mod recall;
pub mod registry;
mod run;
pub mod schedule;
pub mod trigger;
pub mod webhook;
pub mod window;

pub use config::TrainerConfig;
pub use error::TrainerError;
pub use gate::{GateDecision, GatePolicy};
pub use guard::GuardVerdict;
pub use heal::{Healer, RunOutcome};
pub use metrics::TrainerMetrics;
pub use run::{MendTrainer, Trainer, TrainerDeps, run};
