#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend models` as an operator runs it, against a registry served inside the test.

mod common;

use common::{failed, mend, ok};

use mend_testkit::registry::TestRegistry;
use serde_json::Value;

const TOKEN: &str = "cli-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_promotes_rolls_back_and_audits() {
    let registry = TestRegistry::setup().token(TOKEN).start().await;
    let addr = registry.addr.to_string();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let writer = [
        ("MEND_REGISTRY_ADDR", addr.as_str()),
        ("MEND_REGISTRY_TOKEN", TOKEN),
    ];
    let reader = [("MEND_REGISTRY_ADDR", addr.as_str())];

    ok(mend(d, &[], &["synth", "--out", "train.csv", "--rows", "2000"]).await);
    ok(mend(
        d,
        &[],
        &[
            "train",
            "--data",
            "train.csv",
            "--label",
            "label",
            "--out",
            "m.mend",
        ],
    )
    .await);

    // Without the token a write is refused, with a hint.
    let refused = failed(mend(d, &reader, &["models", "register", "churn", "m.mend"]).await);
    assert!(refused.contains("Unauthenticated"), "{refused}");
    assert!(refused.contains("MEND_REGISTRY_TOKEN"), "{refused}");

    // A file that is not a model is refused before anything is sent.
    std::fs::write(d.join("junk.mend"), b"not a model").unwrap();
    let junk = failed(mend(d, &writer, &["models", "register", "churn", "junk.mend"]).await);
    assert!(junk.contains("not a usable mend model artifact"), "{junk}");

    let first: Value = serde_json::from_str(&ok(mend(
        d,
        &writer,
        &[
            "models", "register", "churn", "m.mend", "--alias", "champion", "--reason", "first",
            "--json",
        ],
    )
    .await))
    .unwrap();
    assert_eq!(first["version"], 1);
    assert_eq!(first["alias"]["version"], 1);
    assert_eq!(first["alias"]["previous_version"], Value::Null);
    let second = ok(mend(
        d,
        &writer,
        &[
            "models",
            "register",
            "churn",
            "m.mend",
            "--tag",
            "team=risk",
        ],
    )
    .await);
    assert!(second.contains("registered churn version 2"), "{second}");

    let list = ok(mend(d, &reader, &["models", "list"]).await);
    assert!(list.contains("churn"), "{list}");
    assert!(list.contains("champion=1"), "{list}");
    let versions: Value = serde_json::from_str(&ok(mend(
        d,
        &reader,
        &["models", "list", "churn", "--json"],
    )
    .await))
    .unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert!(versions[0]["metrics"]["holdout.accuracy"].as_f64().unwrap() > 0.5);
    assert_eq!(versions[1]["tags"]["team"], "risk");

    let shown: Value = serde_json::from_str(&ok(mend(
        d,
        &reader,
        &["models", "show", "churn:champion", "--json"],
    )
    .await))
    .unwrap();
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["trigger"]["kind"], "manual");
    assert!(!shown["schema_hash"].as_str().unwrap().is_empty());
    let latest = ok(mend(d, &reader, &["models", "show", "churn"]).await);
    assert!(latest.contains("version    2"), "{latest}");
    let missing = failed(mend(d, &reader, &["models", "show", "nobody:3"]).await);
    assert!(missing.contains("NotFound"), "{missing}");

    let promoted = ok(mend(
        d,
        &writer,
        &[
            "models",
            "promote",
            "churn",
            "2",
            "--reason",
            "better on fresh data",
        ],
    )
    .await);
    assert!(promoted.contains("version 1 -> 2"), "{promoted}");
    let rolled_back = ok(mend(d, &writer, &["models", "rollback", "churn"]).await);
    assert!(rolled_back.contains("version 2 -> 1"), "{rolled_back}");

    let audit: Value = serde_json::from_str(&ok(mend(
        d,
        &reader,
        &["models", "audit", "churn", "--json"],
    )
    .await))
    .unwrap();
    let actions: Vec<(&str, u64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("register", 1),
            ("set_alias", 1),
            ("register", 2),
            ("set_alias", 2),
            ("set_alias", 1),
        ]
    );
    assert_eq!(audit[3]["reason"], "better on fresh data");
    assert_eq!(audit[3]["actor"], "tester (mend cli)");
    assert_eq!(audit[4]["reason"], "rollback from version 2 to 1");
    let table = ok(mend(d, &reader, &["models", "audit", "churn"]).await);
    assert!(table.lines().next().unwrap().starts_with("SEQ"), "{table}");
    assert_eq!(table.lines().count(), 2 + 5);

    // The registry is not where the CLI looks: a clear message, not a hang.
    let unreachable = failed(
        mend(
            d,
            &[("MEND_REGISTRY_ADDR", "127.0.0.1:1")],
            &["models", "list"],
        )
        .await,
    );
    assert!(
        unreachable.contains("cannot reach the registry at 127.0.0.1:1"),
        "{unreachable}"
    );
}
