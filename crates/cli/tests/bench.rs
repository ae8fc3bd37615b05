#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend bench` as a user runs it: a self-served model under load, with promotions, in both
//! input layouts and contents, then against a server address.

use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mend"))
        .arg("--json")
        .arg("bench")
        .args([
            "--duration",
            "400ms",
            "--warmup",
            "100ms",
            "--concurrency",
            "4",
        ])
        .args(args)
        .output()
        .expect("mend runs")
}

fn report(out: Output) -> Value {
    assert!(
        out.status.success(),
        "mend bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn self_served_load_with_promotions_fails_nothing() {
    let out = report(bench(&["--self-serve", "--promotions", "5", "--rows", "3"]));
    assert!(out["requests"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["errors"], serde_json::json!({}), "{out}");
    assert_eq!(out["promotions"], 5, "{out}");
    assert_eq!(out["rows_per_request"], 3);
    let p50 = out["latency_ms"]["p50"].as_f64().unwrap();
    let p99 = out["latency_ms"]["p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50, "{out}");
}

#[test]
fn both_layouts_and_contents_run() {
    let features = report(bench(&[
        "--self-serve",
        "--categorical",
        "1",
        "--layout",
        "features",
        "--raw",
        "--server-threads",
        "1",
    ]));
    assert!(
        features["shape"].as_str().unwrap().contains("9 tensors"),
        "{features}"
    );
    let matrix = report(bench(&["--self-serve", "--rows", "100", "--raw"]));
    assert!(
        matrix["shape"].as_str().unwrap().contains("FP32 [100, 8]"),
        "{matrix}"
    );
    assert_eq!(matrix["errors"], serde_json::json!({}));
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = bench(&["--addr", &addr]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to connect"), "{stderr}");
}
