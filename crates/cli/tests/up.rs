#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend up` as a new user runs it: the real binary in its own process, with no monitor
//! setting at all. A model registered as champion is watched, and drifted rows and labels
//! ingested through the CLI lead to a retrain.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Up, mend, ok};
use serde_json::Value;

/// One GET with an `Accept` header over plain HTTP/1.1: the status line and the body.
fn http_get(addr: &str, path: &str, accept: &str) -> (String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nAccept: {accept}\r\n"),
        "",
    )
}

/// One POST of a JSON body over plain HTTP/1.1: the status line and the body.
fn http_post(addr: &str, path: &str, json: &str) -> (String, String) {
    let head = format!("POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n");
    http(addr, &head, json)
}

fn http(addr: &str, head: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{head}Host: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

async fn versions(dir: &Path, vars: &[(&str, &str)]) -> Vec<Value> {
    let out = mend(dir, vars, &["models", "list", "churn", "--json"]).await;
    if !out.status.success() {
        return Vec::new();
    }
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    listed
        .as_array()
        .cloned()
        .or_else(|| listed["versions"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mend_up_watches_a_registered_model_and_heals_it_with_no_monitor_setting() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    ok(mend(dir, &[], &["synth", "--out", "train.csv", "--rows", "4000"]).await);
    // The labelling rule flips: the champion loses performance on every new row.
    ok(mend(
        dir,
        &[],
        &[
            "synth",
            "--out",
            "new.csv",
            "--rows",
            "6000",
            "--flip",
            "--sample-seed",
            "2",
        ],
    )
    .await);
    ok(mend(
        dir,
        &[],
        &[
            "train",
            "--data",
            "train.csv",
            "--label",
            "label",
            "--out",
            "churn.mend",
        ],
    )
    .await);

    let registry = mend_testkit::free_addr().to_string();
    let server = mend_testkit::free_addr().to_string();
    let ingest = mend_testkit::free_addr().to_string();
    let http = mend_testkit::free_addr().to_string();
    let vars: Vec<(&str, &str)> = vec![
        ("MEND_REGISTRY_ADDR", registry.as_str()),
        ("MEND_SERVER_ADDR", server.as_str()),
        ("MEND_INGEST_ADDR", ingest.as_str()),
        ("MEND_HTTP_ADDR", http.as_str()),
    ];
    // Nothing about the monitor (or any pacing) is set: the defaults must heal.
    let _up = Up::start(dir, &vars);

    // The registry answers once `mend up` is serving.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mend(dir, &vars, &["models", "list", "--json"])
        .await
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "mend up did not start serving");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok(mend(
        dir,
        &vars,
        &[
            "models",
            "register",
            "churn",
            "churn.mend",
            "--alias",
            "champion",
            "--reason",
            "first model",
        ],
    )
    .await);
    assert_eq!(versions(dir, &vars).await.len(), 1);

    ok(mend(dir, &vars, &["ingest", "new.csv", "--model", "churn"]).await);
    ok(mend(
        dir,
        &vars,
        &["ingest", "new.csv", "--model", "churn", "--labels"],
    )
    .await);

    // The monitor found the model by itself, saw the drift, and the trainer retrained.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let listed = versions(dir, &vars).await;
        if listed.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no retrain followed the drift: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let audit = ok(mend(dir, &vars, &["models", "audit", "churn"]).await);
    // Version 2 answers the monitor's drift event (its id names the monitor and the drift).
    assert!(audit.contains("drift retrain"), "{audit}");
    assert!(audit.contains("monitor-churn-"), "{audit}");

    // The README's request body, as documented, answered by the champion over OIP REST.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let documented = readme
        .split("<!-- request.json")
        .nth(1)
        .and_then(|rest| rest.split("```json").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the README shows request.json");
    let (status, answer) = http_post(&http, "/v2/models/churn/infer", documented);
    assert!(status.contains("200"), "{status}: {answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["model_name"], "churn");
    assert_eq!(answer["outputs"][0]["name"], "probabilities");
    assert_eq!(answer["outputs"][0]["shape"], serde_json::json!([2, 2]));
    assert_eq!(answer["outputs"][1]["name"], "label");
    assert_eq!(answer["outputs"][1]["data"].as_array().unwrap().len(), 2);

    // One HTTP port serves everything: `mend report` finds the monitor's reports at
    // MEND_HTTP_ADDR, and `/` indexes them, as JSON or as a page with links.
    let report = ok(mend(dir, &vars, &["report", "churn", "--json"]).await);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["model"], "churn", "{report}");
    let (status, index) = http_get(&http, "/", "application/json");
    assert!(status.contains("200"), "{status}");
    let index: Value = serde_json::from_str(&index).unwrap();
    assert_eq!(index["models"][0]["model"], "churn", "{index}");
    assert_eq!(index["models"][0]["href"], "/reports/churn", "{index}");
    let (status, page) = http_get(&http, "/", "text/html,application/xhtml+xml,*/*;q=0.8");
    assert!(status.contains("200"), "{status}");
    assert!(
        page.contains("<a href=\"/reports/churn\">churn</a>"),
        "{page}"
    );
    let (_, page) = http_get(&http, "/reports/churn", "text/html");
    assert!(page.contains("/reports/churn/"), "{page}");
    assert!(page.contains(".html\""), "{page}");
    let (_, listing) = http_get(&http, "/reports/churn", "*/*");
    assert!(
        serde_json::from_str::<Value>(&listing).unwrap().is_array(),
        "{listing}"
    );

    // A forced retrain followed to its outcome: trained and judged, with the gate's numbers.
    let waited = ok(mend(
        dir,
        &vars,
        &[
            "retrain",
            "churn",
            "--reason",
            "quarterly",
            "--wait",
            "--timeout",
            "120",
        ],
    )
    .await);
    assert!(
        waited.contains("promoted: version") || waited.contains("rejected: version"),
        "{waited}"
    );
    assert!(waited.contains("candidate accuracy"), "{waited}");
    // Too few rows to train on: the run is dropped, said why, and the exit status says so.
    let out = mend(
        dir,
        &vars,
        &[
            "retrain",
            "churn",
            "--reason",
            "tiny",
            "--window-rows",
            "5",
            "--wait",
            "--json",
        ],
    )
    .await;
    assert!(!out.status.success());
    let dropped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dropped["decision"], "dropped", "{dropped}");
    assert!(
        dropped["reason"].as_str().unwrap().contains("labeled rows"),
        "{dropped}"
    );

    // The README's raw event, and the bus followed: the request and the trainer's decision.
    let published: Value = serde_json::from_str(&ok(mend(
        dir,
        &vars,
        &[
            "events",
            "publish",
            "retrain.requested.churn",
            r#"{"v":1,"reason":"quarterly"}"#,
            "--json",
        ],
    )
    .await))
    .unwrap();
    let id = published["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = ok(mend(
            dir,
            &vars,
            &[
                "events",
                "tail",
                "retrain.decided.churn",
                "--all",
                "--json",
                "--timeout",
                "2",
            ],
        )
        .await);
        if out.contains(id) {
            break;
        }
        assert!(Instant::now() < deadline, "no decision on {id}: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The trainer's decision on the monitor's alarm joins the same record once its run ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audit = ok(mend(dir, &vars, &["models", "audit", "churn"]).await);
        let decided = audit
            .lines()
            .find(|line| line.contains("decision: acted ->") && line.contains("monitor-churn-"));
        if decided.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the decision never reached the audit log: {audit}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
