//! `RecordDecision`: the trainer's decision on a retrain trigger over gRPC is a write (bearer
//! token), is checked (known model, a known decision, a reason) and lands in the model's audit
//! log as a DECISION record between the changes, where `GetAudit` returns it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service;

use mend_proto::registry::v1 as pb;
use service::{TOKEN, TestRegistry, authorized, register, with_token};
use tonic::{Code, Request};

fn decided(model: &str, decision: &str, reason: &str) -> pb::RecordDecisionRequest {
    pb::RecordDecisionRequest {
        model: model.to_owned(),
        trigger_event_id: "monitor-churn-drift-7".to_owned(),
        decision: decision.to_owned(),
        reason: reason.to_owned(),
        outcome: "rejected".to_owned(),
        run_event_id: "monitor-churn-drift-7".to_owned(),
        version: Some(1),
        actor: "mend-trainer".to_owned(),
    }
}

#[tokio::test]
async fn a_decision_needs_the_token_is_checked_and_joins_the_audit_log() {
    let registry = TestRegistry::start_with(None, &[("MEND_REGISTRY_TOKEN", TOKEN)]).await;
    let mut client = registry.client().await;
    register(
        &mut client,
        "churn",
        &mend_testkit::artifacts::model_bytes(1),
    )
    .await
    .unwrap();

    let without = client
        .record_decision(Request::new(decided("churn", "acted", "no token")))
        .await
        .unwrap_err();
    assert_eq!(without.code(), Code::Unauthenticated, "{without:?}");
    let wrong = client
        .record_decision(with_token(decided("churn", "acted", "wrong"), "nope"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");

    for (request, code, names) in [
        (decided("nosuch", "acted", "x"), Code::NotFound, "nosuch"),
        (
            decided("churn", "pondered", "x"),
            Code::InvalidArgument,
            "pondered",
        ),
        (
            decided("churn", "acted", " "),
            Code::InvalidArgument,
            "reason",
        ),
    ] {
        let refused = client
            .record_decision(authorized(request))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
        assert!(refused.message().contains(names), "{refused:?}");
    }

    let record = client
        .record_decision(authorized(decided(
            "churn",
            "acted",
            "retrained: the candidate lost on the holdout",
        )))
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert_eq!(record.seq, 2, "one registration, then this decision");
    assert_eq!(record.action, pb::AuditAction::Decision as i32);

    let audit = client
        .get_audit(Request::new(pb::GetAuditRequest {
            model: "churn".to_owned(),
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(audit.len(), 2, "the refused calls appended nothing");
    let on_record = &audit[1];
    assert_eq!(on_record, &record);
    assert_eq!(
        (
            on_record.decision.as_str(),
            on_record.outcome.as_str(),
            on_record.version,
            on_record.trigger_event_id.as_str(),
            on_record.reason.as_str(),
            on_record.actor.as_str(),
        ),
        (
            "acted",
            "rejected",
            1,
            "monitor-churn-drift-7",
            "retrained: the candidate lost on the holdout",
            "mend-trainer",
        )
    );
}
