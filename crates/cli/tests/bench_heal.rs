#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend bench-heal` as a user runs it, on streams small enough for a debug build: the real
//! services in the process, a static model and a blind retrainer, scored prequentially.

use std::process::{Command, Output};

use serde_json::Value;

fn bench_heal(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_mend"))
        .arg("--json")
        .arg("bench-heal")
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(args)
        .output()
        .expect("mend runs");
    assert!(
        out.status.success(),
        "mend bench-heal failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn accuracy(v: &Value) -> f64 {
    let a = v.as_f64().unwrap_or_else(|| panic!("not an accuracy: {v}"));
    assert!((0.0..=1.0).contains(&a), "{a}");
    a
}

#[test]
fn an_abrupt_flip_sinks_the_static_model_and_every_contender_is_reported() {
    let out = bench_heal(&[
        "--scenario",
        "abrupt",
        "--rows",
        "4000",
        "--initial-rows",
        "2000",
        "--batch",
        "500",
        "--rate",
        "4000",
        "--blind-every",
        "1000",
        "--blind-sweep",
        "1000,3000",
        "--latency-runs",
        "0",
    ]);
    assert!(out["latency"].is_null(), "{out}");
    assert_eq!(out["settings"]["MEND_TRAINER_WINDOW_ROWS"], "1000", "{out}");
    let scenarios = out["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "{out}");
    let s = &scenarios[0];
    assert_eq!(s["name"], "abrupt");
    assert_eq!(s["rows"], 4000);
    accuracy(&s["mend"]["accuracy"]);
    accuracy(&s["blind"]["accuracy"]);
    assert_eq!(s["blind"]["retrains"], 4, "{s}");
    // The sweep replays blind retrainers on the recorded stream: the one at the live blind
    // retrainer's cadence makes the same retrains and the same predictions.
    let sweep = s["blind_sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 2, "{s}");
    assert_eq!(sweep[0]["every_rows"], 1000);
    assert_eq!(sweep[0]["retrains"], s["blind"]["retrains"], "{s}");
    assert_eq!(sweep[0]["accuracy"], s["blind"]["accuracy"], "{s}");
    assert_eq!(sweep[1]["every_rows"], 3000);
    assert_eq!(sweep[1]["retrains"], 1, "{s}");
    accuracy(&sweep[1]["accuracy"]);
    for field in [
        "retrains",
        "promotions",
        "rejections",
        "rollbacks",
        "drift_events",
    ] {
        assert!(s["mend"][field].is_u64(), "mend.{field} missing: {s}");
    }
    // Version 1 answered first; the registry holds it and every candidate the trainer made.
    assert_eq!(s["mend"]["versions_served"][0]["version"], "1", "{s}");
    assert!(
        s["mend"]["registry_versions"].as_u64().unwrap() > s["mend"]["retrains"].as_u64().unwrap(),
        "{s}"
    );
    let segments = s["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 4, "{s}");
    let before = (accuracy(&segments[0]["static"]) + accuracy(&segments[1]["static"])) / 2.0;
    let after = (accuracy(&segments[2]["static"]) + accuracy(&segments[3]["static"])) / 2.0;
    assert!(before > 0.75, "static before the flip: {before} ({s})");
    assert!(
        after < before - 0.4,
        "static after the flip: {after} vs {before} ({s})"
    );
    let overall = accuracy(&s["static"]["accuracy"]);
    assert!((overall - (before + after) / 2.0).abs() < 0.01, "{s}");
}

#[test]
fn a_heal_latency_run_reports_the_new_champion_answering() {
    let out = bench_heal(&[
        "--latency-only",
        "--latency-runs",
        "1",
        "--latency-window",
        "4000",
        "--latency-batch",
        "1000",
        "--initial-rows",
        "1000",
    ]);
    assert_eq!(out["scenarios"], serde_json::json!([]), "{out}");
    let latency = &out["latency"];
    assert_eq!(latency["window_rows"], 4000, "{out}");
    let run = &latency["runs"][0];
    assert_ne!(run["new_version"], "1", "{run}");
    let heal = run["heal_ms"].as_u64().unwrap();
    assert_eq!(latency["median_ms"].as_u64(), Some(heal), "{latency}");
    // The loop's steps happen in order.
    let detected = run["detected_ms"].as_u64().unwrap();
    let trained = run["trained_ms"].as_u64().unwrap();
    let promoted = run["promoted_ms"].as_u64().unwrap();
    assert!(
        detected <= trained && trained <= promoted && promoted <= heal,
        "{run}"
    );
    assert!(run["trained_on_rows"].as_u64().unwrap() >= 100, "{run}");
}

#[test]
fn without_a_sweep_only_the_live_blind_retrainer_runs() {
    let out = bench_heal(&[
        "--scenario",
        "abrupt",
        "--rows",
        "2000",
        "--initial-rows",
        "1000",
        "--rate",
        "4000",
        "--blind-every",
        "1000",
        "--latency-runs",
        "0",
        "--blind-sweep",
    ]);
    let s = &out["scenarios"][0];
    assert_eq!(s["blind_sweep"], serde_json::json!([]), "{s}");
    // It keeps only the newest window of the stream, and still retrains on it.
    assert_eq!(s["blind"]["retrains"], 2, "{s}");
    accuracy(&s["blind"]["accuracy"]);
}
