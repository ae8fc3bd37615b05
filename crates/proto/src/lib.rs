//! Generated gRPC code for mend, from the `.proto` files in the workspace's `proto/`
//! folder (the only source of every wire type). This crate holds no logic beyond its codec.
//!
//! - [`inference`]: the Open Inference Protocol V2 (`inference.GRPCInferenceService`),
//!   wire-compatible with KServe's `grpc_predict_v2.proto`.
//! - [`registry::v1`]: the model registry (`mend.registry.v1.Registry`).
//! - [`ingest::v1`]: row and label ingest (`mend.ingest.v1.Ingest`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of all three, for `tonic-reflection`.
//!
//! Every module has a `..._client` and a `..._server` submodule, both on [`codec::Codec`]
//! (prost, with malformed messages answered `INVALID_ARGUMENT`). `bytes` fields are
//! [`prost::bytes::Bytes`].

pub mod codec;

/// The Open Inference Protocol V2 (KServe predict API), package `inference`.
#[allow(clippy::all, missing_docs)]
pub mod inference {
    tonic::include_proto!("inference");
}

/// mend's own services under `mend.*`.
pub mod registry {
    /// `mend.registry.v1`: versions, artifacts, aliases, audit.
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mend.registry.v1");
    }
}

/// Ingest of rows and labels.
pub mod ingest {
    /// `mend.ingest.v1`: client-streamed batches of rows and labels.
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mend.ingest.v1");
    }
}

/// Encoded `FileDescriptorSet` of every service above, for gRPC reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mend_descriptor.bin"));

#[cfg(test)]
mod tests;
