//! What the CLI tests that run `mend` against services served inside the test share: running
//! the binary with a clean environment, reading its outcome, and a token-guarded registry.
// Each test file uses its own part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use mend_bus::Bus;
use mend_registry::{RegistryDeps, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};

/// Runs `mend` with only the variables given (nothing leaks in from the machine but `USER`,
/// which names the actor of writes).
pub async fn mend(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mend"))
        .current_dir(dir)
        .env_clear()
        .env("USER", "tester")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .await
        .expect("mend runs")
}

/// The standard output of a run that must succeed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "mend failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The standard error of a run that must fail.
pub fn failed(out: Output) -> String {
    assert!(!out.status.success(), "mend should have failed");
    String::from_utf8(out.stderr).unwrap()
}

/// A registry served inside the test, stopped when dropped.
pub struct Registry {
    pub addr: String,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A registry whose writes need `token` (SQLite store), publishing on `bus` when given.
pub async fn start_registry(token: &str, bus: Option<Arc<dyn Bus>>) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let vars = HashMap::from([("MEND_REGISTRY_TOKEN".to_owned(), token.to_owned())]);
    let config = MendConfig::from_map(&vars).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let deps = RegistryDeps {
        store: Arc::new(store),
        bus,
    };
    tokio::spawn({
        let shutdown = shutdown.clone();
        let config = mend_registry::RegistryConfig::from_mend(&config).unwrap();
        async move { mend_registry::run(config, deps, listener, shutdown).await }
    });
    Registry {
        addr,
        shutdown,
        _dir: dir,
    }
}

/// A `mend up` in its own process (the real binary, only `vars` and `MEND_LOG=warn` set,
/// its data in `dir/data`), killed when dropped however the test ends.
pub struct Up(tokio::process::Child);

impl Up {
    pub fn start(dir: &Path, vars: &[(&str, &str)]) -> Up {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mend"))
            .current_dir(dir)
            .env_clear()
            .env("USER", "tester")
            .env("MEND_LOG", "warn")
            .envs(vars.iter().copied())
            .args(["up", "--data-dir", "data"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("mend up starts");
        Up(child)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}
