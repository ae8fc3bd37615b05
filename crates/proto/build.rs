//! Generates the gRPC code from `proto/` with the pure-Rust `protox` compiler, so a fresh
//! machine needs no system `protoc`. Also writes the encoded descriptor set for reflection.

use std::path::PathBuf;

use prost::Message;

/// Every .proto compiled into this crate, relative to the `proto/` include root.
const PROTO_FILES: &[&str] = &[
    "inference/grpc_predict_v2.proto",
    "mend/registry/v1/registry.proto",
    "mend/ingest/v1/ingest.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    // Cargo scans a directory given here recursively, so new and edited files both count.
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let descriptor_set = protox::compile(PROTO_FILES, [&proto_root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("mend_descriptor.bin"),
        descriptor_set.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Tensor payloads and artifact chunks are large; `Bytes` lets prost decode them
        // without copying out of the receive buffer.
        .bytes(".")
        // A request that does not decode is the client's fault: INVALID_ARGUMENT.
        .codec_path("crate::codec::Codec")
        .compile_fds(descriptor_set)?;
    Ok(())
}
