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

// --- `mend bench-heal --stream FILE.csv` -------------------------------------------------

/// Writes `name.csv` in `dir`: `train + streamed` rows of two numbers and a colour, labelled
/// `yes` when `x0 + 0.5 x1 (+ 0.3 for red) > 0`, the rule flipped from streamed row `flip` on.
/// No noise: a model of the old rule is right on nearly every row before the flip and wrong on
/// nearly every row after it.
fn write_stream(
    dir: &std::path::Path,
    name: &str,
    train: usize,
    streamed: usize,
    flip: usize,
) -> std::path::PathBuf {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut csv = String::from("x0,x1,colour,label\n");
    for i in 0..train + streamed {
        let (x0, x1) = (uniform(), uniform());
        let colour = ["red", "green", "blue"][((uniform() + 1.0) * 1.5) as usize % 3];
        let mut yes = x0 + 0.5 * x1 + if colour == "red" { 0.3 } else { 0.0 } > 0.0;
        if i >= train + flip {
            yes = !yes;
        }
        let label = if yes { "yes" } else { "no" };
        csv.push_str(&format!("{x0:.5},{x1:.5},{colour},{label}\n"));
    }
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, csv).unwrap();
    path
}

fn write_sidecar(csv: &std::path::Path, meta: Value) {
    std::fs::write(csv.with_extension("meta.json"), meta.to_string()).unwrap();
}

/// `mend --json bench-heal --stream ...` with no `MEND_*` variable from the test's environment.
fn bench_stream(csv: &std::path::Path, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mend"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MEND_") {
            command.env_remove(key);
        }
    }
    command
        .arg("--json")
        .arg("bench-heal")
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--stream", csv.to_str().unwrap()])
        .args(args)
        .output()
        .expect("mend runs")
}

fn stream_json(csv: &std::path::Path, args: &[&str]) -> Value {
    let out = bench_stream(csv, args);
    assert!(
        out.status.success(),
        "mend bench-heal --stream failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn shares(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(accuracy)
        .collect()
}

fn rows_of(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect()
}

#[test]
fn a_stream_with_a_flip_scores_every_contender_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_stream(dir.path(), "flip", 3_000, 6_000, 3_000);
    write_sidecar(
        &csv,
        serde_json::json!({"label": "label", "train_rows": 3000, "drift_points": [3000],
                           "family": "abrupt"}),
    );
    let out = stream_json(&csv, &["--rate", "20000", "--segment-rows", "1000"]);
    assert_eq!(out["stream"], "flip", "{out}");
    assert_eq!(out["rows"], 6000, "{out}");
    assert_eq!(out["train_rows"], 3000, "{out}");
    assert_eq!(out["drift_points"], serde_json::json!([3000]), "{out}");
    assert_eq!(out["label_delay"], 0, "{out}");
    // Out of the box: the bench sets only what it needs to run.
    let settings = out["settings"].as_object().unwrap();
    assert_eq!(settings["MEND_LOG"], "error", "{out}");
    assert!(
        settings.keys().all(|k| !k.starts_with("MEND_TRAINER_")),
        "{out}"
    );
    let c = &out["contenders"];
    for name in [
        "mend",
        "static",
        "blind_2000",
        "blind_10000",
        "online",
        "oracle",
    ] {
        let contender = &c[name];
        let overall = accuracy(&contender["accuracy"]);
        let per_10k = shares(&contender["per_10k"]);
        assert_eq!(per_10k, vec![overall], "{name}: {contender}");
        let segments = shares(&contender["per_segment"]);
        assert_eq!(segments.len(), 6, "{name}: {contender}");
        let mean = segments.iter().sum::<f64>() / 6.0;
        assert!((mean - overall).abs() < 1e-9, "{name}: {contender}");
        assert!(contender["retrains"].is_u64(), "{name}: {contender}");
    }
    // The first model knows the old rule and nothing else.
    let fixed = shares(&c["static"]["per_segment"]);
    assert!(fixed[..3].iter().all(|&a| a > 0.9), "static: {fixed:?}");
    assert!(fixed[3..].iter().all(|&a| a < 0.1), "static: {fixed:?}");
    assert_eq!(c["static"]["retrains"], 0);
    // The oracle serves the first model until the 1,000 rows after the flip are labeled, then
    // a model of the new rule.
    assert_eq!(rows_of(&c["oracle"]["retrained_at"]), vec![4000], "{c}");
    assert_eq!(c["oracle"]["retrains"], 1);
    let oracle = shares(&c["oracle"]["per_segment"]);
    assert_eq!(
        oracle[..4],
        fixed[..4],
        "the same model on the same rows: {c}"
    );
    assert!(oracle[4] > 0.9 && oracle[5] > 0.9, "oracle: {oracle:?}");
    assert!(
        accuracy(&c["oracle"]["accuracy"]) > accuracy(&c["static"]["accuracy"]) + 0.25,
        "{c}"
    );
    // Blind retrainers swap at every 2,000th streamed row that still has rows to serve; a
    // 10,000-row cadence never comes round on 6,000 rows, so it is the static model.
    assert_eq!(rows_of(&c["blind_2000"]["retrained_at"]), vec![2000, 4000]);
    assert_eq!(c["blind_2000"]["retrains"], 2);
    assert_eq!(c["blind_10000"]["retrains"], 0);
    assert_eq!(c["blind_10000"]["per_segment"], c["static"]["per_segment"]);
    // Learning from every label, the online learner turns with the rule.
    let online = shares(&c["online"]["per_segment"]);
    assert!(online[0] > 0.9 && online[5] > 0.9, "online: {online:?}");
    assert_eq!(c["online"]["updates"], 9000, "{c}");
    // mend: version 1 answered first; its loop events are counted, whatever they were.
    let mend = &c["mend"];
    assert_eq!(mend["versions_served"][0]["version"], "1", "{mend}");
    for field in ["promotions", "rejections", "rollbacks"] {
        assert!(mend[field].is_u64(), "mend.{field}: {mend}");
    }
    for alarm in out["alarms"].as_array().unwrap() {
        assert!(
            ["data", "prediction", "performance"].contains(&alarm["kind"].as_str().unwrap()),
            "{alarm}"
        );
        assert!(alarm["row"].as_u64().unwrap() <= 6000, "{alarm}");
        assert!(!alarm["event_id"].as_str().unwrap().is_empty(), "{alarm}");
        assert!(
            ["acted", "merged", "deferred", "dropped", "none recorded"]
                .contains(&alarm["decision"].as_str().unwrap()),
            "{alarm}"
        );
    }
}

#[test]
fn late_labels_delay_every_retrain_and_flags_override_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_stream(dir.path(), "late", 3_000, 6_000, 3_000);
    // The sidecar is wrong on purpose; the flags win.
    write_sidecar(
        &csv,
        serde_json::json!({"train_rows": 2000, "drift_points": [1000]}),
    );
    let out = stream_json(
        &csv,
        &[
            "--rate",
            "20000",
            "--train-rows",
            "3000",
            "--drift-points",
            "3000",
            "--label-delay",
            "500",
            "--segment-rows",
            "500",
        ],
    );
    assert_eq!(out["train_rows"], 3000, "{out}");
    assert_eq!(out["drift_points"], serde_json::json!([3000]), "{out}");
    assert_eq!(out["label_delay"], 500, "{out}");
    let c = &out["contenders"];
    // The labels of rows 3000..4000 are all known once row 4500 is served.
    assert_eq!(rows_of(&c["oracle"]["retrained_at"]), vec![4500], "{c}");
    let oracle = shares(&c["oracle"]["per_segment"]);
    assert_eq!(oracle.len(), 12);
    assert!(
        oracle[8] < 0.1,
        "rows 4000..4500, still the old model: {oracle:?}"
    );
    assert!(oracle[9] > 0.9, "rows 4500..5000, the new one: {oracle:?}");
    // The blind retrainer keeps its cadence; the online learner learns 500 labels fewer.
    assert_eq!(rows_of(&c["blind_2000"]["retrained_at"]), vec![2000, 4000]);
    assert_eq!(c["online"]["updates"], 3000 + 5500, "{c}");
}

#[test]
fn without_drift_points_there_is_no_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_stream(dir.path(), "blind", 1_000, 2_500, 1_000);
    write_sidecar(&csv, serde_json::json!({"drift_points": [1000]}));
    // `--drift-points` with no value clears the sidecar's.
    let out = stream_json(
        &csv,
        &["--rate", "20000", "--train-rows", "1000", "--drift-points"],
    );
    assert_eq!(out["drift_points"], serde_json::json!([]), "{out}");
    let c = &out["contenders"];
    assert!(c["oracle"].is_null(), "{c}");
    assert_eq!(rows_of(&c["blind_2000"]["retrained_at"]), vec![2000]);
    assert_eq!(c["mend"]["per_10k"].as_array().unwrap().len(), 1, "{c}");
}

#[test]
fn a_class_the_train_rows_never_show_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("odd.csv");
    let mut text = String::from("x,label\n");
    for i in 0..200 {
        let label = if i >= 150 {
            "maybe"
        } else if i % 2 == 0 {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!("{i},{label}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let out = bench_stream(&csv, &["--train-rows", "100"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every class must appear") && stderr.contains("maybe"),
        "{stderr}"
    );
}
