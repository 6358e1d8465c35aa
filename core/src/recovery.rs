//! M-of-N key recovery: the vault master key (VMK) split into recovery shares with Shamir's
//! secret sharing over GF(256), so that any M custodians together can reset a lost root key.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, recovery::{self, RecoveryShare}};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! vault.owner().put("notes", "1", b"note", None)?;
//! let shares: Vec<String> = vault
//!     .recovery_split(5, 3)?
//!     .iter()
//!     .map(|s| s.to_text().to_string())
//!     .collect();                                // one small text file per custodian
//! drop(vault);                                   // ... the root key file is lost ...
//! let three: Vec<RecoveryShare> = [&shares[0], &shares[2], &shares[4]]
//!     .iter()
//!     .map(|t| RecoveryShare::parse(t))
//!     .collect::<Result<_, _>>()?;
//! let new_root = KeyFile::from_key(Key32::random()?);
//! recovery::recovery_unlock(dir.path().join("v"), &three, &new_root)?;
//! let vault = Vault::open(dir.path().join("v"), &new_root)?;
//! assert_eq!(&*vault.owner().get("notes", "1")?.expect("stored"), b"note");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Share file (version 1)
//! ```text
//! phivault recovery share v1
//! vault: <vault id, 32 hex digits>
//! split: <split id, 16 hex digits: shares of one split belong together>
//! share: <index> of <count>, threshold <M>
//! data: <33 bytes in hex: x coordinate, then 32 y bytes>
//! check: <16 hex digits>
//! ```
//! `check` is the first 8 bytes of SHA-256 over `"PVR1" ‖ vault id ‖ split id ‖ index ‖ count
//! ‖ threshold ‖ data`: it catches a mistyped or damaged share and names it as such. It is not
//! a secret and not a MAC; a forged share is caught when the reconstructed key fails to
//! unseal the vault's keyrings.
//!
//! # Security notes
//! - The shares split the VMK, not the root key: they survive root rotations (a split stays
//!   valid until the vault is gone), and they also open backups of the vault. Re-split and
//!   destroy old shares when a custodian leaves.
//! - Fewer than M shares carry no information about the VMK (Shamir's scheme is perfectly
//!   hiding); `recovery_unlock` refuses them before combining anything.
//! - Field arithmetic is `vsss-rs`'s constant-time GF(256), with coefficients from the
//!   operating system's CSPRNG (through `ring`).
//! - Each share is a secret as strong as the root key once M of them meet: store each with a
//!   different custodian, offline.

use crate::root::{RootKey, RootKeySource, RootParams};
use crate::secret::{Key32, SecretBytes};
use crate::vault::Vault;
use crate::{Error, Result};
use std::path::Path;
use zeroize::Zeroizing;

const SHARE_HEADER: &str = "phivault recovery share v1";
const CHECK_LABEL: &[u8] = b"PVR1";
const DATA_LEN: usize = 33;

/// One recovery share: which vault and split it belongs to, its index, the threshold, and the
/// share bytes. `Debug` shows no share bytes.
#[derive(Clone)]
pub struct RecoveryShare {
    vault_id: [u8; 16],
    split_id: [u8; 8],
    index: u8,
    count: u8,
    threshold: u8,
    data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for RecoveryShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryShare")
            .field("vault_id", &hex::encode(self.vault_id))
            .field("index", &self.index)
            .field("count", &self.count)
            .field("threshold", &self.threshold)
            .field("data", &"[redacted]")
            .finish()
    }
}

fn unhex(s: &str, what: &'static str) -> Result<Zeroizing<Vec<u8>>> {
    let clean: Zeroizing<String> = Zeroizing::new(
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    );
    if !clean.len().is_multiple_of(2) {
        return Err(Error::InvalidShare { why: what });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(clean.len() / 2));
    for i in (0..clean.len()).step_by(2) {
        let b = clean
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or(Error::InvalidShare { why: what })?;
        out.push(b);
    }
    Ok(out)
}

impl RecoveryShare {
    /// The share's index (1 to 255).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// How many shares were made.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// How many shares are needed.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The vault the share belongs to, hex.
    pub fn vault_id_hex(&self) -> String {
        hex::encode(self.vault_id)
    }

    fn checksum(&self) -> [u8; 8] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(CHECK_LABEL);
        ctx.update(&self.vault_id);
        ctx.update(&self.split_id);
        ctx.update(&[self.index, self.count, self.threshold]);
        ctx.update(&self.data);
        let mut out = [0u8; 8];
        out.copy_from_slice(&ctx.finish().as_ref()[..8]);
        out
    }

    /// The share as a small text file (see the module docs). A secret: zeroized on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{SHARE_HEADER}\nvault: {}\nsplit: {}\nshare: {} of {}, threshold {}\ndata: {}\ncheck: {}\n",
            hex::encode(self.vault_id),
            hex::encode(self.split_id),
            self.index,
            self.count,
            self.threshold,
            Zeroizing::new(hex::encode(&self.data)).as_str(),
            hex::encode(self.checksum()),
        ))
    }

    /// Parses a share file. A malformed share or one whose checksum does not match (a typo, a
    /// damaged file) is refused with [`Error::InvalidShare`]; the message never echoes share
    /// bytes.
    pub fn parse(text: &str) -> Result<RecoveryShare> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(SHARE_HEADER) {
            return Err(Error::InvalidShare {
                why: "not a phivault recovery share (v1)",
            });
        }
        let mut field = |name: &str, why: &'static str| -> Result<&str> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(':'))
                .map(str::trim)
                .ok_or(Error::InvalidShare { why })
        };
        let vault = field("vault", "missing or misplaced 'vault:' line")?;
        let split = field("split", "missing or misplaced 'split:' line")?;
        let share = field("share", "missing or misplaced 'share:' line")?;
        let data = field("data", "missing or misplaced 'data:' line")?;
        let check = field("check", "missing or misplaced 'check:' line")?;
        if lines.next().is_some() {
            return Err(Error::InvalidShare {
                why: "unexpected lines after 'check:'",
            });
        }
        let vault_id: [u8; 16] = unhex(vault, "vault id is not hex")?
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidShare {
                why: "vault id is not 32 hex digits",
            })?;
        let split_id: [u8; 8] = unhex(split, "split id is not hex")?
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidShare {
                why: "split id is not 16 hex digits",
            })?;
        let (index, count, threshold) = parse_share_line(share).ok_or(Error::InvalidShare {
            why: "'share:' line is not 'I of N, threshold M'",
        })?;
        let data = unhex(data, "data is not hex")?;
        let check = unhex(check, "check is not hex")?;
        let s = RecoveryShare {
            vault_id,
            split_id,
            index,
            count,
            threshold,
            data,
        };
        if check.len() != 8 || !crate::secret::ct_eq(&check, &s.checksum()) {
            return Err(Error::InvalidShare {
                why: "checksum mismatch (mistyped or damaged share)",
            });
        }
        if s.data.len() != DATA_LEN
            || s.data[0] != index
            || index == 0
            || index > count
            || threshold < 2
            || threshold > count
        {
            return Err(Error::InvalidShare {
                why: "share fields are inconsistent",
            });
        }
        Ok(s)
    }
}

fn parse_share_line(s: &str) -> Option<(u8, u8, u8)> {
    let (index, rest) = s.split_once(" of ")?;
    let (count, rest) = rest.split_once(',')?;
    let threshold = rest.trim().strip_prefix("threshold")?.trim();
    Some((
        index.trim().parse().ok()?,
        count.trim().parse().ok()?,
        threshold.parse().ok()?,
    ))
}

/// A CSPRNG for `vsss-rs` that draws from `ring` (the operating system's generator). `rand_core`
/// wants an infallible generator: a failure is remembered and the caller discards the output.
struct RingRng {
    failed: bool,
}

impl rand_core::TryRng for RingRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        self.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for RingRng {}

impl RingRng {
    fn fill(&mut self, dst: &mut [u8]) {
        if crate::random::fill_random(dst).is_err() {
            self.failed = true;
        }
    }
}

impl Vault {
    /// Splits the vault master key into `shares` recovery shares of which any `threshold`
    /// recover it (2 ≤ threshold ≤ shares ≤ 255). Audited before the shares exist. Hand each
    /// share to a different custodian.
    pub fn recovery_split(&self, shares: u8, threshold: u8) -> Result<Vec<RecoveryShare>> {
        if threshold < 2 || threshold > shares {
            return Err(Error::invalid(
                "recovery threshold",
                "must be at least 2 and at most the number of shares",
            ));
        }
        self.audit.admin(
            crate::audit::Action::Admin,
            "root",
            None,
            format!("recovery split: {shares} shares, threshold {threshold}"),
        )?;
        let mut split_id = [0u8; 8];
        crate::random::fill_random(&mut split_id)?;
        let mut rng = RingRng { failed: false };
        let raw = self.keys.with_vmk(|vmk| {
            vsss_rs::Gf256::split_array(
                usize::from(threshold),
                usize::from(shares),
                vmk.expose(),
                &mut rng,
            )
            .map_err(|_| Error::Crypto("secret sharing split"))
        })?;
        let raw: Vec<Zeroizing<Vec<u8>>> = raw.into_iter().map(Zeroizing::new).collect();
        if rng.failed {
            return Err(Error::Crypto("system random number generator failed"));
        }
        raw.into_iter()
            .map(|data| {
                if data.len() != DATA_LEN || data[0] == 0 {
                    return Err(Error::Crypto("secret sharing split"));
                }
                Ok(RecoveryShare {
                    vault_id: *self.keys.vault_id(),
                    split_id,
                    index: data[0],
                    count: shares,
                    threshold,
                    data,
                })
            })
            .collect()
    }
}

/// A root key source that already holds the VMK (reconstructed from shares): it opens a vault
/// without its root key and cannot wrap anything.
struct RecoveredVmk(Key32);

struct RecoveredKey(Key32);

impl RootKey for RecoveredKey {
    fn wrap(&self, _aad: &[u8], _secret: &[u8]) -> Result<Vec<u8>> {
        Err(Error::Crypto("a recovered key cannot wrap"))
    }

    fn unwrap(&self, _aad: &[u8], _wrapped: &[u8]) -> Result<SecretBytes> {
        Ok(SecretBytes::new(self.0.expose().to_vec()))
    }
}

impl RootKeySource for RecoveredVmk {
    fn kind(&self) -> &'static str {
        "recovery shares"
    }

    fn new_params(&self) -> Result<RootParams> {
        Err(Error::invalid(
            "root key",
            "recovery shares cannot create a vault",
        ))
    }

    fn unlock(&self, _params: &RootParams) -> Result<Box<dyn RootKey>> {
        Ok(Box::new(RecoveredKey(self.0.clone())))
    }
}

/// Checks `shares` among themselves: same vault, same split, agreeing parameters, distinct
/// indices, at least the threshold.
fn check_shares(shares: &[RecoveryShare]) -> Result<()> {
    let first = shares.first().ok_or(Error::NotEnoughShares {
        given: 0,
        threshold: 2,
    })?;
    for s in shares {
        if s.vault_id != first.vault_id {
            return Err(Error::SharesMismatch {
                why: "the shares name different vaults",
            });
        }
        if s.split_id != first.split_id || s.count != first.count || s.threshold != first.threshold
        {
            return Err(Error::SharesMismatch {
                why: "the shares come from different splits",
            });
        }
    }
    let mut indices: Vec<u8> = shares.iter().map(|s| s.index).collect();
    indices.sort_unstable();
    indices.dedup();
    if indices.len() < usize::from(first.threshold) {
        return Err(Error::NotEnoughShares {
            given: indices.len(),
            threshold: usize::from(first.threshold),
        });
    }
    Ok(())
}

/// Resets the root key of the vault in directory `dir` with at least M recovery shares: the
/// VMK is reconstructed, checked against the vault (it must name this vault and unseal its
/// keyrings), and wrapped under `new_root` in a new vault header (as `rotate_root` does).
/// Fewer than M shares are refused before anything is combined. Audited in the vault's log.
pub fn recovery_unlock(
    dir: impl AsRef<Path>,
    shares: &[RecoveryShare],
    new_root: &dyn RootKeySource,
) -> Result<()> {
    let dir = dir.as_ref();
    let header_path = dir.join(crate::keys::header::HEADER_FILE);
    let header = std::fs::read(&header_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::VaultNotFound {
                path: dir.to_path_buf(),
            }
        } else {
            Error::io(format!("reading {}", header_path.display()), e)
        }
    })?;
    let vault_id = Vault::header_vault_id(&header)?;
    if let Some(s) = shares.iter().find(|s| s.vault_id != vault_id) {
        return Err(Error::ShareFromAnotherVault {
            index: s.index,
            share_vault: hex::encode(s.vault_id),
            vault: hex::encode(vault_id),
        });
    }
    check_shares(shares)?;
    // Distinct shares only (a share given twice adds nothing).
    let mut seen = std::collections::HashSet::new();
    let raw: Vec<Vec<u8>> = shares
        .iter()
        .filter(|s| seen.insert(s.index))
        .map(|s| s.data.to_vec())
        .collect();
    let raw: Vec<Zeroizing<Vec<u8>>> = raw.into_iter().map(Zeroizing::new).collect();
    let plain: Vec<Vec<u8>> = raw.iter().map(|r| r.to_vec()).collect();
    let combined = vsss_rs::Gf256::combine_array(&plain);
    drop(plain.into_iter().map(Zeroizing::new).collect::<Vec<_>>());
    let vmk = Zeroizing::new(combined.map_err(|_| Error::SharesMismatch {
        why: "the shares cannot be combined",
    })?);
    let vmk = Key32::from_slice(&vmk).map_err(|_| Error::SharesMismatch {
        why: "the shares cannot be combined",
    })?;
    let vault = match Vault::open(dir, &RecoveredVmk(vmk.clone())) {
        Ok(v) => v,
        // The commit anchor is MACed under a key derived from the VMK: with a wrong VMK it
        // does not authenticate. Tell forged shares from a damaged anchor by the keyrings,
        // read from the store without the anchor check.
        Err(e @ Error::StoreCorrupted { .. }) => {
            let header = std::fs::read(dir.join(crate::keys::header::HEADER_FILE))
                .map_err(|io| Error::io("reading the vault header", io))?;
            let store = crate::store::SledStore::open(
                &dir.join(crate::vault::STORE_DIR),
                crate::store::Durability::Immediate,
            )?;
            let shares_ok = Vault::over_store(Box::new(store), &header, &RecoveredVmk(vmk))
                .is_ok_and(|v| v.keyrings().is_ok());
            return Err(if shares_ok {
                e
            } else {
                Error::SharesMismatch {
                    why: "the shares do not reconstruct this vault's key (a share is forged or damaged)",
                }
            });
        }
        Err(e) => return Err(e),
    };
    if vault.keyrings().is_err() {
        return Err(Error::SharesMismatch {
            why: "the shares do not reconstruct this vault's key (a share is forged or damaged)",
        });
    }
    let mut used: Vec<u8> = seen.into_iter().collect();
    used.sort_unstable();
    let used: Vec<String> = used.iter().map(u8::to_string).collect();
    vault.audit.admin(
        crate::audit::Action::Admin,
        "root",
        None,
        format!("recovery unlock with shares {}", used.join(",")),
    )?;
    vault.rotate_root(new_root)?;
    vault.store.flush()?;
    Ok(())
}
