//! Bulk de-identification of NDJSON (FHIR Bulk Data `$export` files): one resource per line,
//! read and written in batches, so memory stays flat whatever the file's size. Each batch is
//! parsed and planned on the vault's pool, its vault operations are one session call per
//! field (one policy decision and audit entry each), and its lines are written in input order.

use super::engine::{self, Compiled, Mode, Plan};
use super::{DeidReport, Schema};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::tokens::View;
use serde_json::Value;
use std::io::{BufRead, Write};

/// Longest line accepted, in bytes (longer lines are malformed).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// What to do with a line that is not a JSON resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// Stop with [`Error::Ndjson`] naming the line (the default).
    #[default]
    Fail,
    /// Leave the line out of the output and list its number in the report.
    Skip,
}

impl OnError {
    /// `skip` or `fail`.
    pub fn from_name(name: &str) -> Option<OnError> {
        match name {
            "skip" => Some(OnError::Skip),
            "fail" => Some(OnError::Fail),
            _ => None,
        }
    }
}

/// How an NDJSON run goes.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct NdjsonOptions {
    /// Malformed lines.
    pub errors: OnError,
    /// Lines per batch (memory grows with it; default 4096).
    pub batch_lines: usize,
}

impl Default for NdjsonOptions {
    fn default() -> Self {
        NdjsonOptions {
            errors: OnError::Fail,
            batch_lines: 4096,
        }
    }
}

impl NdjsonOptions {
    /// With `errors`.
    #[must_use]
    pub fn errors(mut self, errors: OnError) -> Self {
        self.errors = errors;
        self
    }

    /// With `lines` per batch (at least 1).
    #[must_use]
    pub fn batch_lines(mut self, lines: usize) -> Self {
        self.batch_lines = lines.max(1);
        self
    }
}

/// Progress, reported after each batch is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NdjsonProgress {
    /// Lines read so far.
    pub lines: u64,
    /// Input bytes read so far.
    pub bytes: u64,
}

impl Session<'_> {
    /// De-identifies NDJSON from `input` to `output` by `schema`: each non-blank line one
    /// resource, written as one line in input order. Malformed lines (not JSON, not a
    /// resource, too long, too deep) fail the run or are skipped (`opts.errors`), named by
    /// line number only. `output` holds a partial result after an error: write to a
    /// temporary file and rename it on success, as the CLI does.
    pub fn deidentify_ndjson<R: BufRead, W: Write>(
        &self,
        schema: &Schema,
        input: R,
        output: W,
        opts: &NdjsonOptions,
        progress: &mut dyn FnMut(NdjsonProgress),
    ) -> Result<DeidReport> {
        run(self, schema, Mode::Deid, input, output, opts, progress)
    }

    /// Re-identifies NDJSON that [`Session::deidentify_ndjson`] made (see
    /// [`Session::reidentify`] for what comes back).
    pub fn reidentify_ndjson<R: BufRead, W: Write>(
        &self,
        schema: &Schema,
        view: View,
        input: R,
        output: W,
        opts: &NdjsonOptions,
        progress: &mut dyn FnMut(NdjsonProgress),
    ) -> Result<DeidReport> {
        run(
            self,
            schema,
            Mode::Reid(view),
            input,
            output,
            opts,
            progress,
        )
    }
}

/// A document of phase 3, its plan and the results of its ops, behind a mutex for the pool
/// (the worker that serializes it takes it out and frees it).
type Applying = std::sync::Mutex<Option<(Value, Plan, Vec<Option<String>>)>>;

/// One line of a batch: its number and bytes (`None`: longer than allowed).
struct Line {
    number: u64,
    bytes: Option<Vec<u8>>,
}

fn run<R: BufRead, W: Write>(
    session: &Session<'_>,
    schema: &Schema,
    mode: Mode,
    mut input: R,
    mut output: W,
    opts: &NdjsonOptions,
    progress: &mut dyn FnMut(NdjsonProgress),
) -> Result<DeidReport> {
    let c = Compiled::new(schema, mode);
    let mut report = DeidReport::new(schema);
    let mut line_no = 0u64;
    let mut bytes_read = 0u64;
    let batch = opts.batch_lines.max(1);
    let mut done = false;
    while !done {
        let mut lines: Vec<Line> = Vec::with_capacity(batch.min(65_536));
        while lines.len() < batch {
            let mut buf = Vec::new();
            let (n, too_long) = read_line(&mut input, &mut buf)?;
            if n == 0 {
                done = true;
                break;
            }
            bytes_read += n as u64;
            line_no += 1;
            if too_long {
                lines.push(Line {
                    number: line_no,
                    bytes: None,
                });
                continue;
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push(Line {
                number: line_no,
                bytes: Some(buf),
            });
        }
        if lines.is_empty() {
            break;
        }
        // Phase 1 on the pool: parse and plan each line.
        let planned = session.vault().parallel.map(&lines, |l| {
            Ok(match &l.bytes {
                None => Err("longer than 64 MiB"),
                Some(b) => plan_line(&c, b),
            })
        })?;
        let mut docs: Vec<(Value, Plan)> = Vec::with_capacity(planned.len());
        for (l, p) in lines.iter().zip(planned) {
            match p {
                Ok(d) => docs.push(d),
                Err(why) => match opts.errors {
                    OnError::Fail => {
                        return Err(Error::Ndjson {
                            line: l.number,
                            why,
                        });
                    }
                    OnError::Skip => report.bad_line(l.number),
                },
            }
        }
        drop(lines);
        // Phase 2: the vault, once per field for the batch.
        let results = {
            let mut plans: Vec<&mut Plan> = docs.iter_mut().map(|(_, p)| p).collect();
            engine::run_ops(session, &c, &mut plans)?
        };
        // Phase 3 on the pool: results in place, serialization, and the document freed where
        // it was serialized (freeing a batch of trees on one thread costs as much as writing
        // them). Each document is its own item, behind a mutex: the pool's map hands out
        // shared references.
        for (_, plan) in &docs {
            report.add(plan, plan.resources());
        }
        let items: Vec<Applying> = docs
            .into_iter()
            .zip(results)
            .map(|((doc, plan), res)| std::sync::Mutex::new(Some((doc, plan, res))))
            .collect();
        let out = session.vault().parallel.map(&items, |item| {
            let taken = item
                .lock()
                .map_err(|_| Error::Crypto("a de-identification worker failed"))?
                .take();
            let Some((mut doc, plan, res)) = taken else {
                return Err(Error::Crypto(
                    "a de-identification document was taken twice",
                ));
            };
            engine::apply(&c, &plan, &res, &mut doc)?;
            serde_json::to_vec(&doc).map_err(|_| Error::invalid("document", "cannot be written"))
        })?;
        drop(items);
        for line in out {
            output
                .write_all(&line)
                .and_then(|()| output.write_all(b"\n"))
                .map_err(|e| Error::io("writing NDJSON", e))?;
        }
        progress(NdjsonProgress {
            lines: line_no,
            bytes: bytes_read,
        });
    }
    output.flush().map_err(|e| Error::io("writing NDJSON", e))?;
    Ok(report)
}

/// Parses and plans one line; the error says why in a few words, never quoting the line.
fn plan_line(c: &Compiled<'_>, bytes: &[u8]) -> std::result::Result<(Value, Plan), &'static str> {
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => "JSON ends early",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "not valid JSON data",
        serde_json::error::Category::Io => "could not be read",
    })?;
    if !doc
        .as_object()
        .is_some_and(|o| o.get("resourceType").is_some_and(Value::is_string))
    {
        return Err("not a FHIR resource (no resourceType)");
    }
    match engine::plan(c, &mut doc) {
        Ok(plan) => Ok((doc, plan)),
        Err(Error::InvalidInput { why, .. }) => Err(why),
        Err(_) => Err("could not be processed"),
    }
}

/// Reads one line (with its `\n`) into `buf`; returns the bytes consumed and whether the
/// line was longer than [`MAX_LINE_BYTES`] (then `buf` holds only its start and the rest of
/// the line is consumed).
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> Result<(usize, bool)> {
    let io = |e| Error::io("reading NDJSON", e);
    let n = std::io::Read::take(&mut *input, MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(io)?;
    if n <= MAX_LINE_BYTES || buf.last() == Some(&b'\n') {
        return Ok((n, false));
    }
    let mut total = n;
    loop {
        let chunk = input.fill_buf().map_err(io)?;
        if chunk.is_empty() {
            break;
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                total += i + 1;
                break;
            }
            None => {
                let l = chunk.len();
                input.consume(l);
                total += l;
            }
        }
    }
    buf.clear();
    Ok((total, true))
}
