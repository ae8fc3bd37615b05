//! `RequestRetrain`: a forced retrain asked for over gRPC, turned into the same
//! `retrain.requested.<model>` event a user can publish by hand on NATS.
//!
//! The registry is the natural door for it: it already authorises writes with the bearer
//! token, knows which models exist (so a typo is NOT_FOUND instead of an event the trainer
//! would drop), and holds a bus. It records nothing itself; the trainer's lineage names the
//! event id returned here.

use std::sync::Arc;

use mend_bus::events::{DataWindow, RetrainRequested};
use mend_bus::{Bus, Envelope, ModelName, publish_event};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::retrain_window::Window;
use tonic::Status;

use super::status::{invalid_argument, store_error_status};
use crate::{RegistryStore, names};

/// Longest reason accepted; it travels in an event and lineage, not a document.
const MAX_REASON_CHARS: usize = 1024;

/// Validates the request, checks the model exists and publishes the event; returns the
/// event id and subject.
pub(super) async fn request_retrain(
    store: &dyn RegistryStore,
    bus: Option<&Arc<dyn Bus>>,
    request: pb::RequestRetrainRequest,
) -> Result<pb::RequestRetrainResponse, Status> {
    names::validate("model", &request.model).map_err(store_error_status)?;
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(invalid_argument(
            "reason",
            "must not be empty; say why the model should be retrained",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(invalid_argument(
            "reason",
            &format!("is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    let window = window(request.window)?;
    // An unknown model is the caller's mistake, reported as NOT_FOUND before anything is sent.
    store
        .model(&request.model)
        .await
        .map_err(store_error_status)?;
    let Some(bus) = bus else {
        return Err(Status::failed_precondition(
            "this registry has no event bus (MEND_NATS_URL is not set), so it cannot ask the trainer for a retrain; run it with NATS or use `mend up`",
        ));
    };
    let model = ModelName::new(request.model.clone())
        .map_err(|error| invalid_argument("model", &error.to_string()))?;
    let actor = request.actor.trim();
    let envelope = Envelope::new(
        model,
        RetrainRequested {
            reason: reason.to_owned(),
            window,
            requested_by: (!actor.is_empty()).then(|| actor.to_owned()),
        },
    );
    let subject = envelope.subject();
    publish_event(bus.as_ref(), &envelope)
        .await
        .map_err(|error| {
            tracing::error!(model = %request.model, %error, "retrain request could not be published");
            Status::unavailable(format!("failed to publish {subject}: {error}"))
        })?;
    tracing::info!(
        model = %request.model,
        event_id = %envelope.id,
        actor,
        "retrain requested"
    );
    Ok(pb::RequestRetrainResponse {
        event_id: envelope.id,
        subject,
    })
}

fn window(window: Option<pb::RetrainWindow>) -> Result<Option<DataWindow>, Status> {
    let Some(window) = window.and_then(|window| window.window) else {
        return Ok(None);
    };
    match window {
        Window::LastRows(0) => Err(invalid_argument(
            "window.last_rows",
            "must be at least 1 (leave the window unset for the trainer's default)",
        )),
        Window::LastRows(rows) => Ok(Some(DataWindow {
            last_rows: Some(rows),
            ..DataWindow::default()
        })),
        Window::Sequence(range) if range.from_seq == 0 || range.from_seq > range.to_seq => {
            Err(invalid_argument(
                "window.sequence",
                &format!(
                    "{}..={} is not a range of data-log sequences (they start at 1, from <= to)",
                    range.from_seq, range.to_seq
                ),
            ))
        }
        Window::Sequence(range) => Ok(Some(DataWindow {
            from_seq: Some(range.from_seq),
            to_seq: Some(range.to_seq),
            ..DataWindow::default()
        })),
    }
}
