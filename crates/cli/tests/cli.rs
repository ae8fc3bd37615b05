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
    assert_eq!(lines.next(), Some("id,p_no,p_yes,predicted_label"));
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

/// Issue 17 point 1: one `abc` among thousands of numbers does not turn the column
/// categorical behind the user's back; training is refused with the bad cell named and how to
/// say otherwise. With the column declared categorical, the same file trains.
#[test]
fn a_stray_word_in_a_numeric_column_is_named_not_turned_into_a_category() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(mend(d, &["synth", "--out", "train.csv", "--rows", "3000"]));
    let text = std::fs::read_to_string(d.join("train.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let x0 = header.iter().position(|h| *h == "x0").unwrap();
    let mut cells: Vec<String> = lines[1234].split(',').map(str::to_owned).collect();
    cells[x0] = "abc".into();
    lines[1234] = cells.join(",");
    std::fs::write(d.join("typo.csv"), lines.join("\n") + "\n").unwrap();

    let train = |extra: &[&str]| {
        let mut args = vec![
            "train", "--data", "typo.csv", "--label", "label", "--out", "m.mend",
        ];
        args.extend_from_slice(extra);
        mend(d, &args)
    };
    let out = train(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1235, column `x0`, value \"abc\": not a number"),
        "{err}"
    );
    assert!(err.contains("--schema"), "{err}");

    std::fs::write(
        d.join("schema.json"),
        r#"{"columns": {"x0": "categorical"}}"#,
    )
    .unwrap();
    ok(train(&["--schema", "schema.json"]));
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
