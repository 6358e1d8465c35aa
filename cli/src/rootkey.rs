//! Where the CLI gets the root key: `--key-file`, `--passphrase-file`, a PKCS#11 token
//! (`--pkcs11-token`, PIN from `--pkcs11-pin-file`, `PHIVAULT_PKCS11_PIN` or a prompt),
//! `PHIVAULT_PASSPHRASE`, or a no-echo prompt on the terminal. Never a secret as a
//! command-line argument.

use crate::args::RootArgs;
use crate::exit::CliError;
use phivault::root::{Argon2Config, KeyFile, Passphrase, RootKeySource};
use phivault::root_pkcs11::Pkcs11Root;
use std::io::IsTerminal;
use zeroize::Zeroizing;

/// Environment variable holding a passphrase.
pub const PASSPHRASE_ENV: &str = "PHIVAULT_PASSPHRASE";

/// Environment variable holding the PKCS#11 user PIN.
pub const PIN_ENV: &str = "PHIVAULT_PKCS11_PIN";

/// Builds the root key source from the arguments. `creating` is for `init`: a prompted
/// passphrase is asked twice, and a PKCS#11 key is generated on the token if it is absent.
pub fn source(
    args: &RootArgs,
    creating: bool,
    argon: Option<Argon2Config>,
) -> Result<Box<dyn RootKeySource>, CliError> {
    if let Some(f) = &args.key_file {
        return Ok(Box::new(KeyFile::from_file(f)?));
    }
    if args.passphrase_file.is_none()
        && let Some(token) = &args.pkcs11_token
    {
        if argon.is_some() {
            return Err(CliError::msg(
                "--argon-* options are for passphrase vaults, not a PKCS#11 root",
            ));
        }
        return Ok(Box::new(hsm(args, token, &args.pkcs11_key, creating)?));
    }
    let confirm = creating;
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

/// The root key on a PKCS#11 token: `--pkcs11-module`, the token labelled `token`, the key
/// labelled `key` (generated on the token when `generate` and absent).
fn hsm(args: &RootArgs, token: &str, key: &str, generate: bool) -> Result<Pkcs11Root, CliError> {
    let module = args.pkcs11_module.as_ref().ok_or_else(|| {
        CliError::msg(
            "a PKCS#11 root needs the token's library: --pkcs11-module FILE (or PHIVAULT_PKCS11_MODULE)",
        )
    })?;
    let pin = pin(args)?;
    let root = Pkcs11Root::new(module, token, &pin, key)?;
    if generate && root.generate_key()? {
        eprintln!("generated AES-256 key '{key}' on token '{token}' (sensitive, non-extractable)");
    }
    Ok(root)
}

/// The token's user PIN: `--pkcs11-pin-file` (first line), `PHIVAULT_PKCS11_PIN`, or a prompt.
fn pin(args: &RootArgs) -> Result<Zeroizing<String>, CliError> {
    let pin = if let Some(f) = &args.pkcs11_pin_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f)
                .map_err(|e| CliError::msg(format!("reading {}: {e}", f.display())))?,
        );
        Zeroizing::new(
            text.lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches('\r')
                .to_owned(),
        )
    } else if let Ok(p) = std::env::var(PIN_ENV) {
        Zeroizing::new(p)
    } else if std::io::stderr().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("Token PIN: ")
                .map_err(|e| CliError::msg(format!("reading the PIN: {e}")))?,
        )
    } else {
        return Err(CliError::msg(
            "no PKCS#11 PIN given: use --pkcs11-pin-file FILE or PHIVAULT_PKCS11_PIN (or run on a terminal to be prompted)",
        ));
    };
    if pin.is_empty() {
        return Err(CliError::msg("the PKCS#11 PIN is empty"));
    }
    Ok(pin)
}

/// The new root key source for `rotate-root`: a key on the PKCS#11 token of `root`
/// (`hsm_key`, generated if absent), a key file, a passphrase file, the environment, or a
/// prompt (asked twice).
pub fn new_source(
    key_file: Option<std::path::PathBuf>,
    passphrase_file: Option<std::path::PathBuf>,
    hsm_key: Option<(&RootArgs, &str)>,
) -> Result<Box<dyn RootKeySource>, CliError> {
    if let Some((root, key)) = hsm_key {
        let token = root.pkcs11_token.as_deref().ok_or_else(|| {
            CliError::msg(
                "--new-pkcs11-key needs the token: --pkcs11-token LABEL (or PHIVAULT_PKCS11_TOKEN) and --pkcs11-module FILE",
            )
        })?;
        return Ok(Box::new(hsm(root, token, key, true)?));
    }
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
        "no new root key given: use --new-key-file FILE, --new-passphrase-file FILE, --new-pkcs11-key LABEL or PHIVAULT_NEW_PASSPHRASE",
    ))
}
