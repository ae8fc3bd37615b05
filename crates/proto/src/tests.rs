//! The descriptor set describes the three services, and the OIP field numbers are KServe's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

fn file<'a>(set: &'a FileDescriptorSet, package: &str) -> &'a FileDescriptorProto {
    set.file
        .iter()
        .find(|f| f.package() == package)
        .unwrap_or_else(|| panic!("no file for package {package}"))
}

fn message<'a>(file: &'a FileDescriptorProto, path: &[&str]) -> &'a DescriptorProto {
    let mut current = file
        .message_type
        .iter()
        .find(|m| m.name() == path[0])
        .unwrap_or_else(|| panic!("no message {}", path[0]));
    for name in &path[1..] {
        current = current
            .nested_type
            .iter()
            .find(|m| m.name() == *name)
            .unwrap_or_else(|| panic!("no nested message {name}"));
    }
    current
}

fn field_number(message: &DescriptorProto, field: &str) -> i32 {
    message
        .field
        .iter()
        .find(|f| f.name() == field)
        .unwrap_or_else(|| panic!("no field {field} in {}", message.name()))
        .number()
}

fn rpc_names(file: &FileDescriptorProto, service: &str) -> Vec<String> {
    let service = file
        .service
        .iter()
        .find(|s| s.name() == service)
        .unwrap_or_else(|| panic!("no service {service}"));
    service.method.iter().map(|m| m.name().to_owned()).collect()
}

#[test]
fn descriptor_set_holds_the_three_services_with_their_rpcs() {
    let set = descriptor_set();

    assert_eq!(
        rpc_names(file(&set, "inference"), "GRPCInferenceService"),
        [
            "ServerLive",
            "ServerReady",
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer"
        ]
    );
    assert_eq!(
        rpc_names(file(&set, "mend.registry.v1"), "Registry"),
        [
            "RegisterVersion",
            "GetVersion",
            "ListModels",
            "ListVersions",
            "SetAlias",
            "GetAudit",
            "WatchAliases",
            "RequestRetrain",
            "RecordDecision"
        ]
    );
    assert_eq!(
        rpc_names(file(&set, "mend.ingest.v1"), "Ingest"),
        ["IngestRows", "IngestLabels"]
    );
}

#[test]
fn streaming_shapes_of_registry_and_ingest_rpcs() {
    let set = descriptor_set();
    let registry = file(&set, "mend.registry.v1");
    let method = |name: &str| {
        registry.service[0]
            .method
            .iter()
            .find(|m| m.name() == name)
            .unwrap()
            .clone()
    };
    assert!(method("RegisterVersion").client_streaming());
    assert!(!method("RegisterVersion").server_streaming());
    assert!(method("GetVersion").server_streaming());
    assert!(method("WatchAliases").server_streaming());
    assert!(!method("SetAlias").client_streaming() && !method("SetAlias").server_streaming());

    let ingest = file(&set, "mend.ingest.v1");
    assert!(
        ingest.service[0]
            .method
            .iter()
            .all(|m| m.client_streaming())
    );
}

#[test]
fn oip_field_numbers_match_kserve() {
    let set = descriptor_set();
    let oip = file(&set, "inference");

    let request = message(oip, &["ModelInferRequest"]);
    assert_eq!(field_number(request, "model_name"), 1);
    assert_eq!(field_number(request, "model_version"), 2);
    assert_eq!(field_number(request, "id"), 3);
    assert_eq!(field_number(request, "parameters"), 4);
    assert_eq!(field_number(request, "inputs"), 5);
    assert_eq!(field_number(request, "outputs"), 6);
    assert_eq!(field_number(request, "raw_input_contents"), 7);

    let input = message(oip, &["ModelInferRequest", "InferInputTensor"]);
    assert_eq!(field_number(input, "shape"), 3);
    assert_eq!(field_number(input, "contents"), 5);

    let response = message(oip, &["ModelInferResponse"]);
    assert_eq!(field_number(response, "outputs"), 5);
    assert_eq!(field_number(response, "raw_output_contents"), 6);

    let contents = message(oip, &["InferTensorContents"]);
    for (name, number) in [
        ("bool_contents", 1),
        ("int_contents", 2),
        ("int64_contents", 3),
        ("uint_contents", 4),
        ("uint64_contents", 5),
        ("fp32_contents", 6),
        ("fp64_contents", 7),
        ("bytes_contents", 8),
    ] {
        assert_eq!(field_number(contents, name), number, "{name}");
    }

    let parameter = message(oip, &["InferParameter"]);
    assert_eq!(field_number(parameter, "bool_param"), 1);
    assert_eq!(field_number(parameter, "int64_param"), 2);
    assert_eq!(field_number(parameter, "string_param"), 3);

    let metadata = message(oip, &["ModelMetadataResponse", "TensorMetadata"]);
    assert_eq!(field_number(metadata, "datatype"), 2);
}

#[test]
fn generated_oip_message_encodes_raw_input_contents_as_field_7() {
    use crate::inference::ModelInferRequest;

    let request = ModelInferRequest {
        raw_input_contents: vec![prost::bytes::Bytes::from_static(b"\x01")],
        ..Default::default()
    };
    // Field 7, wire type 2 (length-delimited): tag byte (7 << 3) | 2 = 0x3a, length 1, payload.
    assert_eq!(request.encode_to_vec(), [0x3a, 0x01, 0x01]);
}
