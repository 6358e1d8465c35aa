//! Exit codes and one-line error messages.

use phivault::Error;

/// Documented exit codes (also in `phivault --help`).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (I/O, invalid input, store failure)
  2  usage error
  3  authentication failed (tampered data, wrong context, wrong key) or invalid token
  4  wrong root key (passphrase, key file or PKCS#11 PIN/key)
  5  vault is locked by another process
  6  not found (vault, keyring, key version, record, field)
  7  key retired or destroyed, or data subject forgotten
  8  audit log verification failed
  9  access denied by the policy, or the audit log unavailable (fail closed)
 10  store damaged or rolled back (refused on open), or `verify` found problems";

/// A CLI failure: a library error or a message of the CLI's own.
#[derive(Debug)]
pub enum CliError {
    /// From the library.
    Vault(Error),
    /// A message and its exit code.
    Other(String, i32),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Vault(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(format!("I/O: {e}"), 1)
    }
}

impl CliError {
    pub fn msg(m: impl Into<String>) -> Self {
        CliError::Other(m.into(), 1)
    }

    pub fn not_found(m: impl Into<String>) -> Self {
        CliError::Other(m.into(), 6)
    }
}

/// The error and its sources on one line.
pub fn describe(e: &CliError) -> String {
    match e {
        CliError::Vault(e) => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(": ");
                    s.push_str(&t);
                }
                src = inner.source();
            }
            s.replace('\n', " ")
        }
        CliError::Other(m, _) => m.clone(),
    }
}

/// The exit code for an error.
pub fn code(e: &CliError) -> i32 {
    match e {
        CliError::Other(_, c) => *c,
        CliError::Vault(e) => match e {
            Error::AuthenticationFailed | Error::InvalidToken { .. } => 3,
            Error::BackupDamaged { .. }
            | Error::InvalidShare { .. }
            | Error::ShareFromAnotherVault { .. }
            | Error::SharesMismatch { .. } => 3,
            Error::WrongRootKey | Error::RootKindMismatch { .. } => 4,
            Error::NotEnoughShares { .. } => 4,
            Error::VaultLocked { .. } => 5,
            Error::VaultNotFound { .. }
            | Error::UnknownKeyring { .. }
            | Error::UnknownKeyVersion { .. }
            | Error::UnknownField { .. }
            | Error::UnknownSchema { .. } => 6,
            Error::KeyDestroyed { .. } | Error::KeyRetired { .. } | Error::SubjectForgotten => 7,
            Error::AccessDenied { .. } | Error::AuditUnavailable => 9,
            Error::StoreRolledBack { .. } | Error::StoreCorrupted { .. } => {
                crate::integrity::EXIT_DAMAGED
            }
            // Malformed CSV or a column missing from its header: invalid input.
            Error::Csv { .. } | Error::CsvColumnMissing { .. } => 1,
            _ => 1,
        },
    }
}
