//! `phivault verify` and `phivault salvage`: the disk-fault tools (docs/ops-runbook.md).

use crate::args::{RootArgs, VaultArgs};
use crate::commands::open;
use crate::exit::CliError;
use crate::rootkey;
use clap::Args;
use phivault::integrity::{self, Problem, SpaceCount};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Exit code of `verify` when it found problems (and of a store refused as damaged).
pub const EXIT_DAMAGED: i32 = 10;

/// `phivault verify`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit code 0 when every entry authenticates, 10 when problems were found.\n\nExamples:\n  phivault verify --vault ./vault --key-file root.key\n  phivault verify --vault ./vault --key-file root.key --json"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `phivault salvage`.
#[derive(Args, Debug)]
#[command(
    after_help = "The damaged vault is never written: its store is copied and recovered in the copy.\n\nExample:\n  phivault salvage --from ./vault --to ./vault-salvaged --key-file root.key"
)]
pub struct SalvageArgs {
    /// The damaged vault directory (read only).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The new vault directory (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[command(flatten)]
    pub root: RootArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn print_counts(spaces: &[SpaceCount], problems: &[Problem], total: u64) {
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>8}",
        "space", "entries", "ok", "unreadable", "bad"
    );
    for s in spaces {
        println!(
            "{:<12} {:>10} {:>10} {:>10} {:>8}",
            s.space, s.entries, s.ok, s.unreadable, s.bad
        );
    }
    for p in problems {
        println!("problem: {} {}: {}", p.space, p.key, p.what);
    }
    if total > problems.len() as u64 {
        println!("... {} problems in all", total);
    }
}

/// Runs `phivault verify`.
pub fn verify(a: VerifyArgs) -> Result<(), CliError> {
    let v = open(&a.vault)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} verify {pos} entries  {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let start = std::time::Instant::now();
    let report = v.verify_with_progress(&mut |n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    if a.json {
        let s = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::msg(format!("JSON: {e}")))?;
        println!("{s}");
    } else {
        print_counts(&report.spaces, &report.problems, report.problem_count);
        println!(
            "{} entries in {:.2} s ({:.0}/s); audit chain {} entries; commit {} (anchor {})",
            report.entries,
            secs,
            report.entries as f64 / secs.max(1e-9),
            report.audit_entries,
            report.store_commit.map_or("-".into(), |c| c.to_string()),
            report.anchor_commit.map_or("-".into(), |c| c.to_string()),
        );
        println!("{}", if report.ok { "ok" } else { "PROBLEMS FOUND" });
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Other(
            format!(
                "verify found {} problems (see docs/ops-runbook.md, \"Disk fault\")",
                report.problem_count
            ),
            EXIT_DAMAGED,
        ))
    }
}

/// Runs `phivault salvage`.
pub fn salvage(a: SalvageArgs) -> Result<(), CliError> {
    let root = rootkey::source(&a.root, false, None)?;
    let report = integrity::salvage(&a.from, &a.to, root.as_ref())?;
    if a.json {
        let s = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::msg(format!("JSON: {e}")))?;
        println!("{s}");
    } else {
        print_counts(&report.spaces, &report.problems, report.dropped);
        println!(
            "salvaged into {}: {} entries copied, {} dropped; commits lost: {}",
            report.to.display(),
            report.copied,
            report.dropped,
            report
                .commits_lost
                .map_or("unknown".into(), |n| n.to_string())
        );
        if report.log_stretches_skipped > 0 {
            println!(
                "damaged log stretches stepped over: {} ({} bytes lost); entries seen twice: {}",
                report.log_stretches_skipped, report.log_bytes_skipped, report.repeated
            );
        }
        println!("compare the record counts with the last backup (docs/ops-runbook.md)");
    }
    Ok(())
}
