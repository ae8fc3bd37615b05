//! The registry operations as blocking functions on one connection; [`super::SqliteStore`]
//! runs them on a blocking thread. Each write is one `BEGIN IMMEDIATE` transaction, which
//! serialises writers (so version numbers cannot collide) and makes a registration atomic.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::changes::{self, ModelState};
use crate::digest;
use crate::{
    AuditRecord, ModelSummary, NewDecision, NewVersion, Page, SetAlias, StoreError, VersionMeta,
};

/// A model's state, or `None` if the model does not exist.
fn model_state(connection: &Connection, model: &str) -> Result<Option<ModelState>, StoreError> {
    let Some((latest_version, audit_seq)) = connection
        .query_row(
            "SELECT latest_version, audit_seq FROM models WHERE name = ?1",
            params![model],
            |row| Ok((row.get::<_, u64>(0)?, row.get::<_, u64>(1)?)),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut statement =
        connection.prepare_cached("SELECT alias, version FROM aliases WHERE model = ?1")?;
    let aliases = statement
        .query_map(params![model], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Some(ModelState {
        latest_version,
        audit_seq,
        aliases,
    }))
}

fn existing_model_state(connection: &Connection, model: &str) -> Result<ModelState, StoreError> {
    model_state(connection, model)?.ok_or_else(|| StoreError::ModelNotFound {
        model: model.to_owned(),
    })
}

fn insert_audit(connection: &Connection, record: &AuditRecord) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO audit (model, seq, record_json) VALUES (?1, ?2, ?3)",
        params![record.model, record.seq, serde_json::to_string(record)?],
    )?;
    connection.execute(
        "UPDATE models SET audit_seq = ?2 WHERE name = ?1",
        params![record.model, record.seq],
    )?;
    Ok(())
}

pub(crate) fn register(
    connection: &mut Connection,
    new: &NewVersion,
    artifact: &Bytes,
    artifact_sha256: String,
    now_ms: i64,
) -> Result<VersionMeta, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute(
        "INSERT INTO models (name, latest_version, audit_seq) VALUES (?1, 0, 0)
         ON CONFLICT (name) DO NOTHING",
        params![new.model],
    )?;
    let state = existing_model_state(&transaction, &new.model)?;
    let size = artifact.len() as u64;
    let (meta, record) = changes::registration(&state, new, artifact_sha256, size, now_ms);

    // Upsert: the bytes were just hashed to this digest, so rewriting them also repairs a
    // stored copy that went bad.
    transaction.execute(
        "INSERT INTO artifacts (sha256, size, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, bytes = excluded.bytes",
        params![meta.artifact_sha256, size, artifact.as_ref()],
    )?;
    transaction.execute(
        "INSERT INTO versions (model, version, sha256, meta_json) VALUES (?1, ?2, ?3, ?4)",
        params![
            meta.model,
            meta.version,
            meta.artifact_sha256,
            serde_json::to_string(&meta)?
        ],
    )?;
    transaction.execute(
        "UPDATE models SET latest_version = ?2 WHERE name = ?1",
        params![meta.model, meta.version],
    )?;
    insert_audit(&transaction, &record)?;
    transaction.commit()?;
    Ok(meta)
}

pub(crate) fn version(
    connection: &Connection,
    model: &str,
    version: u64,
) -> Result<VersionMeta, StoreError> {
    let json: Option<String> = connection
        .query_row(
            "SELECT meta_json FROM versions WHERE model = ?1 AND version = ?2",
            params![model, version],
            |row| row.get(0),
        )
        .optional()?;
    match json {
        Some(json) => Ok(serde_json::from_str(&json)?),
        None => {
            existing_model_state(connection, model)?;
            Err(StoreError::VersionNotFound {
                model: model.to_owned(),
                version,
            })
        }
    }
}

pub(crate) fn artifact(
    connection: &Connection,
    model: &str,
    version: u64,
) -> Result<(VersionMeta, Bytes), StoreError> {
    let meta = self::version(connection, model, version)?;
    let bytes: Option<Vec<u8>> = connection
        .query_row(
            "SELECT bytes FROM artifacts WHERE sha256 = ?1",
            params![meta.artifact_sha256],
            |row| row.get(0),
        )
        .optional()?;
    let Some(bytes) = bytes else {
        return Err(StoreError::MissingArtifact {
            model: model.to_owned(),
            version,
        });
    };
    digest::verify(model, version, &meta.artifact_sha256, &bytes)?;
    Ok((meta, Bytes::from(bytes)))
}

pub(crate) fn resolve_alias(
    connection: &Connection,
    model: &str,
    alias: &str,
) -> Result<u64, StoreError> {
    let state = existing_model_state(connection, model)?;
    state
        .aliases
        .get(alias)
        .copied()
        .ok_or_else(|| StoreError::AliasNotFound {
            model: model.to_owned(),
            alias: alias.to_owned(),
        })
}

pub(crate) fn model(connection: &Connection, model: &str) -> Result<ModelSummary, StoreError> {
    Ok(existing_model_state(connection, model)?.summary(model))
}

pub(crate) fn list_models(
    connection: &Connection,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<ModelSummary, String>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT name FROM models WHERE name > ?1 ORDER BY name LIMIT ?2")?;
    let names: Vec<String> = statement
        .query_map(params![after.unwrap_or(""), limit as u64 + 1], |row| {
            row.get(0)
        })?
        .collect::<Result<_, _>>()?;
    let mut summaries = Vec::with_capacity(names.len());
    for name in names {
        summaries.push(self::model(connection, &name)?);
    }
    Ok(Page::from_probe(summaries, limit, |summary| {
        summary.name.clone()
    }))
}

pub(crate) fn list_versions(
    connection: &Connection,
    model: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<VersionMeta, u64>, StoreError> {
    existing_model_state(connection, model)?;
    let mut statement = connection.prepare_cached(
        "SELECT meta_json FROM versions WHERE model = ?1 AND version > ?2
         ORDER BY version LIMIT ?3",
    )?;
    let metas = statement
        .query_map(
            params![model, after.unwrap_or(0), limit as u64 + 1],
            |row| row.get::<_, String>(0),
        )?
        .map(|json| Ok(serde_json::from_str(&json?)?))
        .collect::<Result<Vec<VersionMeta>, StoreError>>()?;
    Ok(Page::from_probe(metas, limit, |meta| meta.version))
}

pub(crate) fn record_decision(
    connection: &mut Connection,
    new: &NewDecision,
    now_ms: i64,
) -> Result<AuditRecord, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let state = existing_model_state(&transaction, &new.model)?;
    let record = changes::decision_record(&state, new, now_ms)?;
    insert_audit(&transaction, &record)?;
    transaction.commit()?;
    Ok(record)
}

pub(crate) fn set_alias(
    connection: &mut Connection,
    change: &SetAlias,
    now_ms: i64,
) -> Result<AuditRecord, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let state = existing_model_state(&transaction, &change.model)?;
    let record = changes::alias_move(&state, change, now_ms)?;
    transaction.execute(
        "INSERT INTO aliases (model, alias, version) VALUES (?1, ?2, ?3)
         ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
        params![change.model, change.alias, change.version],
    )?;
    insert_audit(&transaction, &record)?;
    transaction.commit()?;
    Ok(record)
}

pub(crate) fn audit(
    connection: &Connection,
    model: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<AuditRecord, u64>, StoreError> {
    existing_model_state(connection, model)?;
    let mut statement = connection.prepare_cached(
        "SELECT record_json FROM audit WHERE model = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let records = statement
        .query_map(
            params![model, after.unwrap_or(0), limit as u64 + 1],
            |row| row.get::<_, String>(0),
        )?
        .map(|json| Ok(serde_json::from_str(&json?)?))
        .collect::<Result<Vec<AuditRecord>, StoreError>>()?;
    Ok(Page::from_probe(records, limit, |record| record.seq))
}

pub(crate) fn announced_seq(connection: &Connection, model: &str) -> Result<u64, StoreError> {
    existing_model_state(connection, model)?;
    let seq = connection
        .query_row(
            "SELECT announced_seq FROM outbox WHERE model = ?1",
            params![model],
            |row| row.get::<_, u64>(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0))
}

pub(crate) fn set_announced_seq(
    connection: &Connection,
    model: &str,
    seq: u64,
) -> Result<(), StoreError> {
    existing_model_state(connection, model)?;
    connection.execute(
        "INSERT INTO outbox (model, announced_seq) VALUES (?1, ?2)
         ON CONFLICT (model) DO UPDATE SET announced_seq = max(announced_seq, excluded.announced_seq)",
        params![model, seq],
    )?;
    Ok(())
}
