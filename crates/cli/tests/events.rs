#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend events publish` and `mend events tail` as a user runs them: against a real `mend up`
//! (its in-process bus, through its HTTP port, with the registry's token guarding publishes)
//! and against a real `nats-server` with `--nats`.

mod common;

use std::time::{Duration, Instant};

use common::{Up, failed, mend, ok};
use serde_json::Value;

/// A free loopback address, as the services' variables take it.
fn free_addr() -> String {
    mend_testkit::free_addr().to_string()
}

/// Each JSON line `mend events tail --json` printed.
fn tailed(out: &str) -> Vec<Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_through_mend_up_with_the_token_and_come_back_in_the_tail() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (registry, server, ingest, http) = (free_addr(), free_addr(), free_addr(), free_addr());
    let vars: Vec<(&str, &str)> = vec![
        ("MEND_REGISTRY_ADDR", registry.as_str()),
        ("MEND_SERVER_ADDR", server.as_str()),
        ("MEND_INGEST_ADDR", ingest.as_str()),
        ("MEND_HTTP_ADDR", http.as_str()),
        ("MEND_REGISTRY_TOKEN", "s3cret"),
    ];
    let _up = Up::start(dir, &vars);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&http).is_err() {
        assert!(Instant::now() < deadline, "mend up did not start serving");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let request = r#"{"v":1,"reason":"quarterly"}"#;
    let publish = ["events", "publish", "retrain.requested.churn", request];
    // Without the token (or with a wrong one) the event is refused, as `mend retrain` would be.
    let without: Vec<(&str, &str)> = vars[..4].to_vec();
    let refused = failed(mend(dir, &without, &publish).await);
    assert!(
        refused.contains("401") && refused.contains("MEND_REGISTRY_TOKEN"),
        "{refused}"
    );
    let mut wrong = without.clone();
    wrong.push(("MEND_REGISTRY_TOKEN", "guess"));
    let refused = failed(mend(dir, &wrong, &publish).await);
    assert!(refused.contains("invalid bearer token"), "{refused}");
    // Not an event: said why, nothing published.
    let refused = failed(
        mend(
            dir,
            &vars,
            &["events", "publish", "retrain.requested.churn", "{}"],
        )
        .await,
    );
    assert!(refused.contains("missing field `v`"), "{refused}");
    let refused = failed(mend(dir, &vars, &["events", "publish", "nope.churn", request]).await);
    assert!(refused.contains("does not carry a mend event"), "{refused}");

    let published: Value =
        serde_json::from_str(&ok(
            mend(dir, &vars, &[&publish[..], &["--json"]].concat()).await
        ))
        .unwrap();
    assert_eq!(published["subject"], "retrain.requested.churn");
    let id = published["id"].as_str().unwrap().to_owned();

    // The tail shows it (from the start of the bus, so the test does not race the publish),
    // and what the trainer did with it: a model the registry does not know is not trained.
    let out = ok(mend(
        dir,
        &vars,
        &[
            "events",
            "tail",
            "retrain.>",
            "--all",
            "--count",
            "2",
            "--json",
        ],
    )
    .await);
    let lines = tailed(&out);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["subject"], "retrain.requested.churn");
    assert_eq!(lines[0]["event"]["id"], id.as_str());
    assert_eq!(lines[0]["event"]["reason"], "quarterly");
    assert_eq!(lines[1]["subject"], "retrain.decided.churn");
    assert_eq!(lines[1]["event"]["trigger_event_id"], id.as_str());
    assert_eq!(lines[1]["event"]["decision"], "dropped");
    // A person's view of the same, one line each.
    let human = ok(mend(
        dir,
        &vars,
        &[
            "events",
            "tail",
            "retrain.requested.*",
            "--all",
            "--count",
            "1",
        ],
    )
    .await);
    assert!(
        human.contains("retrain.requested.churn") && human.contains("quarterly"),
        "{human}"
    );
    let refused = failed(mend(dir, &vars, &["events", "tail", "data.rows.churn"]).await);
    assert!(refused.contains("not an event subject"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_through_nats_with_the_nats_flag() {
    let nats = tokio::task::spawn_blocking(mend_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let url = nats.url();
    let published: Value = serde_json::from_str(&ok(mend(
        dir,
        &[],
        &[
            "events",
            "--nats",
            &url,
            "publish",
            "drift.detected.churn",
            r#"{"v":1,"kind":"data","window":{},"features":[],"dataset_share":0.5,"dataset_drift":true}"#,
            "--json",
        ],
    )
    .await))
    .unwrap();
    let out = ok(mend(
        dir,
        &[("MEND_NATS_URL", url.as_str())],
        &["events", "tail", "--all", "--count", "1", "--json"],
    )
    .await);
    let lines = tailed(&out);
    assert_eq!(lines[0]["subject"], "drift.detected.churn");
    assert_eq!(lines[0]["event"]["id"], published["id"]);
    assert_eq!(lines[0]["event"]["dataset_share"], 0.5);
}
