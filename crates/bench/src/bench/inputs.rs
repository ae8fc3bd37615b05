//! `--input NAME:DATATYPE:[d1,d2,...]`: the tensors `mend bench` sends when they are given
//! rather than read from the model's metadata. Some OIP servers list no inputs there (MLServer's
//! sklearn runtime), so without this there would be nothing to send; given, it also overrides
//! what the metadata lists.
//!
//! The first dimension is the batch: `-1` stands for `--rows`, and a number must equal it (the
//! report counts `--rows` rows per request). Only the first dimension may be `-1`.

use std::fmt;

/// Most elements one `--input` tensor may have in one request (16 Mi): a typo in a shape
/// should be an error, not sixteen request templates filling the memory.
const MAX_ELEMENTS: u64 = 1 << 24;

/// The syntax, for error messages.
pub const SYNTAX: &str = "NAME:DATATYPE:[d1,d2,...], e.g. predict:FP64:[-1,3]";

/// An OIP datatype `mend bench` can fill: every one with typed contents (so not FP16, BF16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    const ALL: [Datatype; 12] = [
        Datatype::Bool,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
    ];

    /// The OIP name.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    fn parse(text: &str) -> Result<Datatype, String> {
        if let Some(known) = Datatype::ALL.into_iter().find(|d| d.name() == text) {
            return Ok(known);
        }
        let names: Vec<&str> = Datatype::ALL.iter().map(|d| d.name()).collect();
        let upper = text.to_ascii_uppercase();
        let why = if text == "FP16" || text == "BF16" {
            format!("{text} has no typed contents in the protocol, so mend bench cannot fill it")
        } else if names.contains(&upper.as_str()) {
            format!("datatype {text:?} must be written in upper case: {upper}")
        } else {
            format!("datatype {text:?} is not an OIP datatype")
        };
        Err(format!("{why}; use one of {}", names.join(", ")))
    }
}

impl fmt::Display for Datatype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `--input`, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    pub datatype: Datatype,
    /// As written: at least one dimension; only the first (the batch) may be `-1`.
    pub shape: Vec<i64>,
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(i64::to_string).collect();
        write!(f, "{}:{}:[{}]", self.name, self.datatype, dims.join(","))
    }
}

/// Parses `NAME:DATATYPE:[d1,d2,...]` (clap's value parser for `--input`). The name may hold
/// colons (`input:0`): the shape starts at the last `:[` and the datatype at the colon before.
pub fn parse_input(text: &str) -> Result<InputSpec, String> {
    let bad = |why: String| format!("--input {text:?}: {why} (expected {SYNTAX})");
    let (head, shape) = text
        .rsplit_once(":[")
        .ok_or_else(|| bad("no shape: it must end in :[d1,d2,...]".to_owned()))?;
    let (name, datatype) = head
        .rsplit_once(':')
        .ok_or_else(|| bad("no datatype between the name and the shape".to_owned()))?;
    if name.trim().is_empty() {
        return Err(bad("the name is empty".to_owned()));
    }
    if name.trim() != name {
        return Err(bad(format!("the name {name:?} has spaces around it")));
    }
    let datatype = Datatype::parse(datatype).map_err(bad)?;
    let inner = shape
        .strip_suffix(']')
        .ok_or_else(|| bad("the shape does not end in ]".to_owned()))?;
    if inner.trim().is_empty() {
        return Err(bad(
            "the shape has no dimension; the first is the batch (-1 for --rows)".to_owned(),
        ));
    }
    let mut dims = Vec::new();
    for (index, dim) in inner.split(',').enumerate() {
        let dim = dim.trim();
        let value: i64 = dim.parse().map_err(|_| {
            bad(format!(
                "dimension {} ({dim:?}) is not an integer",
                index + 1
            ))
        })?;
        match (index, value) {
            (0, -1) => {}
            (_, -1) => {
                return Err(bad(format!(
                    "dimension {} is -1, but only the first (the batch) may be",
                    index + 1
                )));
            }
            (_, value) if value < 1 => {
                return Err(bad(format!(
                    "dimension {} is {value}; dimensions are at least 1 (-1 for the batch)",
                    index + 1
                )));
            }
            _ => {}
        }
        dims.push(value);
    }
    let spec = InputSpec {
        name: name.to_owned(),
        datatype,
        shape: dims,
    };
    // The largest the tensor can be once -1 is a row count: checked again with the real one.
    spec.elements(1).map_err(bad)?;
    Ok(spec)
}

impl InputSpec {
    /// The shape sent with `rows` rows per request: `-1` becomes `rows`; a fixed first
    /// dimension must equal `rows`.
    pub fn shape_for(&self, rows: usize) -> Result<Vec<i64>, String> {
        let rows_dim = i64::try_from(rows).map_err(|_| format!("--rows {rows} is too large"))?;
        let mut shape = self.shape.clone();
        match shape.first_mut() {
            Some(first) if *first == -1 => *first = rows_dim,
            Some(first) if *first != rows_dim => {
                return Err(format!(
                    "--input {self}: the first dimension is the batch, {first} rows per \
                     request, but --rows is {rows}; write -1 to follow --rows, or set --rows \
                     {first}"
                ));
            }
            Some(_) => {}
            None => return Err(format!("--input {self}: the shape has no dimension")),
        }
        self.elements(rows)?;
        Ok(shape)
    }

    /// Elements in one request of `rows` rows, refusing more than `MAX_ELEMENTS`.
    pub fn elements(&self, rows: usize) -> Result<usize, String> {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let mut total: u64 = 1;
        for &dim in &self.shape {
            let dim = if dim == -1 {
                rows
            } else {
                u64::try_from(dim).unwrap_or(0)
            };
            total = total.saturating_mul(dim);
        }
        if total > MAX_ELEMENTS {
            return Err(format!(
                "the tensor would hold {total} elements per request, more than mend bench \
                 sends ({MAX_ELEMENTS})"
            ));
        }
        usize::try_from(total).map_err(|_| format!("{total} elements do not fit in memory"))
    }
}

/// Checks every `--input` against `--rows` before anything connects: names are distinct and
/// every shape resolves.
pub fn check(inputs: &[InputSpec], rows: usize) -> Result<(), String> {
    for (index, input) in inputs.iter().enumerate() {
        if inputs
            .get(..index)
            .unwrap_or_default()
            .iter()
            .any(|earlier| earlier.name == input.name)
        {
            return Err(format!(
                "--input {input}: a second input named {:?}; each --input names one tensor",
                input.name
            ));
        }
        input.shape_for(rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_name_datatype_and_shape() {
        let input = parse_input("predict:FP64:[1,3]").unwrap();
        assert_eq!(
            input,
            InputSpec {
                name: "predict".to_owned(),
                datatype: Datatype::Fp64,
                shape: vec![1, 3],
            }
        );
        assert_eq!(input.to_string(), "predict:FP64:[1,3]");
        let batch = parse_input("x:BYTES:[-1]").unwrap();
        assert_eq!(batch.shape, vec![-1]);
        assert_eq!(batch.datatype, Datatype::Bytes);
        // Spaces inside the shape, and names with colons (TensorFlow's `input:0`).
        let spaced = parse_input("input:0:INT64:[ -1 , 4 ]").unwrap();
        assert_eq!(spaced.name, "input:0");
        assert_eq!(spaced.shape, vec![-1, 4]);
        for name in ["BOOL", "UINT8", "UINT64", "INT8", "INT32", "FP32"] {
            let input = parse_input(&format!("t:{name}:[2]")).unwrap();
            assert_eq!(input.datatype.name(), name);
        }
    }

    #[test]
    fn every_malformed_part_is_named() {
        let cases = [
            ("predict", "no shape"),
            ("predict:FP64", "no shape"),
            ("predict:[1,3]", "no datatype"),
            (":FP64:[1,3]", "the name is empty"),
            (" predict:FP64:[1,3]", "spaces around it"),
            (
                "predict:FLOAT64:[1,3]",
                "\"FLOAT64\" is not an OIP datatype",
            ),
            ("predict:fp64:[1,3]", "upper case: FP64"),
            ("predict:FP16:[1,3]", "FP16 has no typed contents"),
            ("predict:FP64:[1,3", "does not end in ]"),
            ("predict:FP64:[]", "has no dimension"),
            (
                "predict:FP64:[1,x]",
                "dimension 2 (\"x\") is not an integer",
            ),
            (
                "predict:FP64:[1,,3]",
                "dimension 2 (\"\") is not an integer",
            ),
            (
                "predict:FP64:[1,-1]",
                "dimension 2 is -1, but only the first",
            ),
            ("predict:FP64:[0,3]", "dimension 1 is 0"),
            ("predict:FP64:[1,-3]", "dimension 2 is -3"),
            (
                "predict:FP64:[1,100000,100000]",
                "more than mend bench sends",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_input(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
            assert!(error.contains(SYNTAX), "{text}: {error}");
        }
        let error = parse_input("x:float:[1]").unwrap_err();
        assert!(error.contains("one of BOOL, UINT8"), "{error}");
    }

    #[test]
    fn the_first_dimension_is_the_batch() {
        let follows = parse_input("predict:FP64:[-1,3]").unwrap();
        assert_eq!(follows.shape_for(5).unwrap(), vec![5, 3]);
        assert_eq!(follows.elements(5).unwrap(), 15);
        let fixed = parse_input("predict:FP64:[1,3]").unwrap();
        assert_eq!(fixed.shape_for(1).unwrap(), vec![1, 3]);
        let error = fixed.shape_for(5).unwrap_err();
        assert!(error.contains("--rows is 5"), "{error}");
        assert!(error.contains("write -1"), "{error}");
        let huge = parse_input("predict:FP64:[-1,1000000]").unwrap();
        assert!(huge.shape_for(100).is_err());
    }

    #[test]
    fn inputs_are_checked_together() {
        let a = parse_input("a:FP64:[-1,3]").unwrap();
        let b = parse_input("b:BYTES:[-1]").unwrap();
        assert!(check(&[a.clone(), b.clone()], 4).is_ok());
        let error = check(&[a.clone(), b, a], 4).unwrap_err();
        assert!(error.contains("a second input named \"a\""), "{error}");
    }
}
