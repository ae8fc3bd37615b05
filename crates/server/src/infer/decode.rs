//! Reads a `ModelInferRequest` against a model: which layout it uses, how many rows it has,
//! and a borrowed view of every tensor's elements. Every check happens here, before any
//! prediction, and each failure names the tensor and what is wrong.
//!
//! Two layouts are accepted:
//! - one tensor per feature, named after it, shape `[N]` or `[N, 1]` (FP32, FP64, INT64,
//!   INT32 or BOOL for numeric features; BYTES for categorical ones);
//! - for all-numeric models, one FP32 or FP64 tensor of shape `[N, F]` (any name that is not a
//!   feature's; metadata advertises `input`), columns in schema order.
//!
//! Either layout may add a BYTES tensor `row_id` (`[N]`) naming each row for the data log.

use mend_core::record::Value;
use mend_core::schema::is_missing;
use mend_proto::inference::model_infer_request::InferInputTensor;
use mend_proto::inference::{InferTensorContents, ModelInferRequest};

use super::datatype::Datatype;
use super::source::{Numbers, split_raw_bytes};
use crate::error::InferError;
use crate::model::{FeaturePlan, LoadedModel};

/// The optional input naming each row (DESIGN.md "Row identity").
pub const ROW_ID_INPUT: &str = "row_id";
/// The name metadata gives the `[N, F]` input of all-numeric models.
pub const MATRIX_INPUT: &str = "input";

/// A validated request, borrowing its tensors.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub rows: usize,
    pub layout: Layout<'a>,
    /// Row ids from the `row_id` input, if sent.
    pub row_ids: Option<Vec<&'a [u8]>>,
    /// Whether the inputs came in `raw_input_contents` (then outputs go raw too).
    pub raw: bool,
}

#[derive(Debug)]
pub(crate) enum Layout<'a> {
    /// One `[N, F]` tensor, row-major, columns in schema order.
    Matrix { name: &'a str, values: Numbers<'a> },
    /// One column per feature, in schema order.
    Columns(Vec<Column<'a>>),
}

#[derive(Debug)]
pub(crate) enum Column<'a> {
    Numeric {
        name: &'a str,
        values: Numbers<'a>,
    },
    Categorical {
        /// Each row's category, trimmed; `None` when missing.
        text: Vec<Option<&'a str>>,
        /// Each row's position in the feature's one-hot block.
        slots: Vec<usize>,
    },
}

/// One input tensor with its position in `inputs` (and `raw_input_contents`).
struct Input<'a> {
    index: usize,
    tensor: &'a InferInputTensor,
}

/// Validates `request` for `model` and returns views of its inputs.
pub(crate) fn decode<'a>(
    model: &LoadedModel,
    request: &'a ModelInferRequest,
    max_rows: usize,
) -> Result<Decoded<'a>, InferError> {
    let raw = !request.raw_input_contents.is_empty();
    if request.inputs.is_empty() {
        return Err(InferError::invalid(format!(
            "the request has no inputs; model `{}` takes {}",
            model.name,
            expected_inputs(model)
        )));
    }
    if raw && request.raw_input_contents.len() != request.inputs.len() {
        return Err(InferError::invalid(format!(
            "raw_input_contents has {} entries for {} inputs; send one per input, in the order of `inputs`",
            request.raw_input_contents.len(),
            request.inputs.len()
        )));
    }
    let plan = &model.plan;
    let mut by_feature: Vec<Option<Input<'a>>> = (0..plan.features.len()).map(|_| None).collect();
    let mut row_id: Option<Input<'a>> = None;
    let mut others: Vec<Input<'a>> = Vec::new();
    for (index, tensor) in request.inputs.iter().enumerate() {
        if raw && tensor.contents.is_some() {
            return Err(InferError::invalid(format!(
                "input `{}` sets contents while the request also sends raw_input_contents; use one or the other",
                tensor.name
            )));
        }
        let input = Input { index, tensor };
        let slot = match plan.by_name.get(&tensor.name) {
            Some(&feature) => &mut by_feature[feature],
            None if tensor.name == ROW_ID_INPUT => &mut row_id,
            None => {
                others.push(input);
                continue;
            }
        };
        if slot.is_some() {
            return Err(InferError::invalid(format!(
                "input `{}` appears twice",
                tensor.name
            )));
        }
        *slot = Some(input);
    }

    let any_feature = by_feature.iter().any(Option::is_some);
    let layout_inputs = match (others.len(), any_feature) {
        (0, _) => LayoutInputs::Columns(by_feature),
        (1, false) if plan.all_numeric => LayoutInputs::Matrix(
            others
                .pop()
                .ok_or_else(|| InferError::invalid("no input"))?,
        ),
        _ => {
            let unknown = &others[0].tensor.name;
            return Err(InferError::invalid(format!(
                "input `{unknown}` is not a feature of model `{}`; it takes {}",
                model.name,
                expected_inputs(model)
            )));
        }
    };

    let mut rows = RowCount::default();
    let layout = match layout_inputs {
        LayoutInputs::Matrix(input) => matrix(model, request, &input, &mut rows, max_rows)?,
        LayoutInputs::Columns(inputs) => {
            let mut columns = Vec::with_capacity(inputs.len());
            for (feature, input) in inputs.into_iter().enumerate() {
                let Some(input) = input else {
                    let name = &model.artifact.schema.features[feature].name;
                    return Err(InferError::invalid(format!(
                        "missing input `{name}`: model `{}` takes {}",
                        model.name,
                        expected_inputs(model)
                    )));
                };
                columns.push(column(
                    model, request, feature, &input, &mut rows, max_rows,
                )?);
            }
            Layout::Columns(columns)
        }
    };
    let row_ids = match row_id {
        Some(input) => {
            let n = column_rows(&input, &mut rows, max_rows)?;
            let datatype = datatype(&input)?;
            if datatype != Datatype::Bytes {
                return Err(InferError::invalid(format!(
                    "input `{ROW_ID_INPUT}`: datatype {datatype} is not accepted; row ids are BYTES"
                )));
            }
            Some(byte_elements(request, &input, n)?)
        }
        None => None,
    };
    Ok(Decoded {
        rows: rows.rows.unwrap_or(0),
        layout,
        row_ids,
        raw,
    })
}

enum LayoutInputs<'a> {
    Matrix(Input<'a>),
    Columns(Vec<Option<Input<'a>>>),
}

/// What a client should send, for error messages.
fn expected_inputs(model: &LoadedModel) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = model.feature_names().collect();
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    let mut text = format!("one tensor per feature ({list}), each of shape [N] or [N, 1]");
    if model.plan.all_numeric {
        text.push_str(&format!(
            ", or one FP32/FP64 tensor `{MATRIX_INPUT}` of shape [N, {}]",
            names.len()
        ));
    }
    text
}

/// The row count all tensors must agree on, and which tensor set it.
#[derive(Default)]
struct RowCount<'a> {
    rows: Option<usize>,
    set_by: &'a str,
}

impl<'a> RowCount<'a> {
    fn agree(&mut self, name: &'a str, rows: usize, max_rows: usize) -> Result<(), InferError> {
        if rows == 0 {
            return Err(InferError::invalid(format!("input `{name}` has no rows")));
        }
        if rows > max_rows {
            return Err(InferError::invalid(format!(
                "input `{name}` has {rows} rows, more than the limit of {max_rows} rows per request"
            )));
        }
        match self.rows {
            None => {
                self.rows = Some(rows);
                self.set_by = name;
                Ok(())
            }
            Some(known) if known == rows => Ok(()),
            Some(known) => Err(InferError::invalid(format!(
                "input `{name}` has {rows} rows, but input `{}` has {known}",
                self.set_by
            ))),
        }
    }
}

fn datatype(input: &Input<'_>) -> Result<Datatype, InferError> {
    Datatype::parse(&input.tensor.datatype).ok_or_else(|| {
        InferError::invalid(format!(
            "input `{}`: `{}` is not an OIP datatype (BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BF16, BYTES)",
            input.tensor.name, input.tensor.datatype
        ))
    })
}

/// The shape's first two dimensions (`None` past the end) and how many it has, checked for
/// negative ones. Read in place: every request passes here once per tensor.
fn dims(input: &Input<'_>) -> Result<([Option<usize>; 2], usize), InferError> {
    let shape = &input.tensor.shape;
    let mut first = [None; 2];
    for (index, &d) in shape.iter().enumerate() {
        let d = usize::try_from(d).map_err(|_| {
            InferError::invalid(format!(
                "input `{}`: shape {:?} has a negative dimension",
                input.tensor.name, shape
            ))
        })?;
        if let Some(slot) = first.get_mut(index) {
            *slot = Some(d);
        }
    }
    Ok((first, shape.len()))
}

/// Rows of a per-feature tensor: shape `[N]` or `[N, 1]`.
fn column_rows<'a>(
    input: &Input<'a>,
    rows: &mut RowCount<'a>,
    max_rows: usize,
) -> Result<usize, InferError> {
    let n = match dims(input)? {
        ([Some(n), None], 1) | ([Some(n), Some(1)], 2) => n,
        _ => {
            return Err(InferError::invalid(format!(
                "input `{}`: shape {:?} is not [N] or [N, 1]",
                input.tensor.name, input.tensor.shape
            )));
        }
    };
    rows.agree(&input.tensor.name, n, max_rows)?;
    Ok(n)
}

fn matrix<'a>(
    model: &LoadedModel,
    request: &'a ModelInferRequest,
    input: &Input<'a>,
    rows: &mut RowCount<'a>,
    max_rows: usize,
) -> Result<Layout<'a>, InferError> {
    let name = input.tensor.name.as_str();
    let features = model.plan.features.len();
    let n = match dims(input)? {
        ([Some(n), Some(f)], 2) if f == features => n,
        _ => {
            return Err(InferError::invalid(format!(
                "input `{name}`: shape {:?} does not fit model `{}`, which takes [N, {features}] (or {})",
                input.tensor.shape,
                model.name,
                expected_inputs(model)
            )));
        }
    };
    rows.agree(name, n, max_rows)?;
    let datatype = datatype(input)?;
    if !matches!(datatype, Datatype::Fp32 | Datatype::Fp64) {
        return Err(InferError::invalid(format!(
            "input `{name}`: datatype {datatype} is not accepted for the [N, F] input; use FP32 or FP64"
        )));
    }
    // n ≤ max_rows and features is the model's, so this cannot overflow in practice.
    let count = n.checked_mul(features).ok_or_else(|| {
        InferError::invalid(format!(
            "input `{name}`: shape {:?} is too large",
            input.tensor.shape
        ))
    })?;
    let values = numbers(request, input, datatype, count)?;
    Ok(Layout::Matrix { name, values })
}

fn column<'a>(
    model: &LoadedModel,
    request: &'a ModelInferRequest,
    feature: usize,
    input: &Input<'a>,
    rows: &mut RowCount<'a>,
    max_rows: usize,
) -> Result<Column<'a>, InferError> {
    let name = input.tensor.name.as_str();
    let n = column_rows(input, rows, max_rows)?;
    let datatype = datatype(input)?;
    match model.plan.features[feature] {
        FeaturePlan::Numeric { .. } => {
            if !datatype.is_numeric_feature_type() {
                return Err(InferError::invalid(format!(
                    "input `{name}`: datatype {datatype} is not accepted for numeric feature `{name}`; use FP32, FP64, INT64, INT32 or BOOL"
                )));
            }
            let values = numbers(request, input, datatype, n)?;
            Ok(Column::Numeric { name, values })
        }
        FeaturePlan::Categorical { feature, .. } => {
            if datatype != Datatype::Bytes {
                return Err(InferError::invalid(format!(
                    "input `{name}`: categorical feature `{name}` takes BYTES, not {datatype}"
                )));
            }
            let elements = byte_elements(request, input, n)?;
            let mut text = Vec::with_capacity(n);
            let mut slots = Vec::with_capacity(n);
            let preprocessor = &model.artifact.preprocessor;
            for (row, element) in elements.into_iter().enumerate() {
                let value = std::str::from_utf8(element).map_err(|_| {
                    InferError::invalid(format!("input `{name}`: element {row} is not valid UTF-8"))
                })?;
                let value = value.trim();
                let value = (!is_missing(value)).then_some(value);
                if value.is_none() && !model.plan.allow_missing {
                    return Err(InferError::invalid(format!(
                        "input `{name}`: element {row} is missing, and model `{}` does not allow missing values",
                        model.name
                    )));
                }
                slots.push(preprocessor.category_slot(feature, value));
                text.push(value);
            }
            Ok(Column::Categorical { text, slots })
        }
    }
}

/// A numeric view of `count` elements, from the typed field matching `datatype` or from raw.
fn numbers<'a>(
    request: &'a ModelInferRequest,
    input: &Input<'a>,
    datatype: Datatype,
    count: usize,
) -> Result<Numbers<'a>, InferError> {
    let name = &input.tensor.name;
    if let Some(raw) = request.raw_input_contents.get(input.index) {
        let size = datatype.raw_size().unwrap_or(1);
        if Some(raw.len()) != count.checked_mul(size) {
            return Err(InferError::invalid(format!(
                "input `{name}`: raw_input_contents[{}] has {} bytes, but {count} {datatype} elements take {}",
                input.index,
                raw.len(),
                count.saturating_mul(size)
            )));
        }
        let raw = raw.as_ref();
        return Ok(match datatype {
            Datatype::Fp32 => Numbers::RawF32(raw),
            Datatype::Fp64 => Numbers::RawF64(raw),
            Datatype::Int64 => Numbers::RawI64(raw),
            Datatype::Int32 => Numbers::RawI32(raw),
            _ => Numbers::RawBool(raw),
        });
    }
    let Some(contents) = input.tensor.contents.as_ref() else {
        // No contents at all: reported as zero values found (rows are never zero here).
        check_count(input, datatype, &InferTensorContents::default(), 0, count)?;
        return Ok(Numbers::F64(&[]));
    };
    let (found, values) = match datatype {
        Datatype::Fp32 => (
            contents.fp32_contents.len(),
            Numbers::F32(&contents.fp32_contents),
        ),
        Datatype::Fp64 => (
            contents.fp64_contents.len(),
            Numbers::F64(&contents.fp64_contents),
        ),
        Datatype::Int64 => (
            contents.int64_contents.len(),
            Numbers::I64(&contents.int64_contents),
        ),
        Datatype::Int32 => (
            contents.int_contents.len(),
            Numbers::I32(&contents.int_contents),
        ),
        _ => (
            contents.bool_contents.len(),
            Numbers::Bool(&contents.bool_contents),
        ),
    };
    check_count(input, datatype, contents, found, count)?;
    Ok(values)
}

/// Checks the typed field holds exactly `count` elements; hints at a mismatched field.
fn check_count(
    input: &Input<'_>,
    datatype: Datatype,
    contents: &InferTensorContents,
    found: usize,
    count: usize,
) -> Result<(), InferError> {
    if found == count {
        return Ok(());
    }
    let name = &input.tensor.name;
    let mut message = format!(
        "input `{name}`: shape {:?} of {datatype} needs {count} values in {}, found {found}",
        input.tensor.shape,
        datatype.contents_field()
    );
    let others = [
        ("bool_contents", contents.bool_contents.len()),
        ("int_contents", contents.int_contents.len()),
        ("int64_contents", contents.int64_contents.len()),
        ("uint_contents", contents.uint_contents.len()),
        ("uint64_contents", contents.uint64_contents.len()),
        ("fp32_contents", contents.fp32_contents.len()),
        ("fp64_contents", contents.fp64_contents.len()),
        ("bytes_contents", contents.bytes_contents.len()),
    ];
    if let Some((field, len)) = others
        .into_iter()
        .find(|(field, len)| *len > 0 && *field != datatype.contents_field())
    {
        message.push_str(&format!(
            " ({len} in {field}; the contents field must match the datatype)"
        ));
    }
    Err(InferError::invalid(message))
}

/// The `count` BYTES elements of an input, typed or raw.
fn byte_elements<'a>(
    request: &'a ModelInferRequest,
    input: &Input<'a>,
    count: usize,
) -> Result<Vec<&'a [u8]>, InferError> {
    let name = &input.tensor.name;
    if let Some(raw) = request.raw_input_contents.get(input.index) {
        return split_raw_bytes(raw, count).map_err(|problem| {
            InferError::invalid(format!(
                "input `{name}`: raw_input_contents[{}] {problem}",
                input.index
            ))
        });
    }
    let Some(contents) = input.tensor.contents.as_ref() else {
        check_count(
            input,
            Datatype::Bytes,
            &InferTensorContents::default(),
            0,
            count,
        )?;
        return Ok(Vec::new());
    };
    check_count(
        input,
        Datatype::Bytes,
        contents,
        contents.bytes_contents.len(),
        count,
    )?;
    Ok(contents.bytes_contents.iter().map(|b| b.as_ref()).collect())
}

impl Decoded<'_> {
    /// The value of `feature` in `row`, as the data log records it (NaN and missing
    /// categories are `Missing`). For the sampled rows only; not on the hot path.
    pub fn value(&self, row: usize, feature: usize, features: usize) -> Value {
        let number = |x: f64| {
            if x.is_nan() {
                Value::Missing
            } else {
                Value::Number(x)
            }
        };
        match &self.layout {
            Layout::Matrix { values, .. } => number(values.get(row * features + feature)),
            Layout::Columns(columns) => match columns.get(feature) {
                Some(Column::Numeric { values, .. }) => number(values.get(row)),
                Some(Column::Categorical { text, .. }) => match text.get(row) {
                    Some(Some(value)) => Value::Text((*value).to_owned()),
                    _ => Value::Missing,
                },
                None => Value::Missing,
            },
        }
    }

    /// The client's id for `row`, from the `row_id` input.
    pub fn row_id(&self, row: usize) -> Option<String> {
        let ids = self.row_ids.as_ref()?;
        ids.get(row)
            .map(|id| String::from_utf8_lossy(id).into_owned())
    }
}
