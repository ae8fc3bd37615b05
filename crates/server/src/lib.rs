//! mend-server: the inference server. It speaks the Open Inference Protocol (KServe V2) over
//! gRPC and REST, serves each model's champion, swaps to a new champion without failing a
//! request, and logs a sample of what it predicts.
//!
//! - [`run`] (`run.rs`): the entry point, on caller-bound listeners, with [`ServerDeps`];
//!   [`MendServer`], the server as `mend_runtime::host` runs it as `mend-server`
//!   ([`run_with_routes`] adds routes to its HTTP port, as `mend up` does).
//! - [`config`]: `MEND_SERVER_*` settings ([`ServerConfig`]).
//! - [`source`]: where models come from: [`ModelSource`], over the registry's gRPC API
//!   ([`RegistryModelSource`]) or in memory ([`InMemoryModelSource`]).
//! - [`model`]: [`LoadedModel`] (a verified, planned artifact) and [`ModelStore`] (per model
//!   an atomically swapped champion and a small cache of other versions).
//! - [`infer`]: decoding tensors of either input layout, the allocation-free predict loop,
//!   and the outputs.
//! - `error.rs`: [`InferError`], mapped to gRPC and HTTP codes in one place (re-exported by
//!   [`infer`]; [`model`] fails with it too).
//! - [`service`]: the path both bindings share ([`InferenceService`]): metrics, the
//!   prediction log, readiness and metadata.
//! - `grpc.rs` / [`rest`]: the two OIP bindings; `oversize.rs` makes tonic's size errors
//!   INVALID_ARGUMENT.
//! - [`swap`]: following `model.promoted.*` / `model.rolled_back.*` and the reconcile loop.
//! - [`predlog`]: sampled predictions to the data log through a bounded, dropping queue.
//! - [`metrics`]: Prometheus metrics by model and version.

pub mod config;
mod error;
mod grpc;
pub mod infer;
pub mod metrics;
pub mod model;
mod oversize;
pub mod predlog;
pub mod rest;
mod run;
pub mod service;
pub mod source;
pub mod swap;

pub use config::ServerConfig;
pub use grpc::GrpcInference;
pub use infer::InferError;
pub use model::{LoadedModel, ModelStore};
pub use run::{Listeners, MendServer, ServerDeps, ServerError, run, run_with_routes};
pub use service::InferenceService;
pub use source::{
    FetchedModel, InMemoryModelSource, ModelSource, RegistryModelSource, SourceError,
};
