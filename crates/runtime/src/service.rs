//! The skeleton every service binary shares (`mend-registry`, `mend-server`, `mend-ingest`,
//! `mend-monitor`, `mend-trainer`): read the configuration, fail fast on a bad value, set up
//! telemetry, serve, flush telemetry, and map the outcome to the exit code. The serving itself
//! (bind, open, signals, ops HTTP, the shutdown grace) is [`crate::host`]'s; a binary's `main`
//! is [`crate::host::main`].
//!
//! The binaries take no arguments but one: `--health-check` probes the service already
//! running with the same configuration (its `/healthz` on `MEND_HTTP_ADDR`, see
//! [`crate::probe`]) and exits 0 when it is ready, 1 when not, for compose health checks on
//! images without a shell.

use std::ffi::OsString;
use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use crate::config::{Env, MendConfig};
use crate::probe::{HEALTH_CHECK_FLAG, HEALTH_PATH};
use crate::telemetry;

/// Exit code of a configuration that does not load: nothing was bound or started.
pub const EXIT_CONFIG: u8 = 2;

/// What a service binary was asked to do by its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// No arguments: serve.
    Serve,
    /// `--health-check`: probe the running service and exit.
    HealthCheck,
    /// `--help` or `-h`.
    Help,
}

/// Reads a service binary's arguments (without the program name). Anything but nothing,
/// `--health-check` or `--help` is refused with a message naming it: a mistyped flag must
/// not start a second copy of the service.
pub fn parse_invocation(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, String> {
    let args: Vec<OsString> = args.into_iter().collect();
    match args.as_slice() {
        [] => Ok(Invocation::Serve),
        [only] if only == HEALTH_CHECK_FLAG => Ok(Invocation::HealthCheck),
        [only] if only == "--help" || only == "-h" => Ok(Invocation::Help),
        [first, ..] => Err(format!(
            "unexpected argument {first:?}: the service is configured by MEND_* variables and \
             takes no arguments but {HEALTH_CHECK_FLAG} (try --help)"
        )),
    }
}

fn usage(name: &str) -> String {
    [
        format!("{name}: a mend service, configured by MEND_* variables (see the README)."),
        String::new(),
        "usage:".to_owned(),
        format!("  {name}                  serve until SIGTERM or SIGINT"),
        format!(
            "  {name} {HEALTH_CHECK_FLAG}   GET {HEALTH_PATH} of the running service on \
             MEND_HTTP_ADDR (loopback when it binds 0.0.0.0; TLS when MEND_TLS_CERT is set)"
        ),
        "      and exit 0 when it answers 200, else 1, with one line saying why".to_owned(),
    ]
    .join("\n")
}

/// `--health-check`: loads the configuration the service loads and probes its `/healthz`.
/// Exits 0 when ready; 1 otherwise, a bad configuration included (Docker reserves exit 2 in
/// health checks).
fn health_check_main(name: &str) -> ExitCode {
    let config = match MendConfig::load(Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: not ready: invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    match crate::probe::health_check(&config) {
        Ok(line) => {
            println!("{name}: {line}");
            ExitCode::SUCCESS
        }
        Err(line) => {
            eprintln!("{name}: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Runs service `name`: loads the shared configuration from the process environment and the
/// service's own settings from it (`settings`); a bad value exits with [`EXIT_CONFIG`] before
/// anything binds. Then sets up telemetry on a multi-threaded runtime and runs `serve` until it
/// returns (it owns binding, signals and the shutdown grace: [`crate::host::serve`]); a failure
/// is logged (and so exported)
/// before telemetry is flushed, printed with its causes, and exits 1. Telemetry is flushed
/// whatever `serve` returned.
///
/// Given `--health-check` it serves nothing: it probes the service already running with
/// this configuration and exits 0 (ready) or 1 (see [`crate::probe::health_check`]).
pub fn service_main<S, CE, F, Fut, E>(
    name: &'static str,
    settings: impl FnOnce(&MendConfig) -> Result<S, CE>,
    serve: F,
) -> ExitCode
where
    CE: Display,
    F: FnOnce(MendConfig, S) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    match parse_invocation(std::env::args_os().skip(1)) {
        Ok(Invocation::Serve) => {}
        Ok(Invocation::HealthCheck) => return health_check_main(name),
        Ok(Invocation::Help) => {
            println!("{}", usage(name));
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let loaded = MendConfig::load(Env::from_process())
        .map_err(|error| error.to_string())
        .and_then(|config| {
            settings(&config)
                .map(|own| (config, own))
                .map_err(|error| error.to_string())
        });
    let (config, own) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{name}: invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let telemetry = match telemetry::init(&config, name) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("{name}: failed to set up telemetry: {error}");
                return ExitCode::FAILURE;
            }
        };
        let failure = serve(config, own).await.err().map(|error| {
            let error = format!("{error:#}");
            tracing::error!(service = name, %error, "service failed");
            error
        });
        if let Err(error) = telemetry.shutdown().await {
            eprintln!("{name}: {error}");
        }
        match failure {
            None => ExitCode::SUCCESS,
            Some(error) => {
                eprintln!("{name}: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, String> {
        parse_invocation(args.iter().map(OsString::from))
    }

    #[test]
    fn only_the_known_flags_are_taken() {
        assert_eq!(parse(&[]), Ok(Invocation::Serve));
        assert_eq!(parse(&["--health-check"]), Ok(Invocation::HealthCheck));
        assert_eq!(parse(&["--help"]), Ok(Invocation::Help));
        assert_eq!(parse(&["-h"]), Ok(Invocation::Help));
        let typo = parse(&["--healthcheck"]).unwrap_err();
        assert!(typo.contains("\"--healthcheck\""), "{typo}");
        assert!(typo.contains("--health-check"), "{typo}");
        assert!(parse(&["--health-check", "extra"]).is_err());
    }

    #[test]
    fn usage_names_the_flag_and_the_exit_codes() {
        let text = usage("mend-server");
        assert!(text.contains("mend-server --health-check"), "{text}");
        assert!(text.contains("/healthz"), "{text}");
        assert!(text.contains("exit 0"), "{text}");
    }
}
