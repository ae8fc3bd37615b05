#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend drift` as a user runs it: on generated files with a known shift, with a policy, on
//! hand-written files with unseen categories and bad cells, and on files that do not match.

use std::path::Path;
use std::process::{Command, Output};

use mend_core::report::escape::escape;

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

fn feature<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {report}"))
}

/// A reference of 6,000 rows and a current file of 3,000 whose x0 moved by `shift` std.
fn generated(dir: &Path, shift: &str) {
    ok(mend(dir, &["synth", "--out", "ref.csv", "--rows", "6000"]));
    ok(mend(
        dir,
        &[
            "synth",
            "--out",
            "cur.csv",
            "--rows",
            "3000",
            "--sample-seed",
            "11",
            "--shift",
            shift,
        ],
    ));
}

#[test]
fn finds_a_half_std_shift_and_writes_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(d, "0.5");
    let out = ok(mend(
        d,
        &[
            "drift",
            "--reference",
            "ref.csv",
            "--current",
            "cur.csv",
            "--label",
            "label",
            "--html",
            "report.html",
            "--json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["reference_rows"], 6000);
    assert_eq!(report["current_rows"], 3000);
    assert_eq!(
        report["left_out"],
        serde_json::json!(["id", "time", "label"])
    );
    let names: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x0", "x1", "x2", "x3", "x4", "c0"]);
    let x0 = feature(&report, "x0");
    assert_eq!(x0["test"], "wasserstein");
    assert_eq!(x0["drifted"], true);
    let w = x0["score"].as_f64().unwrap();
    assert!((0.4..0.6).contains(&w), "normed Wasserstein {w}");
    for name in ["x1", "x2", "x3", "x4", "c0"] {
        assert_eq!(feature(&report, name)["drifted"], false, "{name}");
    }
    assert_eq!(feature(&report, "c0")["test"], "jensen_shannon");
    // Feature drift in one feature of six: no dataset drift (the share rule).
    assert_eq!(report["dataset_drift"], false);
    assert_eq!(report["drifted_features"], 1);
    assert_eq!(report["feature_drift"], serde_json::json!(["x0"]));
    assert_eq!(report["label"], "label");
    // The JSON is a drift report the library reads back.
    let back: mend_core::drift::DriftReport = serde_json::from_str(&out).unwrap();
    assert_eq!(back.drifted_names(), vec!["x0"]);

    // The page opens with the same verdicts, worded the same.
    let page = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(page.contains("<svg"));
    assert!(page.contains("dataset drift: no (1 of 6 features drifted, share 0.17 &lt; 0.50)"));
    for verdict in back.verdicts() {
        assert!(page.contains(&escape(&verdict.line())), "{verdict}");
    }
    assert!(!page.contains("dataset drift: yes"));
}

#[test]
fn a_table_by_default_and_a_failing_exit_on_dataset_drift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(d, "1.0");
    let table = ok(mend(
        d,
        &[
            "drift",
            "--reference",
            "ref.csv",
            "--current",
            "cur.csv",
            "--label",
            "label",
        ],
    ));
    assert!(table.contains("feature"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("x0 ") && l.contains("DRIFT")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l == "dataset drift: no (1 of 6 features drifted, share 0.17 < 0.50)"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("feature drift: yes (x0: Wasserstein (normed) ")),
        "{table}"
    );
    assert!(
        table.contains("left out: id, time, label (the label)"),
        "{table}"
    );

    // A stricter policy: the dataset drifts once a tenth of the features do.
    std::fs::write(d.join("policy.json"), r#"{"dataset_drift_share": 0.1}"#).unwrap();
    let out = mend(
        d,
        &[
            "drift",
            "--reference",
            "ref.csv",
            "--current",
            "cur.csv",
            "--label",
            "label",
            "--policy",
            "policy.json",
            "--fail-on-drift",
        ],
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = "dataset drift: yes (1 of 6 features drifted, share 0.17 >= 0.10)";
    assert!(stdout.lines().any(|l| l == verdict), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(verdict), "{stderr}");
}

fn names(report: &serde_json::Value) -> Vec<&str> {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect()
}

#[test]
fn the_label_is_not_tested_as_a_feature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(d, "0.5");
    let drift = |extra: &[&str]| {
        let mut args = vec!["drift", "--reference", "ref.csv", "--current", "cur.csv"];
        args.extend_from_slice(extra);
        args.push("--json");
        let out = mend(d, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
        (report, stderr)
    };

    // Nothing named: the `label` column is the label, left out, and the user is told.
    let (report, stderr) = drift(&[]);
    assert!(
        stderr.contains("note: column `label` is taken as the label"),
        "{stderr}"
    );
    assert_eq!(names(&report), ["x0", "x1", "x2", "x3", "x4", "c0"]);
    assert_eq!(report["label"], "label");
    assert_eq!(report["tested_features"], 6);
    assert_eq!(
        report["left_out"],
        serde_json::json!(["id", "time", "label"])
    );

    // --no-label: every column is a feature, the label too.
    let (report, stderr) = drift(&["--no-label"]);
    assert!(!stderr.contains("note:"), "{stderr}");
    assert!(names(&report).contains(&"label"), "{report}");
    assert_eq!(report["label"], serde_json::Value::Null);
    assert_eq!(report["tested_features"], 7);

    // The label as a model's schema names it, under another name.
    for file in ["ref.csv", "cur.csv"] {
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        let (header, rows) = text.split_once('\n').unwrap();
        let header: Vec<&str> = header
            .split(',')
            .map(|h| if h == "label" { "outcome" } else { h })
            .collect();
        std::fs::write(d.join(file), format!("{}\n{rows}", header.join(","))).unwrap();
    }
    ok(mend(
        d,
        &[
            "train", "--data", "ref.csv", "--label", "outcome", "--out", "m.mend",
        ],
    ));
    let (report, stderr) = drift(&["--model", "m.mend"]);
    assert!(
        stderr.contains("column `outcome` is the label of m.mend's schema"),
        "{stderr}"
    );
    assert_eq!(report["label"], "outcome");
    assert!(!names(&report).contains(&"outcome"), "{report}");
    assert_eq!(report["tested_features"], 6);
    // Without the model nothing says `outcome` is a label: it is a feature.
    let (report, _) = drift(&[]);
    assert!(names(&report).contains(&"outcome"), "{report}");
    assert_eq!(report["label"], serde_json::Value::Null);
}

#[test]
fn unseen_categories_missing_values_and_bad_cells_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut reference = String::from("amount,colour\n");
    for i in 0..400 {
        reference.push_str(&format!("{},{}\n", i % 50, ["red", "green"][i % 2]));
    }
    let mut current = String::from("colour,amount,extra\n");
    for i in 0..300 {
        let colour = match i % 6 {
            0 => "purple",
            1 => "",
            _ => ["red", "green"][i % 2],
        };
        let amount = match i % 10 {
            0 => "NA".to_owned(),
            1 => "oops".to_owned(),
            _ => (i % 50).to_string(),
        };
        current.push_str(&format!("{colour},{amount},{i}\n"));
    }
    std::fs::write(d.join("ref.csv"), reference).unwrap();
    std::fs::write(d.join("cur.csv"), current).unwrap();
    let out = mend(
        d,
        &[
            "drift",
            "--reference",
            "ref.csv",
            "--current",
            "cur.csv",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert!(
        stderr.contains("30 value(s) of numeric column `amount` are not numbers"),
        "{stderr}"
    );
    let amount = feature(&report, "amount");
    assert_eq!(amount["kind"], "numeric");
    assert_eq!(amount["test"], "ks");
    assert!((amount["current"]["missing_rate"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    let colour = feature(&report, "colour");
    assert_eq!(colour["test"], "chi_square");
    assert_eq!(colour["unseen"]["count"], 50);
    assert_eq!(colour["unseen"]["top"][0][0], "purple");
    assert!((colour["current"]["missing_rate"].as_f64().unwrap() - 50.0 / 300.0).abs() < 1e-12);
    assert_eq!(colour["drifted"], true);
}

#[test]
fn files_that_do_not_match_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ref.csv"), "a,b\n1,2\n3,4\n").unwrap();
    std::fs::write(d.join("cur.csv"), "a\n1\n").unwrap();
    let out = mend(
        d,
        &["drift", "--reference", "ref.csv", "--current", "cur.csv"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cur.csv lacks column(s): b"), "{stderr}");

    let out = mend(
        d,
        &[
            "drift",
            "--reference",
            "ref.csv",
            "--current",
            "ref.csv",
            "--label",
            "y",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("column `y` is not in ref.csv"));
}
