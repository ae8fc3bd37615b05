//! Receiving a `RegisterVersion` upload: the header first, then the artifact in chunks of
//! any size, checked against the configured limit as it arrives and against the header's
//! size and sha256 once complete.
//!
//! Nothing is stored until the whole artifact has arrived and passed those checks, so an
//! upload cut off at any point (client killed, connection lost, registry restarted)
//! registers nothing.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::register_version_request::Part;
use sha2::{Digest, Sha256};
use tonic::Status;

use super::status::{convert_error_status, invalid_argument, prefixed_store_error};
use crate::{NewVersion, convert, names};

/// Most memory reserved up front for an upload, whatever size its header announces.
const INITIAL_CAPACITY_LIMIT: u64 = 16 * 1024 * 1024;

/// A complete upload, checked and ready to register.
#[derive(Debug)]
pub struct Upload {
    pub new: NewVersion,
    pub artifact: Bytes,
}

/// What the header promised about the artifact, checked once it has arrived.
struct Expected {
    sha256: Option<String>,
    size: Option<u64>,
}

/// Reads a whole upload from `requests`. `max_bytes` bounds the artifact; `trace_id` goes
/// to the audit record.
pub async fn receive<S>(mut requests: S, max_bytes: u64, trace_id: String) -> Result<Upload, Status>
where
    S: Stream<Item = Result<pb::RegisterVersionRequest, Status>> + Unpin,
{
    let header = match requests.next().await {
        None => {
            return Err(invalid_argument(
                "header",
                "the stream is empty; the first message must carry the header",
            ));
        }
        Some(Err(status)) => return Err(status),
        Some(Ok(pb::RegisterVersionRequest {
            part: Some(Part::Header(header)),
        })) => header,
        Some(Ok(_)) => {
            return Err(invalid_argument(
                "header",
                "the first message must carry the header, before any chunk",
            ));
        }
    };
    let expected = check_header(&header, max_bytes)?;
    let new = convert::new_version(header, trace_id)
        .map_err(|error| convert_error_status("header.", &error))?;

    // Trust the announced size only so far: a header alone must not reserve a lot of memory.
    let capacity = expected
        .size
        .unwrap_or(0)
        .min(max_bytes)
        .min(INITIAL_CAPACITY_LIMIT);
    let mut artifact = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut chunks = 0u64;
    while let Some(message) = requests.next().await {
        let message = message.inspect_err(|status| {
            tracing::info!(
                model = %new.model,
                received_bytes = artifact.len(),
                code = ?status.code(),
                "upload interrupted; nothing registered"
            );
        })?;
        match message.part {
            Some(Part::Chunk(chunk)) => {
                let total = artifact.len() as u64 + chunk.len() as u64;
                if total > max_bytes {
                    return Err(Status::resource_exhausted(format!(
                        "artifact is larger than the {max_bytes} bytes this registry accepts \
                         (MEND_REGISTRY_MAX_ARTIFACT_BYTES)"
                    )));
                }
                artifact.extend_from_slice(&chunk);
                chunks += 1;
            }
            Some(Part::Header(_)) => {
                return Err(invalid_argument(
                    "header",
                    "only the first message may carry the header",
                ));
            }
            None => return Err(invalid_argument("part", "must be a header or a chunk")),
        }
    }
    let artifact = artifact.freeze();
    check_artifact(&expected, &artifact).await?;
    tracing::debug!(model = %new.model, bytes = artifact.len(), chunks, "upload received");
    Ok(Upload { new, artifact })
}

/// Refuses a header that can only fail, before any chunk is read.
fn check_header(header: &pb::RegisterVersionHeader, max_bytes: u64) -> Result<Expected, Status> {
    names::validate("model", &header.model)
        .map_err(|error| prefixed_store_error("header.", error))?;
    let sha256 = if header.artifact_sha256.is_empty() {
        None
    } else {
        let well_formed = header.artifact_sha256.len() == 64
            && header
                .artifact_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(invalid_argument(
                "header.artifact_sha256",
                "must be 64 lowercase hex digits (or empty)",
            ));
        }
        Some(header.artifact_sha256.clone())
    };
    if header.artifact_size > max_bytes {
        return Err(invalid_argument(
            "header.artifact_size",
            &format!(
                "{} bytes is more than the {max_bytes} bytes this registry accepts",
                header.artifact_size
            ),
        ));
    }
    let size = (header.artifact_size != 0).then_some(header.artifact_size);
    Ok(Expected { sha256, size })
}

/// Checks the complete artifact against what the header promised.
async fn check_artifact(expected: &Expected, artifact: &Bytes) -> Result<(), Status> {
    if artifact.is_empty() {
        return Err(invalid_argument("chunk", "the artifact is empty"));
    }
    if let Some(size) = expected.size
        && size != artifact.len() as u64
    {
        return Err(invalid_argument(
            "header.artifact_size",
            &format!("announced {size} bytes, received {}", artifact.len()),
        ));
    }
    if let Some(sha256) = &expected.sha256 {
        let bytes = artifact.clone();
        // Hashing 100 MB takes about half a second: not on the async executor.
        let actual = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
            .await
            .map_err(|error| Status::internal(format!("hashing task failed: {error}")))?;
        if &actual != sha256 {
            return Err(invalid_argument(
                "header.artifact_sha256",
                &format!("announced {sha256}, the received bytes hash to {actual}"),
            ));
        }
    }
    check_loads(artifact).await
}

/// Checks that the artifact is a model this build can serve: its header, its format
/// version, the sha256 of its body that the header names, and that the body parses into a
/// consistent model. A version is a promise that it can be served, so nothing else is
/// committed (raw gRPC uploads skip every check a client may have made).
async fn check_loads(artifact: &Bytes) -> Result<(), Status> {
    let bytes = artifact.clone();
    // Parsing a large artifact takes a while: not on the async executor.
    let loaded = tokio::task::spawn_blocking(move || mend_core::Artifact::from_bytes(&bytes))
        .await
        .map_err(|error| Status::internal(format!("artifact check failed: {error}")))?;
    loaded.map(|_| ()).map_err(|error| {
        invalid_argument(
            "artifact",
            &format!("not a mend model this registry can serve: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tonic::Code;

    fn header(model: &str) -> pb::RegisterVersionHeader {
        pb::RegisterVersionHeader {
            model: model.into(),
            trigger: Some(pb::Trigger {
                event_id: String::new(),
                kind: pb::TriggerKind::Manual.into(),
            }),
            ..Default::default()
        }
    }

    fn messages(
        header: pb::RegisterVersionHeader,
        chunks: &[&[u8]],
    ) -> Vec<Result<pb::RegisterVersionRequest, Status>> {
        let mut messages = vec![Ok(pb::RegisterVersionRequest {
            part: Some(Part::Header(header)),
        })];
        messages.extend(chunks.iter().map(|chunk| {
            Ok(pb::RegisterVersionRequest {
                part: Some(Part::Chunk(Bytes::copy_from_slice(chunk))),
            })
        }));
        messages
    }

    async fn run(
        messages: Vec<Result<pb::RegisterVersionRequest, Status>>,
        max: u64,
    ) -> Result<Upload, Status> {
        receive(futures::stream::iter(messages), max, "t".into()).await
    }

    #[tokio::test]
    async fn joins_chunks_and_checks_size_and_digest() {
        let model = mend_testkit::artifacts::model_bytes(1);
        let mut h = header("churn");
        h.artifact_size = model.len() as u64;
        h.artifact_sha256 = hex::encode(Sha256::digest(&model));
        let (a, rest) = model.split_at(100);
        let (b, c) = rest.split_at(1000);
        let upload = run(messages(h, &[a, b, c]), 1 << 20).await.unwrap();
        assert_eq!(&upload.artifact[..], &model[..]);
        assert_eq!(upload.new.model, "churn");
        assert_eq!(upload.new.trace_id, "t");
    }

    /// Bytes that are not a model the registry can serve are refused before anything is
    /// stored, even when the header's digest matches them (a raw client hashed what it sent).
    #[tokio::test]
    async fn refuses_what_is_not_a_loadable_model() {
        let model = mend_testkit::artifacts::model_bytes(1);
        let newline = model.iter().position(|&b| b == b'\n').unwrap();
        let mut flipped = model.clone();
        flipped[newline + 10] ^= 0x01;
        let mut newer = model.clone();
        newer.splice(0..12, b"MEND-MODEL 99".iter().copied());
        for (bytes, why) in [
            (flipped, "checksum"),
            (newer, "format"),
            (b"abcdef".to_vec(), "not a mend model artifact"),
        ] {
            let mut h = header("churn");
            h.artifact_sha256 = hex::encode(Sha256::digest(&bytes));
            let status = run(messages(h, &[&bytes]), 1 << 20).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status
                    .message()
                    .starts_with("invalid artifact: not a mend model this registry can serve"),
                "{}",
                status.message()
            );
            assert!(
                status.message().contains(why),
                "{why}: {}",
                status.message()
            );
        }
    }

    #[tokio::test]
    async fn refuses_what_the_header_did_not_promise() {
        let mut wrong_size = header("churn");
        wrong_size.artifact_size = 7;
        let status = run(messages(wrong_size, &[b"abcdef"]), 100)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("header.artifact_size"));

        let mut wrong_digest = header("churn");
        wrong_digest.artifact_sha256 = hex::encode(Sha256::digest(b"other"));
        let status = run(messages(wrong_digest, &[b"abcdef"]), 100)
            .await
            .unwrap_err();
        assert!(status.message().contains("header.artifact_sha256"));

        let status = run(messages(header("churn"), &[b"abcdef"]), 5)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn malformed_streams_name_the_field() {
        let status = run(messages(header("a.b"), &[b"x"]), 100)
            .await
            .unwrap_err();
        assert_eq!(
            status.message(),
            "invalid header.model: must use only letters, digits, '_' and '-' (found '.')"
        );

        let mut no_trigger = header("churn");
        no_trigger.trigger = None;
        let status = run(messages(no_trigger, &[b"x"]), 100).await.unwrap_err();
        assert!(
            status.message().starts_with("invalid header.trigger:"),
            "{}",
            status.message()
        );

        let chunk_first = vec![Ok(pb::RegisterVersionRequest {
            part: Some(Part::Chunk(Bytes::from_static(b"x"))),
        })];
        let status = run(chunk_first, 100).await.unwrap_err();
        assert!(status.message().starts_with("invalid header:"));

        let status = run(messages(header("churn"), &[]), 100).await.unwrap_err();
        assert!(status.message().starts_with("invalid chunk:"));
    }

    #[tokio::test]
    async fn an_interrupted_stream_is_an_error_not_a_short_artifact() {
        let mut interrupted = messages(header("churn"), &[b"abc"]);
        interrupted.push(Err(Status::cancelled("client went away")));
        let status = run(interrupted, 100).await.unwrap_err();
        assert_eq!(status.code(), Code::Cancelled);
    }
}
