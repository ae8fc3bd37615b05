//! `mend models`: the model registry from the command line, over its gRPC API.
//!
//! Finds the registry through `MEND_REGISTRY_ADDR` (default `127.0.0.1:8002`, TLS from
//! `MEND_TLS_*`) and sends `MEND_REGISTRY_TOKEN` as the bearer token of writes. Alias moves
//! are compare-and-set against what was read just before, so a command never silently
//! overwrites a move made by someone else in between. Tables by default, `--json` for
//! scripts.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mend_client::{CHAMPION, ClientError, RegistryClient};
use mend_core::artifact::Artifact;
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::alias_precondition::State;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_runtime::config::{Env, MendConfig};
use mend_runtime::grpc::grpc_client_endpoint;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::output::{f4, table};

/// Arguments of `mend models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Register a model artifact as the next version of MODEL.
    Register {
        model: String,
        /// The artifact file written by `mend train`.
        artifact: PathBuf,
        /// Also point this alias (e.g. `champion`) at the new version.
        #[arg(long)]
        alias: Option<String>,
        /// Why, for the audit log.
        #[arg(long, default_value = "registered by hand")]
        reason: String,
        /// Who, for the audit log (default: $USER).
        #[arg(long)]
        actor: Option<String>,
        /// A tag `KEY=VALUE` (repeatable).
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
    },
    /// List models, or the versions of MODEL.
    List { model: Option<String> },
    /// Show one version: MODEL (latest), MODEL:VERSION or MODEL:ALIAS.
    Show { target: String },
    /// Make VERSION the champion of MODEL.
    Promote {
        model: String,
        // `version` would clash with the `--version` flag clap adds to every subcommand.
        #[arg(id = "target_version", value_name = "VERSION")]
        version: u64,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
        /// Who, for the audit log (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Move the champion of MODEL back to where it pointed before its latest move.
    Rollback {
        model: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        /// Who, for the audit log (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// The audit log of MODEL: every registration and alias move, oldest first.
    Audit { model: String },
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// Runs a `mend models` command (the CLI is synchronous; the registry client is not).
pub fn run(args: ModelsArgs, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
        let mut registry = Registry::connect(&config).await?;
        let output = match args.command {
            ModelsCommand::Register {
                model,
                artifact,
                alias,
                reason,
                actor,
                tags,
            } => {
                let actor = actor.unwrap_or_else(default_actor);
                registry
                    .register(&model, &artifact, alias, &reason, &actor, tags)
                    .await?
            }
            ModelsCommand::List { model: None } => registry.list_models().await?,
            ModelsCommand::List { model: Some(model) } => registry.list_versions(&model).await?,
            ModelsCommand::Show { target } => registry.show(&target).await?,
            ModelsCommand::Promote {
                model,
                version,
                reason,
                actor,
            } => {
                let actor = actor.unwrap_or_else(default_actor);
                registry.promote(&model, version, &reason, &actor).await?
            }
            ModelsCommand::Rollback {
                model,
                reason,
                actor,
            } => {
                let actor = actor.unwrap_or_else(default_actor);
                registry.rollback(&model, reason, &actor).await?
            }
            ModelsCommand::Audit { model } => registry.audit(&model).await?,
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&output.json)?);
        } else {
            println!("{}", output.text);
        }
        Ok(())
    })
}

fn default_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .map_or_else(
            || "mend-cli".to_owned(),
            |user| format!("{user} (mend cli)"),
        )
}

/// What a command prints: a table or text for people, JSON for scripts.
struct Output {
    text: String,
    json: Value,
}

struct Registry {
    client: RegistryClient,
    addr: String,
}

impl Registry {
    async fn connect(config: &MendConfig) -> anyhow::Result<Self> {
        let addr = config.registry_addr.to_string();
        let endpoint = grpc_client_endpoint(&config.registry_addr, &config.tls)
            .context("invalid registry address or TLS settings")?;
        let channel = endpoint.connect().await.with_context(|| {
            format!("cannot reach the registry at {addr} (set MEND_REGISTRY_ADDR)")
        })?;
        let token = config
            .registry_token
            .as_ref()
            .map(|token| token.expose().to_owned());
        Ok(Self {
            client: RegistryClient::new(channel, token),
            addr,
        })
    }

    /// The error a refused call reports: the registry's own words, with a hint.
    fn refused(&self, error: &ClientError) -> anyhow::Error {
        let (kind, message) = match error {
            ClientError::NotFound(m) => ("NotFound", m.as_str()),
            ClientError::Conflict(m) => ("Conflict", m.as_str()),
            ClientError::Unauthenticated(m) => ("Unauthenticated", m.as_str()),
            ClientError::InvalidArgument(m) => ("InvalidArgument", m.as_str()),
            ClientError::Unavailable(m) => ("Unavailable", m.as_str()),
            ClientError::InvalidResponse(m) => ("InvalidResponse", m.as_str()),
            ClientError::Other(m) => ("Error", m.as_str()),
        };
        let hint = match error {
            ClientError::Unauthenticated(m) if !m.contains("MEND_REGISTRY_TOKEN") => {
                " (check MEND_REGISTRY_TOKEN)"
            }
            ClientError::Unavailable(_) => " (is it running? MEND_REGISTRY_ADDR)",
            _ => "",
        };
        anyhow::anyhow!("registry at {} answered {kind}: {message}{hint}", self.addr)
    }

    async fn register(
        &mut self,
        model: &str,
        path: &PathBuf,
        alias: Option<String>,
        reason: &str,
        actor: &str,
        tags: Vec<(String, String)>,
    ) -> anyhow::Result<Output> {
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        // Only mend artifacts: the server would refuse to load anything else as champion.
        let artifact = Artifact::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable mend model artifact", path.display()))?;
        let header = header_for(model, &artifact, &bytes, reason, actor, tags)?;
        let version = self
            .client
            .register(header, bytes::Bytes::from(bytes))
            .await
            .map_err(|error| self.refused(&error))?;
        let mut text = format!(
            "registered {model} version {} ({} bytes, sha256 {})",
            version.version, version.artifact_size, version.artifact_sha256
        );
        let mut json = json!({
            "model": model,
            "version": version.version,
            "artifact_sha256": version.artifact_sha256,
            "artifact_size": version.artifact_size,
        });
        if let Some(alias) = alias {
            let record = self
                .move_alias(model, &alias, version.version, reason, actor)
                .await
                .with_context(|| {
                    format!(
                        "registered {model} version {}, but did not move {alias}",
                        version.version
                    )
                })?;
            text.push_str(&format!("\n{}", describe_move(&record)));
            json["alias"] = audit_json(&record);
        }
        Ok(Output { text, json })
    }

    /// Where `alias` points now (`None`: nowhere yet).
    async fn alias_version(&mut self, model: &str, alias: &str) -> anyhow::Result<Option<u64>> {
        match self
            .client
            .metadata(model, Selector::Alias(alias.to_owned()))
            .await
        {
            Ok(meta) => Ok(Some(meta.version)),
            Err(ClientError::NotFound(_)) => Ok(None),
            Err(error) => Err(self.refused(&error)),
        }
    }

    /// Points `alias` at `version`, compare-and-set against where it points now.
    async fn move_alias(
        &mut self,
        model: &str,
        alias: &str,
        version: u64,
        reason: &str,
        actor: &str,
    ) -> anyhow::Result<pb::AuditRecord> {
        let current = self.alias_version(model, alias).await?;
        let expected = match current {
            Some(current) => State::Version(current),
            None => State::Absent(true),
        };
        self.set_alias(model, alias, version, expected, reason, actor)
            .await
    }

    async fn set_alias(
        &mut self,
        model: &str,
        alias: &str,
        version: u64,
        expected: State,
        reason: &str,
        actor: &str,
    ) -> anyhow::Result<pb::AuditRecord> {
        let request = pb::SetAliasRequest {
            model: model.to_owned(),
            alias: alias.to_owned(),
            version,
            expected: Some(pb::AliasPrecondition {
                state: Some(expected),
            }),
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            trigger_event_id: String::new(),
        };
        self.client.set_alias(request).await.map_err(|error| match error {
            ClientError::Conflict(message) => anyhow::anyhow!(
                "{alias} of {model} moved while this command ran ({message}); check `mend models audit {model}` and retry"
            ),
            error => self.refused(&error),
        })
    }

    async fn list_models(&mut self) -> anyhow::Result<Output> {
        let models = self
            .client
            .list_models()
            .await
            .map_err(|error| self.refused(&error))?;
        let rows: Vec<Vec<String>> = models
            .iter()
            .map(|summary| {
                vec![
                    summary.name.clone(),
                    summary.latest_version.to_string(),
                    aliases_text(&summary.aliases),
                ]
            })
            .collect();
        let json = Value::Array(
            models
                .iter()
                .map(|summary| {
                    json!({
                        "name": summary.name,
                        "latest_version": summary.latest_version,
                        "aliases": summary.aliases.iter().collect::<std::collections::BTreeMap<_, _>>(),
                    })
                })
                .collect(),
        );
        Ok(Output {
            text: table(&["MODEL", "LATEST", "ALIASES"], &rows),
            json,
        })
    }

    async fn list_versions(&mut self, model: &str) -> anyhow::Result<Output> {
        let versions = self
            .client
            .list_versions(model)
            .await
            .map_err(|error| self.refused(&error))?;
        let rows: Vec<Vec<String>> = versions
            .iter()
            .map(|meta| {
                vec![
                    meta.version.to_string(),
                    time_text(meta.created_at_ms),
                    trigger_text(meta.trigger.as_ref()),
                    holdout_accuracy(meta).map_or_else(|| "-".to_owned(), f4),
                    meta.artifact_size.to_string(),
                    meta.artifact_sha256.chars().take(12).collect(),
                ]
            })
            .collect();
        Ok(Output {
            text: table(
                &[
                    "VERSION", "CREATED", "TRIGGER", "ACCURACY", "BYTES", "SHA256",
                ],
                &rows,
            ),
            json: Value::Array(versions.iter().map(version_json).collect()),
        })
    }

    async fn show(&mut self, target: &str) -> anyhow::Result<Output> {
        let (model, selector) = match target.split_once(':') {
            None => (target, None),
            Some((model, which)) => match which.parse::<u64>() {
                Ok(version) => (model, Some(Selector::Version(version))),
                Err(_) => (model, Some(Selector::Alias(which.to_owned()))),
            },
        };
        let meta = self
            .client
            .version_metadata(model, selector)
            .await
            .map_err(|error| self.refused(&error))?;
        let mut lines = vec![
            ("model", meta.model.clone()),
            ("version", meta.version.to_string()),
            ("created", time_text(meta.created_at_ms)),
            ("trigger", trigger_text(meta.trigger.as_ref())),
            (
                "parent",
                meta.parent_version
                    .map_or_else(|| "-".to_owned(), |parent| parent.to_string()),
            ),
            ("schema", meta.schema_hash.clone()),
            ("sha256", meta.artifact_sha256.clone()),
            ("bytes", meta.artifact_size.to_string()),
        ];
        if let Some(window) = &meta.data_window {
            lines.push((
                "data",
                format!(
                    "{} rows, {} .. {}",
                    window.row_count,
                    window_bound_text(window.from_time_ms),
                    window_bound_text(window.to_time_ms)
                ),
            ));
        }
        let mut text: Vec<String> = lines
            .iter()
            .map(|(key, value)| format!("{key:<10} {value}"))
            .collect();
        let mut metrics: Vec<_> = meta.metrics.iter().collect();
        metrics.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in metrics {
            text.push(format!("{:<10} {name} = {}", "metric", f4(*value)));
        }
        let mut tags: Vec<_> = meta.tags.iter().collect();
        tags.sort();
        for (key, value) in tags {
            text.push(format!("{:<10} {key} = {value}", "tag"));
        }
        Ok(Output {
            text: text.join("\n"),
            json: version_json(&meta),
        })
    }

    async fn promote(
        &mut self,
        model: &str,
        version: u64,
        reason: &str,
        actor: &str,
    ) -> anyhow::Result<Output> {
        let record = self
            .move_alias(model, CHAMPION, version, reason, actor)
            .await?;
        Ok(Output {
            text: describe_move(&record),
            json: audit_json(&record),
        })
    }

    async fn rollback(
        &mut self,
        model: &str,
        reason: Option<String>,
        actor: &str,
    ) -> anyhow::Result<Output> {
        let records = self.audit_records(model).await?;
        let Some(latest) = records.iter().rev().find(|record| {
            record.action == pb::AuditAction::SetAlias as i32 && record.alias == CHAMPION
        }) else {
            bail!("{model} has never had a champion; nothing to roll back");
        };
        let Some(previous) = latest.previous_version else {
            bail!(
                "the champion of {model} (version {}) is its first; there is nothing to roll back to",
                latest.version
            );
        };
        let reason = reason
            .unwrap_or_else(|| format!("rollback from version {} to {previous}", latest.version));
        // Compare-and-set against the move being undone: if anything moved since, stop.
        let record = self
            .set_alias(
                model,
                CHAMPION,
                previous,
                State::Version(latest.version),
                &reason,
                actor,
            )
            .await?;
        Ok(Output {
            text: describe_move(&record),
            json: audit_json(&record),
        })
    }

    async fn audit_records(&mut self, model: &str) -> anyhow::Result<Vec<pb::AuditRecord>> {
        self.client
            .audit(model)
            .await
            .map_err(|error| self.refused(&error))
    }

    async fn audit(&mut self, model: &str) -> anyhow::Result<Output> {
        let records = self.audit_records(model).await?;
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|record| {
                vec![
                    record.seq.to_string(),
                    time_text(record.time_ms),
                    audit_action_text(record),
                    if record.alias.is_empty() {
                        "-".to_owned()
                    } else {
                        record.alias.clone()
                    },
                    if record.version == 0 {
                        "-".to_owned()
                    } else {
                        record.version.to_string()
                    },
                    record
                        .previous_version
                        .map_or_else(|| "-".to_owned(), |previous| previous.to_string()),
                    record.actor.clone(),
                    record.reason.clone(),
                    if record.trigger_event_id.is_empty() {
                        "-".to_owned()
                    } else {
                        record.trigger_event_id.clone()
                    },
                ]
            })
            .collect();
        Ok(Output {
            text: table(
                &[
                    "SEQ", "TIME", "ACTION", "ALIAS", "VERSION", "PREVIOUS", "ACTOR", "REASON",
                    "TRIGGER",
                ],
                &rows,
            ),
            json: Value::Array(records.iter().map(audit_json).collect()),
        })
    }
}

/// The registration header of a mend artifact: schema hash, holdout metrics, training
/// window and settings come from the artifact itself.
fn header_for(
    model: &str,
    artifact: &Artifact,
    bytes: &[u8],
    reason: &str,
    actor: &str,
    tags: Vec<(String, String)>,
) -> anyhow::Result<pb::RegisterVersionHeader> {
    let holdout = &artifact.metrics;
    let mut metrics = std::collections::HashMap::from([
        ("holdout.accuracy".to_owned(), holdout.accuracy),
        ("holdout.macro_f1".to_owned(), holdout.macro_f1),
        ("holdout.log_loss".to_owned(), holdout.log_loss),
        ("holdout.brier".to_owned(), holdout.brier),
    ]);
    if let Some(auc) = holdout.roc_auc {
        metrics.insert("holdout.roc_auc".to_owned(), auc);
    }
    // A metric that is not a number (e.g. undefined on a one-class holdout) is left out.
    metrics.retain(|_, value| value.is_finite());
    let training = &artifact.training;
    Ok(pb::RegisterVersionHeader {
        model: model.to_owned(),
        schema_hash: artifact.schema.hash(),
        artifact_sha256: mend_core::artifact::sha256_hex(bytes),
        artifact_size: bytes.len() as u64,
        metrics,
        data_window: Some(pb::DataWindow {
            from_time_ms: training.time_min,
            to_time_ms: training.time_max,
            row_count: (training.rows_train + training.rows_holdout) as u64,
            ..Default::default()
        }),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        parent_version: None,
        tags: tags.into_iter().collect(),
        settings_json: serde_json::to_string(&training.settings)
            .context("failed to serialise the training settings")?,
        actor: actor.to_owned(),
        reason: reason.to_owned(),
    })
}

fn describe_move(record: &pb::AuditRecord) -> String {
    match record.previous_version {
        Some(previous) => format!(
            "{} of {}: version {previous} -> {}",
            record.alias, record.model, record.version
        ),
        None => format!(
            "{} of {}: -> version {}",
            record.alias, record.model, record.version
        ),
    }
}

fn aliases_text(aliases: &std::collections::HashMap<String, u64>) -> String {
    let mut pairs: Vec<_> = aliases.iter().collect();
    pairs.sort();
    if pairs.is_empty() {
        return "-".to_owned();
    }
    pairs
        .iter()
        .map(|(alias, version)| format!("{alias}={version}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A UTC time to the second, the same width in every row.
fn time_text(time_ms: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ms) * 1_000_000) {
        Ok(time) => format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        Err(_) => time_ms.to_string(),
    }
}

/// Training data without event times records row positions instead (see
/// `mend_core::artifact::TrainingMeta`); those are shown as they are, not as 1970 dates.
fn window_bound_text(value: i64) -> String {
    const YEAR_2000_MS: i64 = 946_684_800_000;
    if value >= YEAR_2000_MS {
        time_text(value)
    } else {
        value.to_string()
    }
}

fn trigger_kind_text(kind: i32) -> &'static str {
    match pb::TriggerKind::try_from(kind) {
        Ok(pb::TriggerKind::Drift) => "drift",
        Ok(pb::TriggerKind::Forced) => "forced",
        Ok(pb::TriggerKind::Schedule) => "schedule",
        Ok(pb::TriggerKind::Manual) => "manual",
        Ok(pb::TriggerKind::Initial) => "initial",
        Ok(pb::TriggerKind::FollowUp) => "follow_up",
        _ => "unknown",
    }
}

fn trigger_text(trigger: Option<&pb::Trigger>) -> String {
    match trigger {
        None => "-".to_owned(),
        Some(trigger) if trigger.event_id.is_empty() => trigger_kind_text(trigger.kind).to_owned(),
        Some(trigger) => format!("{} ({})", trigger_kind_text(trigger.kind), trigger.event_id),
    }
}

/// A version's accuracy on its holdout: `holdout.accuracy` for a registered artifact, or
/// `candidate.accuracy` for one the trainer registered (measured on the holdout it judged the
/// candidate and the champion on).
fn holdout_accuracy(meta: &pb::VersionMetadata) -> Option<f64> {
    ["holdout.accuracy", "candidate.accuracy"]
        .iter()
        .find_map(|name| meta.metrics.get(*name).copied())
}

fn action_text(action: i32) -> &'static str {
    match pb::AuditAction::try_from(action) {
        Ok(pb::AuditAction::Register) => "register",
        Ok(pb::AuditAction::SetAlias) => "set_alias",
        Ok(pb::AuditAction::Decision) => "decision",
        _ => "unknown",
    }
}

/// The ACTION cell: the action, and for the trainer's decisions what was decided and how the
/// run ended (`decision: acted -> promoted`).
fn audit_action_text(record: &pb::AuditRecord) -> String {
    let action = action_text(record.action);
    if record.action != pb::AuditAction::Decision as i32 {
        return action.to_owned();
    }
    if record.outcome.is_empty() {
        format!("{action}: {}", record.decision)
    } else {
        format!("{action}: {} -> {}", record.decision, record.outcome)
    }
}

fn version_json(meta: &pb::VersionMetadata) -> Value {
    json!({
        "model": meta.model,
        "version": meta.version,
        "created_at_ms": meta.created_at_ms,
        "schema_hash": meta.schema_hash,
        "artifact_sha256": meta.artifact_sha256,
        "artifact_size": meta.artifact_size,
        "metrics": meta.metrics.iter().collect::<std::collections::BTreeMap<_, _>>(),
        "data_window": meta.data_window.as_ref().map(|window| json!({
            "from_seq": window.from_seq,
            "to_seq": window.to_seq,
            "from_time_ms": window.from_time_ms,
            "to_time_ms": window.to_time_ms,
            "row_count": window.row_count,
            "rows_hash": window.rows_hash,
        })),
        "trigger": meta.trigger.as_ref().map(|trigger| json!({
            "kind": trigger_kind_text(trigger.kind),
            "event_id": trigger.event_id,
        })),
        "parent_version": meta.parent_version,
        "tags": meta.tags.iter().collect::<std::collections::BTreeMap<_, _>>(),
    })
}

fn audit_json(record: &pb::AuditRecord) -> Value {
    json!({
        "seq": record.seq,
        "time_ms": record.time_ms,
        "model": record.model,
        "action": action_text(record.action),
        "alias": (!record.alias.is_empty()).then_some(&record.alias),
        "version": record.version,
        "previous_version": record.previous_version,
        "actor": record.actor,
        "reason": record.reason,
        "trigger_event_id": record.trigger_event_id,
        "trace_id": record.trace_id,
        "decision": (!record.decision.is_empty()).then_some(&record.decision),
        "outcome": (!record.outcome.is_empty()).then_some(&record.outcome),
        "run_event_id": (!record.run_event_id.is_empty()).then_some(&record.run_event_id),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn meta(metrics: &[(&str, f64)]) -> pb::VersionMetadata {
        pb::VersionMetadata {
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..pb::VersionMetadata::default()
        }
    }

    #[test]
    fn the_listed_accuracy_is_the_holdout_s_whoever_registered_the_version() {
        // `mend models register` records the artifact's holdout accuracy...
        assert_eq!(
            holdout_accuracy(&meta(&[("holdout.accuracy", 0.8)])),
            Some(0.8)
        );
        // ...the trainer the candidate's, on the holdout it was judged on.
        let trained = meta(&[("candidate.accuracy", 0.9), ("champion.accuracy", 0.4)]);
        assert_eq!(holdout_accuracy(&trained), Some(0.9));
        assert_eq!(holdout_accuracy(&meta(&[("champion.accuracy", 0.4)])), None);
    }
}
