#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CLI as a user runs it: synth → train → evaluate → predict → inspect, on files.

use std::path::Path;
use std::process::{Command, Output};

fn mend(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mend"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("mend runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "mend failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn trains_evaluates_and_predicts_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(mend(d, &["synth", "--out", "train.csv", "--rows", "6000"]));
    ok(mend(
        d,
        &[
            "synth",
            "--out",
            "test.csv",
            "--rows",
            "1000",
            "--sample-seed",
            "5",
            "--first-id",
            "100000",
        ],
    ));

    let train: serde_json::Value = serde_json::from_str(&ok(mend(
        d,
        &[
            "train",
            "--data",
            "train.csv",
            "--label",
            "label",
            "--out",
            "m.mend",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(train["rows_train"], 4800);
    assert_eq!(train["rows_holdout"], 1200);
    let holdout_acc = train["holdout"]["accuracy"].as_f64().unwrap();
    assert!(holdout_acc > 0.8, "holdout accuracy {holdout_acc}");
    assert!(d.join("m.mend").exists());

    let eval: serde_json::Value = serde_json::from_str(&ok(mend(
        d,
        &[
            "evaluate", "--model", "m.mend", "--data", "test.csv", "--json",
        ],
    )))
    .unwrap();
    assert_eq!(eval["rows"], 1000);
    let test_acc = eval["accuracy"].as_f64().unwrap();
    assert!(test_acc > 0.8, "test accuracy {test_acc}");

    ok(mend(
        d,
        &[
            "predict", "--model", "m.mend", "--data", "test.csv", "--out", "pred.csv",
        ],
    ));
    let pred = std::fs::read_to_string(d.join("pred.csv")).unwrap();
    let mut lines = pred.lines();
    assert_eq!(lines.next(), Some("id,p_no,p_yes,label"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows[0][0], "100000");
    // Predicted labels agree with the test labels at the evaluated accuracy.
    let truth: Vec<String> = std::fs::read_to_string(d.join("test.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_owned())
        .collect();
    let agree = rows
        .iter()
        .zip(&truth)
        .filter(|(r, t)| r[3] == t.as_str())
        .count() as f64
        / 1000.0;
    assert!(
        (agree - test_acc).abs() < 1e-9,
        "predict and evaluate disagree: {agree} vs {test_acc}"
    );
    for r in &rows {
        let p: f64 = r[1].parse::<f64>().unwrap() + r[2].parse::<f64>().unwrap();
        assert!((p - 1.0).abs() < 1e-5);
    }

    let human = ok(mend(d, &["inspect", "m.mend"]));
    assert!(
        human.contains("classes [no, yes]")
            && human.contains("x0")
            && human.contains("categorical"),
        "{human}"
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(mend(d, &["inspect", "m.mend", "--json"]))).unwrap();
    assert_eq!(inspected["schema"]["features"].as_array().unwrap().len(), 6);
    assert_eq!(inspected["sha256"], train["sha256"]);
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bad.csv"), "a,b,label\n1,2,yes\n1,2,no\n3,x,yes\n").unwrap();
    std::fs::write(d.join("schema.json"), r#"{"columns": {"b": "numeric"}}"#).unwrap();
    let out = mend(
        d,
        &[
            "train",
            "--data",
            "bad.csv",
            "--label",
            "label",
            "--schema",
            "schema.json",
            "--out",
            "m.mend",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 4, column `b`, value \"x\": not a number"),
        "{err}"
    );

    let out = mend(
        d,
        &[
            "train", "--data", "bad.csv", "--label", "nope", "--out", "m.mend",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("label column `nope`"));

    std::fs::write(d.join("fake.mend"), "MEND-MODEL 1 sha256:00\n{}").unwrap();
    let out = mend(d, &["inspect", "fake.mend"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
}
