//! Vaults on PostgreSQL: `--vault postgres://user@host:port/db` wherever a vault directory is
//! accepted, and `phivault migrate --from DIR --to postgres://...`.

use crate::args::RootArgs;
use crate::exit::CliError;
use crate::rootkey;
use phivault::root::RootKeySource;
use phivault::store::{PgStore, postgres::is_postgres_url};
use phivault::{Backend, Vault};
use std::path::Path;

/// The URL, when `--vault` names a PostgreSQL database rather than a directory.
pub fn url(vault: &Path) -> Option<&str> {
    vault.to_str().filter(|s| is_postgres_url(s))
}

/// The URL without its user information (a password must never be printed).
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // no user information, and no query (it may hold `password=`)
            let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "postgres database".to_owned(),
    }
}

/// Creates a vault in the (empty) database.
pub fn create(url: &str, root: &dyn RootKeySource) -> Result<Vault, CliError> {
    let store = PgStore::connect(url).map_err(phivault::Error::from)?;
    match Vault::create_in(Box::new(store), root, Backend::default()) {
        Err(phivault::Error::VaultExists { .. }) => Err(phivault::Error::VaultExists {
            path: redact(url).into(),
        }
        .into()),
        other => Ok(other?),
    }
}

/// Opens the vault in the database.
pub fn open(url: &str, root: &dyn RootKeySource) -> Result<Vault, CliError> {
    let store = PgStore::connect(url).map_err(phivault::Error::from)?;
    Ok(Vault::open_in(Box::new(store), root, Backend::default())?)
}

/// `phivault migrate --from DIR --to postgres://...`: copies the directory vault into the
/// empty database and verifies every entry and the audit chain.
pub fn migrate(from: &Path, to: &str, root: &RootArgs, json: bool) -> Result<(), CliError> {
    if !is_postgres_url(to) {
        return Err(CliError::msg(
            "--to must be a postgres:// or postgresql:// URL",
        ));
    }
    let src_root = rootkey::source(root, false, None)?;
    let source = Vault::open(from, src_root.as_ref())?;
    let dest = PgStore::connect(to).map_err(phivault::Error::from)?;
    let (_copy, report) = source.migrate_to(Box::new(dest), src_root.as_ref())?;
    if json {
        let s = serde_json::to_string_pretty(&report).map_err(|e| CliError::msg(e.to_string()))?;
        println!("{s}");
    } else {
        for (space, n) in &report.per_space {
            println!("space {space}: {n} entries");
        }
    }
    eprintln!(
        "migrated {} entries to {}; verified {} byte for byte; audit chain {}",
        report.entries,
        redact(to),
        report.verified,
        if report.audit_ok { "verifies" } else { "FAILS" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_redacted() {
        assert_eq!(
            url(Path::new("postgres://u@h:5/db")),
            Some("postgres://u@h:5/db")
        );
        assert_eq!(url(Path::new("./vault")), None);
        assert_eq!(redact("postgres://u:secret@h:5/db"), "postgres://h:5/db");
        assert!(!redact("postgresql://a:b@c/d").contains("b@"));
        assert_eq!(redact("postgres://h/db?password=secret"), "postgres://h/db");
    }
}
