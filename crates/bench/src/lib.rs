//! mend-bench: the benchmarks and demos behind `mend bench`, `mend bench-heal`, `mend demo` and
//! `mend demo-offline`. The command line parses their flags (the `Args` structs here) and calls
//! their `run`; the runs that need the real services get `mend up`'s start-up from it as a
//! [`stack::Launch`].
//!
//! - [`bench`]: `mend bench`, an Open Inference Protocol load generator (with its own HTTP/2
//!   client, `--input` tensors, a self-served in-process server and the report).
//! - [`heal`]: `mend bench-heal`, healing quality on generated drifting streams (mend against a
//!   static model and blind retrainers); `heal_latency.rs`, the heal latency runs;
//!   `heal_common.rs`, what the two share (model, settings, first champion, event log).
//! - `stream.rs`, `stream_live.rs`, `baselines.rs`, `online.rs`: `mend bench-heal --stream
//!   FILE.csv`, the same question on any labeled CSV, against blind retrainers, an online
//!   learner and an oracle.
//! - [`demo`]: `mend demo`, the heal loop through the real services, narrated.
//! - [`demo_offline`]: `mend demo-offline`, the heal loop on mend-core alone.
//! - [`stack`]: the shared stack builder: every service in this process on free loopback ports
//!   and a fresh data directory, with clients for them.
//! - `world_client.rs`: a synthetic world's batches through a stack (OIP requests, ingest).

mod baselines;
pub mod bench;
pub mod demo;
pub mod demo_offline;
pub mod heal;
mod heal_common;
mod heal_latency;
mod online;
pub mod stack;
mod stream;
mod stream_live;
mod world_client;
