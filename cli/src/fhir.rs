//! `phivault fhir`: de-identification and re-identification of FHIR NDJSON and JSON documents
//! (core's `deid`), to a private file renamed into place when complete.

use crate::args::{CallerArgs, FhirCommand, FhirIo, VaultArgs};
use crate::commands::{caller, open};
use crate::exit::CliError;
use phivault::Vault;
use phivault::deid::{DeidReport, NdjsonOptions, OnError, Schema};
use phivault::outfile::PrivateOutput;
use phivault::tokens::View;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

/// Largest single JSON document read whole (NDJSON streams instead).
const MAX_JSON_BYTES: u64 = 1 << 30;

/// Runs a `phivault fhir` command.
pub fn run(cmd: FhirCommand) -> Result<(), CliError> {
    match cmd {
        FhirCommand::Deid { vault, caller, io } => process(&vault, &caller, &io, None),
        FhirCommand::Reid {
            vault,
            caller,
            io,
            view,
        } => {
            let view = View::parse(&view).ok_or_else(|| {
                CliError::Other("--view is plaintext, masked or redacted".into(), 2)
            })?;
            process(&vault, &caller, &io, Some(view))
        }
        FhirCommand::DefineSchema { vault, name, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::msg(format!("reading {}: {e}", file.display())))?;
            open(&vault)?.define_schema(&name, &text)?;
            eprintln!("defined schema {name}");
            Ok(())
        }
        FhirCommand::Schemas { vault } => {
            for name in open(&vault)?.schemas()? {
                println!("{name}");
            }
            Ok(())
        }
        FhirCommand::ShowPreset { name } => match phivault::deid::schema::preset_toml(&name) {
            Some(text) => {
                print!("{text}");
                Ok(())
            }
            None => Err(CliError::Other(
                "the presets are safe-harbor and shifted-dates".into(),
                2,
            )),
        },
    }
}

/// The schema named on the command line: a preset; else a file, if one exists at that path;
/// else a schema stored in the vault.
fn schema(v: &Vault, name: &str) -> Result<Schema, CliError> {
    let path = Path::new(name);
    if Schema::preset(name).is_none() && path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::msg(format!("reading {}: {e}", path.display())))?;
        return Ok(Schema::parse(&text)?);
    }
    Ok(v.schema(name)?)
}

fn process(
    vault: &VaultArgs,
    who: &CallerArgs,
    io: &FhirIo,
    reid: Option<View>,
) -> Result<(), CliError> {
    let errors = OnError::from_name(&io.errors)
        .ok_or_else(|| CliError::Other("--errors is skip or fail".into(), 2))?;
    let json = match io.format.as_deref() {
        Some("json") => true,
        Some("ndjson") => false,
        Some(_) => return Err(CliError::Other("--format is ndjson or json".into(), 2)),
        None => io.input.extension().is_some_and(|e| e == "json"),
    };
    let v = open(vault)?;
    let schema = schema(&v, &io.schema)?;
    let sess = v.session(caller(who));
    let file = std::fs::File::open(&io.input)
        .map_err(|e| CliError::msg(format!("opening {}: {e}", io.input.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut out = PrivateOutput::create(&io.output).map_err(|e| {
        CliError::msg(format!(
            "creating a file beside {}: {e}",
            io.output.display()
        ))
    })?;
    let out_file = out.take_file()?;
    let verb = if reid.is_some() { "reid" } else { "deid" };
    let report = if json {
        let mut text = Vec::new();
        file.take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| CliError::msg(format!("reading {}: {e}", io.input.display())))?;
        if text.len() as u64 > MAX_JSON_BYTES {
            return Err(CliError::msg(
                "the JSON document is larger than 1 GiB: use NDJSON",
            ));
        }
        let mut doc: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            // serde_json's message may quote the input: the line and column only.
            CliError::msg(format!(
                "{} is not valid JSON (line {}, column {})",
                io.input.display(),
                e.line(),
                e.column()
            ))
        })?;
        drop(text);
        let report = match reid {
            Some(view) => sess.reidentify(&schema, &mut doc, view)?,
            None => sess.deidentify(&schema, &mut doc)?,
        };
        let mut w = BufWriter::new(&out_file);
        serde_json::to_writer(&mut w, &doc).map_err(|_| CliError::msg("writing the document"))?;
        w.write_all(b"\n")
            .and_then(|()| w.flush())
            .map_err(|e| CliError::msg(format!("writing {}: {e}", io.output.display())))?;
        report
    } else {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{spinner}} fhir {verb} [{{bar:40}}] {{bytes}}/{{total_bytes}}  {{bytes_per_sec}}  ETA {{eta}}"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        let opts = NdjsonOptions::default().errors(errors);
        let input = BufReader::with_capacity(1 << 20, file);
        let output = BufWriter::with_capacity(1 << 20, &out_file);
        let mut tick = |p: phivault::deid::NdjsonProgress| {
            if let Some(b) = &bar {
                b.set_position(p.bytes);
            }
        };
        let report = match reid {
            Some(view) => sess.reidentify_ndjson(&schema, view, input, output, &opts, &mut tick)?,
            None => sess.deidentify_ndjson(&schema, input, output, &opts, &mut tick)?,
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        report
    };
    out.commit_file(out_file)
        .map_err(|e| CliError::msg(format!("writing {}: {e}", io.output.display())))?;
    if let Some(path) = &io.report {
        phivault::outfile::write_atomic(path, report.to_json().as_bytes())
            .map_err(|e| CliError::msg(format!("writing {}: {e}", path.display())))?;
    }
    summary(verb, &report, &io.output);
    Ok(())
}

fn summary(verb: &str, r: &DeidReport, out: &Path) {
    let failed: u64 = r.rules.iter().map(|c| c.failed).sum();
    eprintln!(
        "fhir {verb}: {} documents, {} resources, {} elements decided ({failed} could not be processed and were {}) into {}",
        r.documents,
        r.resources,
        r.elements(),
        if verb == "deid" {
            "removed"
        } else {
            "left as they were"
        },
        out.display()
    );
    if r.bad_lines > 0 {
        let listed: Vec<String> = r.bad_line_numbers.iter().map(u64::to_string).collect();
        eprintln!(
            "skipped {} malformed lines: {}{}",
            r.bad_lines,
            listed.join(", "),
            if r.bad_lines as usize > listed.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
}
