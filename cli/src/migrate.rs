//! `phivault migrate --from DIR --to postgres://...`: a directory vault copied into a database.

use crate::args::RootArgs;
use crate::exit::CliError;
use crate::rootkey;
use phivault::Vault;
use phivault::store::PgStore;
use phivault::store::postgres::{display_location, is_postgres_url};
use std::path::Path;

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
        display_location(to),
        report.verified,
        if report.audit_ok { "verifies" } else { "FAILS" }
    );
    Ok(())
}
