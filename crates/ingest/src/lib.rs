//! mend-ingest: the door rows and labels come in by. Every row is validated against the
//! schema of its model's champion; valid rows go to the data log (`data.rows.<model>`,
//! `data.labels.<model>`), each rejected one comes back with its field and reason, and nothing
//! valid is dropped because a neighbour in its batch was bad.
//!
//! - [`run`] (`run.rs`): the entry point on a caller-bound listener, with [`IngestDeps`];
//!   [`MendIngest`], the service as `mend_runtime::host` runs it as `mend-ingest`.
//! - [`config`]: `MEND_INGEST_*` settings ([`IngestConfig`]).
//! - [`schema_source`]: where schemas come from ([`SchemaSource`]: [`RegistrySchemaSource`],
//!   [`InMemorySchemaSource`]) and the [`SchemaCache`] in front of them.
//! - [`incoming`]: rows and labels as sent; [`validate`]: the rules, pure; [`reject`]: the
//!   reasons ([`RejectReason`], [`Rejection`]).
//! - [`ingestor`]: the path both doors share ([`Ingestor`]: prepare, then commit).
//! - `grpc.rs` ([`GrpcIngest`]): `mend.ingest.v1.Ingest`, client-streamed, with batch limits
//!   and bounded in-flight bytes.
//! - [`wire`] and [`nats`]: JSON batches on `ingest.rows.<model>` / `ingest.labels.<model>`,
//!   rejected rows dead-lettered with reasons.
//! - [`follow`]: re-checking a schema when `model.promoted.*` / `model.rolled_back.*` arrive.
//! - [`metrics`]: accepted and rejected by reason, batches, latency, in-flight bytes.

pub mod config;
pub mod follow;
mod grpc;
pub mod incoming;
pub mod ingestor;
pub mod metrics;
pub mod nats;
pub mod reject;
mod run;
pub mod schema_source;
pub mod validate;
pub mod wire;

pub use config::{IngestConfig, SizeLimits};
pub use grpc::GrpcIngest;
pub use ingestor::{BatchOutcome, IngestError, Ingestor};
pub use reject::{RejectReason, Rejection};
pub use run::{IngestDeps, IngestServiceError, MendIngest, run};
pub use schema_source::{
    ChampionSchema, InMemorySchemaSource, RegistrySchemaSource, SchemaCache, SchemaError,
    SchemaSource,
};
