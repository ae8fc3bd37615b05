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
}

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
    let response = runtime.block_on(async {
        let config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
        let registry = RegistryClient::from_config(&config)?;
        registry.request_retrain(request).await.with_context(|| {
            format!(
                "the registry at {} did not accept the retrain request for {}",
                config.registry_addr, model
            )
        })
    })?;
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

fn default_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .map_or_else(
            || "mend-cli".to_owned(),
            |user| format!("{user} (mend cli)"),
        )
}
