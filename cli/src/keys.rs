//! `phivault keys ...`, `rewrap`, `rewrap-envelope`: key lifecycle for operators.

use crate::args::{KeysCommand, VaultArgs};
use crate::commands::open;
use crate::exit::CliError;
use crate::io::{read_stdin, write_stdout};
use phivault::lifecycle::{RewrapOptions, RewrapProgress};
use phivault::status::KeyringStatus;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Runs a `keys` subcommand.
pub fn run(cmd: KeysCommand) -> Result<(), CliError> {
    match cmd {
        KeysCommand::List { vault, json } => {
            let v = open(&vault)?;
            let st = v.status()?;
            if json {
                let out = serde_json::json!({ "keyrings": st.keyrings, "records": st.records });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).map_err(|e| CliError::msg(e.to_string()))?
                );
            } else {
                print_versions(&st.keyrings);
            }
            Ok(())
        }
        KeysCommand::Create { vault, name } => {
            let v = open(&vault)?;
            v.create_keyring(&name)?;
            eprintln!("created keyring '{name}' (version 1 active)");
            Ok(())
        }
        KeysCommand::Rotate {
            vault,
            keyring,
            if_older_than,
        } => {
            let v = open(&vault)?;
            match if_older_than {
                Some(d) => match v.rotate_if_older_than(&keyring, parse_duration(&d)?)? {
                    Some(n) => eprintln!("rotated '{keyring}': version {n} is active"),
                    None => {
                        eprintln!("'{keyring}': active version is younger than {d}; not rotated")
                    }
                },
                None => {
                    let n = v.rotate(&keyring)?;
                    eprintln!(
                        "rotated '{keyring}': version {n} is active; run `phivault rewrap` to move existing data"
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Retire {
            vault,
            keyring,
            min_version,
        } => {
            let v = open(&vault)?;
            v.set_min_decryption_version(&keyring, min_version)?;
            eprintln!("'{keyring}': versions below {min_version} now refuse to decrypt");
            Ok(())
        }
        KeysCommand::Destroy {
            vault,
            keyring,
            version,
            force,
        } => {
            let v = open(&vault)?;
            let deps = v.destroy_key_version(&keyring, version, force)?;
            eprintln!(
                "destroyed '{keyring}' version {version}{}",
                if deps.records + deps.subject_keys > 0 {
                    format!(
                        " ({} records and {} subject keys are now unrecoverable)",
                        deps.records, deps.subject_keys
                    )
                } else {
                    String::new()
                }
            );
            Ok(())
        }
    }
}

/// Prints one line per key version.
pub fn print_versions(keyrings: &[KeyringStatus]) {
    println!(
        "{:<20} {:>7} {:<13} {:>10} {:>12}  created (unix)",
        "keyring", "version", "state", "records", "subject keys"
    );
    for k in keyrings {
        for v in &k.versions {
            println!(
                "{:<20} {:>7} {:<13} {:>10} {:>12}  {}",
                k.name,
                v.version,
                v.state.as_str(),
                v.records,
                v.subject_keys,
                v.created_unix
            );
        }
    }
}

/// Parses `90d`, `12h`, `30m`, `3600s`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, CliError> {
    let bad = || {
        CliError::Other(
            format!("'{s}' is not a duration like 90d, 12h, 30m, 3600s or 2w"),
            2,
        )
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n.checked_mul(secs).ok_or_else(bad)?))
}

/// `phivault rewrap`: a progress bar on a terminal, plain lines otherwise.
pub fn rewrap(
    vault: &VaultArgs,
    keyring: Option<String>,
    batch: usize,
    json: bool,
) -> Result<(), CliError> {
    let v = open(vault)?;
    let total = v.status()?.records;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} rewrap [{bar:40}] {pos}/{len} records  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let start = Instant::now();
    let mut last_line = Instant::now();
    let mut on_progress = |p: &RewrapProgress| {
        if let Some(b) = &bar {
            b.set_position(p.scanned.min(total));
        } else if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            let rate = p.scanned as f64 / start.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "rewrap: {}/{} records scanned, {} rewrapped, {:.0} records/s",
                p.scanned, total, p.rewrapped, rate
            );
        }
    };
    let report = v.rewrap(&RewrapOptions { keyring, batch }, &mut on_progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| CliError::msg(e.to_string()))?
        );
    } else {
        eprintln!(
            "rewrap done in {secs:.2}s: {} scanned, {} rewrapped, {} already current, {} subject records, {} subject keys rewrapped, {} changed concurrently, {} unreadable{}",
            report.scanned,
            report.rewrapped,
            report.up_to_date,
            report.subject_records,
            report.subject_keys_rewrapped,
            report.raced,
            report.unreadable,
            if report.resumed {
                " (resumed from checkpoint)"
            } else {
                ""
            }
        );
    }
    if report.unreadable > 0 {
        return Err(CliError::Other(
            format!(
                "{} records could not be rewrapped (retired or destroyed key, or damaged)",
                report.unreadable
            ),
            7,
        ));
    }
    Ok(())
}

/// `phivault rewrap-envelope`: text lines in, text lines out; or one binary envelope.
pub fn rewrap_envelope(vault: &VaultArgs) -> Result<(), CliError> {
    let v = open(vault)?;
    let input = read_stdin()?;
    if phivault::envelope::is_text(&input) {
        let text =
            std::str::from_utf8(&input).map_err(|_| CliError::msg("input is not UTF-8 text"))?;
        let mut out = String::with_capacity(text.len());
        for line in text.lines().filter(|l| !l.is_empty()) {
            let re = v.rewrap_envelope(line.as_bytes())?;
            out.push_str(
                std::str::from_utf8(&re).map_err(|_| CliError::msg("internal: text form"))?,
            );
            out.push('\n');
        }
        write_stdout(out.as_bytes())?;
    } else {
        write_stdout(&v.rewrap_envelope(&input)?)?;
    }
    Ok(())
}
