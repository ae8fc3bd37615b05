#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend demo`, the README's main job: the services heal a model on a drifting stream.

use std::process::Command;

#[test]
fn the_demo_heals_through_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mend"))
        .current_dir(dir.path())
        .args(["demo", "--json", "--data-dir", "demo-data"])
        .output()
        .expect("mend runs");
    assert!(
        out.status.success(),
        "mend demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let healed = summary["prequential_accuracy"].as_f64().unwrap();
    let never_retrained = summary["static_accuracy"].as_f64().unwrap();
    // The concept flips half-way: a model that never learns again is wrong most of the time
    // after that, a healed one is not.
    assert!(
        healed > never_retrained + 0.15,
        "healed {healed} vs static {never_retrained}"
    );
    assert!(summary["promotions"].as_u64().unwrap() >= 1, "{summary}");
    let report = summary["report"]
        .as_str()
        .expect("the monitor wrote a report");
    assert!(dir.path().join(report).exists(), "{report}");
}
