//! Borrowed views of tensor elements, typed or raw, read in place: nothing is copied out of
//! the request before it is used.

/// Numeric elements of one tensor, row-major.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Numbers<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I64(&'a [i64]),
    I32(&'a [i32]),
    Bool(&'a [bool]),
    RawF32(&'a [u8]),
    RawF64(&'a [u8]),
    RawI64(&'a [u8]),
    RawI32(&'a [u8]),
    RawBool(&'a [u8]),
}

impl Numbers<'_> {
    /// Element `i` as f64. Sizes are checked when the view is built; an index past the end
    /// still reads as NaN rather than panicking.
    #[inline]
    pub fn get(self, i: usize) -> f64 {
        match self {
            Numbers::F32(values) => values.get(i).map_or(f64::NAN, |&x| f64::from(x)),
            Numbers::F64(values) => values.get(i).copied().unwrap_or(f64::NAN),
            Numbers::I64(values) => values.get(i).map_or(f64::NAN, |&x| x as f64),
            Numbers::I32(values) => values.get(i).map_or(f64::NAN, |&x| f64::from(x)),
            Numbers::Bool(values) => values.get(i).map_or(f64::NAN, |&x| f64::from(u8::from(x))),
            Numbers::RawF32(bytes) => match bytes.get(i * 4..i * 4 + 4) {
                Some(b) => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                None => f64::NAN,
            },
            Numbers::RawF64(bytes) => match bytes.get(i * 8..i * 8 + 8) {
                Some(b) => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                None => f64::NAN,
            },
            Numbers::RawI64(bytes) => match bytes.get(i * 8..i * 8 + 8) {
                Some(b) => {
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64
                }
                None => f64::NAN,
            },
            Numbers::RawI32(bytes) => match bytes.get(i * 4..i * 4 + 4) {
                Some(b) => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                None => f64::NAN,
            },
            Numbers::RawBool(bytes) => match bytes.get(i) {
                Some(&b) => f64::from(u8::from(b != 0)),
                None => f64::NAN,
            },
        }
    }

    /// Whether elements can be NaN or infinite (only floats can).
    pub fn can_be_non_finite(self) -> bool {
        matches!(
            self,
            Numbers::F32(_) | Numbers::F64(_) | Numbers::RawF32(_) | Numbers::RawF64(_)
        )
    }
}

/// Splits raw BYTES tensor content (each element a 4-byte little-endian length, then the
/// bytes) into exactly `count` elements, or says what is wrong with it.
pub(crate) fn split_raw_bytes(raw: &[u8], count: usize) -> Result<Vec<&[u8]>, String> {
    let mut elements = Vec::with_capacity(count);
    let mut rest = raw;
    for index in 0..count {
        let Some((prefix, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!(
                "ends after {index} of {count} elements (each needs a 4-byte length prefix)"
            ));
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        if tail.len() < len {
            return Err(format!(
                "element {index} claims {len} bytes but only {} remain",
                tail.len()
            ));
        }
        let (element, tail) = tail.split_at(len);
        elements.push(element);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!(
            "has {} bytes left over after its {count} elements",
            rest.len()
        ));
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn raw_and_typed_views_read_the_same_values() {
        let typed = [1.5f32, -2.0, 3.25];
        let raw: Vec<u8> = typed.iter().flat_map(|x| x.to_le_bytes()).collect();
        for i in 0..3 {
            assert_eq!(Numbers::F32(&typed).get(i), Numbers::RawF32(&raw).get(i));
        }
        assert!(Numbers::RawF32(&raw).get(3).is_nan());
        let ints: Vec<u8> = [-7i64, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(Numbers::RawI64(&ints).get(0), -7.0);
        assert_eq!(Numbers::RawBool(&[0, 2]).get(1), 1.0);
        assert_eq!(Numbers::Bool(&[true]).get(0), 1.0);
    }

    #[test]
    fn raw_bytes_split_exactly_or_explain_why_not() {
        let mut raw = Vec::new();
        for s in ["red", "", "gold"] {
            raw.extend((s.len() as u32).to_le_bytes());
            raw.extend(s.as_bytes());
        }
        let parts = split_raw_bytes(&raw, 3).unwrap();
        assert_eq!(parts, vec![&b"red"[..], b"", b"gold"]);
        assert!(
            split_raw_bytes(&raw, 4)
                .unwrap_err()
                .contains("ends after 3 of 4")
        );
        assert!(split_raw_bytes(&raw, 2).unwrap_err().contains("left over"));
        assert!(
            split_raw_bytes(&raw[..5], 1)
                .unwrap_err()
                .contains("claims 3 bytes")
        );
        assert!(split_raw_bytes(&[0xff, 0xff, 0xff, 0xff], 1).is_err());
    }
}
