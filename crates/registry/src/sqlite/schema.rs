//! The SQLite layout of the registry, created on open.
//!
//! Version metadata and audit records are stored as JSON of the domain types (the columns
//! beside them exist for keys and ordering). Artifacts are stored once per sha256, so a
//! re-registered identical artifact costs no space.

use rusqlite::Connection;

use crate::StoreError;

/// Table of artifact bytes by digest; tests tamper with it directly to prove reads verify.
pub const ARTIFACTS_TABLE: &str = "artifacts";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS models (
    name           TEXT PRIMARY KEY,
    latest_version INTEGER NOT NULL,
    audit_seq      INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    bytes  BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS versions (
    model     TEXT NOT NULL REFERENCES models(name),
    version   INTEGER NOT NULL,
    sha256    TEXT NOT NULL REFERENCES artifacts(sha256),
    meta_json TEXT NOT NULL,
    PRIMARY KEY (model, version)
) STRICT;
CREATE TABLE IF NOT EXISTS aliases (
    model   TEXT NOT NULL REFERENCES models(name),
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
) STRICT;
CREATE TABLE IF NOT EXISTS audit (
    model       TEXT NOT NULL REFERENCES models(name),
    seq         INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (model, seq)
) STRICT;
";

/// The outbox cursor: how far each model's audit log has been announced on the bus. Created
/// apart from [`SCHEMA`] so a registry written before it existed starts with every model
/// announced up to its last record (those moves were announced, or lost, long ago) instead
/// of publishing its whole history again.
const OUTBOX: &str = "
CREATE TABLE outbox (
    model         TEXT PRIMARY KEY REFERENCES models(name),
    announced_seq INTEGER NOT NULL
) STRICT;
INSERT INTO outbox (model, announced_seq) SELECT name, audit_seq FROM models;
";

/// Sets the connection up and creates the tables if they do not exist.
pub(crate) fn prepare(connection: &Connection) -> Result<(), StoreError> {
    // WAL lets readers in other processes (e.g. a backup) proceed during a write; FULL sync
    // because registry writes are rare and each one is a promise to the caller.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.execute_batch(SCHEMA)?;
    let has_outbox: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox')",
        [],
        |row| row.get(0),
    )?;
    if !has_outbox {
        connection.execute_batch(&format!("BEGIN IMMEDIATE; {OUTBOX} COMMIT;"))?;
    }
    Ok(())
}
