//! The service host (`mend_runtime::host`) with toy services: the ops port answers while the
//! service runs and SIGTERM drains it; a failed `run` stops the process, ops port included, and
//! says which service failed; a drain that outlives the grace is cut off. Its own test binary,
//! since the signal goes to the whole process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mend_runtime::config::ConfigError;
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{MendConfig, Metrics, Shutdown};

/// A free `MEND_HTTP_ADDR` and the given shutdown grace.
fn config(grace_ms: u64) -> MendConfig {
    let vars = HashMap::from([
        (
            "MEND_HTTP_ADDR".to_owned(),
            mend_testkit::free_addr().to_string(),
        ),
        ("MEND_SHUTDOWN_GRACE_MS".to_owned(), grace_ms.to_string()),
    ]);
    MendConfig::from_map(&vars).unwrap()
}

/// Binds only `MEND_HTTP_ADDR`, for the host's ops routes.
async fn ops_only(config: &MendConfig) -> anyhow::Result<Bound<()>> {
    Ok(Bound::with_ops((), host::bind_http(config).await?))
}

/// Ready once its gate opens; stops when shutdown begins.
enum Waiting {}

impl Service for Waiting {
    const NAME: &'static str = "mend-waiting";
    const TITLE: &'static str = "the waiting toy";
    type Config = ();
    type Deps = ();
    type Listeners = ();
    type Error = std::io::Error;

    fn config(_: &MendConfig) -> Result<(), ConfigError> {
        Ok(())
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<()>> {
        ops_only(config).await
    }

    async fn open(_: &MendConfig, _: &Metrics) -> anyhow::Result<()> {
        Ok(())
    }

    async fn run(_: (), _: (), _: (), shutdown: Shutdown) -> Result<(), std::io::Error> {
        shutdown.readiness().gate("toy").open();
        shutdown.triggered().await;
        Ok(())
    }
}

/// Fails as soon as it runs.
enum Failing {}

impl Service for Failing {
    const NAME: &'static str = "mend-failing";
    const TITLE: &'static str = "the failing toy";
    type Config = ();
    type Deps = ();
    type Listeners = ();
    type Error = std::io::Error;

    fn config(_: &MendConfig) -> Result<(), ConfigError> {
        Ok(())
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<()>> {
        ops_only(config).await
    }

    async fn open(_: &MendConfig, _: &Metrics) -> anyhow::Result<()> {
        Ok(())
    }

    async fn run(_: (), _: (), _: (), _: Shutdown) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("boom"))
    }
}

/// Begins shutdown itself, then never finishes draining.
enum Hanging {}

impl Service for Hanging {
    const NAME: &'static str = "mend-hanging";
    const TITLE: &'static str = "the hanging toy";
    type Config = ();
    type Deps = ();
    type Listeners = ();
    type Error = std::io::Error;

    fn config(_: &MendConfig) -> Result<(), ConfigError> {
        Ok(())
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<()>> {
        ops_only(config).await
    }

    async fn open(_: &MendConfig, _: &Metrics) -> anyhow::Result<()> {
        Ok(())
    }

    async fn run(_: (), _: (), _: (), shutdown: Shutdown) -> Result<(), std::io::Error> {
        shutdown.trigger();
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_port_answers_until_sigterm_drains_the_service() {
    let config = config(5_000);
    let probed = config.clone();
    let signal = async move {
        // Ready on MEND_HTTP_ADDR's /healthz, as `--health-check` probes it; the host installs
        // its signal handlers before it serves that port.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = probed.clone();
            let answer =
                tokio::task::spawn_blocking(move || mend_runtime::probe::health_check(&probe))
                    .await
                    .unwrap();
            if answer.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "never ready: {answer:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    };
    let (served, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(30), host::serve::<Waiting>(config, ())),
        signal
    );
    served
        .expect("SIGTERM stops the service and its ops port")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_stops_the_ops_port_and_names_the_service() {
    let config = config(5_000);
    let http = config.http_addr.to_string();
    let error = tokio::time::timeout(Duration::from_secs(20), host::serve::<Failing>(config, ()))
        .await
        .expect("a failed run stops the ops port too")
        .unwrap_err();
    assert_eq!(format!("{error:#}"), "the failing toy failed: boom");
    assert!(
        tokio::net::TcpStream::connect(http.as_str()).await.is_err(),
        "the ops port closed with the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_longer_than_the_grace_is_cut_off() {
    let config = config(200);
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(20), host::serve::<Hanging>(config, ()))
        .await
        .expect("the grace ends a hung drain")
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.starts_with("the hanging toy did not drain in time: "),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}
