//! What the registry announced: the champion-move events on the `MEND_EVENTS` stream, read
//! back by tests that check every move was announced exactly once.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream;

/// The ids of `model.promoted.<model>` and `model.rolled_back.<model>` events on the
/// `MEND_EVENTS` stream, each with how many times it was stored (empty without the stream).
pub async fn champion_moves_announced(
    context: &jetstream::Context,
    model: &str,
) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    let Ok(mut stream) = context.get_stream("MEND_EVENTS").await else {
        return ids;
    };
    let Ok(info) = stream.info().await else {
        return ids;
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let subjects = [
        format!("model.promoted.{model}"),
        format!("model.rolled_back.{model}"),
    ];
    for sequence in first..=last {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        if !subjects
            .iter()
            .any(|subject| *subject == message.subject.as_str())
        {
            continue;
        }
        let id = serde_json::from_slice::<serde_json::Value>(&message.payload)
            .ok()
            .and_then(|envelope| envelope["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("(no id at stream sequence {sequence})"));
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// The event ids the registry announces the champion moves of `audit` under (a move to the
/// version already champion announces nothing).
pub fn champion_move_ids(
    audit: &[mend_proto::registry::v1::AuditRecord],
    model: &str,
) -> BTreeSet<String> {
    audit
        .iter()
        .filter(|record| record.alias == "champion")
        .filter(|record| record.previous_version != Some(record.version))
        .map(|record| format!("registry-{model}-{}", record.seq))
        .collect()
}
