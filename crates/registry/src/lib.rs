//! The model registry of mend: the source of truth for which model version serves.
//!
//! The storage layer, the gRPC service on top of it, and the `mend-registry` binary:
//!
//! - [`model`]: the registry's domain types ([`VersionMeta`], [`NewVersion`], [`AuditRecord`],
//!   [`Trigger`], [`DataWindow`], [`SetAlias`], [`ModelSummary`], [`Page`]), independent of
//!   the wire format.
//! - [`names`]: which model and alias names are accepted (they become NATS subject tokens and
//!   storage keys).
//! - [`store`]: the [`RegistryStore`] trait every backend implements, with its guarantees.
//! - [`sqlite`]: [`SqliteStore`], the embedded default (one SQLite file in the data directory).
//! - [`jetstream`]: [`JetStreamStore`], for the distributed deployment (KV + Object Store).
//! - [`convert`]: conversions between the domain types and `mend.registry.v1` protobufs.
//! - [`error`]: [`StoreError`], what can go wrong.
//! - [`service`]: [`RegistryService`], the `mend.registry.v1.Registry` gRPC handlers over
//!   any store: chunked uploads committed only when complete, bearer-token writes, the
//!   error → status mapping, alias watches, the `model.promoted` / `model.rolled_back`
//!   events (the registry is their one publisher), and forced retrains (`RequestRetrain`,
//!   published as `retrain.requested.<model>`).
//! - [`config`]: [`RegistryConfig`] (`MEND_REGISTRY_TOKEN`, artifact size limit, TLS).
//! - [`run`] (`run.rs`): the server with health and reflection on a caller-bound listener, with
//!   [`RegistryDeps`]; [`RegistryError`], why it stopped; [`MendRegistry`], the registry as
//!   `mend_runtime::host` runs it as `mend-registry`.
//! - `changes` (private): the rules of a registration and an alias move, shared by both
//!   stores so their semantics cannot drift apart; `digest` and `time` are small helpers.
//!
//! Both stores keep the same invariants: version numbers of a model are 1, 2, 3, ... with no
//! gaps or duplicates, whatever the concurrency; a registration is committed atomically after
//! its artifact is stored, so an interrupted one leaves no version behind; alias moves are
//! compare-and-set; every change appends exactly one audit record; and an artifact is
//! verified against its sha256 on every read.

mod changes;
pub mod config;
pub mod convert;
mod digest;
pub mod error;
pub mod jetstream;
pub mod model;
pub mod names;
mod run;
pub mod service;
pub mod sqlite;
pub mod store;
mod time;

pub use config::RegistryConfig;
pub use error::StoreError;
pub use jetstream::{JetStreamConfig, JetStreamStore};
pub use model::{
    AliasExpectation, AuditAction, AuditRecord, DataWindow, DecisionNote, ModelSummary,
    NewDecision, NewVersion, Page, SetAlias, Trigger, TriggerKind, VersionMeta,
};
pub use run::{MendRegistry, RegistryDeps, RegistryError, run};
pub use service::{RegistryService, WriteAuth};
pub use sqlite::SqliteStore;
pub use store::{AliasWatch, RegistryStore};
