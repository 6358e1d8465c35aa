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
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use zeroize::Zeroizing;

/// Context keys that bind a vaulted value to its field and token.
pub const CONTEXT_FIELD: &str = "phivault.field";
/// See [`CONTEXT_FIELD`].
pub const CONTEXT_TOKEN: &str = "phivault.token";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const OPAQUE_LEN: usize = 22;
const MAX_ATTEMPTS: usize = 32;
/// Values per round of store statements in a vaulted tokenize (bounds a statement's size).
const BATCH: usize = 4096;

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

/// A fresh token drawn for a value: its store key and its sealed value.
struct Drawn {
    token: String,
    key: [u8; 32],
    stored: Vec<u8>,
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
        let seal = |value: &str, token: &str| -> Result<Vec<u8>> {
            let ctx = token_context(field, token);
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
            Ok(crate::stored::frame(&env))
        };
        let mut out = Vec::with_capacity(values.len());
        for chunk in values.chunks(BATCH) {
            out.extend(self.vaulted_chunk(par, f, chunk, &index, &seal)?);
        }
        self.store.sync()?;
        Ok(out)
    }

    /// One batch of [`Tokens::vaulted_tokenize`], a few statements whatever its size: the
    /// index read for every value at once, then, for the values without a token, fresh
    /// tokens placed with one insert-if-absent per round (a token already taken, by a value
    /// or a concurrent writer, is drawn again), then their index entries with one more. The
    /// insert-if-absent on the token and on the index entry make tokens unique and one token
    /// per value under any number of concurrent writers, exactly as one compare-and-swap per
    /// value did; equal values of one batch share the first one's token.
    fn vaulted_chunk(
        &self,
        par: &Parallel,
        f: &Field,
        values: &[&str],
        index: &Mac,
        seal: &(dyn Fn(&str, &str) -> Result<Vec<u8>> + Sync),
    ) -> Result<Vec<String>> {
        let field = f.spec.name.as_str();
        let utf8 = |b: Vec<u8>| {
            String::from_utf8(b).map_err(|_| Error::CorruptMetadata {
                what: "token index",
            })
        };
        let mut out: Vec<Option<String>> = vec![None; values.len()];
        // Consistent mode: the index entry of every value, and the existing tokens.
        let idx: Option<Vec<[u8; 32]>> = if f.spec.consistent {
            Some(par.map(values, |v| Ok(index.tag(&[field.as_bytes(), v.as_bytes()])))?)
        } else {
            None
        };
        // The positions still without a token, and for consistent mode the position whose
        // token equal values take.
        let mut first_of: Vec<usize> = (0..values.len()).collect();
        let mut todo: Vec<usize> = Vec::new();
        if let Some(idx) = &idx {
            let keys: Vec<&[u8]> = idx.iter().map(|k| &k[..]).collect();
            let found = self.store.get_many(Space::TokenIndex, &keys)?;
            let mut seen: HashMap<&[u8; 32], usize> = HashMap::new();
            for (i, tok) in found.into_iter().enumerate() {
                match tok {
                    Some(t) => out[i] = Some(utf8(t)?),
                    None => match seen.entry(&idx[i]) {
                        Entry::Occupied(e) => first_of[i] = *e.get(),
                        Entry::Vacant(e) => {
                            e.insert(i);
                            todo.push(i);
                        }
                    },
                }
            }
        } else {
            todo = (0..values.len()).collect();
        }
        // Fresh tokens, placed if absent; a taken one is drawn again.
        let mut placed: Vec<(usize, Drawn)> = Vec::with_capacity(todo.len());
        for _ in 0..MAX_ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            let drawn = par.map(&todo, |&i| -> Result<Option<Drawn>> {
                let token = generate(f, values[i])?;
                if token == values[i] {
                    return Ok(None);
                }
                let stored = seal(values[i], &token)?;
                let key = self.token_key(field, &token);
                Ok(Some(Drawn { token, key, stored }))
            })?;
            let items: Vec<(&[u8], &[u8])> = drawn
                .iter()
                .flatten()
                .map(|d| (&d.key[..], &d.stored[..]))
                .collect();
            let mut inserted = self
                .store
                .insert_absent_many_unsynced(Space::Token, &items)?
                .into_iter();
            let mut again = Vec::new();
            for (i, d) in todo.iter().zip(drawn) {
                match d {
                    Some(d) if inserted.next() == Some(true) => placed.push((*i, d)),
                    _ => again.push(*i),
                }
            }
            todo = again;
        }
        if !todo.is_empty() {
            return Err(Error::invalid(
                "field",
                "token space exhausted: too many collisions; use a larger format",
            ));
        }
        match &idx {
            None => {
                for (i, d) in placed {
                    out[i] = Some(d.token);
                }
            }
            Some(idx) => {
                let items: Vec<(&[u8], &[u8])> = placed
                    .iter()
                    .map(|(i, d)| (&idx[*i][..], d.token.as_bytes()))
                    .collect();
                let won = self
                    .store
                    .insert_absent_many_unsynced(Space::TokenIndex, &items)?;
                let mut lost = Vec::new();
                for ((i, d), won) in placed.into_iter().zip(won) {
                    if won {
                        out[i] = Some(d.token);
                    } else {
                        // Another writer tokenized the same value first: use its token, drop
                        // ours.
                        self.store.compare_and_swap_unsynced(
                            Space::Token,
                            &d.key,
                            Some(&d.stored),
                            None,
                        )?;
                        lost.push(i);
                    }
                }
                let keys: Vec<&[u8]> = lost.iter().map(|&i| &idx[i][..]).collect();
                let winners = self.store.get_many(Space::TokenIndex, &keys)?;
                for (i, winner) in lost.into_iter().zip(winners) {
                    let winner = winner.ok_or(Error::Conflict {
                        what: "token index entry vanished",
                    })?;
                    out[i] = Some(utf8(winner)?);
                }
            }
        }
        // Equal values take their first occurrence's token.
        for i in 0..out.len() {
            if out[i].is_none() {
                out[i] = out[first_of[i]].clone();
            }
        }
        out.into_iter()
            .map(|t| {
                t.ok_or(Error::Conflict {
                    what: "a value of the batch got no token",
                })
            })
            .collect()
    }

    pub(super) fn vaulted_detokenize(
        &self,
        par: &Parallel,
        f: &Field,
        tokens: &[&str],
    ) -> Result<Vec<Result<Zeroizing<String>>>> {
        let field = f.spec.name.as_str();
        let keys = par.map(tokens, |&token| Ok(self.token_key(field, token)))?;
        let keys: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let found = self.store.get_many(Space::Token, &keys)?;
        let pairs: Vec<(&str, Option<Vec<u8>>)> = tokens.iter().copied().zip(found).collect();
        par.map(&pairs, |(token, stored)| {
            let token = *token;
            // An unknown token fails its own row; damage below fails the batch.
            let Some(stored) = stored.as_deref() else {
                return Ok(Err(invalid_token(f)));
            };
            let env = crate::stored::envelope_of(stored, "vaulted token").map_err(|_| {
                Error::CorruptMetadata {
                    what: "vaulted token",
                }
            })?;
            let env = envelope::Envelope::parse(env)?;
            let plain = self.keys.open(&env, &token_context(field, token))?;
            String::from_utf8(plain.to_vec())
                .map(|v| Ok(Zeroizing::new(v)))
                .map_err(|_| Error::CorruptMetadata {
                    what: "vaulted token",
                })
        })
    }
}
