//! `GetVersion` responses: the metadata, then the (already verified) artifact in chunks.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::get_version_response::Part;
use tonic::Status;

use crate::VersionMeta;

/// Size of each artifact chunk sent; well under tonic's 4 MiB default message limit.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The response stream of `GetVersion`.
pub type VersionStream = BoxStream<'static, Result<pb::GetVersionResponse, Status>>;

/// Metadata first, then `artifact` (if any) in [`CHUNK_BYTES`] pieces. The pieces share
/// the artifact's buffer, so nothing is copied.
pub fn version_stream(meta: &VersionMeta, artifact: Option<Bytes>) -> VersionStream {
    let first = pb::GetVersionResponse {
        part: Some(Part::Metadata(meta.into())),
    };
    let chunks = artifact.into_iter().flat_map(|artifact| {
        (0..artifact.len())
            .step_by(CHUNK_BYTES)
            .map(move |start| {
                let end = (start + CHUNK_BYTES).min(artifact.len());
                artifact.slice(start..end)
            })
            .collect::<Vec<_>>()
    });
    let responses = std::iter::once(first).chain(chunks.map(|chunk| pb::GetVersionResponse {
        part: Some(Part::Chunk(chunk)),
    }));
    futures::stream::iter(responses.map(Ok)).boxed()
}
