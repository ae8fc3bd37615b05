//! `WatchAliases`: an optional snapshot of where every alias points, then live moves,
//! until the client hangs up or the registry shuts down.
//!
//! The store watch is opened before the snapshot is read, so no move can fall between
//! the two (a move may show up in both, which a follower handles like any repeat). A
//! watcher that falls behind gets a fresh snapshot instead of an error.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use mend_proto::registry::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::status::store_error_status;
use crate::{AliasWatch, RegistryStore, StoreError, convert};

/// Moves buffered per watcher before the registry waits for it.
const BUFFER: usize = 64;

/// The response stream of `WatchAliases`.
pub type AliasMoveStream = BoxStream<'static, Result<pb::AliasMove, Status>>;

/// Starts following `model`'s aliases.
pub async fn watch(
    store: Arc<dyn RegistryStore>,
    model: String,
    include_current: bool,
    shutdown: CancellationToken,
) -> Result<AliasMoveStream, Status> {
    let moves = store
        .watch_aliases(&model)
        .await
        .map_err(store_error_status)?;
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(forward(
        store,
        model,
        include_current,
        moves,
        sender,
        shutdown,
    ));
    Ok(ReceiverStream::new(receiver).boxed())
}

/// Sends the snapshot (if asked for), then relays live moves to the client until it
/// leaves, the store watch ends, or shutdown. Runs as its own task, so a snapshot larger
/// than the buffer simply waits for the client to read.
async fn forward(
    store: Arc<dyn RegistryStore>,
    model: String,
    include_current: bool,
    mut moves: AliasWatch,
    sender: mpsc::Sender<Result<pb::AliasMove, Status>>,
    shutdown: CancellationToken,
) {
    if include_current && let Err(status) = send_snapshot(store.as_ref(), &model, &sender).await {
        let _ = sender.send(Err(status)).await;
        return;
    }
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            () = sender.closed() => break,
            next = moves.next() => next,
        };
        let sent = match next {
            None => break,
            Some(Ok(record)) => sender.send(Ok(convert::alias_move(&record))).await.is_ok(),
            Some(Err(StoreError::WatchLagged { missed })) => {
                tracing::warn!(%model, missed, "alias watcher lagged; sending a fresh snapshot");
                send_snapshot(store.as_ref(), &model, &sender).await.is_ok()
            }
            Some(Err(error)) => {
                let _ = sender.send(Err(store_error_status(error))).await;
                break;
            }
        };
        if !sent {
            break;
        }
    }
    tracing::debug!(%model, "alias watch ended");
}

/// One `current` move per existing alias; none for a model with no aliases (or none yet).
async fn send_snapshot(
    store: &dyn RegistryStore,
    model: &str,
    sender: &mpsc::Sender<Result<pb::AliasMove, Status>>,
) -> Result<(), Status> {
    let aliases = match store.model(model).await {
        Ok(summary) => summary.aliases,
        Err(StoreError::ModelNotFound { .. }) => Default::default(),
        Err(error) => return Err(store_error_status(error)),
    };
    for (alias, version) in aliases {
        let current = pb::AliasMove {
            model: model.to_owned(),
            alias,
            version,
            previous_version: None,
            audit_seq: 0,
            time_ms: 0,
            current: true,
        };
        sender
            .send(Ok(current))
            .await
            .map_err(|_| Status::cancelled("watcher left"))?;
    }
    Ok(())
}
