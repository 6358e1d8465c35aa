//! Field-level tokenization: vaulted random tokens (optionally consistent), format-preserving
//! FF1, one-way pseudonyms and date shifting, with masked and redacted views.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, tokens::View};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! let t = vault.owner().tokenize("ssn", "900-12-3456")?;            // FF1: same shape, reversible
//! assert_eq!(t.len(), 11);
//! assert_eq!(t, vault.owner().tokenize("ssn", "900-12-3456")?);    // consistent: joins work
//! assert_eq!(&*vault.owner().detokenize("ssn", &t, View::Plaintext)?, "900-12-3456");
//! assert_eq!(&*vault.owner().detokenize("ssn", &t, View::Masked)?, "***-**-3456");
//! let m = vault.owner().tokenize("mrn", "MRN0012345")?;            // vaulted: value stored encrypted
//! assert_eq!(&*vault.owner().detokenize("mrn", &m, View::Plaintext)?, "MRN0012345");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security notes
//! Consistent tokens (and FF1, and pseudonyms) reveal equality: that is what keeps joins
//! working. FF1 tokens are not authenticated (see [`ff1`](self) notes). Fields are stored in
//! the vault sealed under the vault master key; the built-in presets need no storage.

mod alphabet;
pub(crate) mod dateshift;
pub(crate) mod ff1;
pub mod mask;
mod pseudonym;
pub mod spec;
pub(crate) mod vaulted;

pub use mask::View;
pub use pseudonym::PREFIX as PSEUDONYM_PREFIX;
pub use spec::{FieldSpec, Shape, TOKENS_KEYRING, TokenKind, presets};

use crate::audit::AuditLog;
use crate::cache::SharedCache;
use crate::envelope::Kek;
use crate::kdf::{self, Mac, label};
use crate::keys::Keys;
use crate::parallel::Parallel;
use crate::secret::Key32;
use crate::store::{ScanIter, Space, Store};
use crate::{Error, Result};
use alphabet::Alphabet;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// Longest value accepted for tokenization, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;

/// A field ready for use: its spec, alphabet and (for fields not tied to subjects) its derived
/// keys, computed once.
pub(crate) struct Field {
    pub spec: FieldSpec,
    pub alphabet: Alphabet,
    ff1: OnceLock<ff1::Ff1>,
    mac: OnceLock<Mac>,
}

/// Tokenization in an open vault: the field definitions (sealed in the store, cached) and
/// every token kind over the vault's keys. Decisions are made above this (sessions); the
/// entries it writes itself are the owner's administration (defining a field, creating the
/// `tokens` keyring of an older vault on first use).
pub(crate) struct Tokens {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    audit: Arc<AuditLog>,
    /// Loaded fields (with their derived keys), re-read after
    /// [`CACHE_TTL_SECS`](crate::vault::CACHE_TTL_SECS): another process may redefine one.
    fields: SharedCache<Arc<Field>>,
}

/// The keys a field operation needs: the field's own (derived from a KEK version or from the
/// subject's key).
enum FieldKeys<'a> {
    Shared(&'a Field, Arc<Kek>),
    Subject(&'a Field, Arc<Kek>),
}

impl FieldKeys<'_> {
    fn derive(&self, purpose: &[u8]) -> Result<Key32> {
        let (f, k) = match self {
            FieldKeys::Shared(f, k) | FieldKeys::Subject(f, k) => (f, k),
        };
        // Every variable part is length-prefixed, so (field, project) pairs never collide.
        let (name, project) = (f.spec.name.as_bytes(), f.spec.project.as_bytes());
        kdf::expand_key(
            k.key(),
            &[
                label::FIELD_KEY,
                &(purpose.len() as u64).to_be_bytes(),
                purpose,
                &(name.len() as u64).to_be_bytes(),
                name,
                &(project.len() as u64).to_be_bytes(),
                project,
            ],
        )
    }

    fn ff1(&self) -> Result<FfRef<'_>> {
        match self {
            FieldKeys::Shared(f, _) => {
                if let Some(x) = f.ff1.get() {
                    return Ok(FfRef::Cached(x));
                }
                let made = ff1::Ff1::new(self.derive(b"ff1")?.expose(), f.alphabet.radix())?;
                Ok(FfRef::Cached(f.ff1.get_or_init(|| made)))
            }
            FieldKeys::Subject(f, _) => Ok(FfRef::Owned(Box::new(ff1::Ff1::new(
                self.derive(b"ff1")?.expose(),
                f.alphabet.radix(),
            )?))),
        }
    }

    fn mac(&self, purpose: &'static [u8]) -> Result<MacRef<'_>> {
        match self {
            FieldKeys::Shared(f, _) => {
                if let Some(m) = f.mac.get() {
                    return Ok(MacRef::Cached(m));
                }
                let made = Mac::new(&self.derive(purpose)?);
                Ok(MacRef::Cached(f.mac.get_or_init(|| made)))
            }
            FieldKeys::Subject(..) => Ok(MacRef::Owned(Mac::new(&self.derive(purpose)?))),
        }
    }
}

enum FfRef<'a> {
    Cached(&'a ff1::Ff1),
    Owned(Box<ff1::Ff1>),
}

impl std::ops::Deref for FfRef<'_> {
    type Target = ff1::Ff1;
    fn deref(&self) -> &ff1::Ff1 {
        match self {
            FfRef::Cached(f) => f,
            FfRef::Owned(f) => f,
        }
    }
}

enum MacRef<'a> {
    Cached(&'a Mac),
    Owned(Mac),
}

impl std::ops::Deref for MacRef<'_> {
    type Target = Mac;
    fn deref(&self) -> &Mac {
        match self {
            MacRef::Cached(m) => m,
            MacRef::Owned(m) => m,
        }
    }
}

fn check_value(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_VALUE_LEN {
        return Err(Error::invalid("value", "must be 1 to 4096 bytes"));
    }
    Ok(())
}

fn invalid_token(field: &Field) -> Error {
    Error::InvalidToken {
        field: field.spec.name.clone(),
    }
}

impl Tokens {
    /// Tokenization over these keys and this log, in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>, audit: Arc<AuditLog>) -> Self {
        Tokens {
            store,
            keys,
            audit,
            fields: SharedCache::new(),
        }
    }

    /// The field `name`: a defined one, or a preset.
    pub(crate) fn field(&self, name: &str) -> Result<Arc<Field>> {
        if let Some(f) = self.fields.get(name)? {
            return Ok(f);
        }
        let spec = match self.store.get(Space::Field, name.as_bytes())? {
            Some(sealed) => self.unseal_field(name, &sealed)?,
            None => presets()
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| Error::UnknownField {
                    field: name.to_owned(),
                })?,
        };
        let f = Arc::new(Field {
            alphabet: Alphabet::parse(&spec.alphabet)?,
            spec,
            ff1: OnceLock::new(),
            mac: OnceLock::new(),
        });
        self.fields.insert(name, f.clone())?;
        Ok(f)
    }

    pub(crate) fn unseal_field(&self, name: &str, sealed: &[u8]) -> Result<FieldSpec> {
        let plain = self
            .keys
            .unseal_meta(&[b"field", name.as_bytes()], sealed)
            .map_err(|_| Error::CorruptMetadata {
                what: "field definition",
            })?;
        let spec: FieldSpec = crate::codec::decode_exact(plain.expose(), "field definition")?;
        if spec.name != name {
            return Err(Error::CorruptMetadata {
                what: "field definition",
            });
        }
        Ok(spec)
    }

    /// Defines (or redefines) a field, stored in the vault sealed under the vault master key.
    /// Redefining a field that already has tokens changes how new tokens look and may make
    /// old FF1 tokens undecryptable: give a new field a new name instead.
    pub(crate) fn define_field(&self, spec: FieldSpec) -> Result<()> {
        spec.validate()?;
        self.audit.admin(
            crate::audit::Action::Admin,
            &spec.name,
            None,
            "define field".into(),
        )?;
        Alphabet::parse(&spec.alphabet)?;
        let bytes = Zeroizing::new(
            postcard::to_allocvec(&spec).map_err(|_| Error::Crypto("field encoding"))?,
        );
        let sealed = self
            .keys
            .seal_meta(&[b"field", spec.name.as_bytes()], &bytes)?;
        self.store.write(vec![crate::store::WriteOp::Put {
            space: Space::Field,
            key: spec.name.as_bytes().to_vec(),
            value: sealed,
        }])?;
        self.fields.remove(&spec.name)?;
        Ok(())
    }

    /// Defines every field of a TOML schema (`[[field]]` tables).
    pub(crate) fn define_fields_toml(&self, text: &str) -> Result<usize> {
        let specs = FieldSpec::from_toml(text)?;
        let n = specs.len();
        for s in specs {
            self.define_field(s)?;
        }
        Ok(n)
    }

    /// Every field usable in this vault: presets, then defined fields (which override presets
    /// of the same name).
    pub(crate) fn fields(&self) -> Result<Vec<FieldSpec>> {
        let mut by_name: std::collections::BTreeMap<String, FieldSpec> =
            presets().into_iter().map(|p| (p.name.clone(), p)).collect();
        for entry in ScanIter::new(self.store.as_ref(), Space::Field, Vec::new()) {
            let (name, sealed) = entry?;
            let name = String::from_utf8(name)
                .map_err(|_| Error::CorruptMetadata { what: "field name" })?;
            by_name.insert(name.clone(), self.unseal_field(&name, &sealed)?);
        }
        Ok(by_name.into_values().collect())
    }

    /// The keyring of a field, creating the standard `tokens` keyring on first use.
    pub(crate) fn field_keyring(&self, name: &str) -> Result<Arc<crate::keyring::Keyring>> {
        match self.keys.keyring(name) {
            Err(Error::UnknownKeyring { .. }) if name == TOKENS_KEYRING => {
                match self.keys.create_keyring_logged(&self.audit, name) {
                    Ok(k) => Ok(k),
                    Err(Error::KeyringExists { .. }) => self.keys.keyring(name),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    fn field_keys_for_write<'a>(
        &self,
        f: &'a Field,
        subject: Option<&str>,
    ) -> Result<FieldKeys<'a>> {
        match (f.spec.subject, subject) {
            (true, Some(s)) => {
                self.field_keyring(&f.spec.keyring)?;
                Ok(FieldKeys::Subject(
                    f,
                    self.keys.subject_key_for_field(s, &f.spec.keyring)?.1,
                ))
            }
            (true, None) => Err(Error::SubjectRequired {
                field: f.spec.name.clone(),
            }),
            (false, _) => Ok(FieldKeys::Shared(
                f,
                self.field_keyring(&f.spec.keyring)?
                    .decrypting_kek(f.spec.key_version)?,
            )),
        }
    }

    fn field_keys_for_read<'a>(
        &self,
        f: &'a Field,
        subject: Option<&str>,
    ) -> Result<FieldKeys<'a>> {
        match (f.spec.subject, subject) {
            (true, Some(s)) => Ok(FieldKeys::Subject(
                f,
                self.keys.subject_key_for_field_read(s, &f.spec.keyring)?,
            )),
            (true, None) => Err(Error::SubjectRequired {
                field: f.spec.name.clone(),
            }),
            (false, _) => Ok(FieldKeys::Shared(
                f,
                self.field_keyring(&f.spec.keyring)?
                    .decrypting_kek(f.spec.key_version)?,
            )),
        }
    }

    pub(crate) fn tokenize(
        &self,
        par: &Parallel,
        field: &str,
        values: &[&str],
        subject: Option<&str>,
    ) -> Result<Vec<String>> {
        // Every value is checked before any key is made (a subject key is a write).
        for v in values {
            check_value(v)?;
        }
        self.tokenize_rows(par, field, values, subject)?
            .into_iter()
            .collect()
    }

    /// [`Tokens::tokenize`] with an outcome per value: an invalid value fails its own row
    /// (`Ok` of a row error); the batch fails as a whole only for what concerns every row
    /// (unknown field, keys, store).
    pub(crate) fn tokenize_rows(
        &self,
        par: &Parallel,
        field: &str,
        values: &[&str],
        subject: Option<&str>,
    ) -> Result<Vec<Result<String>>> {
        let f = self.field(field)?;
        if f.spec.kind == TokenKind::Vaulted {
            let good: Vec<&str> = values
                .iter()
                .copied()
                .filter(|v| check_value(v).is_ok())
                .collect();
            let mut made = if good.is_empty() {
                Vec::new()
            } else {
                self.vaulted_tokenize(par, &f, &good, subject)?
            }
            .into_iter();
            return Ok(values
                .iter()
                .map(|v| {
                    check_value(v)?;
                    made.next()
                        .ok_or(Error::Crypto("vaulted batch returned too few tokens"))
                })
                .collect());
        }
        let keys = self.field_keys_for_write(&f, subject)?;
        match f.spec.kind {
            TokenKind::Vaulted => Err(Error::Crypto("unreachable: vaulted handled above")),
            TokenKind::Ff1 => {
                let ff = keys.ff1()?;
                par.map(values, |v| {
                    Ok(check_value(v)
                        .and_then(|()| ff.tokenize(&f.alphabet, f.spec.name.as_bytes(), v)))
                })
            }
            // Pseudonyms and date shifts cost well under a microsecond each: handing them to
            // the pool costs more than it saves (measured: a pool of 2 ran pseudonyms at 0.6×),
            // so they always run on the calling thread.
            TokenKind::Pseudonym => {
                let mac = keys.mac(b"pseudonym")?;
                Ok(values
                    .iter()
                    .map(|v| check_value(v).map(|()| pseudonym::pseudonym(&mac, v)))
                    .collect())
            }
            TokenKind::DateShift => {
                let mac = keys.mac(b"date-shift")?;
                let off = dateshift::offset(&mac, &f.spec.name, f.spec.window_days);
                Ok(values
                    .iter()
                    .map(|v| {
                        check_value(v)?;
                        dateshift::format(dateshift::parse(v)? + off)
                    })
                    .collect())
            }
        }
    }

    pub(crate) fn detokenize(
        &self,
        par: &Parallel,
        field: &str,
        tokens: &[&str],
        view: View,
        subject: Option<&str>,
    ) -> Result<Vec<Zeroizing<String>>> {
        self.detokenize_rows(par, field, tokens, view, subject)?
            .into_iter()
            .collect()
    }

    /// [`Tokens::detokenize`] with an outcome per token: a malformed, unknown or forged
    /// token fails its own row ([`Error::InvalidToken`]); damage in the store, keys and the
    /// field fail the batch.
    pub(crate) fn detokenize_rows(
        &self,
        par: &Parallel,
        field: &str,
        tokens: &[&str],
        view: View,
        subject: Option<&str>,
    ) -> Result<Vec<Result<Zeroizing<String>>>> {
        let f = self.field(field)?;
        let well_formed = |t: &str| !t.is_empty() && t.len() <= MAX_VALUE_LEN;
        let values: Vec<Result<Zeroizing<String>>> = match f.spec.kind {
            TokenKind::Vaulted => {
                let good: Vec<&str> = tokens.iter().copied().filter(|t| well_formed(t)).collect();
                let mut found = if good.is_empty() {
                    Vec::new()
                } else {
                    self.vaulted_detokenize(par, &f, &good)?
                }
                .into_iter();
                tokens
                    .iter()
                    .map(|t| {
                        if !well_formed(t) {
                            return Err(invalid_token(&f));
                        }
                        found
                            .next()
                            .unwrap_or(Err(Error::Crypto("vaulted batch returned too few values")))
                    })
                    .collect()
            }
            TokenKind::Pseudonym => {
                return Err(Error::invalid(
                    "field",
                    "pseudonyms are one-way: there is nothing to detokenize",
                ));
            }
            TokenKind::Ff1 => {
                let keys = self.field_keys_for_read(&f, subject)?;
                let ff = keys.ff1()?;
                par.map(tokens, |t| {
                    if !well_formed(t) {
                        return Ok(Err(invalid_token(&f)));
                    }
                    Ok(ff
                        .detokenize(&f.alphabet, f.spec.name.as_bytes(), t)
                        .map(Zeroizing::new)
                        .map_err(|_| invalid_token(&f)))
                })?
            }
            TokenKind::DateShift => {
                let keys = self.field_keys_for_read(&f, subject)?;
                let mac = keys.mac(b"date-shift")?;
                let off = dateshift::offset(&mac, &f.spec.name, f.spec.window_days);
                tokens
                    .iter()
                    .map(|t| {
                        let d = dateshift::parse(t).map_err(|_| invalid_token(&f))?;
                        dateshift::format(d - off).map(Zeroizing::new)
                    })
                    .collect()
            }
        };
        Ok(values
            .into_iter()
            .map(|r| {
                r.map(|v| match view {
                    View::Plaintext => v,
                    other => Zeroizing::new(mask::apply(&f.spec, &f.alphabet, &v, other)),
                })
            })
            .collect())
    }

    /// [`Tokens::tokenize_rows`] of a field tied to subjects, with each value's own subject
    /// (`subjects[i]` for `values[i]`; equal lengths): values are grouped by subject, each
    /// subject's key loaded (or made) once. A subject-level refusal — an invalid subject id, a
    /// forgotten subject — fails that subject's rows only.
    pub(crate) fn tokenize_rows_for_subjects(
        &self,
        par: &Parallel,
        field: &str,
        values: &[&str],
        subjects: &[&str],
    ) -> Result<Vec<Result<String>>> {
        self.rows_by_subject(field, values, subjects, |vals, subject| {
            self.tokenize_rows(par, field, vals, Some(subject))
        })
    }

    /// The reverse of [`Tokens::tokenize_rows_for_subjects`].
    pub(crate) fn detokenize_rows_for_subjects(
        &self,
        par: &Parallel,
        field: &str,
        tokens: &[&str],
        subjects: &[&str],
        view: View,
    ) -> Result<Vec<Result<Zeroizing<String>>>> {
        self.rows_by_subject(field, tokens, subjects, |vals, subject| {
            self.detokenize_rows(par, field, vals, view, Some(subject))
        })
    }

    /// Runs `each` once per distinct subject over that subject's rows and puts the outcomes
    /// back in row order.
    fn rows_by_subject<T>(
        &self,
        field: &str,
        values: &[&str],
        subjects: &[&str],
        each: impl Fn(&[&str], &str) -> Result<Vec<Result<T>>>,
    ) -> Result<Vec<Result<T>>> {
        if values.len() != subjects.len() {
            return Err(Error::invalid(
                "subjects",
                "must be as many as the values, one per row",
            ));
        }
        let f = self.field(field)?;
        if !f.spec.subject {
            return Err(Error::invalid(
                "field",
                "is not tied to subjects: tokenize it without subjects",
            ));
        }
        let mut groups: std::collections::HashMap<&str, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, s) in subjects.iter().enumerate() {
            groups.entry(*s).or_default().push(i);
        }
        let mut out: Vec<Option<Result<T>>> = (0..values.len()).map(|_| None).collect();
        for (subject, rows) in groups {
            let vals: Vec<&str> = rows.iter().map(|&i| values[i]).collect();
            match each(&vals, subject) {
                Ok(done) => {
                    for (&i, r) in rows.iter().zip(done) {
                        out[i] = Some(r);
                    }
                }
                // This subject's rows fail; the batch goes on.
                Err(Error::SubjectForgotten) => {
                    for &i in &rows {
                        out[i] = Some(Err(Error::SubjectForgotten));
                    }
                }
                Err(Error::InvalidInput { what, why }) => {
                    for &i in &rows {
                        out[i] = Some(Err(Error::InvalidInput { what, why }));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        out.into_iter()
            .map(|o| o.ok_or(Error::Crypto("a row of a subject batch was not filled")))
            .collect()
    }

    /// The keyed hash of a token as the audit log shows it (hex, 128 bits).
    pub(crate) fn token_audit_id(&self, field: &str, token: &str) -> String {
        hex::encode(
            &self
                .keys
                .token_id
                .tag(&[field.as_bytes(), token.as_bytes()])[..16],
        )
    }

    /// Whether `candidate` is the pseudonym of `value` in `field` (constant-time comparison).
    pub(crate) fn verify_pseudonym(
        &self,
        field: &str,
        value: &str,
        candidate: &str,
    ) -> Result<bool> {
        let f = self.field(field)?;
        if f.spec.kind != TokenKind::Pseudonym {
            return Err(Error::invalid("field", "is not a pseudonym field"));
        }
        // An equality oracle on values: it leaves a trace like a tokenization.
        self.audit.admin(
            crate::audit::Action::Tokenize,
            field,
            None,
            "verify pseudonym".into(),
        )?;
        let keys = self.field_keys_for_write(&f, None)?;
        let mac = keys.mac(b"pseudonym")?;
        Ok(pseudonym::verify(&mac, value, candidate))
    }
}

#[cfg(test)]
mod worked_examples {
    //! The worked token examples of docs/FORMAT.md §12, recomputed from the code.
    use super::*;
    use crate::backend::Backend;

    fn field(spec: FieldSpec) -> Field {
        Field {
            alphabet: Alphabet::parse(&spec.alphabet).expect("alphabet"),
            spec,
            ff1: OnceLock::new(),
            mac: OnceLock::new(),
        }
    }

    #[test]
    fn format_md_token_examples() {
        let kek = Arc::new(
            Kek::new(1, Key32::from_slice(&[7u8; 32]).expect("k"), Backend::Ring).expect("kek"),
        );
        let sk = Arc::new(
            Kek::new(1, Key32::from_slice(&[9u8; 32]).expect("k"), Backend::Ring).expect("sk"),
        );
        let ssn = field(
            presets()
                .into_iter()
                .find(|p| p.name == "ssn")
                .expect("ssn"),
        );
        let k = FieldKeys::Shared(&ssn, kek.clone());
        let kf = k.derive(b"ff1").expect("derive");
        let tok = k
            .ff1()
            .expect("ff1")
            .tokenize(&ssn.alphabet, b"ssn", "900-12-3456")
            .expect("tok");
        println!(
            "ssn K_F(ff1) {} 900-12-3456 -> {tok}",
            hex::encode(kf.expose())
        );
        assert_eq!(
            hex::encode(kf.expose()),
            "e5e4eca71c16914df077dca8e9880a9fab7b7203cbc4a7bbeba6611a0ee3244e"
        );
        assert_eq!(tok, "563-93-3708");
        assert_eq!(
            k.ff1()
                .expect("ff1")
                .detokenize(&ssn.alphabet, b"ssn", &tok)
                .expect("detok"),
            "900-12-3456"
        );
        let psn = field(FieldSpec::new("pseudonym", TokenKind::Pseudonym));
        let k = FieldKeys::Shared(&psn, kek.clone());
        let kf = k.derive(b"pseudonym").expect("derive");
        let m = Mac::new(&kf);
        println!(
            "pseudonym K_F {} Mac[0..16) {} -> {}",
            hex::encode(kf.expose()),
            hex::encode(&m.tag(&[b"900-12-3456"])[..16]),
            pseudonym::pseudonym(&m, "900-12-3456")
        );
        assert_eq!(
            hex::encode(&m.tag(&[b"900-12-3456"])[..16]),
            "dffe5f20163af18b4d2fd511783d0243"
        );
        assert_eq!(
            pseudonym::pseudonym(&m, "900-12-3456"),
            "psn_377f6iawhlyywtjp2uixqpicim"
        );
        let mut study = FieldSpec::new("study_id", TokenKind::Pseudonym);
        study.project = "cardio-2026".into();
        let study = field(study);
        let k = FieldKeys::Shared(&study, kek);
        let m = Mac::new(&k.derive(b"pseudonym").expect("derive"));
        println!(
            "study_id/cardio-2026 S-1 -> {}",
            pseudonym::pseudonym(&m, "S-1")
        );
        assert_eq!(
            pseudonym::pseudonym(&m, "S-1"),
            "psn_x5gxkzrrnbkdyefo22jsx4r56y"
        );
        let dob = field(
            presets()
                .into_iter()
                .find(|p| p.name == "dob")
                .expect("dob"),
        );
        let k = FieldKeys::Subject(&dob, sk);
        let kf = k.derive(b"date-shift").expect("derive");
        let m = Mac::new(&kf);
        let tag = m.tag(&[b"date-shift", b"dob"]);
        let off = dateshift::offset(&m, "dob", 365);
        assert_eq!(
            (hex::encode(&tag[..8]).as_str(), off),
            ("3cc5d4961455a4db", -88)
        );
        println!(
            "dob K_F {} tag[0..8) {} offset {off} 1961-04-12 -> {}",
            hex::encode(kf.expose()),
            hex::encode(&tag[..8]),
            dateshift::format(dateshift::parse("1961-04-12").expect("p") + off).expect("f")
        );
    }
}
