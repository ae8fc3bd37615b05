//! Bearer-token authorisation of registry writes.
//!
//! Writes (RegisterVersion, SetAlias, RequestRetrain) need `authorization: Bearer <token>`
//! when a token is configured; reads never do. The comparison runs over sha256 digests of both tokens and
//! looks at every byte, so neither the content nor the length of the configured token
//! leaks through timing. Tokens never reach a log line.

use mend_runtime::Secret;
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

const AUTHORIZATION: &str = "authorization";
const BEARER: &str = "bearer ";

/// Who may write: anyone (no token configured) or holders of the token.
#[derive(Clone)]
pub struct WriteAuth {
    token_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for WriteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteAuth")
            .field("token_required", &self.token_digest.is_some())
            .finish()
    }
}

impl WriteAuth {
    /// Writes need `token` when it is given, nothing otherwise.
    pub fn new(token: Option<&Secret>) -> Self {
        Self {
            token_digest: token.map(|token| digest(token.expose())),
        }
    }

    /// Whether writes need a token.
    pub fn is_required(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Admits a write request, or answers UNAUTHENTICATED.
    pub fn check(&self, metadata: &MetadataMap, method: &'static str) -> Result<(), Status> {
        self.check_header(
            metadata.get(AUTHORIZATION).map(|value| value.as_bytes()),
            method,
        )
    }

    /// Admits a write by the value of its `authorization` header (gRPC metadata or HTTP), or
    /// answers UNAUTHENTICATED saying what is wrong.
    pub fn check_header(&self, header: Option<&[u8]>, method: &'static str) -> Result<(), Status> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        let Some(header) = header else {
            tracing::warn!(method, "registry write without a bearer token refused");
            return Err(Status::unauthenticated(
                "registry writes need `authorization: Bearer <token>` (MEND_REGISTRY_TOKEN)",
            ));
        };
        let presented = std::str::from_utf8(header)
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_at_checked(BEARER.len())?;
                scheme.eq_ignore_ascii_case(BEARER).then_some(token.trim())
            })
            .ok_or_else(|| {
                tracing::warn!(
                    method,
                    "registry write with a malformed authorization refused"
                );
                Status::unauthenticated("authorization must be `Bearer <token>`")
            })?;
        if constant_time_eq(&digest(presented), expected) {
            return Ok(());
        }
        tracing::warn!(method, "registry write with a wrong bearer token refused");
        Err(Status::unauthenticated("invalid bearer token"))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares every byte whatever the first difference, so timing says nothing.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tonic::Code;

    fn metadata(authorization: Option<&str>) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        if let Some(value) = authorization {
            metadata.insert(AUTHORIZATION, value.parse().unwrap());
        }
        metadata
    }

    #[test]
    fn without_a_token_every_write_is_admitted() {
        let auth = WriteAuth::new(None);
        assert!(!auth.is_required());
        auth.check(&metadata(None), "SetAlias").unwrap();
        auth.check(&metadata(Some("Bearer anything")), "SetAlias")
            .unwrap();
    }

    #[test]
    fn with_a_token_only_the_right_bearer_is_admitted() {
        let auth = WriteAuth::new(Some(&Secret::new("s3cret")));
        auth.check(&metadata(Some("Bearer s3cret")), "SetAlias")
            .unwrap();
        auth.check(&metadata(Some("bearer s3cret")), "SetAlias")
            .unwrap();
        for bad in [
            None,
            Some("Bearer wrong"),
            Some("s3cret"),
            Some("Basic s3cret"),
            Some("Bearer s3cret2"),
        ] {
            let status = auth.check(&metadata(bad), "SetAlias").unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{bad:?}");
            assert!(!status.message().contains("s3cret"));
        }
    }

    #[test]
    fn debug_does_not_show_the_token() {
        let auth = WriteAuth::new(Some(&Secret::new("s3cret")));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
