//! One function per command; all rules live in the `phivault` crate.

use crate::args::{CallerArgs, Cli, Command, VaultArgs};
use crate::exit::CliError;
use crate::io::{read_stdin, write_stdout};
use crate::rootkey;
use phivault::root::{Argon2Config, KeyFile};
use phivault::store::postgres::display_location;
use phivault::{Caller, Context, EncryptOptions, Vault, VaultOptions, records::PutOptions};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.cmd {
        Command::Init {
            vault,
            argon_memory_mib,
            argon_passes,
            argon_lanes,
        } => {
            let argon =
                if argon_memory_mib.is_some() || argon_passes.is_some() || argon_lanes.is_some() {
                    let d = Argon2Config::default();
                    Some(Argon2Config {
                        m_kib: argon_memory_mib.map_or(d.m_kib, |m| m.saturating_mul(1024)),
                        t: argon_passes.unwrap_or(d.t),
                        p: argon_lanes.unwrap_or(d.p),
                    })
                } else {
                    None
                };
            let root = rootkey::source(&vault.root, true, argon)?;
            let v = Vault::create_at(&vault.vault, root.as_ref(), VaultOptions::default())?;
            let place = display_location(&vault.vault.to_string_lossy());
            eprintln!(
                "created vault {} at {} (root: {}, keyring: default v1)",
                v.vault_id_hex(),
                place,
                v.root_kind()
            );
            Ok(())
        }
        Command::Keygen { file } => {
            KeyFile::generate(&file)?;
            eprintln!(
                "wrote a new 32-byte root key to {} (mode 0600): keep it secret and backed up",
                file.display()
            );
            Ok(())
        }
        Command::Encrypt {
            vault,
            caller: who,
            context,
            keyring,
            deterministic,
            text,
            subject,
        } => {
            let ctx = parse_context(&context)?;
            let v = open(&vault)?;
            let input = read_stdin()?;
            let mut opts = EncryptOptions::new().keyring(keyring);
            if deterministic {
                opts = opts.deterministic();
            }
            let ct = match subject {
                Some(s) => v
                    .session(caller(&who))
                    .encrypt_for_subject(&input, &ctx, &s, &opts)?,
                None => v.session(caller(&who)).encrypt_with(&input, &ctx, &opts)?,
            };
            if text {
                let mut t = phivault::envelope::to_text(&ct)?;
                t.push('\n');
                write_stdout(t.as_bytes())?;
            } else {
                write_stdout(&ct)?;
            }
            Ok(())
        }
        Command::Decrypt {
            vault,
            caller: who,
            context,
        } => {
            let ctx = parse_context(&context)?;
            let v = open(&vault)?;
            let input = read_stdin()?;
            let pt = v.session(caller(&who)).decrypt(&input, &ctx)?;
            write_stdout(&pt)?;
            Ok(())
        }
        Command::Put {
            vault,
            caller: who,
            collection,
            id,
            subject,
            keyring,
        } => {
            let v = open(&vault)?;
            let input = read_stdin()?;
            v.session(caller(&who)).put_with(
                &collection,
                &id,
                &input,
                &PutOptions {
                    subject: subject.as_deref(),
                    keyring: keyring.as_deref(),
                },
            )?;
            Ok(())
        }
        Command::Get {
            vault,
            caller: who,
            collection,
            id,
        } => {
            let v = open(&vault)?;
            match v.session(caller(&who)).get(&collection, &id)? {
                Some(pt) => Ok(write_stdout(&pt)?),
                None => Err(CliError::not_found(format!(
                    "no such record in collection '{collection}'"
                ))),
            }
        }
        Command::Delete {
            vault,
            caller: who,
            collection,
            id,
        } => {
            let v = open(&vault)?;
            if v.session(caller(&who)).delete(&collection, &id)? {
                Ok(())
            } else {
                Err(CliError::not_found(format!(
                    "no such record in collection '{collection}'"
                )))
            }
        }
        Command::Status { vault, json } => {
            let v = open(&vault)?;
            let st = v.status()?;
            if json {
                let s =
                    serde_json::to_string_pretty(&st).map_err(|e| CliError::msg(e.to_string()))?;
                println!("{s}");
            } else {
                print_status(&st);
            }
            Ok(())
        }
        Command::Migrate {
            from,
            to,
            root,
            json,
        } => crate::migrate::migrate(&from, &to, &root, json),
        Command::Demo { keep } => crate::demo::run(keep),
        Command::Keys { cmd } => crate::keys::run(cmd),
        Command::Backup(a) => crate::backup::backup(a),
        Command::Restore(a) => crate::backup::restore(a),
        Command::Verify(a) => crate::integrity::verify(a),
        Command::Salvage(a) => crate::integrity::salvage(a),
        Command::Recovery { cmd } => crate::backup::recovery(cmd),
        Command::Tokenize {
            vault,
            caller: who,
            field,
            subject,
        } => crate::tokens::tokenize(&vault, &who, &field, subject.as_deref()),
        Command::Detokenize {
            vault,
            caller: who,
            field,
            view,
            subject,
        } => crate::tokens::detokenize(&vault, &who, &field, &view, subject.as_deref()),
        Command::TokenizeCsv {
            vault,
            caller: who,
            fields,
            subject_column,
            input,
            output,
        } => crate::tokens::tokenize_csv(
            &vault,
            &who,
            &fields,
            subject_column.as_deref(),
            &input,
            &output,
        ),
        Command::Fields { cmd } => crate::tokens::fields(cmd),
        Command::Fhir { cmd } => crate::fhir::run(cmd),
        Command::EncryptFile {
            vault,
            caller: who,
            context,
            subject,
            keyring,
            segment_log2,
            input,
            output,
        } => crate::stream::encrypt_file(
            &vault,
            &who,
            &context,
            subject,
            keyring,
            segment_log2,
            &input,
            &output,
        ),
        Command::DecryptFile {
            vault,
            caller: who,
            context,
            input,
            output,
        } => crate::stream::decrypt_file(&vault, &who, &context, &input, &output),
        Command::RewrapFile { vault, files } => crate::stream::rewrap_files(&vault, &files),
        Command::Audit { cmd } => crate::audit::run(cmd),
        Command::Policy { cmd } => crate::audit::policy(cmd),
        Command::Rewrap {
            vault,
            keyring,
            batch,
            json,
        } => crate::keys::rewrap(&vault, keyring, batch, json),
        Command::RewrapEnvelope { vault } => crate::keys::rewrap_envelope(&vault),
        Command::RotateRoot {
            vault,
            new_key_file,
            new_passphrase_file,
            new_pkcs11_key,
        } => {
            let v = open(&vault)?;
            let new_root = rootkey::new_source(
                new_key_file,
                new_passphrase_file,
                new_pkcs11_key.as_deref().map(|k| (&vault.root, k)),
            )?;
            v.rotate_root(new_root.as_ref())?;
            eprintln!(
                "root key changed (now: {}); the old root key no longer opens this vault",
                new_root.kind()
            );
            Ok(())
        }
        Command::ForgetSubject { vault, id } => {
            let v = open(&vault)?;
            if v.forget_subject(&id)? {
                eprintln!("subject forgotten: its key is destroyed; its data is unrecoverable");
            } else {
                eprintln!(
                    "no key for that subject (never stored, or already forgotten); erasure recorded"
                );
            }
            Ok(())
        }
        Command::Erasures { vault, json } => {
            let v = open(&vault)?;
            let list = v.erasures()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list)
                        .map_err(|e| CliError::msg(e.to_string()))?
                );
            } else {
                for e in list {
                    println!("{}  {}", e.time_unix, e.subject_key_id);
                }
            }
            Ok(())
        }
    }
}

/// Opens the vault named by the arguments.
pub fn open(args: &VaultArgs) -> Result<Vault, CliError> {
    let root = rootkey::source(&args.root, false, None)?;
    Ok(Vault::open_at(
        &args.vault,
        root.as_ref(),
        VaultOptions::default().threads(args.threads),
    )?)
}

/// Who the CLI acts as: the owner, unless `--as` names a principal of the policy.
pub fn caller(args: &CallerArgs) -> Caller {
    let mut c = match &args.principal {
        Some(p) => Caller::new(p.as_str(), args.purpose.as_str()),
        None => Caller::owner().with_purpose(args.purpose.as_str()),
    };
    if let Some(r) = &args.break_glass {
        c = c.break_glass(r.as_str());
    }
    c
}

/// Parses `KEY=VALUE` pairs, in order.
pub fn parse_context(pairs: &[String]) -> Result<Context, CliError> {
    let mut ctx = Context::new();
    for (i, p) in pairs.iter().enumerate() {
        let Some((k, v)) = p.split_once('=') else {
            return Err(CliError::Other(
                format!("--context number {} is not KEY=VALUE", i + 1),
                2,
            ));
        };
        ctx.push(k, v);
    }
    ctx.validate()?;
    Ok(ctx)
}

fn print_status(st: &phivault::status::VaultStatus) {
    println!("vault      {}", st.vault_id);
    println!("root       {}", st.root_kind);
    println!("backend    {}", st.backend);
    println!(
        "records    {} ({} tied to subjects, {} of forgotten subjects)",
        st.records, st.subject_records, st.forgotten_records
    );
    println!();
    crate::keys::print_versions(&st.keyrings);
}
