//! Vaulted random tokens: a random token drawn from the field's format, and the value stored
//! encrypted in the vault (an envelope bound to field and token). In consistent mode a keyed
//! HMAC index maps each value to its one token; compare-and-swap on both the token and the
//! index entries guarantees unique tokens and exactly one token per value under any number of
//! concurrent writers.

use super::{Field, MacRef, Shape, Tokens, invalid_token};
use crate::context::Context;
use crate::envelope;
use crate::kdf::{self, Mac, label};
use crate::parallel::Parallel;
use crate::store::Space;
use crate::{Error, Result};
use zeroize::Zeroizing;

/// Context keys that bind a vaulted value to its field and token.
pub const CONTEXT_FIELD: &str = "phivault.field";
/// See [`CONTEXT_FIELD`].
pub const CONTEXT_TOKEN: &str = "phivault.token";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const OPAQUE_LEN: usize = 22;
const MAX_ATTEMPTS: usize = 32;

/// `n` uniform numerals below `radix`, by rejection sampling of random bytes.
fn random_numerals(radix: u32, n: usize) -> Result<Vec<u16>> {
    let limit = (256 / radix) * radix; // radix <= 256
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        crate::random::fill_random(&mut buf)?;
        for &b in &buf {
            if u32::from(b) < limit {
                out.push((u32::from(b) % radix) as u16);
                if out.len() == n {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn generate(f: &Field, value: &str) -> Result<String> {
    match f.spec.shape {
        Shape::SameAsInput => {
            let (numerals, template) = f.alphabet.split(value);
            f.alphabet.check_domain(numerals.len())?;
            let fresh = random_numerals(f.alphabet.radix(), numerals.len())?;
            Ok(f.alphabet.join(&fresh, &template))
        }
        Shape::Opaque => {
            let n = random_numerals(62, OPAQUE_LEN)?;
            let mut s = f.spec.prefix.clone();
            s.extend(n.iter().map(|&i| char::from(BASE62[usize::from(i)])));
            Ok(s)
        }
    }
}

pub(crate) fn token_context(field: &str, token: &str) -> Context {
    Context::new()
        .with(CONTEXT_FIELD, field)
        .with(CONTEXT_TOKEN, token)
}

impl Tokens {
    pub(crate) fn token_key(&self, field: &str, token: &str) -> [u8; 32] {
        self.keys
            .token_id
            .tag(&[field.as_bytes(), token.as_bytes()])
    }

    pub(super) fn vaulted_tokenize(
        &self,
        par: &Parallel,
        f: &Field,
        values: &[&str],
        subject: Option<&str>,
    ) -> Result<Vec<String>> {
        let field = f.spec.name.as_str();
        let keyring = f.spec.keyring.as_str();
        self.field_keyring(keyring)?;
        let subject_key = match (f.spec.subject, subject) {
            (true, Some(s)) => Some(self.keys.subject_key_for_field(s, keyring)?),
            (true, None) => {
                return Err(Error::SubjectRequired {
                    field: field.to_owned(),
                });
            }
            (false, _) => None,
        };
        let index: MacRef<'_> = match &subject_key {
            Some((_, sk)) => MacRef::Owned(Mac::new(&kdf::expand_key(
                sk.key(),
                &[label::SUBJECT_TOKEN_INDEX],
            )?)),
            None => MacRef::Cached(&self.keys.token_index),
        };
        let kek = match &subject_key {
            Some(_) => None,
            None => Some(self.keys.keyring(keyring)?.active_kek()?),
        };
        // Each value is independent: the compare-and-swaps below make one token per value and
        // unique tokens hold between threads exactly as between writers, so a large batch
        // may run on the vault's pool (equal values in one batch end up with one token).
        let out = par.map(values, |&value| -> Result<String> {
            let idx = f
                .spec
                .consistent
                .then(|| index.tag(&[field.as_bytes(), value.as_bytes()]));
            if let Some(idx) = &idx
                && let Some(tok) = self.store.get(Space::TokenIndex, idx)?
            {
                return String::from_utf8(tok).map_err(|_| Error::CorruptMetadata {
                    what: "token index",
                });
            }
            let mut placed = None;
            for _ in 0..MAX_ATTEMPTS {
                let token = generate(f, value)?;
                if token == value {
                    continue;
                }
                let ctx = token_context(field, &token);
                let env = match (&subject_key, &kek) {
                    (Some((id, sk)), _) => envelope::seal_for_subject(
                        self.keys.backend,
                        keyring,
                        id,
                        envelope::Domain::Internal,
                        sk,
                        value.as_bytes(),
                        &ctx,
                    )?,
                    (None, Some(kek)) => envelope::seal_internal(
                        self.keys.backend,
                        keyring,
                        kek,
                        value.as_bytes(),
                        &ctx,
                    )?,
                    (None, None) => return Err(Error::Crypto("no key for vaulted token")),
                };
                let stored = crate::stored::frame(&env);
                let tkey = self.token_key(field, &token);
                if self.store.compare_and_swap_unsynced(
                    Space::Token,
                    &tkey,
                    None,
                    Some(stored.clone()),
                )? {
                    placed = Some((token, tkey, stored));
                    break;
                }
            }
            let Some((token, tkey, stored)) = placed else {
                return Err(Error::invalid(
                    "field",
                    "token space exhausted: too many collisions; use a larger format",
                ));
            };
            match idx {
                None => Ok(token),
                Some(idx) => {
                    if self.store.compare_and_swap_unsynced(
                        Space::TokenIndex,
                        &idx,
                        None,
                        Some(token.clone().into_bytes()),
                    )? {
                        Ok(token)
                    } else {
                        // Another writer tokenized the same value first: use its token, drop ours.
                        self.store.compare_and_swap_unsynced(
                            Space::Token,
                            &tkey,
                            Some(&stored),
                            None,
                        )?;
                        let winner =
                            self.store
                                .get(Space::TokenIndex, &idx)?
                                .ok_or(Error::Conflict {
                                    what: "token index entry vanished",
                                })?;
                        String::from_utf8(winner).map_err(|_| Error::CorruptMetadata {
                            what: "token index",
                        })
                    }
                }
            }
        })?;
        self.store.sync()?;
        Ok(out)
    }

    pub(super) fn vaulted_detokenize(
        &self,
        par: &Parallel,
        f: &Field,
        tokens: &[&str],
    ) -> Result<Vec<Zeroizing<String>>> {
        let field = f.spec.name.as_str();
        par.map(tokens, |&token| {
            let stored = self
                .store
                .get(Space::Token, &self.token_key(field, token))?
                .ok_or_else(|| invalid_token(f))?;
            let env = crate::stored::envelope_of(&stored, "vaulted token").map_err(|_| {
                Error::CorruptMetadata {
                    what: "vaulted token",
                }
            })?;
            let env = envelope::Envelope::parse(env)?;
            let plain = self.keys.open(&env, &token_context(field, token))?;
            String::from_utf8(plain.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| Error::CorruptMetadata {
                    what: "vaulted token",
                })
        })
    }
}
