//! A fast reader of the rows of a large CSV file, for `mend drift`.
//!
//! `mend drift` reads two files of a million rows or more and keeps only bounded summaries, so
//! almost all of its time is spent splitting lines and parsing numbers. This reader reads the
//! file in large blocks, finds lines and cells with `memchr`, and hands each row to the caller as
//! byte slices; numbers are parsed by [`parse_number`], which takes the exact fast path for plain
//! decimals (`-1.234567`) and falls back to the standard library for anything else.
//!
//! Quoted cells are handled (RFC 4180: `"a, ""b"""`, and line breaks inside quotes): a line that
//! holds a quote is handed to the `csv` crate, which is slower but rare in numeric exports.
//! Like the `csv` crate's reader: empty lines are skipped, `\r\n` endings are accepted, and every
//! row must have as many cells as the header (the error names the line).

use std::borrow::Cow;
use std::io::Read;

use anyhow::{Result, bail};

/// Bytes read from the file at a time.
const BLOCK: usize = 8 << 20;

/// What [`read_rows`] hands over, in file order.
pub enum Row<'a> {
    /// The header's cells, trimmed; always first.
    Header(Vec<String>),
    /// A data row's cells and its 1-based line number.
    Data(&'a [&'a [u8]], u64),
}

/// Streams the rows of a CSV from `reader` to `on_row`; `on_progress` gets the bytes consumed
/// so far after each block.
pub fn read_rows<R: Read>(
    reader: R,
    on_row: impl FnMut(Row<'_>) -> Result<()>,
    on_progress: impl FnMut(u64),
) -> Result<()> {
    read_rows_in_blocks(reader, BLOCK, on_row, on_progress)
}

/// [`read_rows`] with a chosen block size (small ones in tests put rows across blocks).
fn read_rows_in_blocks<R: Read>(
    mut reader: R,
    block: usize,
    mut on_row: impl FnMut(Row<'_>) -> Result<()>,
    mut on_progress: impl FnMut(u64),
) -> Result<()> {
    let mut buffer: Vec<u8> = Vec::with_capacity(block + 4096);
    let mut consumed_total: u64 = 0;
    let mut line_number: u64 = 0;
    let mut header_cells: Option<usize> = None;
    let mut eof = false;
    loop {
        if !eof {
            let start = buffer.len();
            buffer.resize(start + block, 0);
            let mut filled = start;
            while filled < buffer.len() {
                let n = reader.read(&mut buffer[filled..])?;
                if n == 0 {
                    eof = true;
                    break;
                }
                filled += n;
            }
            buffer.truncate(filled);
        }
        let mut at = 0;
        let mut cells: Vec<&[u8]> = Vec::with_capacity(64);
        while at < buffer.len() {
            let Some(end) = line_end(&buffer[at..], eof) else {
                break;
            };
            let raw = &buffer[at..at + end.line];
            line_number += 1 + end.extra_breaks;
            at += end.consumed;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let quoted_cells: Vec<Vec<u8>>;
            let row: Vec<&[u8]>;
            let fields: &[&[u8]] = if end.quoted {
                quoted_cells = split_quoted(line, line_number)?;
                row = quoted_cells.iter().map(Vec::as_slice).collect();
                &row
            } else {
                cells.clear();
                let mut start = 0;
                for comma in memchr::memchr_iter(b',', line) {
                    cells.push(&line[start..comma]);
                    start = comma + 1;
                }
                cells.push(&line[start..]);
                &cells
            };
            match header_cells {
                None => {
                    let names = fields
                        .iter()
                        .map(|c| String::from_utf8_lossy(c).trim().to_owned())
                        .collect::<Vec<_>>();
                    header_cells = Some(names.len());
                    on_row(Row::Header(names))?;
                }
                Some(expected) => {
                    if fields.len() != expected {
                        bail!(
                            "line {line_number}: found a row with {} cells, but the header has {expected}",
                            fields.len()
                        );
                    }
                    on_row(Row::Data(fields, line_number))?;
                }
            }
        }
        consumed_total += at as u64;
        on_progress(consumed_total);
        buffer.drain(..at);
        if eof {
            if !buffer.is_empty() {
                bail!("line {}: a quoted cell is never closed", line_number + 1);
            }
            if header_cells.is_none() {
                bail!("the file is empty (no header row)");
            }
            return Ok(());
        }
    }
}

/// Where the line that starts a slice ends.
struct LineEnd {
    /// Length of the line, without its `\n`.
    line: usize,
    /// Bytes to skip to the next line (the line and its `\n`).
    consumed: usize,
    /// Whether the line holds a quote (and must be split with quoting rules).
    quoted: bool,
    /// Line breaks inside quoted cells (for line numbers).
    extra_breaks: u64,
}

/// Finds the end of the line at the start of `bytes`, honouring quotes; `None` when the line
/// is not complete in `bytes` and more input may follow.
fn line_end(bytes: &[u8], eof: bool) -> Option<LineEnd> {
    let first_stop = memchr::memchr2(b'\n', b'"', bytes);
    let newline = first_stop.filter(|&i| bytes[i] == b'\n');
    if first_stop.is_none() || newline.is_some() {
        return match newline {
            Some(n) => Some(LineEnd {
                line: n,
                consumed: n + 1,
                quoted: false,
                extra_breaks: 0,
            }),
            None if eof => Some(LineEnd {
                line: bytes.len(),
                consumed: bytes.len(),
                quoted: false,
                extra_breaks: 0,
            }),
            None => None,
        };
    }
    // A line with quotes ends at the first newline outside quotes.
    let mut in_quotes = false;
    let mut extra_breaks = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if in_quotes => extra_breaks += 1,
            b'\n' => {
                return Some(LineEnd {
                    line: i,
                    consumed: i + 1,
                    quoted: true,
                    extra_breaks,
                });
            }
            _ => {}
        }
    }
    if eof && !in_quotes {
        return Some(LineEnd {
            line: bytes.len(),
            consumed: bytes.len(),
            quoted: true,
            extra_breaks,
        });
    }
    None
}

/// Splits one logical line holding quotes with the `csv` crate's rules.
fn split_quoted(line: &[u8], line_number: u64) -> Result<Vec<Vec<u8>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => Ok(record.iter().map(<[u8]>::to_vec).collect()),
        Ok(false) => Ok(vec![Vec::new()]),
        Err(e) => bail!("line {line_number}: {e}"),
    }
}

/// The text of a cell (invalid UTF-8 replaced, as a lossy reader would).
pub fn text(cell: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(cell)
}

/// Powers of ten that are exact in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a cell (surrounding spaces allowed) as a number, exactly as `str::parse::<f64>` would:
/// plain decimals whose digits make an integer of at most 2^53, with at most 22 decimals, take
/// Clinger's fast path
/// (an exact integer divided by an exact power of ten rounds correctly), anything else (exponents,
/// long mantissas, `inf`) goes to the standard parser. `None` when it is not a number.
pub fn parse_number(cell: &[u8]) -> Option<f64> {
    let cell = cell.trim_ascii();
    if let Some(x) = parse_plain_decimal(cell) {
        return Some(x);
    }
    std::str::from_utf8(cell).ok()?.parse::<f64>().ok()
}

fn parse_plain_decimal(cell: &[u8]) -> Option<f64> {
    // The sign without branches: in numeric exports it is as random as the data, and a
    // mispredicted branch on it cost more than the rest of the parse.
    let first = *cell.first()?;
    let negative = first == b'-';
    let signed = usize::from(negative | (first == b'+'));
    let digits = &cell[signed..];
    let (mantissa, whole) = decimal_digits(0, digits);
    let mut at = whole;
    let mut mantissa = mantissa;
    let mut decimals = 0;
    if digits.get(at) == Some(&b'.') {
        at += 1;
        let (m, n) = decimal_digits(mantissa, &digits[at..]);
        mantissa = m;
        decimals = n;
        at += n;
    }
    // Up to 19 digits fit a u64 without wrapping; the mantissa must also be exact in an f64.
    if at != digits.len() || whole + decimals == 0 || whole + decimals > 19 {
        return None;
    }
    if mantissa > (1 << 53) || decimals >= POW10.len() {
        return None;
    }
    let value = mantissa as f64 / POW10[decimals];
    Some(f64::from_bits(
        value.to_bits() | (u64::from(negative) << 63),
    ))
}

/// Appends the leading ASCII digits of `bytes` to `mantissa` (wrapping beyond 19 digits, which
/// the caller refuses); returns it and how many digits there were. Four digits at a time where
/// it can (SWAR), as most cells of a numeric export are `d.dddddd`.
fn decimal_digits(mut mantissa: u64, bytes: &[u8]) -> (u64, usize) {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 4) {
        let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let all_digits = (word & 0xF0F0_F0F0) == 0x3030_3030
            && (word.wrapping_add(0x0606_0606) & 0xF0F0_F0F0) == 0x3030_3030;
        if !all_digits {
            break;
        }
        let v = word & 0x0F0F_0F0F;
        let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF;
        let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF;
        mantissa = mantissa.wrapping_mul(10_000).wrapping_add(u64::from(v));
        at += 4;
    }
    while let Some(&b) = bytes.get(at) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        at += 1;
    }
    (mantissa, at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn rows(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let mut header = Vec::new();
        let mut out = Vec::new();
        read_rows(
            text.as_bytes(),
            |row| {
                match row {
                    Row::Header(h) => header = h,
                    Row::Data(cells, _) => out.push(cells.iter().map(|c| text_of(c)).collect()),
                }
                Ok(())
            },
            |_| {},
        )?;
        Ok((header, out))
    }

    fn text_of(c: &[u8]) -> String {
        String::from_utf8(c.to_vec()).unwrap()
    }

    #[test]
    fn plain_decimals_parse_exactly_as_the_standard_library() {
        let cases = [
            "0",
            "-0",
            "1",
            "-1.5",
            "0.1",
            "0.3",
            "123456.789012",
            "-0.000001",
            "+2.25",
            "999999999999999",
            "0.1234567890123",
            ".5",
            "5.",
            "  7.25 ",
            "1e5",
            "-2.5E-3",
            "12345678901234567890",
            "0.30000000000000004",
            "inf",
            "-NaN",
        ];
        for case in cases {
            let expected = case.trim().parse::<f64>().ok();
            let got = parse_number(case.as_bytes());
            match (expected, got) {
                (Some(e), Some(g)) if e.is_nan() => assert!(g.is_nan(), "{case}"),
                (e, g) => assert_eq!(
                    e.map(f64::to_bits),
                    g.map(f64::to_bits),
                    "{case}: {e:?} vs {g:?}"
                ),
            }
        }
        for bad in ["", "-", ".", "1.2.3", "abc", "1,5", "NA", "--1"] {
            assert_eq!(parse_number(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn random_decimals_agree_bit_for_bit_with_the_standard_library() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            let x: f64 = rng.random::<f64>() * 10f64.powi(rng.random_range(-8..12));
            let decimals = rng.random_range(0..16);
            let s = format!("{:.*}", decimals, if rng.random::<bool>() { -x } else { x });
            let expected = s.parse::<f64>().unwrap();
            assert_eq!(
                parse_number(s.as_bytes()).unwrap().to_bits(),
                expected.to_bits(),
                "{s}"
            );
        }
    }

    #[test]
    fn lines_cells_quotes_and_line_endings() {
        let (header, data) =
            rows("a, b ,c\r\n1,2,3\r\n\n\"x, \"\"y\"\"\",\"multi\nline\",4\n5,6,7").unwrap();
        assert_eq!(header, ["a", "b", "c"]);
        assert_eq!(
            data,
            vec![
                vec!["1", "2", "3"],
                vec!["x, \"y\"", "multi\nline", "4"],
                vec!["5", "6", "7"]
            ]
        );
    }

    #[test]
    fn a_row_of_the_wrong_width_names_its_line() {
        let err = rows("a,b\n1,2\n\n3\n").unwrap_err().to_string();
        assert!(err.contains("line 4") && err.contains("1 cells"), "{err}");
        let err = rows("a,b\n1,\"open\n").unwrap_err().to_string();
        assert!(err.contains("never closed"), "{err}");
        assert!(rows("").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn rows_that_straddle_blocks_are_whole() {
        let mut text = String::from("x,y\n");
        let mut expected = 0u64;
        for i in 0..20_000u64 {
            text.push_str(&format!("{i},\"q{i}\"\n"));
            expected += i;
        }
        let mut sum = 0u64;
        let mut count = 0;
        read_rows_in_blocks(
            text.as_bytes(),
            37,
            |row| {
                if let Row::Data(cells, _) = row {
                    sum += parse_number(cells[0]).unwrap() as u64;
                    assert_eq!(cells[1][0], b'q');
                    count += 1;
                }
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        assert_eq!((count, sum), (20_000, expected));
    }
}
