//! mend-bus: how mend's services talk and where its data lives.
//!
//! - [`subjects`]: every subject string and stream name, and model-name validation.
//! - [`events`]: the typed public events ([`Event`], [`Envelope`]) and their JSON codec
//!   (`"v": 1`, unknown fields tolerated, missing fields named).
//! - [`Bus`] (in `bus.rs`): publish with dedup ids and durable pull consumers with explicit
//!   ack (per-process ones expire when idle and are deleted on a clean exit);
//!   [`message`] holds the message, delivery and header types.
//! - [`JetStreamBus`] (`jetstream/`) for distributed deployments and [`InProcessBus`]
//!   (`inprocess/`) for the embedded default, with the same delivery semantics.
//! - [`typed`]: publish an event, consume decoded events, dead-letter poison messages, and
//!   [`run_event_loop`], the consumer loop most services need.
//! - [`follow`]: [`follow_forever`], resubscribing until shutdown when the bus is down, and
//!   [`consumer_name`], the durable name of one replica's consumer.
//! - [`trace`]: W3C `traceparent` in message headers.
//! - [`datalog`]: the data log of rows, labels and predictions ([`DataLog`]) on SQLite
//!   ([`SqliteDataLog`]) or JetStream ([`JetStreamDataLog`]).

mod bus;
pub mod datalog;
mod error;
pub mod events;
pub mod follow;
mod inprocess;
mod jetstream;
pub mod message;
mod open;
pub mod subjects;
pub mod trace;
pub mod typed;

pub use bus::{Bus, ConsumerSpec, MAX_DURABLE_LEN, Subscription};
pub use datalog::{
    DEDUP_WINDOW, DataKind, DataLog, DataLogExt, JetStreamDataLog, LogRecord, Logged, Range,
    RawEntry, SqliteDataLog, Stored, Window,
};
pub use error::{BusError, DataLogError, DecodeError};
pub use events::{Envelope, Event};
pub use follow::{RESUBSCRIBE_AFTER, consumer_name, follow_forever, max_instance_len};
pub use inprocess::{InProcessBus, InProcessConfig};
pub use jetstream::{JetStreamBus, JetStreamConfig, StreamLimits};
pub use message::{Delivery, Headers, OutgoingMessage, PublishReceipt};
pub use open::{OpenError, open_configured};
pub use subjects::{ModelName, SubjectKind};
pub use typed::{
    EventDelivery, EventHandler, EventRecorder, EventSubscription, HandlerError, publish_event,
    run_event_loop, run_event_loop_concurrent,
};
