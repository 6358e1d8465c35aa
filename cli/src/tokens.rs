//! `phivault tokenize | detokenize | tokenize-csv | fields`: tokenization for pipelines.
//! Everything streams in batches, so memory stays flat whatever the input size.

use crate::args::{FieldsCommand, VaultArgs};
use crate::commands::open;
use crate::exit::CliError;
use phivault::tokens::{FieldSpec, View};
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// Values per tokenize/detokenize batch (one store sync per batch).
pub const BATCH: usize = 10_000;

fn run_lines(
    input: impl BufRead,
    mut out: impl Write,
    mut f: impl FnMut(&[String]) -> Result<Vec<Zeroizing<String>>, CliError>,
) -> Result<(), CliError> {
    let mut batch: Vec<String> = Vec::with_capacity(BATCH);
    let mut flush = |batch: &mut Vec<String>, out: &mut dyn Write| -> Result<(), CliError> {
        // empty lines pass through as empty lines
        let values: Vec<String> = batch.iter().filter(|l| !l.is_empty()).cloned().collect();
        let mut done = f(&values)?.into_iter();
        for line in batch.iter() {
            if line.is_empty() {
                out.write_all(b"\n")?;
            } else {
                let v = done
                    .next()
                    .ok_or_else(|| CliError::msg("internal: batch size mismatch"))?;
                out.write_all(v.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        for l in batch.iter_mut() {
            zeroize::Zeroize::zeroize(l);
        }
        batch.clear();
        Ok(())
    };
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|_| CliError::msg(format!("line {}: not UTF-8 text", n + 1)))?;
        batch.push(line.trim_end_matches('\r').to_owned());
        if batch.len() == BATCH {
            flush(&mut batch, &mut out)?;
        }
    }
    flush(&mut batch, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `phivault tokenize`.
pub fn tokenize(vault: &VaultArgs, field: &str, subject: Option<&str>) -> Result<(), CliError> {
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(vault));
    let stdin = std::io::stdin().lock();
    let stdout = BufWriter::new(std::io::stdout().lock());
    run_lines(stdin, stdout, |vals| {
        let toks = match subject {
            Some(s) => vals
                .iter()
                .map(|x| sess.tokenize_for_subject(field, x, s))
                .collect::<Result<Vec<_>, _>>()?,
            None => sess.tokenize_many(field, vals)?,
        };
        Ok(toks.into_iter().map(Zeroizing::new).collect())
    })
}

/// `phivault detokenize`.
pub fn detokenize(
    vault: &VaultArgs,
    field: &str,
    view: &str,
    subject: Option<&str>,
) -> Result<(), CliError> {
    let view = View::parse(view)
        .ok_or_else(|| CliError::Other("--view must be plaintext, masked or redacted".into(), 2))?;
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(vault));
    let stdin = std::io::stdin().lock();
    let stdout = BufWriter::new(std::io::stdout().lock());
    run_lines(stdin, stdout, |toks| match subject {
        Some(s) => Ok(toks
            .iter()
            .map(|t| sess.detokenize_for_subject(field, t, s, view))
            .collect::<Result<Vec<_>, _>>()?),
        None => Ok(sess.detokenize_many(field, toks, view)?),
    })
}

/// Parses `col=field,col2=field2`.
fn parse_mapping(spec: &str) -> Result<Vec<(String, String)>, CliError> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(c, f)| (c.trim().to_owned(), f.trim().to_owned()))
                .filter(|(c, f)| !c.is_empty() && !f.is_empty())
                .ok_or_else(|| {
                    CliError::Other(format!("--fields entry '{pair}' is not COLUMN=FIELD"), 2)
                })
        })
        .collect()
}

/// `phivault tokenize-csv`: streams any size of CSV in batches of rows.
pub fn tokenize_csv(
    vault: &VaultArgs,
    fields: &str,
    subject_column: Option<&str>,
    input: &Path,
    output: &Path,
) -> Result<(), CliError> {
    let mapping = parse_mapping(fields)?;
    if mapping.is_empty() {
        return Err(CliError::Other("--fields names no column".into(), 2));
    }
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(vault));
    let file = std::fs::File::open(input)
        .map_err(|e| CliError::msg(format!("opening {}: {e}", input.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(std::io::BufReader::new(file));
    let headers = rdr
        .headers()
        .map_err(|e| CliError::msg(format!("reading CSV header: {e}")))?
        .clone();
    let mut cols = Vec::new();
    for (col, field) in &mapping {
        let idx = headers
            .iter()
            .position(|h| h == col)
            .ok_or_else(|| CliError::msg(format!("column '{col}' is not in the CSV header")))?;
        v.fields()?; // surfaces store errors early
        cols.push((idx, field.clone()));
    }
    let subject_idx = match subject_column {
        Some(c) => Some(headers.iter().position(|h| h == c).ok_or_else(|| {
            CliError::msg(format!("subject column '{c}' is not in the CSV header"))
        })?),
        None => None,
    };
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    let tmp = output.with_file_name(name);
    let out_file = phivault::stream::create_private(&tmp)
        .map_err(|e| CliError::msg(format!("creating {}: {e}", tmp.display())))?;
    let guard = PartialFile(Some(tmp.clone()));
    let mut wtr = csv::Writer::from_writer(BufWriter::new(out_file));
    wtr.write_record(&headers)
        .map_err(|e| CliError::msg(format!("writing CSV: {e}")))?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} tokenize-csv [{bar:40}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    });
    let mut rows: Vec<csv::StringRecord> = Vec::with_capacity(BATCH);
    let done_rows = std::cell::Cell::new(0u64);
    let process = |rows: &mut Vec<csv::StringRecord>,
                   wtr: &mut csv::Writer<BufWriter<std::fs::File>>|
     -> Result<(), CliError> {
        let mut out: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(str::to_owned).collect())
            .collect();
        for (idx, field) in &cols {
            let positions: Vec<usize> = (0..rows.len())
                .filter(|&r| !rows[r][*idx].is_empty())
                .collect();
            let values: Vec<&str> = positions.iter().map(|&r| &rows[r][*idx]).collect();
            let toks = match subject_idx {
                Some(si) => positions
                    .iter()
                    .map(|&r| sess.tokenize_for_subject(field, &rows[r][*idx], &rows[r][si]))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| row_error(done_rows.get(), e))?,
                None => sess
                    .tokenize_many(field, &values)
                    .map_err(|e| row_error(done_rows.get(), e))?,
            };
            for (&r, t) in positions.iter().zip(toks) {
                out[r][*idx] = t;
            }
        }
        for r in &out {
            wtr.write_record(r)
                .map_err(|e| CliError::msg(format!("writing CSV: {e}")))?;
        }
        done_rows.set(done_rows.get() + rows.len() as u64);
        rows.clear();
        Ok(())
    };
    let mut record = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut record).map_err(|e| {
            CliError::msg(format!(
                "reading CSV near row {}: {}",
                done_rows.get() + rows.len() as u64 + 2,
                csv_error_kind(&e)
            ))
        })?;
        if !more {
            break;
        }
        rows.push(record.clone());
        if rows.len() == BATCH {
            process(&mut rows, &mut wtr)?;
            if let Some(b) = &bar {
                b.set_position(rdr.position().byte());
            }
        }
    }
    process(&mut rows, &mut wtr)?;
    let inner = wtr
        .into_inner()
        .map_err(|e| CliError::msg(format!("writing CSV: {}", e.error())))?;
    inner
        .into_inner()
        .map_err(|e| CliError::msg(format!("writing CSV: {}", e.error())))?
        .sync_all()?;
    guard.keep();
    std::fs::rename(&tmp, output)
        .map_err(|e| CliError::msg(format!("renaming to {}: {e}", output.display())))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!(
        "tokenized {} columns of {} rows into {}",
        cols.len(),
        done_rows.get(),
        output.display()
    );
    Ok(())
}

/// Removes a half-written output when dropped (on any error), unless kept.
struct PartialFile(Option<std::path::PathBuf>);

impl PartialFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A CSV error without the field contents (they may be PHI).
fn csv_error_kind(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("row has {len} fields, header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        csv::ErrorKind::Io(err) => err.to_string(),
        _ => "malformed CSV".into(),
    }
}

fn row_error(before: u64, e: phivault::Error) -> CliError {
    let err = CliError::Vault(e);
    CliError::Other(
        format!(
            "in the batch of rows after row {before}: {}",
            crate::exit::describe(&err)
        ),
        crate::exit::code(&err),
    )
}

/// `phivault fields ...`.
pub fn fields(cmd: FieldsCommand) -> Result<(), CliError> {
    match cmd {
        FieldsCommand::List { vault, json } => {
            let v = open(&vault)?;
            let fields = v.fields()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&fields)
                        .map_err(|e| CliError::msg(e.to_string()))?
                );
            } else {
                println!(
                    "{:<12} {:<11} {:<13} {:<10} {:<7}",
                    "field", "kind", "alphabet", "consistent", "subject"
                );
                for f in fields {
                    println!(
                        "{:<12} {:<11} {:<13} {:<10} {:<7}",
                        f.name,
                        serde_json::to_value(f.kind)
                            .ok()
                            .and_then(|x| x.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        f.alphabet,
                        f.consistent,
                        f.subject
                    );
                }
            }
            Ok(())
        }
        FieldsCommand::Define { vault, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::msg(format!("reading {}: {e}", file.display())))?;
            let v = open(&vault)?;
            let n = v.define_fields_toml(&text)?;
            eprintln!("defined {n} fields");
            Ok(())
        }
        FieldsCommand::Show { vault } => {
            let v = open(&vault)?;
            print!("{}", FieldSpec::to_toml(&v.fields()?)?);
            Ok(())
        }
    }
}
