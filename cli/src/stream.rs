//! `phivault encrypt-file | decrypt-file | rewrap-file`: large objects with constant memory.

use crate::args::{CallerArgs, VaultArgs};
use crate::commands::{caller, open, parse_context};
use crate::exit::CliError;
use phivault::stream::StreamOptions;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

fn bar(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:40}}] {{bytes}}/{{total_bytes}}  {{bytes_per_sec}}  ETA {{eta}}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    })
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `phivault encrypt-file`.
#[allow(clippy::too_many_arguments)] // the command's arguments, passed through as they are
pub fn encrypt_file(
    vault: &VaultArgs,
    who: &CallerArgs,
    context: &[String],
    subject: Option<String>,
    keyring: String,
    segment_log2: u8,
    input: &Path,
    output: &Path,
) -> Result<(), CliError> {
    let ctx = parse_context(context)?;
    let v = open(vault)?;
    let b = bar(size(input), "encrypt");
    let start = std::time::Instant::now();
    let n = v.session(caller(who)).encrypt_file(
        input,
        output,
        &ctx,
        &StreamOptions {
            keyring,
            subject,
            segment_log2,
        },
        &mut |done| {
            if let Some(b) = &b {
                b.set_position(done);
            }
        },
    )?;
    if let Some(b) = b {
        b.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "encrypted {n} bytes in {secs:.2}s ({:.0} MiB/s)",
        n as f64 / 1048576.0 / secs.max(1e-9)
    );
    Ok(())
}

/// `phivault decrypt-file`.
pub fn decrypt_file(
    vault: &VaultArgs,
    who: &CallerArgs,
    context: &[String],
    input: &Path,
    output: &Path,
) -> Result<(), CliError> {
    let ctx = parse_context(context)?;
    let v = open(vault)?;
    let b = bar(size(input), "decrypt");
    let n = v
        .session(caller(who))
        .decrypt_file(input, output, &ctx, &mut |done| {
            if let Some(b) = &b {
                b.set_position(done);
            }
        })?;
    if let Some(b) = b {
        b.finish_and_clear();
    }
    eprintln!("decrypted {n} bytes");
    Ok(())
}

/// `phivault rewrap-file`.
pub fn rewrap_files(vault: &VaultArgs, files: &[PathBuf]) -> Result<(), CliError> {
    let v = open(vault)?;
    let mut changed = 0;
    for f in files {
        if v.rewrap_file(f)? {
            changed += 1;
        }
    }
    eprintln!("rewrapped {changed} of {} files", files.len());
    Ok(())
}
