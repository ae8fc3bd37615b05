#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `mend-trainer` binary refuses a bad configuration before it starts anything: exit
//! code 2 and a message naming what is wrong (through `mend_runtime::service`, as every
//! service binary does).

use std::process::Command;

fn trainer(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mend-trainer"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in vars {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_configuration_exits_2_naming_the_problem() {
    let (code, stderr) = trainer(&[("MEND_TRAINER_FOLLOW_UP_MARGIN", "-1")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MEND_TRAINER_FOLLOW_UP_MARGIN"), "{stderr}");

    let (code, stderr) = trainer(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MEND_NATS_URL must be set"), "{stderr}");
}
