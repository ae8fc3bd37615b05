//! The Open Inference Protocol's tensor datatypes, as far as the server reads them.

use std::fmt;

/// An OIP datatype name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datatype {
    Bool,
    Int32,
    Int64,
    Fp32,
    Fp64,
    Bytes,
    /// A valid OIP datatype the server does not accept for any input.
    Unsupported(&'static str),
}

/// Every datatype name the protocol defines.
const OIP_NAMES: [&str; 14] = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BF16", "BYTES",
];

pub(crate) const FP32: &str = "FP32";
pub(crate) const BYTES: &str = "BYTES";

impl Datatype {
    /// Parses a datatype name; `None` when it is not an OIP datatype at all.
    pub fn parse(name: &str) -> Option<Datatype> {
        Some(match name {
            "BOOL" => Datatype::Bool,
            "INT32" => Datatype::Int32,
            "INT64" => Datatype::Int64,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            "BYTES" => Datatype::Bytes,
            other => Datatype::Unsupported(OIP_NAMES.into_iter().find(|known| *known == other)?),
        })
    }

    /// Bytes per element in `raw_input_contents`; `None` for BYTES (length-prefixed).
    pub fn raw_size(self) -> Option<usize> {
        match self {
            Datatype::Bool => Some(1),
            Datatype::Int32 | Datatype::Fp32 => Some(4),
            Datatype::Int64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes | Datatype::Unsupported(_) => None,
        }
    }

    /// The `InferTensorContents` field that carries this datatype.
    pub fn contents_field(self) -> &'static str {
        match self {
            Datatype::Bool => "bool_contents",
            Datatype::Int32 => "int_contents",
            Datatype::Int64 => "int64_contents",
            Datatype::Fp32 => "fp32_contents",
            Datatype::Fp64 => "fp64_contents",
            Datatype::Bytes => "bytes_contents",
            Datatype::Unsupported(_) => "no contents field",
        }
    }

    pub fn is_numeric_feature_type(self) -> bool {
        matches!(
            self,
            Datatype::Bool | Datatype::Int32 | Datatype::Int64 | Datatype::Fp32 | Datatype::Fp64
        )
    }
}

impl fmt::Display for Datatype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Datatype::Bool => "BOOL",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
            Datatype::Unsupported(name) => name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for name in OIP_NAMES {
            let parsed = Datatype::parse(name);
            assert_eq!(parsed.map(|d| d.to_string()), Some(name.to_owned()));
        }
        assert_eq!(Datatype::parse("FLOAT"), None);
        assert_eq!(Datatype::parse("fp32"), None);
        assert_eq!(Datatype::parse("FP16"), Some(Datatype::Unsupported("FP16")));
    }
}
