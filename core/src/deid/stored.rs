//! Schemas kept in the vault, sealed like field definitions: the owner defines one by name
//! (TOML or JSON text), and every front that takes a schema finds it by that name. The text
//! is sealed under the vault's metadata key, bound to its name, in the metadata space under
//! `deid-schema/NAME` (docs/FORMAT.md §6.9).

use super::Schema;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::store::{ScanIter, Space, WriteOp};
use crate::vault::Vault;

/// The metadata key prefix of stored schemas.
pub(crate) const KEY_PREFIX: &[u8] = b"deid-schema/";
/// The label the seal binds.
pub(crate) const SEAL_LABEL: &[u8] = b"deid-schema";

fn key_of(name: &str) -> Vec<u8> {
    [KEY_PREFIX, name.as_bytes()].concat()
}

impl Vault {
    /// Stores a de-identification schema under `name` (1 to 64 characters of
    /// `A-Z a-z 0-9 _ - .`; not a preset's name), replacing one of that name: the text is
    /// parsed first (errors name the rule), then sealed, with an admin audit entry.
    pub fn define_schema(&self, name: &str, text: &str) -> Result<()> {
        crate::envelope::check_keyring_name(name).map_err(|_| {
            Error::invalid(
                "schema name",
                "must be 1 to 64 characters from A-Z a-z 0-9 _ - .",
            )
        })?;
        if Schema::PRESETS.contains(&name) {
            return Err(Error::invalid("schema name", "is a preset's name"));
        }
        Schema::parse(text)?;
        self.audit.admin(
            crate::audit::Action::Admin,
            name,
            None,
            "define de-identification schema".into(),
        )?;
        let sealed = self
            .keys
            .seal_meta(&[SEAL_LABEL, name.as_bytes()], text.as_bytes())?;
        self.store.write(vec![WriteOp::Put {
            space: Space::Meta,
            key: key_of(name),
            value: sealed,
        }])?;
        Ok(())
    }

    /// The schema `name`: a preset (`safe-harbor`, `shifted-dates`) or one stored with
    /// [`Vault::define_schema`]. A stored schema that does not authenticate is
    /// [`Error::CorruptMetadata`], never "unknown".
    pub fn schema(&self, name: &str) -> Result<Schema> {
        if let Some(s) = Schema::preset(name) {
            return Ok(s);
        }
        let unknown = || Error::UnknownSchema {
            name: name.to_owned(),
        };
        if crate::envelope::check_keyring_name(name).is_err() {
            return Err(unknown());
        }
        let Some(sealed) = self.store.get(Space::Meta, &key_of(name))? else {
            return Err(unknown());
        };
        let plain = self
            .keys
            .unseal_meta(&[SEAL_LABEL, name.as_bytes()], &sealed)
            .map_err(|_| Error::CorruptMetadata {
                what: "de-identification schema",
            })?;
        let text = std::str::from_utf8(plain.expose()).map_err(|_| Error::CorruptMetadata {
            what: "de-identification schema",
        })?;
        Schema::parse(text)
    }

    /// A schema given as a name ([`Vault::schema`]) or as TOML or JSON text (text has a line
    /// break or starts with `{`): how the C and Python fronts take their schema argument.
    pub fn schema_named_or_text(&self, spec: &str) -> Result<Schema> {
        if spec.contains('\n') || spec.trim_start().starts_with('{') {
            Schema::parse(spec)
        } else {
            self.schema(spec)
        }
    }

    /// The names of the schemas: the presets, then the stored ones in name order.
    pub fn schemas(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Schema::PRESETS.iter().map(|s| (*s).to_owned()).collect();
        for entry in ScanIter::new(self.store.as_ref(), Space::Meta, KEY_PREFIX.to_vec()) {
            let (key, _) = entry?;
            let name = key
                .strip_prefix(KEY_PREFIX)
                .and_then(|n| String::from_utf8(n.to_vec()).ok())
                .ok_or(Error::CorruptMetadata {
                    what: "de-identification schema name",
                })?;
            names.push(name);
        }
        Ok(names)
    }
}

impl Session<'_> {
    /// [`Vault::schema_named_or_text`] of the session's vault (schemas hold no PHI: no
    /// decision is needed to read one).
    pub fn schema(&self, spec: &str) -> Result<Schema> {
        self.vault().schema_named_or_text(spec)
    }
}
