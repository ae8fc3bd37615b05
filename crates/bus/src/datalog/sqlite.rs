//! The embedded data log: one SQLite file (WAL) in the data directory.
//!
//! SQLite calls block, so every operation runs on tokio's blocking pool; one connection
//! behind a mutex serialises writers, which SQLite would do anyway.
//!
//! Each entry keeps the W3C `traceparent` of the span that appended it (NULL when that span
//! was not traced), as the JetStream log does in a header, so in `mend up` the monitor
//! continues the trace of the ingest call that brought the rows. Files written before the
//! column existed gain it when opened; their old entries read back without trace context.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::{DEDUP_WINDOW, DataKind, DataLog, Range, RawEntry, Stored, Window};
use crate::error::DataLogError;
use crate::message::{Headers, header};
use crate::subjects::ModelName;

/// File name of the data log inside the data directory.
pub const DATALOG_FILE: &str = "datalog.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    model       TEXT    NOT NULL,
    kind        INTEGER NOT NULL,
    appended_ms INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    traceparent TEXT
);
CREATE INDEX IF NOT EXISTS log_by_model_kind_seq  ON log (model, kind, seq);
CREATE INDEX IF NOT EXISTS log_by_model_kind_time ON log (model, kind, appended_ms);
";

/// Added by [`add_dedup_column`], which older files need first.
const DEDUP_INDEX: &str = "
CREATE INDEX IF NOT EXISTS log_by_dedup_key ON log (dedup_key, model, kind, appended_ms);
";

/// The data log in a SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDataLog {
    inner: Arc<Mutex<Inner>>,
    path: PathBuf,
}

struct Inner {
    connection: Connection,
    /// The newest `appended_ms` written, so times never go backwards along sequences even
    /// if the wall clock does.
    last_appended_ms: i64,
}

impl std::fmt::Debug for SqliteDataLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDataLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDataLog {
    /// Opens (or creates) `<data_dir>/datalog.sqlite`, creating the directory if needed.
    pub fn open(data_dir: &Path) -> Result<Self, DataLogError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DataLogError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        SqliteDataLog::open_file(&data_dir.join(DATALOG_FILE))
    }

    /// Opens (or creates) the data log at an explicit file path.
    pub fn open_file(path: &Path) -> Result<Self, DataLogError> {
        let connection = Connection::open(path)?;
        // WAL lets readers run beside the writer; NORMAL sync is durable across a process
        // crash (the failure mend guards against), trading only power-loss durability.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        add_traceparent_column(&connection)?;
        add_dedup_column(&connection)?;
        let last_appended_ms =
            connection.query_row("SELECT COALESCE(MAX(appended_ms), 0) FROM log", [], |row| {
                row.get(0)
            })?;
        Ok(SqliteDataLog {
            inner: Arc::new(Mutex::new(Inner {
                connection,
                last_appended_ms,
            })),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking SQLite work off the async executor.
    async fn with<T, F>(&self, work: F) -> Result<T, DataLogError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T, DataLogError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut guard)
        })
        .await
        .map_err(|error| DataLogError::Worker(error.to_string()))?
    }
}

/// Adds the `traceparent` column to a log created before it existed (`CREATE TABLE IF NOT
/// EXISTS` leaves an existing table as it is).
fn add_traceparent_column(connection: &Connection) -> Result<(), DataLogError> {
    let has_column: bool = connection.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('log') WHERE name = 'traceparent'",
        [],
        |row| row.get(0),
    )?;
    if !has_column {
        connection.execute_batch("ALTER TABLE log ADD COLUMN traceparent TEXT")?;
        tracing::info!("data log upgraded: entries now keep their trace context");
    }
    Ok(())
}

/// Adds the `dedup_key` column (what makes a retried record the same record) to a log
/// created before it existed, then its index.
fn add_dedup_column(connection: &Connection) -> Result<(), DataLogError> {
    let has_column: bool = connection.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('log') WHERE name = 'dedup_key'",
        [],
        |row| row.get(0),
    )?;
    if !has_column {
        connection.execute_batch("ALTER TABLE log ADD COLUMN dedup_key TEXT")?;
        tracing::info!("data log upgraded: retried rows and labels are stored once");
    }
    connection.execute_batch(DEDUP_INDEX)?;
    Ok(())
}

/// The current span's W3C `traceparent`, when an OpenTelemetry layer records it.
fn current_traceparent() -> Option<String> {
    let mut headers = Headers::new();
    crate::trace::inject_current(&mut headers);
    headers.get(header::TRACEPARENT).map(str::to_owned)
}

fn kind_code(kind: DataKind) -> i64 {
    match kind {
        DataKind::Rows => 1,
        DataKind::Labels => 2,
        DataKind::Predictions => 3,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

fn dedup_window_ms() -> i64 {
    i64::try_from(DEDUP_WINDOW.as_millis()).unwrap_or(i64::MAX)
}

/// SQLite integers are signed; sequences and limits beyond i64 mean "no bound".
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl DataLog for SqliteDataLog {
    async fn append_keyed(
        &self,
        model: &ModelName,
        kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<Stored>, DataLogError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let model = model.to_string();
        // Read here, on the caller's task: the blocking pool runs outside its span.
        let traceparent = current_traceparent();
        self.with(move |inner| {
            let appended_ms = now_ms().max(inner.last_appended_ms);
            let transaction = inner.connection.transaction()?;
            let mut sequences = Vec::with_capacity(entries.len());
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO log (model, kind, appended_ms, payload, traceparent, dedup_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut earlier = transaction.prepare_cached(
                    "SELECT seq FROM log INDEXED BY log_by_dedup_key
                     WHERE dedup_key = ?3 AND model = ?1 AND kind = ?2 AND appended_ms >= ?4
                     ORDER BY seq LIMIT 1",
                )?;
                let remembered_from = appended_ms - dedup_window_ms();
                for (payload, key) in &entries {
                    if let Some(key) = key {
                        let seq: Option<i64> = earlier
                            .query_row(
                                params![model, kind_code(kind), key, remembered_from],
                                |row| row.get(0),
                            )
                            .optional()?;
                        if let Some(seq) = seq {
                            sequences.push(Stored {
                                seq: u64::try_from(seq).unwrap_or(0),
                                duplicate: true,
                            });
                            continue;
                        }
                    }
                    insert.execute(params![
                        model,
                        kind_code(kind),
                        appended_ms,
                        payload.as_ref(),
                        traceparent.as_deref(),
                        key.as_deref(),
                    ])?;
                    let seq = transaction.last_insert_rowid();
                    sequences.push(Stored {
                        seq: u64::try_from(seq).unwrap_or(0),
                        duplicate: false,
                    });
                }
            }
            transaction.commit()?;
            inner.last_appended_ms = appended_ms;
            Ok(sequences)
        })
        .await
    }

    async fn read_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        let model = model.to_string();
        let window = window.clone();
        self.with(move |inner| {
            let limit = limit_to_sql(window.max_entries());
            let kind = kind_code(kind);
            let read_row = |row: &rusqlite::Row<'_>| -> rusqlite::Result<RawEntry> {
                let seq: i64 = row.get(0)?;
                let payload: Vec<u8> = row.get(2)?;
                Ok(RawEntry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    appended_ms: row.get(1)?,
                    payload: Bytes::from(payload),
                    traceparent: row.get(3)?,
                })
            };
            let connection = &inner.connection;
            let mut entries = match window.range {
                Range::Sequence { from, to } => {
                    let mut query = connection.prepare_cached(
                        "SELECT seq, appended_ms, payload, traceparent FROM log
                         WHERE model = ?1 AND kind = ?2 AND seq >= ?3 AND seq <= ?4
                         ORDER BY seq LIMIT ?5",
                    )?;
                    let to = to.map_or(i64::MAX, to_sql);
                    query
                        .query_map(params![model, kind, to_sql(from), to, limit], read_row)?
                        .collect::<Result<Vec<_>, _>>()?
                }
                Range::Time { from_ms, to_ms } => {
                    let mut query = connection.prepare_cached(
                        "SELECT seq, appended_ms, payload, traceparent FROM log
                         WHERE model = ?1 AND kind = ?2 AND appended_ms >= ?3 AND appended_ms < ?4
                         ORDER BY seq LIMIT ?5",
                    )?;
                    let to_ms = to_ms.unwrap_or(i64::MAX);
                    query
                        .query_map(params![model, kind, from_ms, to_ms, limit], read_row)?
                        .collect::<Result<Vec<_>, _>>()?
                }
                Range::Last { .. } => {
                    let mut query = connection.prepare_cached(
                        "SELECT seq, appended_ms, payload, traceparent FROM log
                         WHERE model = ?1 AND kind = ?2
                         ORDER BY seq DESC LIMIT ?3",
                    )?;
                    let mut newest_first = query
                        .query_map(params![model, kind, limit], read_row)?
                        .collect::<Result<Vec<_>, _>>()?;
                    newest_first.reverse();
                    newest_first
                }
            };
            entries.shrink_to_fit();
            Ok(entries)
        })
        .await
    }

    async fn latest_seq(
        &self,
        model: &ModelName,
        kind: DataKind,
    ) -> Result<Option<u64>, DataLogError> {
        let model = model.to_string();
        self.with(move |inner| {
            let seq: Option<i64> = inner.connection.query_row(
                "SELECT MAX(seq) FROM log WHERE model = ?1 AND kind = ?2",
                params![model, kind_code(kind)],
                |row| row.get(0),
            )?;
            Ok(seq.and_then(|seq| u64::try_from(seq).ok()))
        })
        .await
    }
}
