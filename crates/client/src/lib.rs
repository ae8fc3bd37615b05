//! mend-client: typed clients for mend's gRPC APIs, so every service and the CLI talk to the
//! registry the same way.
//!
//! - [`RegistryClient`]: fetch a version or alias with its artifact (joined from chunks and
//!   checked against the announced size and sha256 before anyone parses it), register a version
//!   (streamed in 1 MiB chunks), move an alias with compare-and-set, ask for a forced retrain,
//!   read audit and listings.
//!   Writes carry the bearer token when one is set; every call carries the caller's trace context.
//! - [`ingest`]: data-log records as ingest batches; [`oip`]: inference requests for synthetic rows.
//! - [`ClientError`]: what went wrong, by kind, so callers can tell "not found" from "conflict"
//!   from "the registry is down".

mod error;
pub mod ingest;
pub mod oip;
mod registry;

pub use error::ClientError;
pub use registry::{CHAMPION, Fetched, RegistryClient};
