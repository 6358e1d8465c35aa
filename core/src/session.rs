//! Sessions: every data operation runs as a [`Caller`] through the one decision point
//! ([`policy`](crate::policy)) and leaves an audit entry before it touches data. The plain
//! `Vault` methods act as the owner; applications serving many users call
//! [`Vault::session`] with the user's principal and purpose.
//!
//! ```
//! use phivault::{Context, Vault, root::KeyFile, Key32, policy::{Caller, Policy}, tokens::View};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! vault.set_policy(&Policy::from_toml(r#"
//!     [[principal]]
//!     name = "analyst"
//!     roles = ["research"]
//!     [[rule]]
//!     roles = ["research"]
//!     purposes = ["research"]
//!     actions = ["tokenize", "detokenize"]
//!     fields = ["ssn"]
//!     view = "masked"
//! "#)?)?;
//! let t = vault.owner().tokenize("ssn", "900-12-3456")?;
//! let analyst = vault.session(Caller::new("analyst", "research"));
//! assert_eq!(&*analyst.detokenize("ssn", &t, View::Masked)?, "***-**-3456");
//! assert!(analyst.detokenize("ssn", &t, View::Plaintext).is_err());   // view not granted
//! assert!(analyst.get("notes", "1").is_err());                        // default deny
//! assert!(vault.audit_verify()?.ok);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::Result;
use crate::audit::{Action, TargetRef};
use crate::context::Context;
use crate::envelope::{self, Envelope};
use crate::policy::{Caller, Resource};
use crate::records::PutOptions;
use crate::tokens::View;
use crate::vault::{EncryptOptions, Vault};
use zeroize::Zeroizing;

/// A vault used by one caller: every call is authorized and audited.
#[derive(Debug)]
pub struct Session<'v> {
    vault: &'v Vault,
    caller: Caller,
}

pub(crate) fn target(name: &str, item: Option<String>, count: usize) -> TargetRef<'_> {
    TargetRef {
        name,
        item,
        count: count as u64,
        detail: None,
    }
}

fn detok_action(view: View) -> Action {
    match view {
        View::Plaintext => Action::Detokenize,
        View::Masked => Action::DetokenizeMasked,
        _ => Action::DetokenizeRedacted,
    }
}

impl<'v> Session<'v> {
    /// The caller this session acts as.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub(crate) fn allow(
        &self,
        action: Action,
        resource: Resource<'_>,
        t: TargetRef<'_>,
    ) -> Result<()> {
        self.vault
            .guard
            .authorize(&self.caller, action, resource, t)
            .map(|_| ())
    }

    /// The vault behind this session, for the session forms defined in other modules.
    pub(crate) fn vault(&self) -> &'v Vault {
        self.vault
    }

    /// Refuses (and logs as a denial) a context with keys reserved for the vault's own data:
    /// the envelope API never makes or opens what the record and token paths bind.
    fn check_context(
        &self,
        action: Action,
        ctx: &Context,
        keyring: &str,
        count: usize,
    ) -> Result<()> {
        crate::keys::check_caller_context(ctx).map_err(|e| {
            self.vault.guard.refuse(
                &self.caller,
                action,
                target(keyring, None, count),
                "reserved context keys (phivault.*)",
                e,
            )
        })
    }

    /// The decision on the keyring a record write chooses explicitly.
    fn allow_record_keyring(&self, opts: &PutOptions<'_>, count: usize) -> Result<()> {
        match opts.keyring {
            Some(k) => self.allow(
                Action::Encrypt,
                Resource::Keyring(k),
                target(k, None, count),
            ),
            None => Ok(()),
        }
    }

    /// Encrypts `plaintext` bound to `ctx` under the `default` keyring (randomized, binary
    /// envelope).
    pub fn encrypt(&self, plaintext: &[u8], ctx: &Context) -> Result<Vec<u8>> {
        self.encrypt_with(plaintext, ctx, &EncryptOptions::default())
    }

    /// Encrypts with options (keyring, deterministic).
    pub fn encrypt_with(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        let k = opts.keyring_name();
        self.check_context(Action::Encrypt, ctx, k, 1)?;
        self.allow(Action::Encrypt, Resource::Keyring(k), target(k, None, 1))?;
        self.vault.keys.encrypt(plaintext, ctx, opts)
    }

    /// Encrypts into the text form (`pv1:KEYRING:VERSION:BASE64URL`).
    pub fn encrypt_text(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<String> {
        envelope::to_text(&self.encrypt_with(plaintext, ctx, opts)?)
    }

    /// Encrypts data tied to a data subject (a patient): the DEK is wrapped by the subject's
    /// key, so [`Vault::forget_subject`] makes it unrecoverable.
    pub fn encrypt_for_subject(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        subject: &str,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        let k = opts.keyring_name();
        self.check_context(Action::Encrypt, ctx, k, 1)?;
        self.allow(Action::Encrypt, Resource::Keyring(k), target(k, None, 1))?;
        self.vault
            .keys
            .encrypt_for_subject(plaintext, ctx, subject, opts)
    }

    /// Decrypts an envelope (binary or text form) made under `ctx`. Any tampering, a wrong
    /// context or a wrong key gives [`Error::AuthenticationFailed`](crate::Error::AuthenticationFailed); a retired or destroyed key
    /// version is named.
    pub fn decrypt(&self, envelope: &[u8], ctx: &Context) -> Result<Zeroizing<Vec<u8>>> {
        let bin = envelope::to_binary(envelope)?;
        let env = Envelope::parse(&bin)?;
        let k = env.keyring();
        self.check_context(Action::Decrypt, ctx, k, 1)?;
        self.allow(Action::Decrypt, Resource::Keyring(k), target(k, None, 1))?;
        self.vault.keys.decrypt(&env, ctx)
    }

    /// Encrypts many plaintexts under one context: the envelopes [`Session::encrypt_with`]
    /// makes (a fresh data key each), in order, with one policy decision and one audit entry
    /// for the batch, the randomness of 64 envelopes per CSPRNG call, and the vault's thread
    /// pool when it has one ([`crate::VaultOptions::threads`]). Fails as a whole.
    pub fn encrypt_many(
        &self,
        plaintexts: &[&[u8]],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<Vec<u8>>> {
        let k = opts.keyring_name();
        self.check_context(Action::Encrypt, ctx, k, plaintexts.len())?;
        self.allow(
            Action::Encrypt,
            Resource::Keyring(k),
            target(k, None, plaintexts.len()),
        )?;
        self.vault
            .keys
            .encrypt_many(&self.vault.parallel, plaintexts, ctx, opts)
    }

    /// Decrypts many envelopes (binary or text form) made under `ctx`, in order, with one
    /// policy decision and audit entry per keyring; fails as a whole on the first envelope
    /// that does not authenticate.
    pub fn decrypt_many<T: AsRef<[u8]> + Sync>(
        &self,
        envelopes: &[T],
        ctx: &Context,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        // Text forms are decoded once, here; the vault parses the binary headers again (cheap).
        let bins = envelopes
            .iter()
            .map(|e| envelope::to_binary(e.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let mut keyrings: Vec<(&str, usize)> = Vec::new();
        for bin in &bins {
            let k = Envelope::parse(bin)?.keyring();
            match keyrings.iter_mut().find(|(name, _)| *name == k) {
                Some((_, n)) => *n += 1,
                None => keyrings.push((k, 1)),
            }
        }
        for (k, n) in &keyrings {
            self.check_context(Action::Decrypt, ctx, k, *n)?;
            self.allow(Action::Decrypt, Resource::Keyring(k), target(k, None, *n))?;
        }
        self.vault
            .keys
            .decrypt_many(&self.vault.parallel, &bins, ctx)
    }

    /// Encrypts many plaintexts, each under its own context, into randomized envelopes of
    /// `keyring`: one policy decision and audit entry for the batch (de-identification's
    /// `encrypt` elements, each bound to its resource and path).
    pub(crate) fn encrypt_in_contexts(
        &self,
        items: &[(&[u8], &Context)],
        keyring: &str,
    ) -> Result<Vec<Vec<u8>>> {
        for (_, ctx) in items {
            self.check_context(Action::Encrypt, ctx, keyring, items.len())?;
        }
        self.allow(
            Action::Encrypt,
            Resource::Keyring(keyring),
            target(keyring, None, items.len()),
        )?;
        self.vault
            .keys
            .encrypt_in_contexts(&self.vault.parallel, items, keyring)
    }

    /// Decrypts many envelopes (binary or text form), each under its own context: one policy
    /// decision and audit entry per keyring; fails as a whole on the first envelope that does
    /// not authenticate.
    pub(crate) fn decrypt_in_contexts(
        &self,
        items: &[(&[u8], &Context)],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        let bins = items
            .iter()
            .map(|(e, _)| envelope::to_binary(e))
            .collect::<Result<Vec<_>>>()?;
        let mut keyrings: Vec<(&str, usize)> = Vec::new();
        for bin in &bins {
            let k = Envelope::parse(bin)?.keyring();
            match keyrings.iter_mut().find(|(name, _)| *name == k) {
                Some((_, n)) => *n += 1,
                None => keyrings.push((k, 1)),
            }
        }
        for (k, n) in &keyrings {
            for (_, ctx) in items {
                self.check_context(Action::Decrypt, ctx, k, *n)?;
            }
            self.allow(Action::Decrypt, Resource::Keyring(k), target(k, None, *n))?;
        }
        let pairs: Vec<(&[u8], &Context)> = bins
            .iter()
            .zip(items)
            .map(|(b, (_, ctx))| (b.as_ref(), *ctx))
            .collect();
        self.vault.parallel.map(&pairs, |(bin, ctx)| {
            self.vault.keys.decrypt(&Envelope::parse(bin)?, ctx)
        })
    }

    /// Stores `plaintext` as record `id` of `collection`, replacing any previous value,
    /// optionally tied to a data subject. Durable when it returns.
    pub fn put(
        &self,
        collection: &str,
        id: &str,
        plaintext: &[u8],
        subject: Option<&str>,
    ) -> Result<()> {
        self.put_with(
            collection,
            id,
            plaintext,
            &PutOptions {
                subject,
                keyring: None,
            },
        )
    }

    /// [`Session::put`] with options.
    pub fn put_with(
        &self,
        collection: &str,
        id: &str,
        plaintext: &[u8],
        opts: &PutOptions<'_>,
    ) -> Result<()> {
        let item = Some(self.vault.records.audit_id(collection, id));
        self.allow(
            Action::Put,
            Resource::Collection(collection),
            target(collection, item, 1),
        )?;
        self.allow_record_keyring(opts, 1)?;
        self.vault.records.put(collection, id, plaintext, opts)
    }

    /// Stores many records in one atomic, durable batch (one flush, one audit entry).
    pub fn put_many(
        &self,
        collection: &str,
        items: &[(&str, &[u8])],
        opts: &PutOptions<'_>,
    ) -> Result<()> {
        self.allow(
            Action::Put,
            Resource::Collection(collection),
            target(collection, None, items.len()),
        )?;
        self.allow_record_keyring(opts, items.len())?;
        self.vault
            .records
            .put_many(&self.vault.parallel, collection, items, opts)
    }

    /// Reads and decrypts record `id` of `collection`; `None` when there is none.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let item = Some(self.vault.records.audit_id(collection, id));
        self.allow(
            Action::Get,
            Resource::Collection(collection),
            target(collection, item, 1),
        )?;
        self.vault.records.get(collection, id)
    }

    /// Deletes record `id` of `collection`; returns whether it existed.
    pub fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        let item = Some(self.vault.records.audit_id(collection, id));
        self.allow(
            Action::Delete,
            Resource::Collection(collection),
            target(collection, item, 1),
        )?;
        self.vault.records.delete(collection, id)
    }

    /// Tokenizes `value` as field `field`. Fields tied to subjects need
    /// [`Session::tokenize_for_subject`].
    pub fn tokenize(&self, field: &str, value: &str) -> Result<String> {
        self.allow(
            Action::Tokenize,
            Resource::Field(field),
            target(field, None, 1),
        )?;
        self.vault
            .tokens
            .tokenize(&self.vault.parallel, field, &[value], None)
            .map(|mut v| v.remove(0))
    }

    /// Tokenizes a value that belongs to a data subject (required for fields tied to
    /// subjects, such as `dob`): the token dies with `forget_subject`.
    pub fn tokenize_for_subject(&self, field: &str, value: &str, subject: &str) -> Result<String> {
        self.allow(
            Action::Tokenize,
            Resource::Field(field),
            target(field, None, 1),
        )?;
        self.vault
            .tokens
            .tokenize(&self.vault.parallel, field, &[value], Some(subject))
            .map(|mut v| v.remove(0))
    }

    /// Tokenizes many values of one field, in order; vaulted tokens are made durable with one
    /// store sync for the whole batch. Fails as a whole on the first invalid value.
    pub fn tokenize_many<S: AsRef<str>>(&self, field: &str, values: &[S]) -> Result<Vec<String>> {
        self.allow(
            Action::Tokenize,
            Resource::Field(field),
            target(field, None, values.len()),
        )?;
        let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        self.vault
            .tokens
            .tokenize(&self.vault.parallel, field, &refs, None)
    }

    /// [`Session::tokenize_many`] with an outcome per value, for pipelines that null out bad
    /// rows instead of failing the batch: one policy decision and audit entry for the batch;
    /// an invalid value fails its own row (its error names the reason, never the value); the
    /// batch fails as a whole for what concerns every row (policy, field, keys, store).
    pub fn tokenize_rows<S: AsRef<str>>(
        &self,
        field: &str,
        values: &[S],
    ) -> Result<Vec<Result<String>>> {
        self.allow(
            Action::Tokenize,
            Resource::Field(field),
            target(field, None, values.len()),
        )?;
        let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        self.vault
            .tokens
            .tokenize_rows(&self.vault.parallel, field, &refs, None)
    }

    /// [`Session::detokenize_many`] with an outcome per token: an unknown, malformed or
    /// forged token fails its own row with [`Error::InvalidToken`](crate::Error::InvalidToken).
    pub fn detokenize_rows<S: AsRef<str>>(
        &self,
        field: &str,
        tokens: &[S],
        view: View,
    ) -> Result<Vec<Result<Zeroizing<String>>>> {
        self.allow(
            detok_action(view),
            Resource::Field(field),
            target(field, None, tokens.len()),
        )?;
        let refs: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
        self.vault
            .tokens
            .detokenize_rows(&self.vault.parallel, field, &refs, view, None)
    }

    /// Tokenizes a batch of a field tied to subjects (a date shift, a subject-bound FF1 or
    /// vaulted field) where every value has its own subject (`subjects[i]` for `values[i]`):
    /// one policy decision and audit entry, each subject's key loaded once, an outcome per row
    /// (a forgotten subject fails its own rows).
    pub fn tokenize_rows_for_subjects<S: AsRef<str>, T: AsRef<str>>(
        &self,
        field: &str,
        values: &[S],
        subjects: &[T],
    ) -> Result<Vec<Result<String>>> {
        self.allow(
            Action::Tokenize,
            Resource::Field(field),
            target(field, None, values.len()),
        )?;
        let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        let subs: Vec<&str> = subjects.iter().map(AsRef::as_ref).collect();
        self.vault
            .tokens
            .tokenize_rows_for_subjects(&self.vault.parallel, field, &refs, &subs)
    }

    /// The reverse of [`Session::tokenize_rows_for_subjects`].
    pub fn detokenize_rows_for_subjects<S: AsRef<str>, T: AsRef<str>>(
        &self,
        field: &str,
        tokens: &[S],
        subjects: &[T],
        view: View,
    ) -> Result<Vec<Result<Zeroizing<String>>>> {
        self.allow(
            detok_action(view),
            Resource::Field(field),
            target(field, None, tokens.len()),
        )?;
        let refs: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
        let subs: Vec<&str> = subjects.iter().map(AsRef::as_ref).collect();
        self.vault.tokens.detokenize_rows_for_subjects(
            &self.vault.parallel,
            field,
            &refs,
            &subs,
            view,
        )
    }

    /// Turns a token back into its value, shown as `view`. Unknown, malformed and forged
    /// vaulted tokens give [`Error::InvalidToken`](crate::Error::InvalidToken); pseudonyms cannot be detokenized.
    pub fn detokenize(&self, field: &str, token: &str, view: View) -> Result<Zeroizing<String>> {
        let item = Some(self.vault.tokens.token_audit_id(field, token));
        self.allow(
            detok_action(view),
            Resource::Field(field),
            target(field, item, 1),
        )?;
        self.vault
            .tokens
            .detokenize(&self.vault.parallel, field, &[token], view, None)
            .map(|mut v| v.remove(0))
    }

    /// [`Session::detokenize`] for fields tied to subjects that are not vaulted (date shift,
    /// subject-bound FF1): the subject's key is needed to reverse them.
    pub fn detokenize_for_subject(
        &self,
        field: &str,
        token: &str,
        subject: &str,
        view: View,
    ) -> Result<Zeroizing<String>> {
        let item = Some(self.vault.tokens.token_audit_id(field, token));
        self.allow(
            detok_action(view),
            Resource::Field(field),
            target(field, item, 1),
        )?;
        self.vault
            .tokens
            .detokenize(&self.vault.parallel, field, &[token], view, Some(subject))
            .map(|mut v| v.remove(0))
    }

    /// Detokenizes many tokens of one field, in order.
    pub fn detokenize_many<S: AsRef<str>>(
        &self,
        field: &str,
        tokens: &[S],
        view: View,
    ) -> Result<Vec<Zeroizing<String>>> {
        self.allow(
            detok_action(view),
            Resource::Field(field),
            target(field, None, tokens.len()),
        )?;
        let refs: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
        self.vault
            .tokens
            .detokenize(&self.vault.parallel, field, &refs, view, None)
    }
}

impl Vault {
    /// A session acting as `caller`: every call is checked against the policy and audited.
    pub fn session(&self, caller: Caller) -> Session<'_> {
        Session {
            vault: self,
            caller,
        }
    }

    /// The owner's session. Data operations (encrypt, decrypt, put, get, delete, tokenize,
    /// detokenize, their batch and stream forms) exist once, on [`Session`]: the owner calls
    /// them here (`vault.owner().put(..)`), is allowed everything the policy does not block
    /// outright (an unsealable policy blocks the owner too), and is audited like any caller.
    /// Administration (keyrings, rotation, rewrap, fields, policy, backups) stays on `Vault`.
    pub fn owner(&self) -> Session<'_> {
        self.session(Caller::owner())
    }
}
