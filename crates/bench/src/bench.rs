//! `mend bench`: an Open Inference Protocol load generator, with an in-process server for a
//! self-contained run.
//!
//! - `load.rs`: the clients: request templates from the model's metadata (or `--input`),
//!   `--concurrency` workers over `--connections` HTTP/2 connections, every latency recorded.
//! - `inputs.rs`: `--input NAME:DATATYPE:[d1,d2,...]`, the tensors to send to a server whose
//!   metadata lists none (MLServer's sklearn runtime), so one client measures mend and its
//!   peers alike: `mend bench --addr HOST:PORT --model M --input predict:FP64:[-1,3]`.
//! - `self_serve.rs`: `--self-serve` trains a synthetic model and serves it in this process,
//!   on its own runtime threads; `--promotions N` promotes N new versions during the run;
//!   `--serve-only` just serves, for a client in another process.
//! - `report.rs`: requests/s, rows/s, latency percentiles, errors, versions seen.
//!
//! Reproduce the BENCHMARKS.md figures with a release build (`cargo build --release -p mend`):
//! `mend bench --self-serve --concurrency 32 --rows 1 --duration 10s` and
//! `mend bench --self-serve --concurrency 32 --rows 1000 --raw --duration 10s`; add
//! `--promotions 50` to swap champions under that load.

mod h2client;
mod inputs;
mod load;
mod report;
mod self_serve;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use load::{Layout, LoadSpec};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Server address (host:port); default `MEND_SERVER_ADDR` or 127.0.0.1:8001.
    #[arg(long)]
    addr: Option<String>,
    /// Model to send requests to (with `--self-serve`: the name it is served under).
    #[arg(long, default_value = "bench")]
    model: String,
    /// A version number to request instead of the champion.
    #[arg(long, default_value = "")]
    model_version: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long to measure, e.g. `10s`, `500ms`, `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured load before measuring.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Rows per request.
    #[arg(long, default_value_t = 1)]
    rows: usize,
    /// Send tensors in `raw_input_contents` instead of typed `contents`.
    #[arg(long)]
    raw: bool,
    /// Input layout: `auto` (the `[N, F]` tensor when the model is all-numeric), `matrix`
    /// or `features` (one tensor per feature).
    #[arg(long, default_value = "auto")]
    layout: Layout,
    /// A tensor to send, `NAME:DATATYPE:[d1,d2,...]` (repeatable), instead of the inputs the
    /// model's metadata lists: for servers whose metadata lists none. The first dimension is
    /// the batch, `-1` for `--rows`, e.g. `--input 'predict:FP64:[-1,3]'`. Values are
    /// generated; the metadata and `--layout` are then not used.
    #[arg(long = "input", value_name = "NAME:DATATYPE:[SHAPE]", value_parser = inputs::parse_input)]
    inputs: Vec<inputs::InputSpec>,
    /// Train a synthetic model and serve it in this process.
    #[arg(long)]
    self_serve: bool,
    /// With `--self-serve`: numeric features of the synthetic model.
    #[arg(long, default_value_t = 8)]
    features: usize,
    /// With `--self-serve`: categorical features of the synthetic model.
    #[arg(long, default_value_t = 0)]
    categorical: usize,
    /// With `--self-serve`: share of rows the server samples into its prediction log (a null
    /// log here, so only the server-side cost is measured).
    #[arg(long, default_value_t = 0.01)]
    sample_rate: f64,
    /// With `--self-serve`: runtime threads of the server. 0 (the default) runs the server on
    /// the load generator's runtime: one scheduler for both, so on a small machine the OS
    /// does not preempt one side's threads for the other's. Give it threads to measure the
    /// two sides as separate schedulers, as two processes would be.
    #[arg(long, default_value_t = 0)]
    server_threads: usize,
    /// Runtime threads of the load generator.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// With `--self-serve`: promote this many new versions, evenly spread over the run.
    #[arg(long, default_value_t = 0)]
    promotions: u64,
    /// With `--self-serve`: serve on `--listen` until Ctrl-C instead of generating load.
    #[arg(long)]
    serve_only: bool,
    /// With `--serve-only`: where to listen.
    #[arg(long, default_value = "127.0.0.1:8001")]
    listen: String,
}

/// Parses `10s`, `250ms`, `2m` or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(index) => text.split_at(index),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 250ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}; use ms, s or m")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs `mend bench`.
pub fn run(args: BenchArgs, json: bool) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.rows == 0 || args.connections == 0 {
        bail!("--concurrency, --connections and --rows must be at least 1");
    }
    if (args.promotions > 0 || args.serve_only) && !args.self_serve {
        bail!("--promotions and --serve-only need --self-serve (they drive the in-process server)");
    }
    inputs::check(&args.inputs, args.rows).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let server = if args.self_serve {
        let listen = if args.serve_only {
            args.listen.as_str()
        } else {
            "127.0.0.1:0"
        };
        let shared = (args.server_threads == 0).then(|| runtime.handle().clone());
        Some(self_serve::SelfServer::start(
            &self_serve::SelfServeSpec {
                model: args.model.clone(),
                numeric: args.features,
                categorical: args.categorical,
                sample_rate: args.sample_rate,
                threads: args.server_threads,
                listen: listen.to_owned(),
                max_rows: args.rows.max(10_000),
            },
            shared,
        )?)
    } else {
        None
    };
    if args.serve_only {
        let server = server.context("no server")?;
        return server.serve_until_ctrl_c();
    }
    let addr = match (&server, &args.addr) {
        (Some(server), _) => server.addr().to_string(),
        (None, Some(addr)) => addr.clone(),
        (None, None) => std::env::var("MEND_SERVER_ADDR")
            .ok()
            .filter(|addr| !addr.is_empty())
            .unwrap_or_else(|| "127.0.0.1:8001".to_owned()),
    };
    let spec = LoadSpec {
        addr,
        model: args.model.clone(),
        version: args.model_version.clone(),
        concurrency: args.concurrency,
        connections: args.connections.clamp(1, args.concurrency),
        duration: args.duration,
        warmup: args.warmup,
        rows: args.rows,
        raw: args.raw,
        layout: args.layout,
        inputs: args.inputs.clone(),
    };
    let promoter = match (&server, args.promotions) {
        (Some(server), n) if n > 0 => {
            Some(server.promote_during(runtime.handle(), n, args.warmup, args.duration))
        }
        _ => None,
    };
    let result = runtime.block_on(load::run(&spec))?;
    let promotions = match promoter {
        Some(promoter) => Some(
            runtime
                .block_on(promoter)
                .context("the promoter failed")??,
        ),
        None => None,
    };
    if let Some(server) = server {
        server.stop()?;
    }
    drop(runtime);
    report::print(&spec, &result, promotions, json)?;
    let failed: u64 = result.errors.values().sum();
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|cli| cli.bench)
    }

    #[test]
    fn input_is_repeatable_and_parsed_strictly() {
        let args = parse(&[
            "--input",
            "predict:FP64:[-1,3]",
            "--input",
            "row_id:BYTES:[-1]",
        ])
        .unwrap();
        let names: Vec<String> = args.inputs.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["predict:FP64:[-1,3]", "row_id:BYTES:[-1]"]);
        assert!(parse(&[]).unwrap().inputs.is_empty());

        let error = parse(&["--input", "predict:FP64:[1,x]"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dimension 2 (\"x\") is not an integer"),
            "{error}"
        );
        assert!(error.contains("NAME:DATATYPE:[d1,d2,...]"), "{error}");
    }

    #[test]
    fn a_fixed_batch_must_match_rows_before_anything_connects() {
        // Nothing listens on the address: the check must fail first.
        let args = parse(&[
            "--addr",
            "127.0.0.1:1",
            "--rows",
            "4",
            "--input",
            "predict:FP64:[1,3]",
        ])
        .unwrap();
        let error = run(args, true).unwrap_err().to_string();
        assert!(error.contains("--rows is 4"), "{error}");
        assert!(error.contains("write -1"), "{error}");
    }
}
