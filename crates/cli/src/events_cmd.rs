//! `mend events publish SUBJECT JSON` and `mend events tail [SUBJECT...]`: the bus without
//! the `nats` CLI. With `--nats URL` (or `MEND_NATS_URL`) they talk to NATS JetStream
//! directly; otherwise to a running `mend up` over its HTTP port (`MEND_HTTP_ADDR`), whose
//! `POST /events/{subject}` and `GET /events` ([`routes`]) reach its in-process bus.
//!
//! A publish is checked like any consumer would check it (a known event subject, a JSON
//! object with `"v": 1` and the event's fields) before it is sent, and over HTTP it needs the
//! registry's bearer token when `MEND_REGISTRY_TOKEN` is set: a raw publish must not be a way
//! around the token that guards `mend retrain`. A tail is read-only: it acknowledges only its
//! own, throwaway consumer's deliveries and never dead-letters anything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::{Args, Subcommand};
use futures::{Stream, StreamExt};
use mend_bus::events::Envelope;
use mend_bus::{Bus, ConsumerSpec, JetStreamBus, publish_event, subjects};
use mend_registry::WriteAuth;
use mend_runtime::config::{Env, MendConfig};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Arguments of `mend events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
    /// Talk to NATS JetStream at this URL instead of `mend up`'s HTTP port (default:
    /// `MEND_NATS_URL` when set; its auth and TLS settings apply).
    #[arg(long, global = true)]
    nats: Option<String>,
    /// `mend up`'s HTTP address (default: `MEND_HTTP_ADDR`).
    #[arg(long, global = true)]
    addr: Option<String>,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Publish one event, e.g. `retrain.requested.churn '{"v":1,"reason":"quarterly"}'`.
    Publish {
        /// The event's subject: `<family>.<model>`, e.g. `retrain.requested.churn`.
        subject: String,
        /// The event as JSON: `"v": 1` and the event's fields (`id` and `time` are added
        /// when missing).
        #[arg(value_name = "JSON")]
        payload: String,
    },
    /// Follow the bus: one line per event as it is published (`--json`: JSON lines).
    Tail {
        /// Subjects to follow, with `*` and `>` wildcards (default: every event family).
        subjects: Vec<String>,
        /// Start with the events already stored, not only new ones.
        #[arg(long)]
        all: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds (default: follow until interrupted).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
}

/// Runs `mend events`.
pub fn run(args: EventsArgs, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(events(args, json))
}

async fn events(args: EventsArgs, json: bool) -> anyhow::Result<()> {
    let mut config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
    if let Some(url) = &args.nats {
        let mut vars = std::collections::HashMap::new();
        vars.insert("MEND_NATS_URL".to_owned(), url.clone());
        for (name, value) in std::env::vars().filter(|(name, _)| name.starts_with("MEND_NATS_")) {
            vars.entry(name).or_insert(value);
        }
        config.nats = MendConfig::from_map(&vars).context("invalid --nats")?.nats;
    }
    let addr = args
        .addr
        .clone()
        .unwrap_or_else(|| format!("{}:{}", config.http_addr.host(), config.http_addr.port()));
    let token = config
        .registry_token
        .as_ref()
        .map(|token| token.expose().to_owned());
    match (args.command, &config.nats) {
        (
            EventsCommand::Publish {
                subject,
                payload: body,
            },
            Some(nats),
        ) => {
            let bus = connect(nats).await?;
            let published = publish(&bus, &subject, body.as_bytes()).await?;
            print_published(&published, json);
        }
        (
            EventsCommand::Publish {
                subject,
                payload: body,
            },
            None,
        ) => {
            let answer = http_publish(&addr, &subject, &body, token.as_deref())?;
            print_published(&answer, json);
        }
        (
            EventsCommand::Tail {
                subjects,
                all,
                count,
                timeout,
            },
            Some(nats),
        ) => {
            let bus = connect(nats).await?;
            let mut lines = std::pin::pin!(tail(bus, filters(subjects)?, all).await?);
            let deadline =
                timeout.map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
            let mut seen = 0;
            while count.is_none_or(|count| seen < count) {
                let next = match deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline, lines.next()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                    None => lines.next().await,
                };
                let Some(line) = next else {
                    break;
                };
                print_line(&line, json);
                seen += 1;
            }
        }
        (
            EventsCommand::Tail {
                subjects,
                all,
                count,
                timeout,
            },
            None,
        ) => {
            let filters = filters(subjects)?;
            let until = Until {
                count,
                deadline: timeout.map(|secs| std::time::Instant::now() + Duration::from_secs(secs)),
            };
            tokio::task::spawn_blocking(move || http_tail(&addr, &filters, all, &until, json))
                .await
                .context("the tail failed")??;
        }
    }
    Ok(())
}

async fn connect(nats: &mend_runtime::config::NatsConfig) -> anyhow::Result<Arc<dyn Bus>> {
    let bus = JetStreamBus::connect_configured(nats)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", nats.url))?;
    Ok(Arc::new(bus))
}

/// The subjects to follow: every event family by default; each must be in an event stream.
fn filters(subjects: Vec<String>) -> anyhow::Result<Vec<String>> {
    if subjects.is_empty() {
        return Ok(subjects::EVENTS_STREAM_SUBJECTS
            .iter()
            .map(|s| (*s).to_owned())
            .collect());
    }
    for subject in &subjects {
        if subjects::stream_for(subject) != Some(subjects::EVENTS_STREAM) {
            bail!(
                "{subject:?} is not an event subject: follow one of {} (with * and > wildcards)",
                subjects::EVENTS_STREAM_SUBJECTS.join(", ")
            );
        }
    }
    Ok(subjects)
}

/// Checks `payload` as an event on `subject` and publishes it; the event's id and subject.
pub async fn publish(bus: &Arc<dyn Bus>, subject: &str, payload: &[u8]) -> anyhow::Result<Value> {
    let envelope = Envelope::decode(subject, payload)
        .with_context(|| format!("not a valid event on {subject}"))?;
    let receipt = publish_event(bus.as_ref(), &envelope)
        .await
        .with_context(|| format!("failed to publish on {subject}"))?;
    Ok(json!({
        "subject": envelope.subject(),
        "id": envelope.id,
        "duplicate": receipt.duplicate,
    }))
}

/// Every event on `filters` from now (or, with `all`, from the oldest stored), one JSON line
/// each, through a consumer of its own that JetStream forgets a minute after the tail stops.
pub async fn tail(
    bus: Arc<dyn Bus>,
    filters: Vec<String>,
    all: bool,
) -> anyhow::Result<impl Stream<Item = String>> {
    let started = OffsetDateTime::now_utc();
    let spec = ConsumerSpec::new(
        format!("mend-tail-{}", mend_bus::events::new_event_id()),
        filters,
    )
    .batch(64)
    .max_deliver(Some(1))
    .inactive_threshold(Some(Duration::from_secs(60)));
    let subscription = bus
        .consume(spec.clone())
        .await
        .context("failed to follow the bus")?;
    let following = Following {
        subscription,
        _cleanup: ConsumerCleanup { bus, spec },
    };
    Ok(futures::stream::unfold(
        following,
        move |mut following| async move {
            loop {
                let delivery = following.subscription.next().await?;
                let stored = delivery.published;
                let line = json!({
                "subject": delivery.subject,
                "seq": delivery.stream_sequence,
                "published": stored.format(&Rfc3339).unwrap_or_default(),
                "event": serde_json::from_slice::<Value>(&delivery.payload)
                    .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&delivery.payload).into_owned())),
            })
            .to_string();
                if let Err(error) = delivery.ack().await {
                    tracing::debug!(%error, "a tail's acknowledgement failed");
                }
                if all || stored >= started {
                    return Some((line, following));
                }
            }
        },
    ))
}

/// A tail's subscription, and its consumer to remove once the tail is dropped (a closed
/// HTTP connection, a finished count).
struct Following {
    subscription: mend_bus::Subscription,
    _cleanup: ConsumerCleanup,
}

struct ConsumerCleanup {
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
}

impl Drop for ConsumerCleanup {
    fn drop(&mut self) {
        let (bus, spec) = (Arc::clone(&self.bus), self.spec.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = bus.delete_consumer(&spec).await {
                    tracing::debug!(%error, durable = %spec.durable, "a tail's consumer stays until it expires");
                }
            });
        }
    }
}

/// A subject filter as a query value: the wildcards and anything unusual percent-encoded.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn print_published(answer: &Value, json: bool) {
    if json {
        println!("{answer}");
    } else {
        println!(
            "published {} on {}{}",
            answer["id"].as_str().unwrap_or("?"),
            answer["subject"].as_str().unwrap_or("?"),
            if answer["duplicate"] == true {
                " (a duplicate of an event already stored: stored once)"
            } else {
                ""
            }
        );
    }
}

/// One event: its JSON line as it came, or `time  subject  fields` for a person.
fn print_line(line: &str, json: bool) {
    if json {
        println!("{line}");
        return;
    }
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        println!("{line}");
        return;
    };
    let mut event = value["event"].clone();
    if let Value::Object(fields) = &mut event {
        for noise in ["v", "time"] {
            fields.remove(noise);
        }
    }
    println!(
        "{}  {}  {}",
        value["published"].as_str().unwrap_or("-"),
        value["subject"].as_str().unwrap_or("-"),
        event
    );
}

// ---- over `mend up`'s HTTP port --------------------------------------------------------

const TIMEOUT: Duration = Duration::from_secs(10);

fn http_connect(addr: &str) -> anyhow::Result<TcpStream> {
    let socket = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("no address for {addr}"))?;
    TcpStream::connect_timeout(&socket, TIMEOUT).with_context(|| {
        format!(
            "cannot reach `mend up` at {addr} (is it running? set MEND_HTTP_ADDR, or --nats for NATS)"
        )
    })
}

fn http_publish(
    addr: &str,
    subject: &str,
    body: &str,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut stream = http_connect(addr)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /events/{subject} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{authorization}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("failed to read the answer")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, answer) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer from {addr}"))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "`mend up` at {addr} refused the event ({status}): {}",
            answer.trim()
        );
    }
    serde_json::from_str(answer).context("the answer is not JSON")
}

/// When a tail stops: after `count` events, or at `deadline`.
struct Until {
    count: Option<usize>,
    deadline: Option<std::time::Instant>,
}

/// Follows `GET /events` (chunked JSON lines) and prints each event.
fn http_tail(
    addr: &str,
    filters: &[String],
    all: bool,
    until: &Until,
    json: bool,
) -> anyhow::Result<()> {
    let count = until.count;
    let mut stream = http_connect(addr)?;
    let query: Vec<String> = filters
        .iter()
        .map(|subject| format!("subject={}", query_value(subject)))
        .chain(all.then(|| "all=true".to_owned()))
        .collect();
    write!(
        stream,
        "GET /events?{} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/x-ndjson\r\n\
         Connection: close\r\n\r\n",
        query.join("&")
    )?;
    let socket = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("`mend up` at {addr} closed the connection");
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        chunked |= line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked");
    }
    if status.split(' ').nth(1) != Some("200") {
        let mut body = String::new();
        reader.read_to_string(&mut body).ok();
        bail!(
            "`mend up` at {addr} refused the tail ({}): {}",
            status.trim(),
            body.trim()
        );
    }
    let mut seen = 0;
    let mut pending = String::new();
    while count.is_none_or(|count| seen < count) {
        if let Some(deadline) = until.deadline {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
        }
        let piece = match read_piece(&mut reader, chunked) {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(error) if timed_out(&error) => break,
            Err(error) => return Err(error),
        };
        pending.push_str(&piece);
        while let Some((line, rest)) = pending.split_once('\n') {
            if !line.trim().is_empty() && count.is_none_or(|count| seen < count) {
                print_line(line, json);
                seen += 1;
            }
            pending = rest.to_owned();
        }
        std::io::stdout().flush().ok();
    }
    Ok(())
}

/// Whether a read failed only because the tail's time ran out.
fn timed_out(error: &anyhow::Error) -> bool {
    error.downcast_ref::<std::io::Error>().is_some_and(|error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

/// The next piece of the body: one chunk, or one line when not chunked; `None` at its end.
fn read_piece(reader: &mut BufReader<TcpStream>, chunked: bool) -> anyhow::Result<Option<String>> {
    Ok(Some(if chunked {
        let mut size = String::new();
        if reader.read_line(&mut size)? == 0 {
            return Ok(None);
        }
        let size = usize::from_str_radix(size.trim(), 16)
            .with_context(|| format!("a bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0; size + 2];
        reader.read_exact(&mut bytes)?;
        bytes.truncate(size);
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        line
    }))
}

// ---- the routes `mend up` serves -------------------------------------------------------

#[derive(Clone)]
struct EventsState {
    bus: Arc<dyn Bus>,
    auth: WriteAuth,
}

/// `POST /events/{subject}` (a write: the registry's bearer token when one is set) and
/// `GET /events?subject=...&all=true` (JSON lines as events are published) over `bus`.
pub fn routes(bus: Arc<dyn Bus>, token: Option<&mend_runtime::Secret>) -> Router {
    Router::new()
        .route("/events/{subject}", post(publish_route))
        .route("/events", get(tail_route))
        .with_state(EventsState {
            bus,
            auth: WriteAuth::new(token),
        })
}

async fn publish_route(
    State(state): State<EventsState>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(status) = state.auth.check_header(
        headers
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes()),
        "events publish",
    ) {
        return (StatusCode::UNAUTHORIZED, format!("{}\n", status.message())).into_response();
    }
    match publish(&state.bus, &subject, &body).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, format!("{error:#}\n")).into_response(),
    }
}

async fn tail_route(
    State(state): State<EventsState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut subjects = Vec::new();
    let mut all = false;
    for (name, value) in query {
        match name.as_str() {
            "subject" => subjects.push(value),
            "all" => all = value == "true" || value == "1",
            other => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?}: subject, all\n"),
                )
                    .into_response();
            }
        }
    }
    let filters = match filters(subjects) {
        Ok(filters) => filters,
        Err(error) => return (StatusCode::BAD_REQUEST, format!("{error:#}\n")).into_response(),
    };
    match tail(state.bus, filters, all).await {
        Ok(lines) => {
            let body = lines.map(|line| Ok::<_, std::convert::Infallible>(format!("{line}\n")));
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from_stream(body),
            )
                .into_response()
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error:#}\n")).into_response(),
    }
}
