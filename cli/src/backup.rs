//! `phivault backup`, `backup verify`, `restore`, `recovery split`, `recovery unlock`.

use crate::args::RootArgs;
use crate::exit::CliError;
use crate::rootkey;
use clap::{Args, Subcommand};
use phivault::Vault;
use phivault::backup::{self, RestoreOptions};
use phivault::erasure::ErasureRecord;
use phivault::recovery::{self, RecoveryShare};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `phivault backup [--vault DIR] OUT` or `phivault backup verify IN`.
#[derive(Args, Debug)]
#[command(
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  phivault backup --vault ./vault --key-file root.key /backups/vault-$(date +%F).pvbak\n  phivault backup verify /backups/vault-2025-01-01.pvbak            # no key needed (nightly)\n  phivault backup verify --key-file root.key /backups/vault.pvbak   # also authenticate"
)]
pub struct BackupArgs {
    /// Verify a backup instead of taking one.
    #[command(subcommand)]
    pub cmd: Option<BackupCommand>,
    /// The vault directory.
    #[arg(long, value_name = "DIR", env = "PHIVAULT_VAULT")]
    pub vault: Option<PathBuf>,
    #[command(flatten)]
    pub root: RootArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The backup file to write (atomically; mode 0600).
    #[arg(value_name = "OUT", required = true)]
    pub out: Option<PathBuf>,
}

/// `phivault backup verify`.
#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Check a backup file without restoring it: structure and checksum with no key; with
    /// --key-file/--passphrase-file also every chunk's authentication and the MAC.
    Verify {
        /// The backup file.
        input: PathBuf,
        #[command(flatten)]
        root: RootArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `phivault restore IN --vault NEWDIR`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  phivault restore /backups/vault.pvbak --vault ./vault-restored --key-file root.key\n  phivault erasures --vault ./vault --key-file root.key --json > erasures.json   # from the live vault, if it still opens\n  phivault restore /backups/vault.pvbak --vault ./vault-restored --key-file root.key --erasures erasures.json"
)]
pub struct RestoreArgs {
    /// The backup file.
    pub input: PathBuf,
    /// The new vault directory (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub vault: PathBuf,
    #[command(flatten)]
    pub root: RootArgs,
    /// An erasure ledger (`phivault erasures --json` of the live vault): these subjects'
    /// keys are dropped, so subjects forgotten after the backup stay forgotten.
    #[arg(long, value_name = "FILE")]
    pub erasures: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `phivault recovery ...`
#[derive(Subcommand, Debug)]
pub enum RecoveryCommand {
    /// Split the vault master key into N recovery share files, any M of which reset a lost
    /// root key. Give each file to a different custodian and delete it here.
    #[command(
        after_help = "Example:\n  phivault recovery split --vault ./vault --key-file root.key --shares 5 --threshold 3 --out ./shares"
    )]
    Split {
        /// The vault directory.
        #[arg(long, value_name = "DIR", env = "PHIVAULT_VAULT")]
        vault: PathBuf,
        #[command(flatten)]
        root: RootArgs,
        /// Number of shares (N, at most 255).
        #[arg(long, value_name = "N")]
        shares: u8,
        /// Shares needed to recover (M, 2 ≤ M ≤ N).
        #[arg(long, value_name = "M")]
        threshold: u8,
        /// Directory for the share files (created 0700; files 0600; never overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Reset the root key with at least M recovery shares: a new key file or passphrase.
    #[command(
        after_help = "Example:\n  phivault recovery unlock --vault ./vault --share a.txt --share b.txt --share c.txt --new-key-file new.key"
    )]
    Unlock {
        /// The vault directory.
        #[arg(long, value_name = "DIR", env = "PHIVAULT_VAULT")]
        vault: PathBuf,
        /// A share file (repeat for each share).
        #[arg(long = "share", value_name = "FILE", required = true)]
        shares: Vec<PathBuf>,
        /// The new 32-byte root key file.
        #[arg(long, value_name = "FILE", conflicts_with = "new_passphrase_file")]
        new_key_file: Option<PathBuf>,
        /// A file whose first line is the new passphrase.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::msg(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn explicit_root(
    root: &RootArgs,
) -> Result<Option<Box<dyn phivault::root::RootKeySource>>, CliError> {
    if root.key_file.is_none() && root.passphrase_file.is_none() && root.pkcs11_token.is_none() {
        return Ok(None);
    }
    Ok(Some(rootkey::source(root, false, None)?))
}

/// `phivault backup ...`
pub fn backup(args: BackupArgs) -> Result<(), CliError> {
    if let Some(BackupCommand::Verify {
        input,
        root,
        json: j,
    }) = args.cmd
    {
        let info = match explicit_root(&root)? {
            Some(r) => backup::verify_backup_with(&input, r.as_ref())?,
            None => backup::verify_backup(&input)?,
        };
        if j {
            return json(&info);
        }
        println!(
            "ok: backup of vault {} taken at {} (unix), {} chunks, {} bytes; {}",
            info.vault_id,
            info.created_unix,
            info.chunks,
            info.bytes,
            if info.authenticated {
                "checksum and authentication verified"
            } else {
                "checksum verified (no key given: authenticity not checked)"
            }
        );
        return Ok(());
    }
    let (Some(vault), Some(out)) = (args.vault, args.out) else {
        return Err(CliError::Other(
            "usage: phivault backup --vault DIR OUT, or phivault backup verify IN".into(),
            2,
        ));
    };
    let root = rootkey::source(&args.root, false, None)?;
    let v = Vault::open_at(&vault, root.as_ref(), phivault::VaultOptions::default())?;
    let report = v.backup(&out)?;
    if args.json {
        return json(&report);
    }
    eprintln!(
        "wrote {} ({} records, {} entries, {} bytes); check it with: phivault backup verify {}",
        out.display(),
        report.records,
        report.entries,
        report.bytes,
        out.display()
    );
    Ok(())
}

fn read_ledger(path: &Path) -> Result<Vec<ErasureRecord>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::msg(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::msg(format!(
            "{} is not an erasure ledger (phivault erasures --json): line {}",
            path.display(),
            e.line()
        ))
    })
}

/// `phivault restore ...`
pub fn restore(args: RestoreArgs) -> Result<(), CliError> {
    let root = rootkey::source(&args.root, false, None)?;
    let mut opts = RestoreOptions::new();
    if let Some(f) = &args.erasures {
        opts = opts.erasures(read_ledger(f)?);
    }
    let report = backup::restore(&args.input, &args.vault, root.as_ref(), &opts)?;
    if args.json {
        return json(&report);
    }
    eprintln!(
        "restored vault {} to {} ({} records; {} subject keys of forgotten subjects dropped; {} erasures added from the ledger)",
        report.vault_id,
        args.vault.display(),
        report.records,
        report.subject_keys_dropped,
        report.erasures_added
    );
    if args.erasures.is_none() {
        eprintln!(
            "note: no --erasures ledger given: subjects forgotten after this backup was taken are readable again (see docs/recovery.md)"
        );
    }
    Ok(())
}

/// Writes `bytes` to a new file `path` (0600) atomically; refuses to overwrite.
fn write_new_secret(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    if path.exists() {
        return Err(CliError::msg(format!(
            "{} exists already: not overwriting a share",
            path.display()
        )));
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .map_err(|e| CliError::msg(format!("creating {}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::msg(format!("writing {}: {e}", tmp.display())))?;
    drop(f);
    std::fs::hard_link(&tmp, path)
        .and_then(|()| std::fs::remove_file(&tmp))
        .map_err(|e| CliError::msg(format!("writing {}: {e}", path.display())))?;
    Ok(())
}

/// `phivault recovery ...`
pub fn recovery(cmd: RecoveryCommand) -> Result<(), CliError> {
    match cmd {
        RecoveryCommand::Split {
            vault,
            root,
            shares,
            threshold,
            out,
        } => {
            let root = rootkey::source(&root, false, None)?;
            let v = Vault::open_at(&vault, root.as_ref(), phivault::VaultOptions::default())?;
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(&out)
                .map_err(|e| CliError::msg(format!("creating {}: {e}", out.display())))?;
            let list = v.recovery_split(shares, threshold)?;
            for s in &list {
                let path = out.join(format!(
                    "share-{}-of-{}-{}.txt",
                    s.index(),
                    s.count(),
                    &s.vault_id_hex()[..8]
                ));
                write_new_secret(&path, s.to_text().as_bytes())?;
            }
            std::fs::File::open(&out)
                .and_then(|d| d.sync_all())
                .map_err(|e| CliError::msg(format!("syncing {}: {e}", out.display())))?;
            eprintln!(
                "wrote {shares} recovery shares to {} ({threshold} of them reset the root key); give each to a different custodian, then delete them here",
                out.display()
            );
            Ok(())
        }
        RecoveryCommand::Unlock {
            vault,
            shares,
            new_key_file,
            new_passphrase_file,
        } => {
            let mut parsed = Vec::with_capacity(shares.len());
            for f in &shares {
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(f)
                        .map_err(|e| CliError::msg(format!("reading {}: {e}", f.display())))?,
                );
                let s = RecoveryShare::parse(&text).map_err(|e| named(f, e))?;
                parsed.push((f.clone(), s));
            }
            let new_root = rootkey::new_source(new_key_file, new_passphrase_file, None)?;
            let list: Vec<RecoveryShare> = parsed.iter().map(|(_, s)| s.clone()).collect();
            match recovery::recovery_unlock(&vault, &list, new_root.as_ref()) {
                Ok(()) => {
                    eprintln!(
                        "root key reset with {} recovery shares (now: {}); the old root key no longer opens this vault",
                        list.len(),
                        new_root.kind()
                    );
                    Ok(())
                }
                Err(e @ phivault::Error::ShareFromAnotherVault { .. }) => {
                    // Name the file(s) of the foreign share(s).
                    let vault_id = match &e {
                        phivault::Error::ShareFromAnotherVault { vault, .. } => vault.clone(),
                        _ => String::new(),
                    };
                    let files: Vec<String> = parsed
                        .iter()
                        .filter(|(_, s)| s.vault_id_hex() != vault_id)
                        .map(|(f, _)| f.display().to_string())
                        .collect();
                    let err = CliError::Vault(e);
                    Err(CliError::Other(
                        format!(
                            "share file {}: {}",
                            files.join(", "),
                            crate::exit::describe(&err)
                        ),
                        crate::exit::code(&err),
                    ))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn named(file: &Path, e: phivault::Error) -> CliError {
    let err = CliError::Vault(e);
    let code = crate::exit::code(&err);
    CliError::Other(
        format!(
            "share file {}: {}",
            file.display(),
            crate::exit::describe(&err)
        ),
        code,
    )
}
