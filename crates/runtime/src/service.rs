//! The skeleton every service binary shares (`mend-registry`, `mend-server`, `mend-ingest`,
//! `mend-monitor`, `mend-trainer`): read the configuration, fail fast on a bad value, set up
//! telemetry, serve, flush telemetry, and map the outcome to the exit code.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use crate::config::{Env, MendConfig};
use crate::telemetry;

/// Exit code of a configuration that does not load: nothing was bound or started.
pub const EXIT_CONFIG: u8 = 2;

/// Runs service `name`: loads the shared configuration from the process environment and the
/// service's own settings from it (`settings`); a bad value exits with [`EXIT_CONFIG`] before
/// anything binds. Then sets up telemetry on a multi-threaded runtime and runs `serve` until it
/// returns (it owns signals and the shutdown grace); a failure is logged (and so exported)
/// before telemetry is flushed, printed with its causes, and exits 1. Telemetry is flushed
/// whatever `serve` returned.
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
