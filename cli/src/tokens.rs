//! `phivault tokenize | detokenize | tokenize-csv | fields`: tokenization for pipelines.
//! Everything streams in batches, so memory stays flat whatever the input size.

use crate::args::{CallerArgs, FieldsCommand, VaultArgs};
use crate::commands::open;
use crate::exit::CliError;
use phivault::Error;
use phivault::csv_tokenize::{self, CsvColumns};
use phivault::outfile::PrivateOutput;
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
    // Every copy of an input line is wiped when dropped, on success and on error alike
    // (stdin lines are PHI when tokenizing).
    let mut batch: Zeroizing<Vec<String>> = Zeroizing::new(Vec::with_capacity(BATCH));
    let mut flush = |batch: &mut Vec<String>, out: &mut dyn Write| -> Result<(), CliError> {
        // empty lines pass through as empty lines
        let values: Zeroizing<Vec<String>> =
            Zeroizing::new(batch.iter().filter(|l| !l.is_empty()).cloned().collect());
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
        let line = Zeroizing::new(
            line.map_err(|_| CliError::msg(format!("line {}: not UTF-8 text", n + 1)))?,
        );
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
pub fn tokenize(
    vault: &VaultArgs,
    who: &CallerArgs,
    field: &str,
    subject: Option<&str>,
) -> Result<(), CliError> {
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(who));
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
    who: &CallerArgs,
    field: &str,
    view: &str,
    subject: Option<&str>,
) -> Result<(), CliError> {
    let view = View::parse(view)
        .ok_or_else(|| CliError::Other("--view must be plaintext, masked or redacted".into(), 2))?;
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(who));
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

/// `phivault tokenize-csv`: streams any size of CSV in batches of rows
/// (`phivault::csv_tokenize`); this adds the file handling: the output is written to a private
/// temporary file beside OUT (`phivault::outfile`) and renamed into place, durably, only when
/// complete, with a progress bar on a terminal.
pub fn tokenize_csv(
    vault: &VaultArgs,
    who: &CallerArgs,
    fields: &str,
    subject_column: Option<&str>,
    input: &Path,
    output: &Path,
) -> Result<(), CliError> {
    let mapping = parse_mapping(fields)?;
    if mapping.is_empty() {
        return Err(CliError::Other("--fields names no column".into(), 2));
    }
    let mut columns = mapping
        .into_iter()
        .fold(CsvColumns::new(), |c, (col, field)| c.column(col, field))
        .batch_rows(BATCH);
    if let Some(c) = subject_column {
        columns = columns.subject_column(c);
    }
    let v = open(vault)?;
    let sess = v.session(crate::commands::caller(who));
    let file = std::fs::File::open(input)
        .map_err(|e| CliError::msg(format!("opening {}: {e}", input.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    v.fields()?; // surfaces store errors early
    // A private temporary file beside OUT (0600, exclusive, no-follow), removed on any error.
    let mut out = PrivateOutput::create(output)
        .map_err(|e| CliError::msg(format!("creating a file beside {}: {e}", output.display())))?;
    let out_file = out.take_file()?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} tokenize-csv [{bar:40}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    });
    let mut done_rows = 0u64;
    let report =
        csv_tokenize::tokenize_csv(&sess, &columns, file, BufWriter::new(&out_file), &mut |p| {
            done_rows = p.rows;
            if let Some(b) = &bar {
                b.set_position(p.bytes);
            }
        })
        .map_err(|e| match e {
            // Errors of the CSV itself name their row (or column) already.
            Error::Csv { .. } | Error::CsvColumnMissing { .. } | Error::Io { .. } => e.into(),
            // Errors of tokenization concern a batch of rows.
            e => row_error(done_rows, e),
        })?;
    out.commit_file(out_file)
        .map_err(|e| CliError::msg(format!("writing {}: {e}", output.display())))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!(
        "tokenized {} columns of {} rows into {}",
        report.columns,
        report.rows,
        output.display()
    );
    Ok(())
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
