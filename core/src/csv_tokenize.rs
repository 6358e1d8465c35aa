//! CSV tokenization: named columns of a CSV file replaced by tokens, every other column copied
//! as it is. The input is streamed in batches of rows (10 000 by default), so memory stays flat
//! whatever its size; each batch of a column is one [`Session::tokenize_many`] call (one audit
//! entry, one store sync for vaulted fields). This is the engine of `phivault tokenize-csv`.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, policy::Caller, tokens::View};
//! use phivault::csv_tokenize::{CsvColumns, tokenize_csv};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! let session = vault.session(Caller::owner());
//! let columns = CsvColumns::new().column("mrn", "mrn").column("ssn", "ssn");
//! let input = "mrn,ssn,diagnosis\nMRN0012345,900-12-3456,E11.9\nMRN0012346,,I10\n";
//! let mut output = Vec::new();
//! let report = tokenize_csv(&session, &columns, input.as_bytes(), &mut output, &mut |_| {})?;
//! assert_eq!((report.rows, report.columns, report.cells), (2, 2, 3));
//! let text = String::from_utf8(output)?;
//! let row: Vec<&str> = text.lines().nth(1).expect("row").split(',').collect();
//! assert_eq!(row[2], "E11.9");                                       // copied
//! assert_eq!(&*session.detokenize("ssn", row[1], View::Plaintext)?, "900-12-3456");
//! assert!(text.lines().nth(2).expect("row").contains(",,I10"));       // empty stays empty
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Format
//! The first record is the header; every record must have as many fields as the header
//! (RFC 4180, with the `csv` crate's reader: `"`-quoted fields may hold commas, quotes and line
//! breaks; blank lines are skipped; a UTF-8 byte-order mark is dropped). The output has the
//! same header and rows, written with `\n` line ends and quotes only where needed, so an
//! unchanged cell has the same value but not always the same bytes as in the input. Empty
//! cells stay empty. A column is found by its exact name; if the header has the name twice,
//! the first such column is meant.
//!
//! ## Security notes
//! - Errors never contain a cell: cells may be PHI. A malformed input is
//!   [`Error::Csv`] with the row number (the header is row 1) and a
//!   [`CsvErrorKind`]; a named column the header lacks is [`Error::CsvColumnMissing`],
//!   which names the column (the caller's own text). Errors of tokenization itself (access
//!   denied, a value the field does not accept) come back as they are, without a row: a
//!   batch is tokenized in one call. The [`CsvProgress`] reports tell how many rows were
//!   written before.
//! - Only the named columns are tokenized. A PHI column left out of [`CsvColumns`] is copied in
//!   the clear.
//! - The output is written as the input is read. After an error it holds a partial result:
//!   write to a temporary file and rename it into place on success, as the CLI does.
//! - The `csv` reader's internal buffers are not wiped after use.

pub use crate::error::CsvErrorKind;
use crate::error::{Error, Result};
use crate::session::Session;
use std::io::{Read, Write};

/// Rows per batch unless [`CsvColumns::batch_rows`] says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 10_000;

/// What to tokenize: columns (by header name) and the field each is tokenized as, and the
/// column that holds each row's data subject, for fields tied to subjects (such as `dob`).
#[derive(Clone, Debug)]
pub struct CsvColumns {
    columns: Vec<(String, String)>,
    subject: Option<String>,
    batch_rows: usize,
}

impl Default for CsvColumns {
    fn default() -> Self {
        CsvColumns {
            columns: Vec::new(),
            subject: None,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

impl CsvColumns {
    /// No columns yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokenizes column `column` as field `field` (a preset such as `ssn` or a defined field).
    #[must_use]
    pub fn column(mut self, column: impl Into<String>, field: impl Into<String>) -> Self {
        self.columns.push((column.into(), field.into()));
        self
    }

    /// Takes each row's data subject from column `column`: every named column is then
    /// tokenized for its row's subject (one call per cell), which fields tied to subjects need.
    #[must_use]
    pub fn subject_column(mut self, column: impl Into<String>) -> Self {
        self.subject = Some(column.into());
        self
    }

    /// Rows per batch (at least 1; default [`DEFAULT_BATCH_ROWS`]). Memory grows with it.
    #[must_use]
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// The (column, field) pairs, in order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.columns.iter().map(|(c, f)| (c.as_str(), f.as_str()))
    }

    /// The subject column, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    fn validate(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::invalid("CSV columns", "name no column to tokenize"));
        }
        for (i, (c, _)) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|(d, _)| d == c) {
                return Err(Error::invalid("CSV columns", "name a column twice"));
            }
        }
        Ok(())
    }
}

/// Progress, reported after each batch is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsvProgress {
    /// Data rows written so far (the header not counted).
    pub rows: u64,
    /// Input bytes read so far.
    pub bytes: u64,
}

/// What [`tokenize_csv`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsvReport {
    /// Data rows written (the header not counted).
    pub rows: u64,
    /// Columns tokenized.
    pub columns: usize,
    /// Cells tokenized (the non-empty cells of those columns).
    pub cells: u64,
}

/// Reads CSV with a header from `input`, writes it to `output` with the columns of `columns`
/// tokenized as their fields, and reports the rows and columns done. Every named column (and
/// the subject column) must be in the header; empty cells stay empty. `progress` is called
/// after each batch of rows is written. `output` is flushed at the end; nothing is written to
/// it before the header has been checked.
///
/// Errors: [`Error::InvalidInput`] if `columns` names no column or one twice;
/// [`Error::CsvColumnMissing`]; [`Error::Csv`] (row and kind, never contents) for ragged rows,
/// text that is not UTF-8 and malformed CSV; [`Error::Io`] if reading or writing fails; and any
/// error of [`Session::tokenize_many`] / [`Session::tokenize_for_subject`].
pub fn tokenize_csv<R: Read, W: Write>(
    session: &Session<'_>,
    columns: &CsvColumns,
    input: R,
    output: W,
    progress: &mut dyn FnMut(CsvProgress),
) -> Result<CsvReport> {
    columns.validate()?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
    let header = rdr.headers().map_err(|e| read_error(e, 1))?.clone();
    let find = |name: &str, subject: bool| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::CsvColumnMissing {
                column: name.to_owned(),
                subject,
            })
    };
    let mut cols = Vec::with_capacity(columns.columns.len());
    for (column, field) in &columns.columns {
        cols.push((find(column, false)?, field.as_str()));
    }
    let subject = columns.subject().map(|c| find(c, true)).transpose()?;

    let mut wtr = csv::Writer::from_writer(output);
    wtr.write_record(&header).map_err(write_error)?;
    let mut report = CsvReport {
        rows: 0,
        columns: cols.len(),
        cells: 0,
    };
    let mut batch: Vec<csv::StringRecord> = Vec::new();
    loop {
        let mut n = 0;
        while n < columns.batch_rows {
            if batch.len() == n {
                batch.push(csv::StringRecord::new());
            }
            let more = rdr
                .read_record(&mut batch[n])
                .map_err(|e| read_error(e, report.rows + n as u64 + 2))?;
            if !more {
                break;
            }
            n += 1;
        }
        if n == 0 {
            break;
        }
        report.cells += write_batch(session, &cols, subject, &batch[..n], &mut wtr)?;
        report.rows += n as u64;
        progress(CsvProgress {
            rows: report.rows,
            bytes: rdr.position().byte(),
        });
        if n < columns.batch_rows {
            break;
        }
    }
    wtr.flush().map_err(|e| Error::io("writing CSV", e))?;
    Ok(report)
}

/// Tokenizes the named columns of `rows` and writes the rows; returns the cells tokenized.
fn write_batch<W: Write>(
    session: &Session<'_>,
    cols: &[(usize, &str)],
    subject: Option<usize>,
    rows: &[csv::StringRecord],
    wtr: &mut csv::Writer<W>,
) -> Result<u64> {
    // tokens[c][r]: the token of column cols[c] in row r (None: an empty cell).
    let mut tokens: Vec<Vec<Option<String>>> = Vec::with_capacity(cols.len());
    let mut cells = 0u64;
    for &(idx, field) in cols {
        let filled: Vec<usize> = (0..rows.len())
            .filter(|&r| !rows[r][idx].is_empty())
            .collect();
        let made = match subject {
            Some(s) => filled
                .iter()
                .map(|&r| session.tokenize_for_subject(field, &rows[r][idx], &rows[r][s]))
                .collect::<Result<Vec<_>>>()?,
            None => {
                let values: Vec<&str> = filled.iter().map(|&r| &rows[r][idx]).collect();
                session.tokenize_many(field, &values)?
            }
        };
        if made.len() != filled.len() {
            return Err(Error::Crypto(
                "tokenization returned another number of tokens",
            ));
        }
        let mut column = vec![None; rows.len()];
        for (&r, t) in filled.iter().zip(made) {
            column[r] = Some(t);
        }
        cells += filled.len() as u64;
        tokens.push(column);
    }
    let mut out: Vec<&str> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        out.clear();
        out.extend(row.iter());
        for (c, &(idx, _)) in cols.iter().enumerate() {
            if let Some(t) = tokens[c][r].as_deref() {
                out[idx] = t;
            }
        }
        wtr.write_record(&out).map_err(write_error)?;
    }
    Ok(cells)
}

/// A reader error as a PHI-free [`Error`]: the row (header = 1; `fallback` when the reader
/// gives no position) and the kind, never the contents.
fn read_error(e: csv::Error, fallback: u64) -> Error {
    let row = e.position().map_or(fallback, |p| p.record() + 1);
    let kind = match e.into_kind() {
        csv::ErrorKind::Io(io) => return Error::io(format!("reading CSV row {row}"), io),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => CsvErrorKind::UnequalLengths {
            expected: expected_len,
            found: len,
        },
        csv::ErrorKind::Utf8 { .. } => CsvErrorKind::NotUtf8,
        _ => CsvErrorKind::Malformed,
    };
    Error::Csv { row, kind }
}

fn write_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io("writing CSV", io),
        _ => Error::invalid("CSV output", "could not be written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_validated() {
        assert!(matches!(
            CsvColumns::new().validate(),
            Err(Error::InvalidInput { .. })
        ));
        let twice = CsvColumns::new().column("a", "ssn").column("a", "mrn");
        assert!(matches!(twice.validate(), Err(Error::InvalidInput { .. })));
        assert_eq!(CsvColumns::new().batch_rows(0).batch_rows, 1);
    }

    #[test]
    fn reader_errors_name_row_and_kind_only() {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(&b"a,b\n1,2\nSECRET\n"[..]);
        let mut rec = csv::StringRecord::new();
        assert!(rdr.read_record(&mut rec).expect("row 2"));
        let e = read_error(rdr.read_record(&mut rec).expect_err("ragged"), 0);
        assert!(matches!(
            e,
            Error::Csv {
                row: 3,
                kind: CsvErrorKind::UnequalLengths {
                    expected: 2,
                    found: 1
                }
            }
        ));
        assert_eq!(e.to_string(), "CSV row 3: row has 1 fields, header has 2");
    }
}
