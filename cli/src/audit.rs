//! `phivault audit ...` and `phivault policy ...`.

use crate::args::{AuditCommand, PolicyCommand};
use crate::commands::open;
use crate::exit::CliError;
use phivault::policy::Policy;
use std::io::Write;

fn json<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(v).map_err(|e| CliError::msg(e.to_string()))
}

/// Parses `24h`/`7d` (that long ago) or Unix seconds into Unix milliseconds.
fn since_ms(s: &str) -> Result<u64, CliError> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs.saturating_mul(1000));
    }
    let d = crate::keys::parse_duration(s)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(now.saturating_sub(d.as_millis() as u64))
}

/// Runs an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> Result<(), CliError> {
    match cmd {
        AuditCommand::Verify {
            vault,
            json: as_json,
            expect_head,
        } => {
            let v = open(&vault)?;
            let r = match expect_head {
                Some(anchor) => v.audit_verify_extends(&anchor).map_err(|e| match e {
                    phivault::Error::InvalidInput { .. } => {
                        CliError::Other("--expect-head must be SEQ:MACHEX".into(), 2)
                    }
                    other => other.into(),
                })?,
                None => v.audit_verify()?,
            };
            let ok = r.ok;
            if as_json {
                println!("{}", json(&r)?);
            } else if ok {
                println!(
                    "audit log ok: {} entries, head {}:{}",
                    r.entries, r.head_seq, r.head_mac
                );
            }
            if !ok {
                let why = r.problem.clone().unwrap_or_default();
                return Err(CliError::Other(
                    format!(
                        "audit log verification failed at entry {}: {why}",
                        r.first_bad.unwrap_or(r.head_seq)
                    ),
                    8,
                ));
            }
            Ok(())
        }
        AuditCommand::Show {
            vault,
            since,
            of_principal,
            json: as_json,
            include_reasons,
        } => {
            let v = open(&vault)?;
            let since = since.as_deref().map(since_ms).transpose()?.unwrap_or(0);
            let entries = v.audit_entries(since, of_principal.as_deref(), include_reasons)?;
            if as_json {
                println!("{}", json(&entries)?);
            } else {
                for e in entries {
                    println!(
                        "{:>6} {} {:<12} {:<14} {:<20} {:<12} {:<11}{}{}{}",
                        e.seq,
                        e.time_ms / 1000,
                        e.principal,
                        e.purpose,
                        e.action.as_str(),
                        e.target.name,
                        serde_json::to_value(e.outcome)
                            .ok()
                            .and_then(|x| x.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        if e.calls > 1 {
                            format!(" x{} calls until {}", e.calls, e.last_ms / 1000)
                        } else {
                            String::new()
                        },
                        e.target.detail.map(|d| format!(" {d}")).unwrap_or_default(),
                        e.reason
                            .map(|r| format!(" reason: {r}"))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
        AuditCommand::Export { vault, file } => {
            let v = open(&vault)?;
            let entries = v.audit_entries(0, None, false)?;
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&file)
                    .map_err(|e| CliError::msg(format!("creating {}: {e}", file.display())))?,
            );
            for e in &entries {
                let line = serde_json::to_string(e).map_err(|e| CliError::msg(e.to_string()))?;
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            eprintln!("exported {} entries to {}", entries.len(), file.display());
            Ok(())
        }
        AuditCommand::Jobs { vault } => {
            let v = open(&vault)?;
            let jobs = v.jobs()?;
            if jobs.is_empty() {
                println!("no jobs");
            }
            for j in jobs {
                println!(
                    "{}  {}  {} spool(s) to merge",
                    j.id,
                    if j.live { "live " } else { "ended" },
                    j.spools
                );
            }
            Ok(())
        }
        AuditCommand::MergeJob { vault, end, job } => {
            let v = open(&vault)?;
            let id = phivault::jobs::JobId::parse(&job)
                .map_err(|_| CliError::Other("the job id must be 32 hex digits".into(), 2))?;
            let r = if end {
                v.end_job(&id)?
            } else {
                v.merge_job_audit(&id)?
            };
            println!(
                "merged {} audit entries of {} worker spools ({} torn){}",
                r.entries,
                r.spools,
                r.torn,
                if end { "; job ended" } else { "" }
            );
            Ok(())
        }
    }
}

/// Runs a `policy` subcommand.
pub fn policy(cmd: PolicyCommand) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Show { vault } => {
            let v = open(&vault)?;
            print!("{}", v.policy()?.to_toml()?);
            Ok(())
        }
        PolicyCommand::Set { vault, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::msg(format!("reading {}: {e}", file.display())))?;
            let p = Policy::from_toml(&text)?;
            let v = open(&vault)?;
            v.set_policy(&p)?;
            eprintln!(
                "policy set: {} principals, {} rules",
                p.principals.len(),
                p.rules.len()
            );
            Ok(())
        }
    }
}
