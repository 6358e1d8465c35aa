//! Where the CLI gets the root key: `--key-file`, `--passphrase-file`, `PHIVAULT_PASSPHRASE`,
//! or a no-echo prompt on the terminal. Never a command-line argument.

use crate::args::RootArgs;
use crate::exit::CliError;
use phivault::root::{Argon2Config, KeyFile, Passphrase, RootKeySource};
use std::io::IsTerminal;

/// Environment variable holding a passphrase.
pub const PASSPHRASE_ENV: &str = "PHIVAULT_PASSPHRASE";

/// Builds the root key source from the arguments; `confirm` asks twice on a prompt (init).
pub fn source(
    args: &RootArgs,
    confirm: bool,
    argon: Option<Argon2Config>,
) -> Result<Box<dyn RootKeySource>, CliError> {
    if let Some(f) = &args.key_file {
        return Ok(Box::new(KeyFile::from_file(f)?));
    }
    let pass = if let Some(f) = &args.passphrase_file {
        Passphrase::from_file(f)?
    } else if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if p.is_empty() {
            return Err(CliError::msg(format!("{PASSPHRASE_ENV} is set but empty")));
        }
        Passphrase::new(p)
    } else if std::io::stderr().is_terminal() {
        prompt(confirm)?
    } else {
        return Err(CliError::msg(
            "no root key given: use --key-file FILE, --passphrase-file FILE or PHIVAULT_PASSPHRASE (or run on a terminal to be prompted)",
        ));
    };
    Ok(Box::new(match argon {
        Some(cfg) => pass.with_config(cfg),
        None => pass,
    }))
}

fn prompt(confirm: bool) -> Result<Passphrase, CliError> {
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("Vault passphrase: ")
            .map_err(|e| CliError::msg(format!("reading passphrase: {e}")))?,
    );
    if first.is_empty() {
        return Err(CliError::msg("empty passphrase"));
    }
    if confirm {
        let again = zeroize::Zeroizing::new(
            rpassword::prompt_password("Repeat passphrase: ")
                .map_err(|e| CliError::msg(format!("reading passphrase: {e}")))?,
        );
        if !phivault::ct_eq(first.as_bytes(), again.as_bytes()) {
            return Err(CliError::msg("the passphrases differ"));
        }
    }
    Ok(Passphrase::new(first.as_str()))
}

/// Environment variable holding the new passphrase for `rotate-root`.
pub const NEW_PASSPHRASE_ENV: &str = "PHIVAULT_NEW_PASSPHRASE";

/// The new root key source for `rotate-root`: a key file, a passphrase file, the environment,
/// or a prompt (asked twice).
pub fn new_source(
    key_file: Option<std::path::PathBuf>,
    passphrase_file: Option<std::path::PathBuf>,
) -> Result<Box<dyn RootKeySource>, CliError> {
    if let Some(f) = key_file {
        return Ok(Box::new(KeyFile::from_file(f)?));
    }
    if let Some(f) = passphrase_file {
        return Ok(Box::new(Passphrase::from_file(f)?));
    }
    if let Ok(p) = std::env::var(NEW_PASSPHRASE_ENV) {
        if p.is_empty() {
            return Err(CliError::msg(format!(
                "{NEW_PASSPHRASE_ENV} is set but empty"
            )));
        }
        return Ok(Box::new(Passphrase::new(p)));
    }
    if std::io::stderr().is_terminal() {
        return Ok(Box::new(prompt(true)?));
    }
    Err(CliError::msg(
        "no new root key given: use --new-key-file FILE, --new-passphrase-file FILE or PHIVAULT_NEW_PASSPHRASE",
    ))
}
