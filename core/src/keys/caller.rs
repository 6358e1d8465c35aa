//! The envelope API's rules over the vault's keys: what a caller may seal and open.
//!
//! A caller's envelopes are in the caller domain ([`Domain::Caller`]) under a context without
//! reserved keys (`phivault.*`), in both directions: a caller can neither forge the binding of
//! a record or vaulted token nor open one taken from the store. Records and vaulted tokens are
//! sealed by their own paths (records.rs, tokens/vaulted.rs) and opened with [`Keys::open`].
//! Who may call is decided above this, in the session.

use super::Keys;
use crate::context::Context;
use crate::envelope::{self, Domain, Envelope};
use crate::keyring::DEFAULT_KEYRING;
use crate::parallel::Parallel;
use crate::{Error, Result};
use zeroize::Zeroizing;

/// Prefix of context keys reserved for phivault.
pub const RESERVED_CONTEXT_PREFIX: &str = "phivault.";

/// How to encrypt: which keyring, randomized or deterministic.
#[derive(Clone, Debug, Default)]
pub struct EncryptOptions {
    keyring: Option<String>,
    deterministic: bool,
}

impl EncryptOptions {
    /// Randomized encryption under the `default` keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keyring name these options select.
    pub fn keyring_name(&self) -> &str {
        self.keyring.as_deref().unwrap_or(DEFAULT_KEYRING)
    }

    /// Uses the named keyring.
    #[must_use]
    pub fn keyring(mut self, name: impl Into<String>) -> Self {
        self.keyring = Some(name.into());
        self
    }

    /// Deterministic encryption (AES-SIV): equal plaintexts give equal ciphertexts under the
    /// same context and key version, which allows equality lookups and reveals equality.
    #[must_use]
    pub fn deterministic(mut self) -> Self {
        self.deterministic = true;
        self
    }
}

/// Context keys starting with `phivault.` are reserved for the vault's own bindings (records,
/// vaulted tokens): the envelope API refuses them in both directions, so a caller can neither
/// forge a record's binding nor open a record's envelope taken from the store.
pub(crate) fn check_caller_context(ctx: &Context) -> Result<()> {
    if ctx
        .pairs()
        .any(|(k, _)| k.starts_with(RESERVED_CONTEXT_PREFIX))
    {
        return Err(Error::invalid(
            "context",
            "keys starting with 'phivault.' are reserved",
        ));
    }
    Ok(())
}

impl Keys {
    /// Seals a caller's plaintext with `opts`, refusing reserved context keys.
    pub(crate) fn encrypt(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        check_caller_context(ctx)?;
        self.seal_with(plaintext, ctx, opts)
    }

    /// Seals with `opts` in the caller domain, without the reserved-key check (re-encryption
    /// keeps the context an envelope already has).
    pub(crate) fn seal_with(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        self.seal(opts.keyring_name(), opts.deterministic, plaintext, ctx)
    }

    /// [`Keys::encrypt`] over many plaintexts under one context: one keyring lookup,
    /// randomness for 64 envelopes per CSPRNG call ([`envelope::seal_many`]), spread over
    /// `par`.
    pub(crate) fn encrypt_many(
        &self,
        par: &Parallel,
        plaintexts: &[&[u8]],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<Vec<u8>>> {
        check_caller_context(ctx)?;
        let name = opts.keyring_name();
        let kek = self.keyring(name)?.active_kek()?;
        if opts.deterministic {
            return par.map(plaintexts, |p| {
                envelope::seal_deterministic(name, &kek, p, ctx)
            });
        }
        let chunks: Vec<&[&[u8]]> = plaintexts.chunks(envelope::SEAL_MANY_CHUNK).collect();
        let sealed = par.map_min(&chunks, 4, |chunk| {
            let items: Vec<(&[u8], &Context)> = chunk.iter().map(|p| (*p, ctx)).collect();
            envelope::seal_many(self.backend, name, &kek, &items)
        })?;
        Ok(sealed.into_iter().flatten().collect())
    }

    /// [`Keys::encrypt_many`] with a context per plaintext (randomized envelopes only).
    pub(crate) fn encrypt_in_contexts(
        &self,
        par: &Parallel,
        items: &[(&[u8], &Context)],
        keyring: &str,
    ) -> Result<Vec<Vec<u8>>> {
        for (_, ctx) in items {
            check_caller_context(ctx)?;
        }
        let kek = self.keyring(keyring)?.active_kek()?;
        let chunks: Vec<&[(&[u8], &Context)]> = items.chunks(envelope::SEAL_MANY_CHUNK).collect();
        let sealed = par.map_min(&chunks, 4, |chunk| {
            envelope::seal_many(self.backend, keyring, &kek, chunk)
        })?;
        Ok(sealed.into_iter().flatten().collect())
    }

    /// Seals a caller's plaintext tied to a data subject (a patient): the DEK is wrapped by
    /// the subject's key, so forgetting the subject makes it unrecoverable.
    pub(crate) fn encrypt_for_subject(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        subject: &str,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        check_caller_context(ctx)?;
        self.seal_for_subject_with(Domain::Caller, plaintext, ctx, subject, opts)
    }

    /// Seals in `domain` under the key of `subject` for the keyring of `opts` (records use
    /// the vault's own domain).
    pub(crate) fn seal_for_subject_with(
        &self,
        domain: Domain,
        plaintext: &[u8],
        ctx: &Context,
        subject: &str,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        if opts.deterministic {
            return Err(Error::invalid(
                "options",
                "deterministic encryption cannot be tied to a subject",
            ));
        }
        self.seal_for_subject(domain, opts.keyring_name(), subject, plaintext, ctx)
    }

    /// Opens a parsed envelope of the envelope API (for callers that looked at its header
    /// first). Only [`Domain::Caller`] envelopes under a context without reserved keys.
    pub(crate) fn decrypt(&self, env: &Envelope<'_>, ctx: &Context) -> Result<Zeroizing<Vec<u8>>> {
        check_caller_context(ctx)?;
        if env.domain() != Domain::Caller {
            return Err(Error::AuthenticationFailed);
        }
        self.open(env, ctx)
    }

    /// [`Keys::decrypt`] over many envelopes (binary or text), spread over `par`.
    pub(crate) fn decrypt_many<T: AsRef<[u8]> + Sync>(
        &self,
        par: &Parallel,
        envelopes: &[T],
        ctx: &Context,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        par.map(envelopes, |e| {
            let bin = envelope::to_binary(e.as_ref())?;
            self.decrypt(&Envelope::parse(&bin)?, ctx)
        })
    }
}
