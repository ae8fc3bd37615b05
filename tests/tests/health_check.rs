#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--health-check` through a released binary, as a compose `healthcheck` runs it on a
//! distroless image: `mend-registry --health-check` with the environment the running
//! `mend-registry` has exits 0 once the registry is ready, and 1 with one line naming the
//! address when nothing answers there. A mistyped flag starts nothing and exits 2.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::service_binary;

/// Kills the service when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback address, as the services' variables take it.
fn free_addr() -> String {
    mend_testkit::free_addr().to_string()
}

/// A registry's own settings: free ports, `http` for its HTTP port, its data in `dir`.
fn registry_env(dir: &tempfile::TempDir, http: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MEND_REGISTRY_ADDR", free_addr()),
        ("MEND_HTTP_ADDR", http.to_owned()),
        ("MEND_DATA_DIR", dir.path().display().to_string()),
    ]
}

fn command(binary: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("MEND_LOG", "warn");
    command
}

fn health_check(binary: &Path, env: &[(&str, String)]) -> Output {
    command(binary, env)
        .arg("--health-check")
        .stdin(Stdio::null())
        .output()
        .expect("the health check runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn health_check_exits_0_once_ready_and_1_naming_the_address_when_nothing_answers() {
    let binary = service_binary("mend-registry");
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let env = registry_env(&dir, &http);

    // Nothing runs yet: unhealthy, naming the address it tried.
    let before = health_check(&binary, &env);
    assert_eq!(before.status.code(), Some(1), "{before:?}");
    let stderr = text(&before.stderr);
    assert!(stderr.starts_with("mend-registry: not ready: "), "{stderr}");
    assert!(
        stderr.contains(&format!("MEND_HTTP_ADDR {http}")),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");

    let _registry = Running(
        command(&binary, &env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the registry starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let probed = health_check(&binary, &env);
        if probed.status.success() {
            break probed;
        }
        assert_eq!(probed.status.code(), Some(1), "{probed:?}");
        assert!(
            Instant::now() < deadline,
            "the registry never became healthy: {}",
            text(&probed.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = text(&ready.stdout);
    assert_eq!(
        stdout.trim_end(),
        format!("mend-registry: ready: GET http://{http}/healthz answered 200")
    );

    // The same environment with MEND_HTTP_ADDR on a port nothing listens on.
    let closed = free_addr();
    let mut elsewhere = env.clone();
    elsewhere[1] = ("MEND_HTTP_ADDR", closed.clone());
    let probed = health_check(&binary, &elsewhere);
    assert_eq!(probed.status.code(), Some(1), "{probed:?}");
    let stderr = text(&probed.stderr);
    assert!(
        stderr.contains(&format!("MEND_HTTP_ADDR {closed}")),
        "{stderr}"
    );
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(probed.stdout.is_empty(), "{probed:?}");

    // A bad configuration is unhealthy too (1, never Docker's reserved 2).
    let mut bad = env.clone();
    bad[1] = ("MEND_HTTP_ADDR", "http://127.0.0.1:8080".to_owned());
    let probed = health_check(&binary, &bad);
    assert_eq!(probed.status.code(), Some(1), "{probed:?}");
    assert!(
        text(&probed.stderr).contains("MEND_HTTP_ADDR"),
        "{probed:?}"
    );
}

#[test]
fn a_mistyped_flag_starts_nothing() {
    let binary = service_binary("mend-registry");
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let env = registry_env(&dir, &http);
    let mut child = command(&binary, &env)
        .arg("--healthcheck")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`mend-registry --healthcheck` kept running: it started the service");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("\"--healthcheck\""), "{stderr}");
    assert!(stderr.contains("--health-check"), "{stderr}");
    // Nothing was bound.
    assert!(
        std::net::TcpListener::bind(&http).is_ok(),
        "{http} was bound"
    );
}
