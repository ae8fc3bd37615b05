//! Test harness for mend: a real `nats-server -js` on a free port, the real registry in
//! process, real model artifacts, and what tests wait with.
//!
//! - [`NatsServer`] (in `nats_server.rs`) starts the server with its own JetStream store
//!   directory, waits until it answers with a JetStream-enabled `INFO`, can stop and restart
//!   it on the same port and store (so clients can reconnect to the same URL and find their
//!   streams again), and kills it and removes the directory on drop.
//!   [`NatsServer::start_with`] adds token or user/password authentication and TLS
//!   ([`NatsServerOptions`]), for tests of secured connections.
//! - [`artifacts`]: real, small model artifacts (and ones of an exact size) for tests of
//!   the services that store and move them.
//! - [`events`]: the champion moves the registry announced, read back from JetStream.
//! - [`eventually`] (in `poll.rs`): polls a check until it holds, within a
//!   [`Patience`], instead of sleeping a fixed time.
//! - `registry` (with the `registry` feature): the real registry served in process on a
//!   loopback port (`TestRegistry`), the registry writes tests make through
//!   `mend_client::RegistryClient`, and a seeded champion trained on synthetic rows.
//! - [`https`]: a one-request HTTP/1.1 client over TLS (with or without a client
//!   certificate) or plain text, for tests of the services' HTTP ports.
//! - [`nats_jwt`]: an operator, accounts and `.creds` files for a server in operator mode.
//! - [`raw_grpc`]: a codec that sends any bytes as a gRPC message, and garbage to send.
//! - [`TestkitError`] (in `error.rs`) says what went wrong, with the server's log tail.
//!
//! The NATS API is synchronous (`std::process`) so it works from any test, async or not; it
//! never touches the machine's shared server on 127.0.0.1:4222.

pub mod artifacts;
mod error;
pub mod events;
pub mod https;
pub mod nats_jwt;
mod nats_server;
mod poll;
pub mod raw_grpc;
#[cfg(feature = "registry")]
pub mod registry;

pub use error::TestkitError;
pub use nats_server::{
    NATS_SERVER_BIN_ENV, NatsServer, NatsServerOptions, ServerAuth, ServerTls, free_addr,
};
pub use poll::{Patience, Settled, eventually};
