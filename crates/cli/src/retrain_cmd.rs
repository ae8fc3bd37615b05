//! `mend retrain MODEL --reason …`: a forced retrain, asked of the registry over gRPC.
//!
//! The registry checks the bearer token (`MEND_REGISTRY_TOKEN`) and that the model exists,
//! then publishes `retrain.requested.MODEL`, the same event as a hand-typed
//! `nats pub retrain.requested.MODEL '{"v":1,"reason":"…"}'`. The registry is found the way
//! `mend models` finds it: `MEND_REGISTRY_ADDR`, TLS from `MEND_TLS_*`.

use anyhow::{Context, bail};
use clap::Args;
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_runtime::config::{Env, MendConfig};
use serde_json::json;

/// Arguments of `mend retrain`.
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The registered model to retrain.
    model: String,
    /// Why, recorded in the event and the new version's lineage.
    #[arg(long)]
    reason: String,
    /// Train on the newest N labeled rows instead of the trainer's default window.
    #[arg(long, value_name = "N", conflicts_with_all = ["from_seq", "to_seq"])]
    window_rows: Option<u64>,
    /// Train on the data-log sequence range FROM..=TO (needs --to-seq).
    #[arg(long, value_name = "FROM", requires = "to_seq")]
    from_seq: Option<u64>,
    /// End of the sequence range (needs --from-seq).
    #[arg(long, value_name = "TO", requires = "from_seq")]
    to_seq: Option<u64>,
    /// Who asks (default: $USER).
    #[arg(long)]
    actor: Option<String>,
    /// Follow the run to its outcome (promoted or rejected, with the gate's numbers, or why
    /// nothing was trained), by the trainer's decision on the model's audit log. Exits
    /// non-zero when nothing was trained or no decision came within --timeout.
    #[arg(long)]
    wait: bool,
    /// With --wait: how long to wait for the decision, in seconds.
    #[arg(long, default_value_t = 600, requires = "wait")]
    timeout: u64,
}

/// How often `--wait` reads the audit log.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs `mend retrain` (the CLI is synchronous; the registry client is not).
pub fn run(args: RetrainArgs, json: bool) -> anyhow::Result<()> {
    if args.reason.trim().is_empty() {
        bail!("--reason must not be empty; say why the model should be retrained");
    }
    let window = match (args.window_rows, args.from_seq, args.to_seq) {
        (Some(rows), _, _) => Some(pb::retrain_window::Window::LastRows(rows)),
        (None, Some(from_seq), Some(to_seq)) => {
            Some(pb::retrain_window::Window::Sequence(pb::SequenceRange {
                from_seq,
                to_seq,
            }))
        }
        _ => None,
    };
    let request = pb::RequestRetrainRequest {
        model: args.model.clone(),
        reason: args.reason,
        actor: args.actor.unwrap_or_else(default_actor),
        window: window.map(|window| pb::RetrainWindow {
            window: Some(window),
        }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let model = args.model;
    let (wait, timeout) = (args.wait, std::time::Duration::from_secs(args.timeout));
    runtime.block_on(async {
        let config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
        let registry = RegistryClient::from_config(&config)?;
        let response = registry.request_retrain(request).await.with_context(|| {
            format!(
                "the registry at {} did not accept the retrain request for {}",
                config.registry_addr, model
            )
        })?;
        if !wait || !json {
            print_requested(&model, &response, json)?;
        }
        if wait {
            let outcome = follow(&registry, &model, &response.event_id, timeout, json).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome.json)?);
            }
            if !outcome.trained {
                bail!("{}", outcome.summary);
            }
        }
        Ok(())
    })
}

fn print_requested(
    model: &str,
    response: &pb::RequestRetrainResponse,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let out = json!({
            "model": model,
            "event_id": response.event_id,
            "subject": response.subject,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "retrain of {} requested: event {} on {}",
            model, response.event_id, response.subject
        );
    }
    Ok(())
}

/// How a waited-for retrain ended.
struct Outcome {
    /// A candidate was trained and judged (promoted or rejected).
    trained: bool,
    summary: String,
    json: serde_json::Value,
}

/// Reads the model's audit log until the trainer's decision on `event_id` is final: a
/// deferral is printed and waited out; the run's outcome comes with the gate's verdict from
/// the candidate's registration.
async fn follow(
    registry: &RegistryClient,
    model: &str,
    event_id: &str,
    timeout: std::time::Duration,
    json: bool,
) -> anyhow::Result<Outcome> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut told_deferred = false;
    // The log is read whole once, then only what was appended since each poll.
    let mut audit: Vec<pb::AuditRecord> = Vec::new();
    loop {
        let after = audit.last().map_or(0, |record| record.seq);
        let fresh = registry
            .audit_after(model, after)
            .await
            .with_context(|| format!("cannot read the audit log of {model}"))?;
        audit.extend(fresh);
        let decided = audit.iter().rev().find(|record| {
            record.action == pb::AuditAction::Decision as i32 && record.trigger_event_id == event_id
        });
        match decided {
            Some(record) if record.decision == "deferred" => {
                if !told_deferred && !json {
                    println!("deferred: {}", record.reason);
                }
                told_deferred = true;
            }
            Some(record) => return Ok(outcome_of(&audit, record, json)),
            None => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no decision on {event_id} in the audit log of {model} within {} s \
                 (`mend events tail retrain.decided.{model}` shows decisions as they come)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

fn outcome_of(audit: &[pb::AuditRecord], decided: &pb::AuditRecord, json: bool) -> Outcome {
    let outcome = decided.outcome.as_str();
    let trained = matches!(outcome, "promoted" | "rejected" | "reused");
    // The gate's verdict, with its numbers, is the candidate registration's reason.
    let gate = (decided.version > 0)
        .then(|| {
            audit.iter().find(|record| {
                record.action == pb::AuditAction::Register as i32
                    && record.version == decided.version
            })
        })
        .flatten()
        .map(|record| record.reason.clone());
    let summary = match (outcome, decided.version) {
        ("promoted", version) => format!("promoted: version {version} is the champion"),
        ("rejected", version) => {
            format!("rejected: version {version} was trained, the champion stays")
        }
        ("", _) => format!("{}: {}", decided.decision, decided.reason),
        (other, _) => format!("{other}: {}", decided.reason),
    };
    if !json {
        println!("{summary}");
        if let Some(gate) = &gate {
            println!("  {gate}");
        }
    }
    Outcome {
        trained,
        json: json!({
            "event_id": decided.trigger_event_id,
            "decision": decided.decision,
            "outcome": (!outcome.is_empty()).then_some(outcome),
            "version": (decided.version > 0).then_some(decided.version),
            "reason": decided.reason,
            "gate": gate,
        }),
        summary,
    }
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
