#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn churn() -> ModelName {
    ModelName::new("churn").unwrap()
}

#[test]
fn decodes_a_retrain_request_as_a_user_types_it_on_the_nats_cli() {
    let envelope = Envelope::decode(
        "retrain.requested.churn",
        br#"{"v":1,"reason":"quarterly"}"#,
    )
    .unwrap();
    assert_eq!(envelope.model, churn());
    assert!(!envelope.id.is_empty(), "a missing id is generated");
    assert_eq!(
        envelope.event,
        Event::RetrainRequested(RetrainRequested {
            reason: "quarterly".into(),
            window: None,
            requested_by: None,
        })
    );
}

#[test]
fn decodes_a_hand_written_window_and_tolerates_unknown_fields() {
    let envelope = Envelope::decode(
        "retrain.requested.churn",
        br#"{"v":1,"reason":"backfill","window":{"last_rows":5000},"colour":"blue","nested":{"x":1}}"#,
    )
    .unwrap();
    let Event::RetrainRequested(request) = envelope.event else {
        panic!("wrong variant");
    };
    let window = request.window.unwrap();
    assert_eq!(window.last_rows, Some(5000));
    assert_eq!(
        window.to_log_window(),
        Some(crate::datalog::Window::last(5000))
    );
}

#[test]
fn a_missing_required_field_is_named() {
    let error = Envelope::decode("retrain.requested.churn", br#"{"v":1}"#).unwrap_err();
    assert!(error.to_string().contains("reason"), "{error}");

    let error =
        Envelope::decode("model.promoted.churn", br#"{"v":1,"reason":"better"}"#).unwrap_err();
    assert!(error.to_string().contains("version"), "{error}");

    let error =
        Envelope::decode("alert.churn", br#"{"v":1,"severity":"loud","text":"x"}"#).unwrap_err();
    assert!(error.to_string().contains("loud"), "{error}");
}

#[test]
fn versions_are_required_and_newer_ones_refused_clearly() {
    let error = Envelope::decode("retrain.requested.churn", br#"{"reason":"x"}"#).unwrap_err();
    assert_eq!(error, DecodeError::MissingVersion);
    assert!(error.to_string().contains("`v`"));

    let error =
        Envelope::decode("retrain.requested.churn", br#"{"v":2,"reason":"x"}"#).unwrap_err();
    assert_eq!(
        error,
        DecodeError::VersionTooNew {
            found: 2,
            supported: 1
        }
    );
    assert!(error.to_string().contains("newer"));

    let error =
        Envelope::decode("retrain.requested.churn", br#"{"v":"1","reason":"x"}"#).unwrap_err();
    assert!(matches!(error, DecodeError::InvalidVersion(_)));
}

#[test]
fn rejects_what_is_not_an_event() {
    assert!(matches!(
        Envelope::decode("retrain.requested.churn", b"not json").unwrap_err(),
        DecodeError::NotJson(_)
    ));
    assert_eq!(
        Envelope::decode("retrain.requested.churn", b"[1]").unwrap_err(),
        DecodeError::NotAnObject
    );
    assert!(matches!(
        Envelope::decode("data.rows.churn", br#"{"v":1}"#).unwrap_err(),
        DecodeError::NotAnEventSubject(_)
    ));
    assert!(matches!(
        Envelope::decode(
            "retrain.requested.churn",
            br#"{"v":1,"reason":"x","time":"yesterday"}"#
        )
        .unwrap_err(),
        DecodeError::InvalidField { field: "time", .. }
    ));
}

#[test]
fn encodes_flat_json_with_version_id_and_time_and_decodes_back() {
    let mut envelope = Envelope::new(
        churn(),
        ModelPromoted {
            version: 7,
            previous: Some(6),
            reason: "beat champion by 0.04 accuracy".into(),
            metrics: Metrics::from([("accuracy".to_owned(), 0.91)]),
            trigger_event_id: Some("abc".into()),
        },
    );
    // 2027-01-15T08:00:00.5Z
    envelope.time = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_500_000_000).unwrap();
    let bytes = envelope.encode().unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(json["id"], envelope.id.as_str());
    assert_eq!(json["time"], "2027-01-15T08:00:00.5Z");
    assert_eq!(json["version"], 7);
    assert_eq!(envelope.subject(), "model.promoted.churn");

    let decoded = Envelope::decode(&envelope.subject(), &bytes).unwrap();
    assert_eq!(decoded, envelope);
}

#[test]
fn fallbacks_make_id_and_time_stable_across_redeliveries() {
    let at = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let payload = br#"{"v":1,"reason":"quarterly"}"#;
    let first = Envelope::decode_with(
        "retrain.requested.churn",
        payload,
        || "MEND_EVENTS-42".into(),
        at,
    )
    .unwrap();
    let again = Envelope::decode_with(
        "retrain.requested.churn",
        payload,
        || "MEND_EVENTS-42".into(),
        at,
    )
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(first.id, "MEND_EVENTS-42");
    assert_eq!(first.time, at);
}
