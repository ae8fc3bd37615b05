//! What the CLI tests that run `mend` against services served inside the test share: running
//! the binary with a clean environment and reading its outcome. (A registry served inside the
//! test is `mend_testkit::registry::TestRegistry`.)
// Each test file uses its own part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

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
