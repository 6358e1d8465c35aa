//! Fuzz targets: one function per parser and foreign entry point, each asserting the property
//! it is for. `fuzz/` (cargo-fuzz, its own workspace) calls them from libFuzzer, and
//! `core/tests/fuzz_replay.rs` replays every committed seed and crash-regression file through
//! the same functions on stable, so a fixed crash stays fixed.
//!
//! Not a public API: hidden from the docs, and it may change with every release. Every
//! function takes arbitrary bytes and panics only when the property it checks is violated.
//!
//! Inputs are structure-aware where raw bytes would never get past the first check: a small
//! cursor ([`Input`]) reads choices, lengths and strings from the fuzzer's bytes, so the
//! targets that tamper with envelopes, keyrings, subject keys and records start from valid
//! ones made in this process and apply the fuzzer's mutations to them. (A hand-written cursor
//! rather than the `arbitrary` crate keeps `core` free of a fuzzing-only dependency; the
//! shapes read here are all small.)
//!
//! | target | entry point | property |
//! |---|---|---|
//! | `envelope_binary` | [`Envelope::parse`], [`envelope::open`], `Session::decrypt` | no panic; both backends agree; an envelope that opens has a text form that round-trips and every probed bit flip, truncation and extension of it is rejected |
//! | `envelope_text` | [`envelope::from_text`], `Session::decrypt` | no panic; accepted text is exactly the canonical text form of the binary it decodes to |
//! | `envelope_tamper` | seal/open of both suites and both backends | round trip; backends write identical bytes; any change of bytes, context or key is rejected |
//! | `rewrap` | [`envelope::rewrap`], `Vault::rewrap_envelope` | rewrap accepts only an authentic key part and never turns a rejected envelope into an accepted one or changes its plaintext |
//! | `aead_differential` | every [`Backend`] built in (ring, RustCrypto, AWS-LC), in place and out of place | byte-for-byte equal seals, equal answers on arbitrary ciphertexts |
//! | `vault_header` | vault header as read from the store | no panic; a header that opens is the original and gives the original keys |
//! | `metadata_records` | keyring, subject key, field, erasure and record values from the store; key files | no panic; a changed sealed value is never accepted; decoders round-trip |
//! | `detokenize` | detokenize of every token kind, views | no panic; a detokenized value tokenizes back to the token; vaulted tokens resolve only to their own values |
//! | `ff1_roundtrip` | FF1 tokenize/detokenize, any alphabet | decrypt(encrypt(x)) == x, format kept |
//! | `ff1_differential` | phivault's FF1 (`tokens/ff1.rs`) against the `fpe` crate: any key length, radix 2 to 2^16, tweak and numerals | equal ciphertexts; decryption gives the numerals back; invalid inputs refused by both |
//! | `field_schema_toml` | [`FieldSpec::from_toml`] | no panic; accepted schemas validate and round-trip through TOML |
//! | `policy_toml` | `Policy::from_toml`, `Policy::decide` | accepted policies validate and round-trip through TOML and the store; an unnamed principal is denied everything; a plaintext grant implies masked and redacted; break-the-glass needs a reason |
//! | `audit_log` | `audit::decode_entry`, `Vault::audit_verify` | decoded entries round-trip; the log verifies if and only if it is unchanged |
//! | `pg_url` | the PostgreSQL store's URL reading (`store::pg_connect`: sslmode, sslrootcert, pool size, password file) | no panic; an error never contains the URL's password |
//! | `csv_tokenize` | [`crate::csv_tokenize::tokenize_csv`] | same header, rows and row lengths out as in; unmapped cells unchanged, empty cells empty; reversible tokens detokenize to their cells, every mapping consistent; errors name the reader's row and kind or the missing column, and contain no cell of the input |
//!
//! The C API target, `c_api`, lives in `phivault-ffi` (`ffi/src/fuzzing.rs`), which links the C
//! functions; see [`OTHER_CRATES`].

use crate::backend::{Backend, NONCE_LEN, TAG_LEN};
use crate::context::Context;
use crate::csv_tokenize::CsvErrorKind;
use crate::envelope::{self, Envelope, Kek, SUBJECT_ID_LEN, SealRandomness};
use crate::keyring::KeyringRecord;
use crate::root::KeyFile;
use crate::secret::Key32;
use crate::store::MemoryStore;
use crate::store::{Space, Store, WriteOp};
use crate::tokens::{FieldSpec, TokenKind, View};
use crate::{Error, Vault};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A fuzz target: takes the fuzzer's bytes, panics only on a violated property.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/seeds/<name>/` name it.
pub const TARGETS: &[(&str, Target)] = &[
    ("aead_differential", aead_differential),
    ("audit_log", audit_log),
    ("csv_tokenize", csv_tokenize),
    ("deid_document", deid_document),
    ("deid_path", deid_path),
    ("deid_schema", deid_schema),
    ("detokenize", detokenize),
    ("envelope_binary", envelope_binary),
    ("envelope_tamper", envelope_tamper),
    ("envelope_text", envelope_text),
    ("ff1_differential", ff1_differential),
    ("ff1_roundtrip", ff1_roundtrip),
    ("field_schema_toml", field_schema_toml),
    ("job_spool", job_spool),
    ("metadata_records", metadata_records),
    ("pg_url", pg_url),
    ("policy_toml", policy_toml),
    ("rewrap", rewrap),
    ("vault_header", vault_header),
];

/// Targets whose functions live in another crate, and that crate: `fuzz/seeds/<name>/` and
/// `fuzz/regressions/<name>/` belong to its replay test, not to `core/tests/fuzz_replay.rs`.
pub const OTHER_CRATES: &[(&str, &str)] = &[("c_api", "phivault-ffi")];

// ---- input cursor ------------------------------------------------------------------------

/// A cursor over the fuzzer's bytes that never fails: past the end it reads zeros.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    /// Exactly `N` bytes, zero-padded at the end.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let b = self.bytes(N);
        out[..b.len()].copy_from_slice(b);
        out
    }

    /// A byte string of at most `max` bytes, its length read first (one byte).
    pub fn short(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u8()) % (max + 1);
        self.bytes(n)
    }

    /// A string of at most `max` bytes (invalid UTF-8 replaced).
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.short(max)).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Applies up to 4 mutations read from `input` to a copy of `original`: bit flips, byte
/// sets, truncations, insertions, deletions, appends. May leave it unchanged.
fn mutate(input: &mut Input<'_>, original: &[u8]) -> Vec<u8> {
    let mut out = original.to_vec();
    let ops = input.u8() % 5;
    for _ in 0..ops {
        let op = input.u8();
        let pos = usize::from(input.u16());
        let val = input.u8();
        let at = |len: usize| if len == 0 { 0 } else { pos % len };
        match op % 6 {
            0 if !out.is_empty() => {
                let i = at(out.len());
                out[i] ^= 1 << (val % 8);
            }
            1 if !out.is_empty() => {
                let i = at(out.len());
                out[i] = val;
            }
            2 => out.truncate(at(out.len() + 1)),
            3 => out.insert(at(out.len() + 1), val),
            4 if !out.is_empty() => {
                out.remove(at(out.len()));
            }
            5 => out.extend_from_slice(input.short(8)),
            _ => {}
        }
    }
    out
}

// ---- the fixture's store -------------------------------------------------------------------

/// When the fixture's store outgrows this many entries (audit entries and tokens of a long
/// fuzzing run), it is reset to its setup-time state between two inputs, so memory stays
/// bounded. Only between two inputs ([`between_inputs`]): a reset in the middle of an operation
/// would drop entries it has just written (a vaulted token without its entry, found by
/// `csv_tokenize`) and fail a property for a reason that is the fixture's, not phivault's.
const TRIM_AT: usize = 20_000;

// ---- fixed keys, contexts and a fixed vault ------------------------------------------------

/// The KEK of the frozen testkit (`core/tests/testkit`): bytes 00..1f.
const FIXED_KEK: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
/// A second KEK, for rewraps.
const OTHER_KEK: [u8; 32] = [0x5a; 32];
/// Root key of the fixed vault.
const ROOT_KEY: [u8; 32] = [0x42; 32];
/// Where the vault header lives in a store (docs/FORMAT.md).
const HEADER_KEY: &[u8] = b"header";
/// The subject of the fixed vault.
const SUBJECT: &str = "patient-1";

fn kek(version: u32, key: &[u8; 32], backend: Backend) -> Option<Kek> {
    Kek::new(version, Key32::from_slice(key).ok()?, backend).ok()
}

/// The contexts the frozen testkit and the seeds use.
fn contexts() -> [Context; 4] {
    [
        Context::new(),
        Context::new().with("record", "4711").with("field", "note"),
        Context::new().with("field", "ssn"),
        Context::new().with("k", "v"),
    ]
}

struct Known {
    field: &'static str,
    token: String,
    value: String,
    subject: bool,
}

struct Fixture {
    vault: Vault,
    /// The fixed vault's store (trimmed between inputs).
    store: MemoryStore,
    /// A copy of the store right after setup.
    snapshot: MemoryStore,
    vault_id: String,
    root: KeyFile,
    canary: (Vec<u8>, Context, Vec<u8>),
    subject_env: (Vec<u8>, Context, Vec<u8>),
    record: (&'static str, &'static str, Vec<u8>),
    tokens: Vec<Known>,
}

/// Fields of the fixed vault: the presets and three defined ones.
const FIELDS: &[&str] = &[
    "ssn",
    "phone",
    "account",
    "license",
    "device_id",
    "mrn",
    "email",
    "name",
    "zip",
    "dob",
    "pseudonym",
    "fz-custom",
    "fz-random",
    "fz-subject-ff1",
];

fn field_needs_subject(field: &str) -> bool {
    matches!(field, "dob" | "fz-subject-ff1")
}

fn build_fixture() -> Fixture {
    let store = MemoryStore::new();
    let root = KeyFile::from_key(Key32::from_slice(&ROOT_KEY).expect("32 bytes"));
    let vault =
        Vault::create_in(Box::new(store.clone()), &root, Backend::Ring).expect("fixture vault");
    let mut custom = FieldSpec::new("fz-custom", TokenKind::Ff1);
    custom.alphabet = "custom:0123456789abcdefXYZ".into();
    custom.mask_keep_first = 2;
    vault.define_field(custom).expect("fz-custom");
    let mut random = FieldSpec::new("fz-random", TokenKind::Vaulted);
    random.alphabet = "alphanumeric".into();
    random.consistent = false;
    vault.define_field(random).expect("fz-random");
    let mut subj = FieldSpec::new("fz-subject-ff1", TokenKind::Ff1);
    subj.subject = true;
    subj.mask_keep_last = 4;
    vault.define_field(subj).expect("fz-subject-ff1");

    let samples: &[(&'static str, &str)] = &[
        ("ssn", "900-12-3456"),
        ("phone", "+1 (555) 010-9999"),
        ("account", "ACC-77G1X9"),
        ("license", "D1234-5678-90"),
        ("device_id", "dev-00af93c2"),
        ("mrn", "MRN0012345"),
        ("mrn", "MRN0099999"),
        ("email", "ada.quist@example.org"),
        ("name", "Ada Quist"),
        ("zip", "02139"),
        ("fz-custom", "deadbeef-XYZ"),
        ("fz-random", "ABC123456"),
        ("fz-random", "ABC123456"),
        ("dob", "1980-02-29"),
        ("fz-subject-ff1", "555-010-9999"),
    ];
    let mut tokens = Vec::new();
    for &(field, value) in samples {
        let subject = field_needs_subject(field);
        let token = if subject {
            vault.owner().tokenize_for_subject(field, value, SUBJECT)
        } else {
            vault.owner().tokenize(field, value)
        }
        .expect("fixture token");
        tokens.push(Known {
            field,
            token,
            value: value.to_owned(),
            subject,
        });
    }
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let canary_pt = b"HbA1c 9.2%".to_vec();
    let canary = vault.owner().encrypt(&canary_pt, &ctx).expect("canary");
    let subject_pt = b"subject note".to_vec();
    let subject_env = vault
        .owner()
        .encrypt_for_subject(&subject_pt, &ctx, SUBJECT, &crate::EncryptOptions::new())
        .expect("subject envelope");
    let record_value = b"Patient reports chest pain".to_vec();
    vault
        .owner()
        .put("notes", "MRN-4711", &record_value, None)
        .expect("record");
    let snapshot = store.deep_copy();
    assert!(
        matches!(snapshot.get(Space::Meta, HEADER_KEY), Ok(Some(_))),
        "the header key of docs/FORMAT.md"
    );
    Fixture {
        store: store.clone(),
        vault_id: vault.vault_id_hex(),
        vault,
        snapshot,
        root,
        canary: (canary, ctx.clone(), canary_pt),
        subject_env: (subject_env, ctx, subject_pt),
        record: ("notes", "MRN-4711", record_value),
        tokens,
    }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build_fixture)
}

/// Called first by every target: keeps the shared fixture's store bounded, at a point where no
/// operation is under way.
fn between_inputs() {
    if let Some(fx) = FIXTURE.get()
        && fx.store.len() > TRIM_AT
    {
        fx.store.reset_to(&fx.snapshot);
    }
}

impl Fixture {
    /// Opens a fresh vault over a copy of the setup-time store with `key` set to `value`
    /// (removed when `None`).
    fn open_changed(
        &self,
        space: Space,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> crate::Result<Vault> {
        let store = self.snapshot.deep_copy();
        let key = key.to_vec();
        store.write(vec![match value {
            Some(value) => WriteOp::Put { space, key, value },
            None => WriteOp::Delete { space, key },
        }])?;
        Vault::open_in(Box::new(store), &self.root, Backend::Ring)
    }

    /// Entries of `space` in the setup-time store.
    fn entries(&self, space: Space) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.snapshot
            .scan(space, &[], None, usize::MAX)
            .unwrap_or_default()
    }

    /// Whether `pt` is a plaintext this vault encrypted during setup.
    fn is_known_plaintext(&self, pt: &[u8]) -> bool {
        pt == self.canary.2.as_slice() || pt == self.subject_env.2.as_slice()
    }
}

// ---- envelopes -----------------------------------------------------------------------------

fn open_both(env: &Envelope<'_>, key: &[u8; 32], ctx: &Context) -> Option<Vec<u8>> {
    let version = env.key_version();
    let (Some(kr), Some(kc)) = (
        kek(version, key, Backend::Ring),
        kek(version, key, Backend::RustCrypto),
    ) else {
        return None;
    };
    let a = envelope::open(Backend::Ring, env, &kr, ctx).map(|p| p.expose().to_vec());
    let b = envelope::open(Backend::RustCrypto, env, &kc, ctx).map(|p| p.expose().to_vec());
    assert_eq!(a.is_ok(), b.is_ok(), "backends disagree on an envelope");
    // Every other backend, and `open_into` over a dirty reused buffer, give the same answer.
    for &backend in Backend::AVAILABLE {
        let Some(k) = kek(version, key, backend) else {
            continue;
        };
        let mut buf = vec![0xA5; 19];
        let r = envelope::open_into(backend, env, &k, ctx, &mut buf);
        assert_eq!(r.is_ok(), a.is_ok(), "{backend:?} open_into disagrees");
        match &a {
            Ok(pt) => assert_eq!(&buf, pt, "{backend:?} open_into plaintext"),
            Err(_) => assert!(buf.is_empty(), "a failed open_into empties the buffer"),
        }
        let c = envelope::open(backend, env, &k, ctx).map(|p| p.expose().to_vec());
        assert_eq!(
            c.ok(),
            a.as_ref().ok().cloned(),
            "{backend:?} open disagrees"
        );
    }
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "backends decrypt to different plaintexts");
            Some(a)
        }
        (Err(e), _) => {
            assert!(
                matches!(e, Error::AuthenticationFailed),
                "open fails only as AuthenticationFailed"
            );
            None
        }
        _ => None,
    }
}

fn opens(bytes: &[u8], key: &[u8; 32], ctx: &Context) -> bool {
    match Envelope::parse(bytes) {
        Ok(env) => kek(env.key_version(), key, Backend::Ring)
            .is_some_and(|k| envelope::open(Backend::Ring, &env, &k, ctx).is_ok()),
        Err(_) => false,
    }
}

/// An envelope that opened: every probed single-bit flip, a truncation and an extension must
/// be rejected.
fn assert_tamper_rejected(bytes: &[u8], key: &[u8; 32], ctx: &Context) {
    let n = bytes.len();
    let step = (n / 96).max(1);
    let mut i = 0;
    while i < n {
        for bit in [0u8, 7] {
            let mut bad = bytes.to_vec();
            bad[i] ^= 1 << bit;
            assert!(!opens(&bad, key, ctx), "a flipped bit was accepted");
        }
        i += if i < 80 { 1 } else { step };
    }
    assert!(
        !opens(&bytes[..n - 1], key, ctx),
        "a truncation was accepted"
    );
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(!opens(&longer, key, ctx), "an extension was accepted");
}

fn check_binary_envelope(data: &[u8]) {
    let Ok(env) = Envelope::parse(data) else {
        assert!(envelope::to_text(data).is_err());
        return;
    };
    assert!(envelope::check_keyring_name(env.keyring()).is_ok());
    assert!(env.key_version() >= 1);
    assert_eq!(env.as_bytes(), data);
    assert_eq!(
        env.subject_key_id()
            .map(<[u8]>::len)
            .unwrap_or(SUBJECT_ID_LEN),
        SUBJECT_ID_LEN
    );
    let text = envelope::to_text(data).expect("a parsed envelope has a text form");
    assert!(envelope::is_text(text.as_bytes()));
    assert_eq!(
        envelope::from_text(&text).expect("own text form"),
        data,
        "text form round trip"
    );
    for ctx in contexts() {
        if let Some(pt) = open_both(&env, &FIXED_KEK, &ctx) {
            assert_eq!(pt.len(), env.plaintext_len());
            assert_tamper_rejected(data, &FIXED_KEK, &ctx);
        }
    }
}

fn check_vault_decrypt(data: &[u8]) {
    let fx = fixture();
    let ctx = &fx.canary.1;
    if let Ok(pt) = fx.vault.owner().decrypt(data, ctx) {
        assert!(
            fx.is_known_plaintext(&pt[..]),
            "the vault decrypted something it never encrypted"
        );
        assert_ne!(
            &pt[..],
            &fx.record.2[..],
            "the envelope API opened a record"
        );
    }
    // Reserved contexts (records, vaulted tokens) never open through the envelope API, and
    // the vault's own record envelope never opens under any caller context (issue 16).
    let (c, id, _) = &fx.record;
    let reserved = [
        Context::new()
            .with("phivault.collection", *c)
            .with("phivault.id", *id),
        Context::new()
            .with("phivault.field", "fz-random")
            .with("phivault.token", "x"),
    ];
    for r in &reserved {
        assert!(
            fx.vault.owner().decrypt(data, r).is_err(),
            "a reserved context was accepted by decrypt"
        );
    }
}

/// Binary envelope: parse, then open with the testkit KEK under the seed contexts with both
/// backends; and the vault's decrypt path (keyring and subject-key lookups).
pub fn envelope_binary(data: &[u8]) {
    between_inputs();
    check_binary_envelope(data);
    check_vault_decrypt(data);
}

/// Text envelope (`pv1:<keyring>:<version>:<base64url>`): decode, and the vault's decrypt.
pub fn envelope_text(data: &[u8]) {
    between_inputs();
    check_vault_decrypt(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bin) = envelope::from_text(text) {
        assert!(envelope::is_text(data));
        let canonical = envelope::to_text(&bin).expect("decoded text parses");
        assert_eq!(
            canonical,
            text.trim_end_matches(['\n', '\r']),
            "accepted text is not the canonical form"
        );
        check_binary_envelope(&bin);
    }
}

const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

fn keyring_name(input: &mut Input<'_>) -> String {
    let raw = input.short(63);
    if raw.is_empty() {
        return "default".into();
    }
    raw.iter()
        .map(|b| char::from(NAME_CHARS[usize::from(*b) % NAME_CHARS.len()]))
        .collect()
}

fn context_of(input: &mut Input<'_>) -> Context {
    let mut ctx = Context::new();
    for _ in 0..input.u8() % 4 {
        let k = input.string(12);
        let v = input.string(24);
        ctx.push(k, v);
    }
    ctx
}

/// A valid envelope built from `input`: (bytes, context, plaintext, kek key, version).
struct Sealed {
    bytes: Vec<u8>,
    ctx: Context,
    pt: Vec<u8>,
    key: [u8; 32],
    version: u32,
    subject: bool,
}

fn seal_from(input: &mut Input<'_>, allow_siv: bool) -> Option<Sealed> {
    let mode = input.u8();
    let version = input.u32().max(1);
    let key: [u8; 32] = input.array();
    let keyring = keyring_name(input);
    let ctx = context_of(input);
    let rnd: [u8; 56] = input.array();
    let pt = input.short(255).to_vec();
    let subject_id: [u8; SUBJECT_ID_LEN] = input.array();
    let siv = allow_siv && mode % 3 == 2;
    let subject = mode % 3 == 1;
    let ring = kek(version, &key, Backend::Ring)?;
    if ctx.validate().is_err() {
        assert!(envelope::seal(Backend::Ring, &keyring, &ring, &pt, &ctx).is_err());
        return None;
    }
    let bytes = if siv {
        let a = envelope::seal_deterministic(&keyring, &ring, &pt, &ctx).expect("seal siv");
        let b = envelope::seal_deterministic(&keyring, &ring, &pt, &ctx).expect("seal siv");
        assert_eq!(a, b, "deterministic sealing is deterministic");
        a
    } else {
        let randomness = || -> Option<SealRandomness> {
            let mut wrap_nonce = [0u8; NONCE_LEN];
            wrap_nonce.copy_from_slice(&rnd[32..44]);
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&rnd[44..56]);
            Some(SealRandomness {
                dek: Key32::from_slice(&rnd[..32]).ok()?,
                wrap_nonce,
                nonce,
            })
        };
        let sid = subject.then_some(&subject_id);
        let mut outs = Vec::new();
        for &backend in Backend::AVAILABLE {
            let k = kek(version, &key, backend)?;
            outs.push(
                envelope::seal_with(
                    backend,
                    &keyring,
                    sid,
                    envelope::Domain::Caller,
                    &k,
                    &pt,
                    &ctx,
                    randomness()?,
                )
                .expect("seal"),
            );
        }
        assert_eq!(outs[0], outs[1], "backends seal to different bytes");
        outs.swap_remove(0)
    };
    Some(Sealed {
        bytes,
        ctx,
        pt,
        key,
        version,
        subject,
    })
}

/// Structure-aware tampering: seal a valid envelope (either suite, with or without a subject
/// key, both backends) from the input, then mutate it; any change must be rejected, as must
/// another context, another key and another key version.
pub fn envelope_tamper(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    let Some(s) = seal_from(&mut input, true) else {
        return;
    };
    let env = Envelope::parse(&s.bytes).expect("own envelope parses");
    assert_eq!(env.key_version(), s.version);
    assert_eq!(env.subject_key_id().is_some(), s.subject);
    assert_eq!(
        open_both(&env, &s.key, &s.ctx).as_deref(),
        Some(s.pt.as_slice()),
        "round trip"
    );
    let mutated = mutate(&mut input, &s.bytes);
    if mutated != s.bytes {
        assert!(
            !opens(&mutated, &s.key, &s.ctx),
            "a tampered envelope was accepted"
        );
        if let Ok(e) = Envelope::parse(&mutated) {
            assert!(open_both(&e, &s.key, &s.ctx).is_none());
        }
    }
    let mut other_ctx = s.ctx.clone();
    other_ctx.push(input.string(8) + "\u{1}", input.string(8));
    assert!(
        !opens(&s.bytes, &s.key, &other_ctx),
        "another context was accepted"
    );
    let mut other_key = s.key;
    other_key[usize::from(input.u8()) % 32] ^= 1 << (input.u8() % 8);
    assert!(
        !opens(&s.bytes, &other_key, &s.ctx),
        "another key was accepted"
    );
    if let Some(k) = kek(s.version.wrapping_add(1).max(1), &s.key, Backend::Ring)
        && k.version() != s.version
    {
        assert!(envelope::open(Backend::Ring, &env, &k, &s.ctx).is_err());
    }
}

/// Rewrap. Structure-aware (even first byte): a valid randomized envelope, mutated, rewrapped
/// from its KEK to another; raw (odd first byte): arbitrary bytes rewrapped from the testkit
/// KEK, and through `Vault::rewrap_envelope`. A rewrap may succeed only on an authentic key
/// part, and never changes whether or to what the envelope opens.
pub fn rewrap(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    if input.u8() % 2 == 1 {
        return rewrap_raw(input.rest());
    }
    let Some(s) = seal_from(&mut input, false) else {
        return;
    };
    let new_version = input.u32().max(1);
    let Some(old) = kek(s.version, &s.key, Backend::Ring) else {
        return;
    };
    let Some(new) = kek(new_version, &OTHER_KEK, Backend::Ring) else {
        return;
    };
    let mutated = mutate(&mut input, &s.bytes);
    let Ok(env) = Envelope::parse(&mutated) else {
        return;
    };
    let res = envelope::rewrap(&env, &old, &new);
    if mutated == s.bytes {
        assert!(res.is_ok(), "an authentic envelope was not rewrapped");
    }
    let Ok(out) = res else {
        return;
    };
    // The stable header, key version, wrapped DEK and commitment are authenticated by the
    // rewrap; only the payload nonce and body may differ from the original.
    let ks = 7 + env.keyring().len() + if s.subject { SUBJECT_ID_LEN } else { 0 };
    let ke = ks + 4 + envelope::WRAPPED_DEK_LEN;
    let commit = ke + NONCE_LEN..ke + NONCE_LEN + envelope::COMMITMENT_LEN;
    assert_eq!(
        mutated.get(..ke),
        s.bytes.get(..ke),
        "rewrap accepted a changed key part"
    );
    assert_eq!(
        mutated.get(commit.clone()),
        s.bytes.get(commit),
        "rewrap accepted a changed commitment"
    );
    assert_eq!(out.len(), mutated.len());
    assert_eq!(out.get(..ks), mutated.get(..ks));
    assert_eq!(
        out.get(ke..),
        mutated.get(ke..),
        "rewrap changed the payload"
    );
    let renv = Envelope::parse(&out).expect("rewrapped envelope parses");
    assert_eq!(renv.key_version(), new_version);
    let before = envelope::open(Backend::Ring, &env, &old, &s.ctx).map(|p| p.expose().to_vec());
    let after = envelope::open(Backend::Ring, &renv, &new, &s.ctx).map(|p| p.expose().to_vec());
    assert_eq!(
        before.ok(),
        after.ok(),
        "rewrap changed what the envelope opens to"
    );
    if new_version != s.version {
        assert!(envelope::open(Backend::Ring, &renv, &old, &s.ctx).is_err());
    }
}

fn rewrap_raw(data: &[u8]) {
    let fx = fixture();
    if let Ok(out) = fx.vault.rewrap_envelope(data) {
        let ctx = &fx.canary.1;
        let before = fx.vault.owner().decrypt(data, ctx).map(|p| p.to_vec()).ok();
        let after = fx.vault.owner().decrypt(&out, ctx).map(|p| p.to_vec()).ok();
        assert_eq!(
            before, after,
            "the vault's rewrap changed what an envelope opens to"
        );
    }
    let Ok(env) = Envelope::parse(data) else {
        return;
    };
    let Some(new_version) = env.key_version().checked_add(1) else {
        return;
    };
    let (Some(old), Some(new)) = (
        kek(env.key_version(), &FIXED_KEK, Backend::Ring),
        kek(new_version, &OTHER_KEK, Backend::Ring),
    ) else {
        return;
    };
    let Ok(out) = envelope::rewrap(&env, &old, &new) else {
        return;
    };
    assert!(
        !env.is_deterministic(),
        "a deterministic envelope was rewrapped"
    );
    let renv = Envelope::parse(&out).expect("rewrapped envelope parses");
    for ctx in contexts() {
        let before = envelope::open(Backend::Ring, &env, &old, &ctx).map(|p| p.expose().to_vec());
        let after = envelope::open(Backend::Ring, &renv, &new, &ctx).map(|p| p.expose().to_vec());
        assert_eq!(
            before.ok(),
            after.ok(),
            "rewrap changed what the envelope opens to"
        );
    }
}

/// Differential AES-256-GCM: every backend built in (`ring`, RustCrypto `aes-gcm`, AWS-LC)
/// must seal to the same bytes in place and out of place, open what they sealed in both
/// forms, refuse a flipped bit or other AAD leaving no plaintext, and agree on arbitrary
/// ciphertexts.
pub fn aead_differential(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    let key: [u8; 32] = input.array();
    let nonce: [u8; NONCE_LEN] = input.array();
    let aad = input.short(64).to_vec();
    let flip = usize::from(input.u16());
    let body = input.rest();
    let Ok(k) = Key32::from_slice(&key) else {
        return;
    };
    let keys: Vec<_> = Backend::AVAILABLE
        .iter()
        .map(|b| (*b, b.aes256gcm(&k).expect("key setup")))
        .collect();

    let mut sealed: Option<Vec<u8>> = None;
    for (backend, key) in &keys {
        let mut a = body.to_vec();
        key.seal_in_place(&nonce, &aad, &mut a).expect("seal");
        assert_eq!(a.len(), body.len() + TAG_LEN);
        let mut b = vec![0u8; body.len()];
        let tag = key.seal_to(&nonce, &aad, body, &mut b).expect("seal_to");
        b.extend_from_slice(&tag);
        assert_eq!(a, b, "{backend:?}: in-place and out-of-place seals differ");
        match &sealed {
            Some(first) => assert_eq!(first, &a, "{backend:?} seals to different bytes"),
            None => sealed = Some(a),
        }
    }
    let Some(a) = sealed else {
        return;
    };
    let (ct, tag) = a.split_at(body.len());
    let tag: [u8; TAG_LEN] = tag.try_into().expect("16-byte tag");
    for (backend, key) in &keys {
        let mut c = a.clone();
        key.open_in_place(&nonce, &aad, &mut c)
            .expect("open own seal");
        assert_eq!(c, body);
        let mut d = vec![0xAA; ct.len()];
        key.open_to(&nonce, &aad, ct, &tag, &mut d)
            .expect("open_to own seal");
        assert_eq!(d, body, "{backend:?} open_to");
        let mut bad = a.clone();
        let i = flip % (bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        let (bad_ct, bad_tag) = bad.split_at(body.len());
        let bad_tag: [u8; TAG_LEN] = bad_tag.try_into().expect("16-byte tag");
        let mut d = vec![0xAA; ct.len()];
        assert!(key.open_to(&nonce, &aad, bad_ct, &bad_tag, &mut d).is_err());
        assert!(
            d.iter().all(|&x| x == 0),
            "a failed open_to leaves no plaintext"
        );
        assert!(key.open_in_place(&nonce, &aad, &mut bad).is_err());
        assert!(
            bad.iter().all(|&x| x == 0),
            "a failed open leaves no plaintext"
        );
        let mut other_aad = aad.clone();
        other_aad.push(0);
        let mut c = a.clone();
        assert!(key.open_in_place(&nonce, &other_aad, &mut c).is_err());
    }
    // Arbitrary bytes as ciphertext || tag.
    let mut answers = Vec::new();
    for (backend, key) in &keys {
        let mut x = body.to_vec();
        let ok = key.open_in_place(&nonce, &aad, &mut x).is_ok();
        answers.push((backend, ok, x));
    }
    for (backend, ok, x) in &answers[1..] {
        assert_eq!(*ok, answers[0].1, "{backend:?} disagrees on a ciphertext");
        assert_eq!(x, &answers[0].2, "{backend:?} opens to different bytes");
    }
}

// ---- metadata as read from the store -------------------------------------------------------

/// The vault header as read from the store: raw bytes (even first byte) or the fixed vault's
/// header with the fuzzer's mutations (odd). A header that opens must be the original one
/// and give the original keys, or belong to another vault and open nothing of this one.
pub fn vault_header(data: &[u8]) {
    between_inputs();
    let fx = fixture();
    let mut input = Input::new(data);
    let original = fx
        .snapshot
        .get(Space::Meta, HEADER_KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    let header = if input.u8().is_multiple_of(2) {
        input.rest().to_vec()
    } else {
        mutate(&mut input, &original)
    };
    let Ok(v) = fx.open_changed(Space::Meta, HEADER_KEY, Some(header.clone())) else {
        return;
    };
    let (env, ctx, pt) = &fx.canary;
    let opened = v.owner().decrypt(env, ctx).ok();
    if v.vault_id_hex() == fx.vault_id {
        assert_eq!(
            opened.as_deref().map(Vec::as_slice),
            Some(pt.as_slice()),
            "a changed header gave other keys"
        );
        // postcard accepts overlong varints, so other bytes may spell the same header; what
        // is accepted must mean exactly the original (every field is authenticated by value).
        assert_eq!(
            HeaderView::decode(&header),
            HeaderView::decode(&original),
            "a changed vault header was accepted"
        );
        assert!(HeaderView::decode(&header).is_some());
    } else {
        // Another vault's header under the same root key: its keys open nothing here.
        assert!(
            opened.is_none(),
            "another vault's header decrypted this vault's data"
        );
        assert!(v.keyrings().is_err());
    }
}

/// Metadata records as read from the store, chosen by the first byte: keyring records
/// (decoded directly, and sealed in the store), subject keys, field definitions, erasure
/// records, record values, vaulted token values, key files.
pub fn metadata_records(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    match input.u8() % 8 {
        0 => keyring_record(input.rest()),
        1 => sealed_value(&mut input, Space::Keyring),
        2 => sealed_value(&mut input, Space::Subject),
        3 => field_definition(input.rest()),
        4 => erasure_record(&mut input),
        5 => sealed_value(&mut input, Space::Record),
        6 => sealed_value(&mut input, Space::Token),
        _ => key_file(input.rest()),
    }
}

fn keyring_record(bytes: &[u8]) {
    let Ok(rec) = KeyringRecord::decode(bytes) else {
        return;
    };
    assert!(!rec.versions.is_empty());
    assert!(rec.versions.windows(2).all(|w| w[0].version < w[1].version));
    assert!(rec.min_decrypt >= 1 && rec.min_decrypt <= rec.active);
    let enc = rec.encode().expect("encode");
    let again = KeyringRecord::decode(&enc).expect("re-decode");
    assert_eq!(
        *again.encode().expect("encode"),
        *enc,
        "keyring record round trip"
    );
    let Ok(loaded) = rec.load(Backend::Ring) else {
        return;
    };
    let info = loaded.info();
    assert_eq!(info.active, rec.active);
    assert_eq!(info.versions.len(), rec.versions.len());
    assert!(
        loaded.active_kek().is_ok(),
        "a decoded keyring has a usable active key"
    );
    for v in &rec.versions {
        let _ = loaded.decrypting_kek(v.version);
    }
}

/// A sealed or authenticated value of `space` (picked from the setup-time store) replaced by
/// raw bytes or mutated; every read of the vault must then fail or give the original data.
fn sealed_value(input: &mut Input<'_>, space: Space) {
    let fx = fixture();
    let entries = fx.entries(space);
    if entries.is_empty() {
        return;
    }
    let (key, original) = &entries[usize::from(input.u8()) % entries.len()];
    let value = if input.u8().is_multiple_of(4) {
        input.rest().to_vec()
    } else {
        mutate(input, original)
    };
    let changed = value != *original;
    let Ok(v) = fx.open_changed(space, key, Some(value)) else {
        return;
    };
    let (env, ctx, pt) = &fx.canary;
    let (senv, sctx, spt) = &fx.subject_env;
    let checks: [(&str, bool); 4] = [
        (
            "canary",
            v.owner().decrypt(env, ctx).is_ok_and(|p| *p == *pt),
        ),
        (
            "subject",
            v.owner().decrypt(senv, sctx).is_ok_and(|p| *p == *spt),
        ),
        ("record", {
            let (c, id, val) = &fx.record;
            match v.owner().get(c, id) {
                Ok(Some(p)) => {
                    assert_eq!(*p, *val, "a record read gave wrong data");
                    true
                }
                _ => false,
            }
        }),
        ("tokens", {
            let mut all = true;
            for t in &fx.tokens {
                let r = if t.subject {
                    v.owner()
                        .detokenize_for_subject(t.field, &t.token, SUBJECT, View::Plaintext)
                } else {
                    v.owner().detokenize(t.field, &t.token, View::Plaintext)
                };
                match r {
                    Ok(x) => assert_eq!(*x, t.value, "a token resolved to another value"),
                    Err(_) => all = false,
                }
            }
            all
        }),
    ];
    let _ = v.keyrings();
    let _ = v.fields();
    if changed {
        // The changed value must make the reads that depend on it fail.
        let depends = match space {
            Space::Keyring => None, // which keyring was hit decides; checked below
            // One subject key per keyring: the envelope's or the subject-bound tokens'.
            Space::Subject => {
                let ok = |name: &str| checks.iter().any(|(n, ok)| *n == name && *ok);
                assert!(
                    !(ok("subject") && ok("tokens")),
                    "a changed subject value was accepted"
                );
                None
            }
            Space::Record => Some("record"),
            Space::Token => Some("tokens"),
            _ => None,
        };
        if let Some(name) = depends {
            let ok = checks.iter().any(|(n, ok)| *n == name && *ok);
            assert!(!ok, "a changed {name} value was accepted");
        }
        if space == Space::Keyring {
            let name = String::from_utf8_lossy(key).into_owned();
            assert!(
                !v.keyrings()
                    .is_ok_and(|ks| ks.iter().any(|k| k.name == name)),
                "a changed keyring was accepted"
            );
        }
    }
}

fn field_definition(plain: &[u8]) {
    let fx = fixture();
    let sealed = fx
        .vault
        .keys
        .seal_meta(&[b"field".as_slice(), b"fz".as_slice()], plain)
        .expect("seal field");
    let Ok(v) = fx.open_changed(Space::Field, b"fz", Some(sealed)) else {
        return;
    };
    if let Ok(fields) = v.fields()
        && let Some(f) = fields.iter().find(|f| f.name == "fz")
    {
        for value in ["123456789", "2001-02-03", "ABCdef-123456"] {
            if let Ok(t) = v.owner().tokenize("fz", value) {
                let _ = v.owner().detokenize("fz", &t, View::Masked);
            }
            let _ = v.owner().tokenize_for_subject("fz", value, SUBJECT);
        }
        let _ = f.validate();
    }
}

fn erasure_record(input: &mut Input<'_>) {
    let fx = fixture();
    let key = input.short(16).to_vec();
    let value = input.rest().to_vec();
    let Ok(v) = fx.open_changed(Space::Erasure, &key, Some(value.clone())) else {
        return;
    };
    // Strict decoding: a list comes back only if the planted value is some record's one
    // canonical encoding.
    if let Ok(list) = v.erasures() {
        assert!(
            list.iter()
                .any(|r| postcard::to_allocvec(r).ok().as_deref() == Some(&value[..])),
            "an erasure record was read from a non-canonical encoding"
        );
    }
}

fn key_file(bytes: &[u8]) {
    let ok = KeyFile::from_bytes(bytes).is_ok();
    let t = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let t = t.strip_suffix(b"\r").unwrap_or(t);
    let expected = bytes.len() == 32 || (t.len() == 64 && t.iter().all(u8::is_ascii_hexdigit));
    assert_eq!(ok, expected, "key file acceptance");
}

// ---- tokens ----------------------------------------------------------------------------------

/// Detokenize every token kind of the fixed vault (presets and defined fields): raw strings
/// (even mode) or the vault's own tokens mutated (odd), in every view. A value that comes back
/// must tokenize to the token again; vaulted tokens resolve only to their own values;
/// pseudonyms never detokenize.
pub fn detokenize(data: &[u8]) {
    between_inputs();
    let fx = fixture();
    let mut input = Input::new(data);
    let field = FIELDS[usize::from(input.u8()) % FIELDS.len()];
    let view = match input.u8() % 3 {
        0 => View::Plaintext,
        1 => View::Masked,
        _ => View::Redacted,
    };
    let mode = input.u8();
    let subject = match mode / 2 % 4 {
        0 => None,
        1 => Some("patient-2"),
        _ => Some(SUBJECT),
    };
    let token = if mode.is_multiple_of(2) {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        let known: Vec<&Known> = fx.tokens.iter().filter(|t| t.field == field).collect();
        let base = known
            .get(usize::from(input.u8()) % known.len().max(1))
            .map_or("", |k| k.token.as_str());
        String::from_utf8_lossy(&mutate(&mut input, base.as_bytes())).into_owned()
    };
    let _ = View::parse(&token);
    let v = &fx.vault;
    let run = |view| match subject {
        Some(s) => v.owner().detokenize_for_subject(field, &token, s, view),
        None => v.owner().detokenize(field, &token, view),
    };
    let plain = run(View::Plaintext);
    if view != View::Plaintext {
        let shown = run(view);
        assert_eq!(shown.is_ok(), plain.is_ok(), "views disagree");
        if let (Ok(shown), Ok(p)) = (&shown, &plain) {
            match view {
                View::Redacted => assert_eq!(shown.as_str(), crate::tokens::mask::REDACTED),
                _ => {
                    assert_eq!(shown.chars().count(), p.chars().count(), "mask length");
                    // The masked view never shows more than half of the value (issue 16).
                    let total = p.chars().filter(|c| c.is_alphanumeric()).count();
                    let visible = shown.chars().filter(|c| c.is_alphanumeric()).count();
                    assert!(
                        2 * visible <= total,
                        "masked view shows {visible} of {total}"
                    );
                }
            }
        }
    }
    let Ok(value) = plain else {
        return;
    };
    let spec = v
        .fields()
        .expect("fields")
        .into_iter()
        .find(|f| f.name == field)
        .expect("fixture field");
    match spec.kind {
        TokenKind::Vaulted => {
            let known = fx
                .tokens
                .iter()
                .find(|t| t.field == field && t.token == token);
            assert_eq!(
                known.map(|k| k.value.as_str()),
                Some(value.as_str()),
                "a vaulted token resolved to a value it was not made for"
            );
        }
        TokenKind::Pseudonym => panic!("a pseudonym was detokenized"),
        _ => {
            let again = match subject {
                Some(s) => v.owner().tokenize_for_subject(field, &value, s),
                None => v.owner().tokenize(field, &value),
            };
            assert_eq!(
                again.ok().as_deref(),
                Some(token.as_str()),
                "a detokenized value does not tokenize back to its token"
            );
        }
    }
}

/// FF1 round trip over any alphabet (named, or `custom:` from the input), shared or tied to
/// a subject: a value that tokenizes keeps its length and its non-alphabet characters, and
/// detokenizes back to itself.
pub fn ff1_roundtrip(data: &[u8]) {
    between_inputs();
    let fx = fixture();
    let mut input = Input::new(data);
    let sel = input.u8();
    let alphabet = match sel % 8 {
        0 => "digits".to_owned(),
        1 => "alphanumeric".to_owned(),
        2 => "upper".to_owned(),
        3 => "lower".to_owned(),
        4 => "hex".to_owned(),
        n => {
            let raw = input.short(100);
            let mut chars: Vec<char> = raw.iter().map(|b| char::from(b % 96 + 32)).collect();
            if n != 7 {
                let mut seen = [false; 128];
                chars.retain(|c| !std::mem::replace(&mut seen[*c as usize], true));
            }
            format!("custom:{}", chars.into_iter().collect::<String>())
        }
    };
    let custom: Option<Vec<char>> = alphabet
        .strip_prefix("custom:")
        .map(|c| c.chars().collect());
    let subject = sel & 0x80 != 0;
    let name = if subject { "fz-ff1-subject" } else { "fz-ff1" };
    let mut spec = FieldSpec::new(name, TokenKind::Ff1);
    spec.alphabet = alphabet;
    spec.subject = subject;
    spec.mask_keep_last = usize::from(input.u8() % 8);
    let v = &fx.vault;
    if v.define_field(spec).is_err() {
        return;
    }
    let value = String::from_utf8_lossy(input.rest()).into_owned();
    let tokenize = |x: &str| {
        if subject {
            v.owner().tokenize_for_subject(name, x, SUBJECT)
        } else {
            v.owner().tokenize(name, x)
        }
    };
    let detokenize = |t: &str, view| {
        if subject {
            v.owner().detokenize_for_subject(name, t, SUBJECT, view)
        } else {
            v.owner().detokenize(name, t, view)
        }
    };
    let Ok(token) = tokenize(&value) else {
        return;
    };
    assert_eq!(token.len(), value.len(), "FF1 kept the length");
    assert_eq!(token.chars().count(), value.chars().count());
    for (a, b) in value.chars().zip(token.chars()) {
        let in_alphabet = |c: char| match &custom {
            Some(cs) => cs.contains(&c),
            None => false,
        };
        if custom.is_some() && !in_alphabet(a) {
            assert_eq!(a, b, "FF1 kept a non-alphabet character in place");
        }
    }
    assert_eq!(
        tokenize(&value).ok().as_deref(),
        Some(token.as_str()),
        "FF1 is deterministic"
    );
    let back = detokenize(&token, View::Plaintext).expect("detokenize own token");
    assert_eq!(*back, value, "FF1 round trip");
    let _ = detokenize(&token, View::Masked);
}

/// phivault's FF1 against the `fpe` crate, on the fuzzer's key length (16/24/32), radix, tweak
/// and numerals: the same ciphertext (native path or not), decryption back to the numerals,
/// and the same refusal of invalid input.
pub fn ff1_differential(data: &[u8]) {
    use crate::tokens::ff1::Ff1;
    let mut input = Input::new(data);
    let sel = input.u8();
    let klen = [16usize, 24, 32][usize::from(sel % 3)];
    let key: Vec<u8> = (0..klen).map(|_| input.u8()).collect();
    // Mostly the radixes of alphabets (2-256), sometimes any FF1 radix up to 2^16.
    let radix = if sel & 0x80 == 0 {
        2 + u32::from(input.u8()) % 255
    } else {
        2 + u32::from(input.u16()) % ((1 << 16) - 1)
    };
    let tweak = input.short(64).to_vec();
    let n = 2 + usize::from(input.u8() % 48);
    let numerals: Vec<u16> = (0..n)
        .map(|_| {
            let x = u32::from(input.u16());
            // Now and then a numeral out of range, which both must refuse.
            if sel & 0x40 != 0 && x % 97 == 0 {
                radix as u16
            } else {
                (x % radix) as u16
            }
        })
        .collect();
    let Ok(f) = Ff1::new(&key, radix) else {
        panic!("FF1 refused radix {radix} with a {klen}-byte key");
    };
    let ours = f.encrypt(&tweak, numerals.clone());
    let theirs = f.reference_encrypt(&tweak, numerals.clone());
    match (ours, theirs) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "FF1 differs from fpe (radix {radix}, n {n})");
            assert_eq!(f.decrypt(&tweak, a).ok(), Some(numerals), "FF1 round trip");
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "FF1 and fpe disagree on validity: {:?} vs {:?}",
            a.is_ok(),
            b.is_ok()
        ),
    }
}

/// Field schemas in TOML: whatever parses validates, round-trips through TOML, and can be
/// defined in a vault.
pub fn field_schema_toml(data: &[u8]) {
    between_inputs();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(specs) = FieldSpec::from_toml(text) else {
        return;
    };
    for s in &specs {
        s.validate().expect("parsed fields are valid");
    }
    let written = FieldSpec::to_toml(&specs).expect("valid fields can be written");
    let again = FieldSpec::from_toml(&written).expect("written schema parses");
    assert_eq!(again, specs, "TOML round trip");
    let root = KeyFile::from_key(Key32::from_slice(&ROOT_KEY).expect("32 bytes"));
    let v = Vault::create_in(Box::new(MemoryStore::new()), &root, Backend::Ring)
        .expect("scratch vault");
    assert_eq!(
        v.define_fields_toml(text).expect("a valid schema defines"),
        specs.len()
    );
}

// ---- the PostgreSQL store's URL -----------------------------------------------------------

/// A `postgres://` URL as the PostgreSQL store reads it before connecting: the fuzzer's bytes
/// become the text after `postgres://user:<password>@`, so that every URL carries a password
/// (`Canary-pw-7`, never a substring of phivault's own messages). Whatever it holds — query
/// parameters, escapes, paths — parsing never panics, and an error never contains the
/// password, unless the fuzzer wrote the password elsewhere in the URL too (a path may be
/// named in an error).
pub fn pg_url(data: &[u8]) {
    between_inputs();
    const PASSWORD: &str = "Canary-pw-7";
    let Ok(rest) = std::str::from_utf8(data) else {
        return;
    };
    let url = format!("postgres://user:{PASSWORD}@{rest}");
    if let Err(e) = crate::store::pg_connect::ConnectSpec::parse(&url) {
        let msg = format!("{e} {e:?}");
        assert!(
            rest.contains(PASSWORD) || !msg.contains(PASSWORD),
            "the password is in an error"
        );
    }
}

/// A value the de-identification targets put into their inputs: it must never reach an error.
const DEID_CANARY: &str = "Canary-v9";

/// De-identification schemas (`deid::Schema::parse`): the first byte picks raw text (even) or
/// the text behind a TOML (`default = "Canary-v9"`) or JSON prefix holding the canary. Never
/// a panic; an error is `DeidSchema` (or `InvalidInput`) and never contains the canary; a
/// schema that parses parses the same from its own rules' paths.
pub fn deid_schema(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    let mode = input.u8();
    let Ok(rest) = std::str::from_utf8(input.rest()) else {
        return;
    };
    let text = match mode % 4 {
        1 => format!("default = \"{DEID_CANARY}\"\n{rest}"),
        2 => format!("{{\"default\": \"{DEID_CANARY}\", {rest}"),
        3 => format!(
            "[[rule]]\npath = \"Patient.name\"\naction = \"substitute\"\nvalue = \"{DEID_CANARY}\"\n{rest}"
        ),
        _ => rest.to_owned(),
    };
    match crate::deid::Schema::parse(&text) {
        Ok(schema) => {
            for (i, r) in schema.rules.iter().enumerate() {
                let again = crate::deid::path::Path::parse(&r.path_text, i + 1).expect("reparse");
                assert_eq!(again, r.path, "a rule's path parses the same again");
            }
        }
        Err(e) => {
            assert!(
                matches!(e, Error::DeidSchema { .. } | Error::InvalidInput { .. }),
                "unexpected error kind"
            );
            let msg = format!("{e} {e:?}");
            assert!(!msg.contains(DEID_CANARY), "a schema value is in an error");
        }
    }
}

/// The fixed FHIR document the `deid_path` target evaluates paths on.
const DEID_PATH_DOC: &str = r#"{"resourceType":"Patient","id":"p1",
 "identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"900-12-3456"},{"system":"x","value":"Canary-v9"}],
 "name":[{"family":"Canary-v9","given":["A","B"],"period":{"start":"2001-02-03"}}],
 "extension":[{"url":"u","valueAddress":{"line":["1 Main"],"postalCode":"12345"}}],
 "contained":[{"resourceType":"Observation","id":"o","status":"final","valueQuantity":{"value":95}}],
 "birthDate":"1950-01-01","gender":"female","deceasedBoolean":false}"#;

/// Paths of de-identification rules (`deid::path::Path::parse`) and their evaluation: the
/// bytes are a path; if it parses, it is the one rule of a schema (the first byte of the path
/// text picks redact, keep with default redact, or generalize) applied to a fixed Patient
/// (`DEID_PATH_DOC`). Never a panic; parse errors are `DeidSchema` naming rule 1 and a
/// position within the text (+1); the result is a JSON object that keeps its `resourceType`.
pub fn deid_path(data: &[u8]) {
    between_inputs();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = match crate::deid::path::Path::parse(text, 1) {
        Ok(p) => p,
        Err(Error::DeidSchema { rule, position, .. }) => {
            assert_eq!(rule, 1);
            assert!(
                position >= 1 && position <= text.len() + 1,
                "position out of range"
            );
            return;
        }
        Err(e) => panic!("unexpected error kind {e:?}"),
    };
    let _ = path;
    let (default, action) = match data.first().map_or(0, |b| b % 3) {
        0 => ("keep", "action = \"redact\""),
        1 => ("redact", "action = \"keep\""),
        _ => ("keep", "action = \"generalize\"\ntruncate = 2"),
    };
    let schema = crate::deid::Schema::parse(&format!(
        "default = \"{default}\"\n[[rule]]\npath = '{}'\n{action}\n",
        text.replace('\'', "")
    ));
    let Ok(schema) = schema else {
        return;
    };
    let fx = fixture();
    let mut doc: serde_json::Value = serde_json::from_str(DEID_PATH_DOC).expect("doc");
    fx.vault
        .owner()
        .deidentify(&schema, &mut doc)
        .expect("local actions do not fail");
    assert_eq!(doc["resourceType"], "Patient");
}

/// Whole documents through the Safe Harbor preset (`Session::deidentify`, and
/// `deidentify_ndjson` with skipped lines): the first byte picks a single JSON document or
/// NDJSON; the rest is the input. Never a panic; an error never contains the canary; a
/// de-identified Patient holds no `name`, `telecom` or `text` and no string equal to an input
/// string of 9 or more bytes of its own `name`, and NDJSON output has one line per document.
pub fn deid_document(data: &[u8]) {
    between_inputs();
    let fx = fixture();
    let mut input = Input::new(data);
    let mode = input.u8();
    let body = input.rest();
    let Some(schema) = crate::deid::Schema::preset("safe-harbor") else {
        return;
    };
    let owner = fx.vault.owner();
    if mode % 2 == 1 {
        let mut out = Vec::new();
        let opts = crate::deid::NdjsonOptions::default()
            .errors(crate::deid::OnError::Skip)
            .batch_lines(usize::from(mode >> 1) % 5 + 1);
        match owner.deidentify_ndjson(&schema, body, &mut out, &opts, &mut |_| {}) {
            Ok(r) => {
                let lines = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
                assert_eq!(lines as u64, r.documents, "one output line per document");
            }
            Err(e) => assert!(!format!("{e} {e:?}").contains(DEID_CANARY)),
        }
        return;
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    fn names(v: &serde_json::Value, under: bool, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, c) in o {
                    names(c, under || k == "name", out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| names(c, under, out)),
            serde_json::Value::String(s) if under && s.len() >= 9 => out.push(s.clone()),
            _ => {}
        }
    }
    let mut secret = Vec::new();
    let resource = doc
        .get("resourceType")
        .is_some_and(serde_json::Value::is_string);
    if resource && let Some(name) = doc.get("name") {
        // A Patient's own `name` (HumanName) is removed whatever it holds: its strings must
        // not appear in the output, unless the input has them elsewhere too.
        names(name, true, &mut secret);
        let mut rest = doc.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("name");
        }
        let elsewhere = rest.to_string();
        // What the engine writes itself (labels, keys) is not the name's.
        let own = [
            "pseudonymized",
            crate::deid::SECURITY_SYSTEM,
            "resourceType",
        ];
        secret.retain(|s| {
            if own.contains(&s.as_str()) {
                return false;
            }
            let quoted = serde_json::Value::String(s.clone()).to_string();
            !elsewhere.contains(&quoted)
        });
    }
    match owner.deidentify(&schema, &mut doc) {
        Ok(_) => {
            if resource && doc.get("resourceType").and_then(|t| t.as_str()) == Some("Patient") {
                assert!(doc.get("name").is_none() && doc.get("telecom").is_none());
                assert!(doc.get("text").is_none());
                let out = doc.to_string();
                for s in &secret {
                    let quoted = serde_json::Value::String(s.clone()).to_string();
                    assert!(!out.contains(&quoted), "a name survived");
                }
            }
        }
        Err(e) => {
            assert!(doc.is_null(), "a failed document is nulled");
            assert!(!format!("{e} {e:?}").contains(DEID_CANARY));
        }
    }
}

/// The job id of the `job_spool` target.
const FUZZ_JOB: &str = "00112233445566778899aabbccddeeff";

/// A job's worker audit spool as the owner's merge reads it (`jobs::read_spool`): first byte
/// even, the rest follows a valid header for the target's job (chain start 0); odd, the rest is
/// the whole file. Whatever the bytes: an error or entries, never a panic; every entry
/// returned chains (the reader checks it) and its sequence numbers run from 1 without gaps.
pub fn job_spool(data: &[u8]) {
    between_inputs();
    let fx = fixture();
    let id = crate::jobs::JobId::parse(FUZZ_JOB).expect("job id");
    let mut input = Input::new(data);
    let bytes = if input.u8().is_multiple_of(2) {
        let mut b = spool_header(&id);
        b.extend_from_slice(input.rest());
        b
    } else {
        input.rest().to_vec()
    };
    if let Ok((entries, _torn)) = crate::jobs::read_spool(fx.vault.audit.mac(), &id, &bytes) {
        for (i, e) in entries.iter().enumerate() {
            let start = u64::from_be_bytes(bytes[20..28].try_into().expect("8 bytes"));
            assert_eq!(
                e.seq,
                start + 1 + i as u64,
                "spool entries run without gaps"
            );
        }
    }
}

/// A spool header for `id` whose chain starts at the empty log.
fn spool_header(id: &crate::jobs::JobId) -> Vec<u8> {
    let mut b = b"PVS1".to_vec();
    b.extend_from_slice(id.bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&[0u8; 32]);
    b
}

// ---- policy and audit ------------------------------------------------------------------------

/// Access policies in TOML, and the decision on them: whatever parses validates, round-trips
/// through TOML and through the vault's sealed storage; a principal the policy never names is
/// denied everything; a plaintext grant implies the masked and redacted ones; break-the-glass
/// needs a reason.
pub fn policy_toml(data: &[u8]) {
    between_inputs();
    use crate::audit::{Action, Outcome};
    use crate::policy::{Caller, Policy, Resource};
    let mut input = Input::new(data);
    let pick = input.u8();
    let purpose_pick = input.u8();
    let name_pick = input.u8();
    let reason = input.string(8);
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };
    let Ok(p) = Policy::from_toml(text) else {
        return;
    };
    p.validate().expect("parsed policies are valid");
    let written = p.to_toml().expect("a valid policy can be written");
    assert_eq!(
        Policy::from_toml(&written).expect("written policy parses"),
        p,
        "policy TOML round trip"
    );
    let root = KeyFile::from_key(Key32::from_slice(&ROOT_KEY).expect("32 bytes"));
    let v = Vault::create_in(Box::new(MemoryStore::new()), &root, Backend::Ring)
        .expect("scratch vault");
    v.set_policy(&p).expect("a valid policy can be set");
    assert_eq!(
        v.policy().expect("stored policy"),
        p,
        "stored policy round trip"
    );

    let mut names: Vec<&str> = p.principals.iter().map(|x| x.name.as_str()).collect();
    let mut purposes: Vec<&str> = vec!["treatment"];
    let mut resources: Vec<&str> = vec!["notes", "ssn", "default"];
    for r in &p.rules {
        names.extend(r.principals.iter().map(String::as_str));
        purposes.extend(r.purposes.iter().map(String::as_str));
        for list in [&r.collections, &r.fields, &r.keyrings] {
            resources.extend(list.iter().map(String::as_str));
        }
    }
    for b in &p.break_glass {
        names.extend(b.principals.iter().map(String::as_str));
    }
    let stranger = "\u{7f}stranger";
    let named = names[usize::from(name_pick) % names.len().max(1)..]
        .first()
        .copied()
        .unwrap_or(stranger);
    let purpose = purposes[usize::from(purpose_pick) % purposes.len()];
    let resource = resources[usize::from(pick) % resources.len()];
    let actions = [
        Action::Encrypt,
        Action::Decrypt,
        Action::Put,
        Action::Get,
        Action::Delete,
        Action::Tokenize,
        Action::Detokenize,
        Action::DetokenizeMasked,
        Action::DetokenizeRedacted,
    ];
    for principal in [named, stranger] {
        let mentioned = names.contains(&principal);
        for glass in [None, Some(reason.clone()), Some("  ".to_owned())] {
            let mut caller = Caller::new(principal, purpose);
            caller.break_glass = glass.clone();
            for res in [
                Resource::Collection(resource),
                Resource::Field(resource),
                Resource::Keyring(resource),
            ] {
                let mut detok = Vec::new();
                for a in actions {
                    let o = p.decide(&caller, a, res);
                    if !mentioned {
                        assert_eq!(o, Outcome::Denied, "an unnamed principal was let in");
                    }
                    if o == Outcome::BreakGlass {
                        assert!(
                            glass.as_deref().is_some_and(|g| !g.trim().is_empty()),
                            "break-the-glass without a reason"
                        );
                    }
                    if matches!(
                        a,
                        Action::Detokenize | Action::DetokenizeMasked | Action::DetokenizeRedacted
                    ) {
                        detok.push(o == Outcome::Allowed);
                    }
                }
                // plaintext => masked => redacted
                assert!(
                    detok.windows(2).all(|w| !w[0] || w[1]),
                    "a wider view is granted without the narrower one"
                );
            }
        }
    }
}

/// The audit log as read from the store: a raw value through the entry decoder (first byte
/// even), or the fixed vault's log with one entry or the head anchor changed, removed or
/// replaced (odd). A decoded entry round-trips; a changed log never verifies.
pub fn audit_log(data: &[u8]) {
    between_inputs();
    let mut input = Input::new(data);
    let mode = input.u8();
    if mode.is_multiple_of(2) {
        let raw = input.rest();
        if let Ok(d) = crate::audit::decode_entry(raw) {
            let enc = postcard::to_allocvec(&d.entry).expect("encode entry");
            assert_eq!(
                postcard::from_bytes::<crate::audit::AuditEntry>(&enc).ok(),
                Some(d.entry)
            );
            assert!(raw.len() > 32, "format byte, body and MAC");
        }
        return;
    }
    let fx = fixture();
    let entries = fx.entries(Space::Audit);
    let head_key: &[u8] = b"audit-head";
    let (space, key, original) = if mode % 4 == 1 && !entries.is_empty() {
        let (k, v) = &entries[usize::from(input.u8()) % entries.len()];
        (Space::Audit, k.clone(), Some(v.clone()))
    } else {
        let orig = fx.snapshot.get(Space::Meta, head_key).ok().flatten();
        (Space::Meta, head_key.to_vec(), orig)
    };
    let value = match input.u8() % 4 {
        0 => None,
        1 => Some(input.rest().to_vec()),
        _ => Some(mutate(&mut input, original.as_deref().unwrap_or_default())),
    };
    // The head anchor is compared by meaning: postcard accepts overlong varints.
    let head = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .map(|b| match postcard::take_from_bytes::<(u64, [u8; 32])>(b) {
                Ok((h, [])) => Some(h),
                _ => None,
            })
    };
    let changed = if space == Space::Meta {
        head(&value) != head(&original)
    } else {
        value != original
    };
    let Ok(v) = fx.open_changed(space, &key, value) else {
        return;
    };
    let _ = v.audit_entries(0, None, true);
    let _ = v.audit_head();
    if let Ok(report) = v.audit_verify() {
        assert_eq!(
            report.ok, !changed,
            "the audit log verifies iff it is unchanged"
        );
        if changed {
            assert!(report.first_bad.is_some());
        }
    }
}

// ---- CSV tokenization ------------------------------------------------------------------------

/// The header `csv_tokenize` puts before the fuzzer's rows (unless the input brings its own).
const CSV_HEADER: &str = "ssn,mrn,name,dob,patient,note";

/// Column -> field mappings `csv_tokenize` chooses from, one bit each: FF1 (reversible),
/// vaulted and consistent (reversible, any text), one-way pseudonyms, date shift (tied to the
/// subject column), and a column that is not in the header.
const CSV_MAP: &[(&str, &str)] = &[
    ("ssn", "ssn"),
    ("mrn", "mrn"),
    ("name", "pseudonym"),
    ("dob", "dob"),
    ("note", "mrn"),
    ("absent", "ssn"),
];

/// What the `csv` reader (strict: header, equal lengths) makes of `data`: the header (or the
/// kind of its error), the rows, and the first row error as (row with header = 1, kind),
/// counting rows independently of the code under test.
struct CsvParse {
    header: std::result::Result<Vec<String>, CsvErrorKind>,
    rows: Vec<Vec<String>>,
    error: Option<(u64, CsvErrorKind)>,
}

fn csv_kind(e: &csv::Error) -> CsvErrorKind {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => CsvErrorKind::UnequalLengths {
            expected: *expected_len,
            found: *len,
        },
        csv::ErrorKind::Utf8 { .. } => CsvErrorKind::NotUtf8,
        _ => CsvErrorKind::Malformed,
    }
}

fn csv_parse(data: &[u8]) -> CsvParse {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let header = match rdr.headers() {
        Ok(h) => Ok(h.iter().map(str::to_owned).collect()),
        Err(e) => Err(csv_kind(&e)),
    };
    let mut rows = Vec::new();
    let mut error = None;
    if header.is_ok() {
        let mut rec = csv::StringRecord::new();
        loop {
            match rdr.read_record(&mut rec) {
                Ok(true) => rows.push(rec.iter().map(str::to_owned).collect()),
                Ok(false) => break,
                Err(e) => {
                    error = Some((rows.len() as u64 + 2, csv_kind(&e)));
                    break;
                }
            }
        }
    }
    CsvParse {
        header,
        rows,
        error,
    }
}

/// Every cell of `data` as raw bytes, header included, read as leniently as the reader can.
fn csv_cells(data: &[u8]) -> Vec<Vec<u8>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut rec = csv::ByteRecord::new();
    let mut cells = Vec::new();
    while let Ok(true) = rdr.read_byte_record(&mut rec) {
        cells.extend(rec.iter().map(<[u8]>::to_vec));
    }
    cells
}

/// The text of `e` with every string that did not come from the caller (`names`) replaced by
/// a placeholder; "" for errors `csv_tokenize` has no business returning. A cell that occurs
/// in the message but not in this text came from the input.
fn csv_fixed_text(e: &Error, names: &[&str]) -> String {
    let keep = |s: &String| {
        if names.contains(&s.as_str()) {
            s.clone()
        } else {
            "\u{1}".to_owned()
        }
    };
    let fixed = match e {
        Error::Csv { row, kind } => Error::Csv {
            row: *row,
            kind: *kind,
        },
        Error::CsvColumnMissing { column, subject } => Error::CsvColumnMissing {
            column: keep(column),
            subject: *subject,
        },
        Error::InvalidInput { what, why } => Error::InvalidInput { what, why },
        Error::InvalidToken { field } => Error::InvalidToken { field: keep(field) },
        Error::UnknownField { field } => Error::UnknownField { field: keep(field) },
        Error::SubjectRequired { field } => Error::SubjectRequired { field: keep(field) },
        Error::Crypto(what) => Error::Crypto(what),
        _ => return String::new(),
    };
    fixed.to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// CSV tokenization ([`crate::csv_tokenize::tokenize_csv`]) on the fixed vault. The first byte
/// picks the columns to tokenize (`CSV_MAP`, bits 0-5) and the subject column (bits 6-7:
/// none, `patient`, or one that is missing), the second whether the fixed header
/// (`CSV_HEADER`) goes first, the third the batch size (1-8 rows); the rest is CSV.
///
/// On success: the output parses with the input's header and as many rows, each as long as
/// the header; unmapped cells are unchanged, empty cells stay empty; FF1, vaulted and
/// date-shift cells detokenize to the input cell; every mapping is consistent (equal cells,
/// equal tokens) and pseudonyms verify; the report and the progress reports count the rows,
/// columns, cells and batches. On error: a malformed header or row is exactly `Error::Csv` with
/// the row and kind the reader gives (or a tokenization error of an earlier batch), a missing
/// column is `CsvColumnMissing` naming it, and the message contains no cell of the input
/// longer than 3 bytes (beyond the caller's own names).
pub fn csv_tokenize(data: &[u8]) {
    between_inputs();
    let _ = csv_tokenize_checked(data);
}

/// [`csv_tokenize`], returning what `tokenize_csv` returned (after every check passed).
fn csv_tokenize_checked(data: &[u8]) -> crate::Result<crate::csv_tokenize::CsvReport> {
    use crate::csv_tokenize::{CsvColumns, tokenize_csv};
    let fx = fixture();
    let mut input = Input::new(data);
    let pick = input.u8();
    let mode = input.u8();
    let batch = usize::from(input.u8() % 8) + 1;
    let body = input.rest();
    let mapping: Vec<(&str, &str)> = CSV_MAP
        .iter()
        .enumerate()
        .filter(|(i, _)| pick & (1 << i) != 0)
        .map(|(_, m)| *m)
        .collect();
    let subject = match pick >> 6 {
        0 => None,
        3 => Some("nobody"),
        _ => Some("patient"),
    };
    let mut columns = mapping
        .iter()
        .fold(CsvColumns::new(), |c, (col, field)| c.column(*col, *field))
        .batch_rows(batch);
    if let Some(s) = subject {
        columns = columns.subject_column(s);
    }
    let csv: Vec<u8> = match mode % 3 {
        0 => body.to_vec(),
        1 => [CSV_HEADER.as_bytes(), b"\n", body].concat(),
        _ => [CSV_HEADER.as_bytes(), b"\r\n", body].concat(),
    };
    let session = fx.vault.session(crate::policy::Caller::owner());
    let mut out = Vec::new();
    let mut progress: Vec<crate::csv_tokenize::CsvProgress> = Vec::new();
    let result = tokenize_csv(&session, &columns, &csv[..], &mut out, &mut |p| {
        progress.push(p)
    });
    if mapping.is_empty() {
        assert!(
            matches!(result, Err(Error::InvalidInput { .. })),
            "no columns is invalid input"
        );
        return result;
    }
    let parsed = csv_parse(&csv);
    // The error `tokenize_csv` must give before it tokenizes anything, if any.
    let expected_early = match &parsed.header {
        Err(kind) => Some(Error::Csv {
            row: 1,
            kind: *kind,
        }),
        Ok(h) => mapping
            .iter()
            .map(|(c, _)| (*c, false))
            .chain(subject.map(|s| (s, true)))
            .find(|(c, _)| !h.iter().any(|x| x == c))
            .map(|(c, subj)| Error::CsvColumnMissing {
                column: c.to_owned(),
                subject: subj,
            }),
    };
    match &result {
        Ok(report) => {
            assert!(
                expected_early.is_none(),
                "succeeded despite {expected_early:?}"
            );
            assert!(parsed.error.is_none(), "succeeded on malformed CSV");
            check_csv_output(
                fx, &mapping, subject, batch, &parsed, &out, report, &progress,
            );
        }
        Err(e) => {
            check_csv_error(e, expected_early.as_ref(), parsed.error, batch);
            let mut text = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                text.push_str(&s.to_string());
                src = s.source();
            }
            let mut names: Vec<&str> = mapping.iter().flat_map(|(c, f)| [*c, *f]).collect();
            names.extend(subject);
            let fixed = csv_fixed_text(e, &names);
            for cell in csv_cells(&csv) {
                assert!(
                    cell.len() <= 3
                        || !contains(text.as_bytes(), &cell)
                        || contains(fixed.as_bytes(), &cell),
                    "an error message contains a cell of the input"
                );
            }
        }
    }
    result
}

fn check_csv_error(
    e: &Error,
    expected_early: Option<&Error>,
    parse_error: Option<(u64, CsvErrorKind)>,
    batch: usize,
) {
    if let Some(x) = expected_early {
        // Display equality: same variant, same row and kind, or same column.
        assert_eq!(e.to_string(), x.to_string(), "wrong error before any row");
        return;
    }
    match (e, parse_error) {
        (Error::Csv { row, kind }, Some((r, k))) => {
            assert_eq!(
                (*row, *kind),
                (r, k),
                "a CSV error names the wrong row or kind"
            );
        }
        (Error::Csv { .. } | Error::CsvColumnMissing { .. }, _) => {
            panic!("a CSV error for well-formed CSV: {e}")
        }
        (_, Some((r, _))) => {
            // A batch is read whole before it is tokenized: a tokenization error can only
            // come from a batch before the malformed row's.
            assert!(
                (r - 2) as usize >= batch,
                "a tokenization error instead of the CSV error of row {r}"
            );
        }
        (_, None) => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn check_csv_output(
    fx: &Fixture,
    mapping: &[(&str, &str)],
    subject: Option<&str>,
    batch: usize,
    parsed: &CsvParse,
    out: &[u8],
    report: &crate::csv_tokenize::CsvReport,
    progress: &[crate::csv_tokenize::CsvProgress],
) {
    let header = parsed.header.as_ref().expect("parsed header");
    let got = csv_parse(out);
    assert!(got.error.is_none(), "the output is not well-formed CSV");
    assert_eq!(got.header.as_ref().ok(), Some(header), "header changed");
    assert_eq!(got.rows.len(), parsed.rows.len(), "row count changed");
    let pos = |c: &str| header.iter().position(|h| h == c).expect("checked column");
    let cols: Vec<(usize, &str)> = mapping.iter().map(|(c, f)| (pos(c), *f)).collect();
    let subject_idx = subject.map(pos);
    let mut cells = 0u64;
    let mut seen: BTreeMap<(&str, String, String), String> = BTreeMap::new();
    let mut pseudonyms: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for (a, b) in parsed.rows.iter().zip(&got.rows) {
        assert_eq!(a.len(), header.len());
        assert_eq!(b.len(), a.len(), "row length changed");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let Some(&(_, field)) = cols.iter().find(|(c, _)| *c == i) else {
                assert_eq!(x, y, "an unmapped cell changed");
                continue;
            };
            if x.is_empty() {
                assert!(y.is_empty(), "an empty cell was filled");
                continue;
            }
            cells += 1;
            assert!(!y.is_empty(), "a cell was emptied");
            let subj = subject_idx.map(|s| a[s].as_str());
            let prev = seen.insert((field, subj.unwrap_or("").to_owned(), x.clone()), y.clone());
            assert!(
                prev.is_none_or(|p| p == *y),
                "equal cells got different tokens"
            );
            if field == "pseudonym" {
                let owner = (subj.unwrap_or("").to_owned(), x.clone());
                let prev =
                    pseudonyms.insert((subj.unwrap_or("").to_owned(), y.clone()), owner.clone());
                assert!(
                    prev.is_none_or(|p| p == owner),
                    "two values share a pseudonym"
                );
                if subj.is_none() {
                    assert!(
                        fx.vault.verify_pseudonym(field, x, y).expect("verify"),
                        "a pseudonym does not verify against its cell"
                    );
                }
                continue;
            }
            let back = match subj {
                Some(s) => fx
                    .vault
                    .owner()
                    .detokenize_for_subject(field, y, s, View::Plaintext),
                None => fx.vault.owner().detokenize(field, y, View::Plaintext),
            };
            assert_eq!(
                back.ok().as_deref().map(String::as_str),
                Some(x.as_str()),
                "a token does not detokenize to its cell"
            );
        }
    }
    assert_eq!(report.rows, parsed.rows.len() as u64, "report: rows");
    assert_eq!(report.columns, mapping.len(), "report: columns");
    assert_eq!(report.cells, cells, "report: cells");
    let rows: Vec<u64> = progress.iter().map(|p| p.rows).collect();
    let n = parsed.rows.len() as u64;
    let expected: Vec<u64> = (1..=n.div_ceil(batch as u64))
        .map(|k| (k * batch as u64).min(n))
        .collect();
    assert_eq!(rows, expected, "one progress report per batch");
    assert!(
        progress.windows(2).all(|w| w[0].bytes <= w[1].bytes),
        "progress bytes go back"
    );
}

// ---- seeds ------------------------------------------------------------------------------------

/// Writes the seed corpora, one directory per target under `dir` (`fuzz/seeds`), from the
/// frozen testkit in `testkit` (`core/tests/testkit`) and from envelopes, headers, records
/// and tokens made here. Files that exist are left alone: committed seeds are only added to.
/// Returns how many files were written.
pub fn write_seeds(dir: &std::path::Path, testkit: &std::path::Path) -> std::io::Result<usize> {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let mut add = |t: &'static str, name: String, data: Vec<u8>| seeds.push((t, name, data));

    // Frozen testkit envelopes: text as is, binary decoded, binary behind the raw-rewrap byte.
    let mut kit: Vec<_> = std::fs::read_dir(testkit)?
        .flatten()
        .map(|e| e.path())
        .collect();
    kit.sort();
    for p in kit {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&p)?;
        let Some((_, body)) = text.split_once("\n\n") else {
            continue;
        };
        let line = body.trim().to_owned();
        add(
            "envelope_text",
            format!("testkit-{stem}"),
            line.clone().into_bytes(),
        );
        add(
            "envelope_text",
            format!("testkit-{stem}-newline"),
            format!("{line}\n").into_bytes(),
        );
        let bin = envelope::from_text(&line).unwrap_or_else(|_| {
            base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                line.rsplit(':').next().unwrap_or(""),
            )
            .unwrap_or_default()
        });
        add("envelope_binary", format!("testkit-{stem}"), bin.clone());
        let mut raw = vec![1u8];
        raw.extend_from_slice(&bin);
        add("rewrap", format!("raw-testkit-{stem}"), raw);
    }

    // Fresh envelopes under the testkit KEK: both suites, subject flag, every seed context.
    let k3 = kek(3, &FIXED_KEK, Backend::Ring).ok_or_else(|| std::io::Error::other("kek"))?;
    for (i, ctx) in contexts().iter().enumerate() {
        for (j, pt) in [&b""[..], b"900-12-3456", &[0xa5; 300]].iter().enumerate() {
            let rnd = || SealRandomness {
                dek: Key32::from_slice(&[i as u8 + 1; 32]).unwrap_or_else(|_| Key32::zero()),
                wrap_nonce: [j as u8; NONCE_LEN],
                nonce: [j as u8 + 7; NONCE_LEN],
            };
            let sid = [0xabu8; SUBJECT_ID_LEN];
            let made = [
                (
                    "gcm",
                    envelope::seal_with(
                        Backend::Ring,
                        "default",
                        None,
                        envelope::Domain::Caller,
                        &k3,
                        pt,
                        ctx,
                        rnd(),
                    ),
                ),
                (
                    "subject",
                    envelope::seal_with(
                        Backend::Ring,
                        "notes",
                        Some(&sid),
                        envelope::Domain::Caller,
                        &k3,
                        pt,
                        ctx,
                        rnd(),
                    ),
                ),
                ("siv", envelope::seal_deterministic("ids", &k3, pt, ctx)),
            ];
            for (kind, env) in made {
                let Ok(env) = env else { continue };
                let name = format!("{kind}-ctx{i}-pt{j}");
                add("envelope_binary", name.clone(), env.clone());
                if let Ok(t) = envelope::to_text(&env) {
                    add("envelope_text", name.clone(), t.into_bytes());
                }
                let mut raw = vec![1u8];
                raw.extend_from_slice(&env);
                add("rewrap", format!("raw-{name}"), raw);
            }
        }
    }
    add(
        "envelope_text",
        "other-version".into(),
        b"pv2:default:1:AAAA".to_vec(),
    );
    add(
        "envelope_text",
        "empty-b64".into(),
        b"pv1:default:1:".to_vec(),
    );

    // Structure-aware inputs for seal_from: mode, version, key, keyring, context, randomness,
    // plaintext, subject id, then mutations.
    for mode in 0u8..3 {
        for (m, muts) in [
            &[][..],
            &[1, 0, 0, 0, 10, 1][..],
            &[2, 3, 0, 0, 3, 0x41, 2, 0, 0, 20, 0][..],
        ]
        .iter()
        .enumerate()
        {
            let mut s = vec![mode];
            s.extend_from_slice(&3u32.to_be_bytes());
            s.extend_from_slice(&FIXED_KEK);
            s.extend_from_slice(&[7, b'd', b'e', b'f', b'a', b'u', b'l', b't']);
            s.extend_from_slice(&[
                2, 6, b'r', b'e', b'c', b'o', b'r', b'd', 4, b'4', b'7', b'1', b'1',
            ]);
            s.extend_from_slice(&[5, b'f', b'i', b'e', b'l', b'd', 4, b'n', b'o', b't', b'e']);
            s.extend_from_slice(&[0x11; 56]);
            s.extend_from_slice(&[10]);
            s.extend_from_slice(b"HbA1c 9.2%");
            s.extend_from_slice(&[0xab; SUBJECT_ID_LEN]);
            s.extend_from_slice(muts);
            add("envelope_tamper", format!("mode{mode}-mut{m}"), s.clone());
            if mode != 2 {
                let mut r = vec![0u8];
                r.extend_from_slice(&s[..s.len() - muts.len()]);
                r.extend_from_slice(&4u32.to_be_bytes());
                r.extend_from_slice(muts);
                add("rewrap", format!("sealed-mode{mode}-mut{m}"), r);
            }
        }
    }

    // AEAD: key, nonce, aad, flip position, body.
    for (i, body) in [&b""[..], b"x", &[0x5c; 64], &[0u8; 1000]]
        .iter()
        .enumerate()
    {
        let mut s = FIXED_KEK.to_vec();
        s.extend_from_slice(&[i as u8; NONCE_LEN]);
        s.extend_from_slice(&[4, b'P', b'V', b'W', b'1']);
        s.extend_from_slice(&[0, i as u8]);
        s.extend_from_slice(body);
        add("aead_differential", format!("body{i}"), s);
    }

    // Vault header and metadata, from the fixed vault.
    let fx = fixture();
    if let Ok(Some(h)) = fx.snapshot.get(Space::Meta, HEADER_KEY) {
        let mut raw = vec![0u8];
        raw.extend_from_slice(&h);
        add("vault_header", "raw-key-file".into(), raw);
        let mut pass = vec![0u8];
        let params = crate::root::RootParams::Passphrase {
            salt: [1; 16],
            config: crate::root::Argon2Config::testing(),
        };
        // A passphrase vault's header: same layout with other root parameters.
        pass.extend_from_slice(&postcard_header(&h, &params));
        add("vault_header", "raw-passphrase".into(), pass);
    }
    add("vault_header", "unchanged".into(), vec![1, 0]);
    add("vault_header", "flip".into(), vec![1, 1, 0, 0, 20, 3]);
    add(
        "vault_header",
        "trailing".into(),
        vec![1, 1, 5, 0, 0, 0, 2, 0, 0],
    );
    if let Ok(enc) = KeyringRecord::new("default").and_then(|r| r.encode()) {
        let mut s = vec![0u8];
        s.extend_from_slice(&enc);
        add("metadata_records", "keyring-record".into(), s);
    }
    for sel in [1u8, 2, 5, 6] {
        add(
            "metadata_records",
            format!("sealed{sel}-unchanged"),
            vec![sel, 0, 1, 0],
        );
        add(
            "metadata_records",
            format!("sealed{sel}-flip"),
            vec![sel, 0, 1, 1, 0, 0, 9, 1],
        );
        add(
            "metadata_records",
            format!("sealed{sel}-append"),
            vec![sel, 0, 1, 1, 5, 0, 0, 0, 2, 0, 0],
        );
    }
    for spec in crate::tokens::presets() {
        if let Ok(enc) = postcard::to_allocvec(&FieldSpec {
            name: "fz".into(),
            ..spec.clone()
        }) {
            let mut s = vec![3u8];
            s.extend_from_slice(&enc);
            add("metadata_records", format!("field-{}", spec.name), s);
        }
    }
    if let Ok(enc) = postcard::to_allocvec(&crate::erasure::ErasureRecord {
        time_unix: 1_700_000_000,
        subject_key_id: "00112233445566778899aabbccddeeff".into(),
    }) {
        let mut s = vec![4u8, 2, 0, 1];
        s.extend_from_slice(&enc);
        add("metadata_records", "erasure".into(), s);
    }
    let mut kf = vec![7u8];
    kf.extend_from_slice(&[9; 32]);
    add("metadata_records", "key-file-raw".into(), kf);
    let mut kf = vec![7u8];
    kf.extend_from_slice(format!("{}\r\n", "ab".repeat(32)).as_bytes());
    add("metadata_records", "key-file-hex".into(), kf);

    // Tokens: every field's own tokens unchanged and mutated, and raw strings.
    for (i, field) in FIELDS.iter().enumerate() {
        let subj_mode = if field_needs_subject(field) { 5 } else { 1 };
        for view in 0u8..3 {
            add(
                "detokenize",
                format!("{field}-own-view{view}"),
                vec![i as u8, view, subj_mode, 0, 0],
            );
        }
        add(
            "detokenize",
            format!("{field}-own-flip"),
            vec![i as u8, 0, subj_mode, 0, 1, 1, 0, 2, 1],
        );
        for t in fx.tokens.iter().filter(|t| t.field == *field) {
            let mut s = vec![i as u8, 0, subj_mode - 1];
            s.extend_from_slice(t.value.as_bytes());
            add("detokenize", format!("{field}-raw-value"), s);
        }
    }
    let dob = FIELDS.iter().position(|f| *f == "dob").unwrap_or(0) as u8;
    for d in [
        "2000-02-29",
        "0001-01-01",
        "9999-12-31",
        "+001-01-01",
        "2000-1-01",
    ] {
        let mut s = vec![dob, 0, 4];
        s.extend_from_slice(d.as_bytes());
        add("detokenize", format!("dob-{d}"), s);
    }

    // FF1: alphabet selector, (custom characters), mask, value.
    let ff1: &[(&str, &[u8])] = &[
        ("digits-ssn", b"\x00\x04900-12-3456"),
        ("digits-subject", b"\x80\x04555-010-9999"),
        ("alnum", b"\x01\x04ACC-77G1X9"),
        ("upper", b"\x02\x00D1234-5678-90"),
        ("lower", b"\x03\x00dev-00af93c2"),
        ("hex", b"\x04\x00deadbeef"),
        (
            "custom",
            b"\x05\x05\x10\x11\x12\x13\x14\x03abcabcabcabcabcabcabc",
        ),
        ("custom-dup", b"\x07\x03\x10\x10\x11\x00000000"),
        ("too-short", b"\x00\x0012345"),
    ];
    for (name, s) in ff1 {
        add("ff1_roundtrip", (*name).to_owned(), s.to_vec());
    }
    // FF1 against fpe: selector (key length, radix width, out-of-range numerals), key, radix,
    // tweak, length, numerals.
    let mut ssn = vec![2u8];
    ssn.extend_from_slice(&[7u8; 32]);
    ssn.extend_from_slice(&[8, 3, b's', b's', b'n', 7]);
    ssn.extend((0..18u8).map(|i| i.wrapping_mul(13)));
    add("ff1_differential", "radix10-aes256".into(), ssn);
    let mut wide = vec![0x80u8];
    wide.extend_from_slice(&[1u8; 16]);
    wide.extend_from_slice(&[0xff, 0xfe, 0, 40]);
    wide.extend((0..90u8).map(|i| i.wrapping_mul(7)));
    add("ff1_differential", "radix65535-long".into(), wide);
    let mut bad = vec![0x41u8];
    bad.extend_from_slice(&[2u8; 24]);
    bad.extend_from_slice(&[60, 1, 0xaa, 10]);
    bad.extend(std::iter::repeat_n(0u8, 24));
    add("ff1_differential", "out-of-range-numeral".into(), bad);

    // Field schemas.
    if let Ok(t) = FieldSpec::to_toml(&crate::tokens::presets()) {
        add("field_schema_toml", "presets".into(), t.into_bytes());
    }
    add(
        "field_schema_toml",
        "docs-example".into(),
        b"[[field]]\nname = \"account\"\nkind = \"ff1\"\nalphabet = \"digits\"\nmask_keep_last = 4\n"
            .to_vec(),
    );
    add(
        "field_schema_toml",
        "opaque-subject".into(),
        b"[[field]]\nname = \"visit\"\nkind = \"vaulted\"\nshape = \"opaque\"\nprefix = \"v_\"\nsubject = true\n\n[[field]]\nname = \"dob2\"\nkind = \"date-shift\"\nsubject = true\nwindow_days = 30\n"
            .to_vec(),
    );
    add("field_schema_toml", "empty".into(), Vec::new());

    // Policies: pick bytes, a break-the-glass reason, then TOML.
    let policy = "[[principal]]\nname = \"dr-house\"\nroles = [\"clinician\"]\n\n\
        [[principal]]\nname = \"analyst\"\nroles = [\"research\"]\n\n\
        [[rule]]\nroles = [\"clinician\"]\npurposes = [\"treatment\"]\n\
        actions = [\"get\", \"put\", \"decrypt\", \"encrypt\", \"detokenize\", \"tokenize\"]\n\
        collections = [\"notes\"]\nfields = [\"ssn\", \"mrn\"]\nkeyrings = [\"default\"]\n\n\
        [[rule]]\nroles = [\"research\"]\npurposes = [\"research\"]\n\
        actions = [\"tokenize\", \"detokenize\"]\nfields = [\"ssn\"]\nview = \"masked\"\n\n\
        [[rule]]\nprincipals = [\"analyst\"]\nactions = [\"get\"]\ncollections = [\"*\"]\n\n\
        [[break_glass]]\nroles = [\"clinician\"]\n";
    for (i, picks) in [[0u8, 0, 0], [1, 1, 1], [3, 0, 2]].iter().enumerate() {
        let mut s = picks.to_vec();
        s.extend_from_slice(&[9]);
        s.extend_from_slice(b"emergency");
        s.extend_from_slice(policy.as_bytes());
        add("policy_toml", format!("clinic-{i}"), s);
    }
    add("policy_toml", "empty".into(), vec![0, 0, 0, 0]);

    // PostgreSQL URLs: what follows `postgres://user:password@`.
    for (name, u) in [
        ("plain", "localhost:5432/db"),
        (
            "verify-full",
            "db.internal/phivault?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        ),
        (
            "verify-ca-escaped",
            "h/db?sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca%20x.pem",
        ),
        (
            "pool",
            "h:1/db?pool_size=16&application_name=x&connect_timeout=3",
        ),
        ("refused", "h/db?sslcert=/c.pem&sslkey=/k.pem"),
        ("bad-escape", "h/db?sslmode=%zz"),
        (
            "multi-host",
            "h1:1,h2:2/db?sslmode=require&target_session_attrs=read-write",
        ),
    ] {
        add("pg_url", name.into(), u.as_bytes().to_vec());
    }

    // Audit log: a stored entry raw, and the fixed vault's log changed.
    if let Some((_, v)) = fx.entries(Space::Audit).first() {
        let mut s = vec![0u8];
        s.extend_from_slice(v);
        add("audit_log", "raw-entry".into(), s);
    }
    // Job spools: the fixed vault's first audit block as a worker's first record (it chains
    // from the empty log), whole, torn, and with a flipped byte.
    if let Some((_, v)) = fx.entries(Space::Audit).first() {
        let mut rec = (v.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(v);
        let mut whole = vec![0u8];
        whole.extend_from_slice(&rec);
        add("job_spool", "first-block".into(), whole.clone());
        add(
            "job_spool",
            "torn".into(),
            whole[..whole.len() - 5].to_vec(),
        );
        let mut flip = whole.clone();
        let n = flip.len();
        flip[n - 40] ^= 1;
        add("job_spool", "flipped".into(), flip);
        let id = crate::jobs::JobId::parse(FUZZ_JOB).expect("job id");
        let mut file = vec![1u8];
        file.extend_from_slice(&spool_header(&id));
        file.extend_from_slice(&rec);
        add("job_spool", "whole-file".into(), file);
    }
    for (name, s) in [
        ("entry-unchanged", vec![1u8, 0, 2, 0]),
        ("entry-flip", vec![1u8, 1, 2, 1, 0, 0, 3, 1]),
        ("entry-deleted", vec![1u8, 2, 0]),
        ("entry-append", vec![1u8, 0, 2, 1, 5, 0, 0, 0, 1, 0]),
        ("head-unchanged", vec![3u8, 2, 0]),
        ("head-flip", vec![3u8, 2, 1, 0, 0, 2, 1]),
        ("head-deleted", vec![3u8, 0]),
        ("head-raw", vec![3u8, 1, 5, 1, 2, 3]),
    ] {
        add("audit_log", name.into(), s);
    }

    // De-identification: schemas (raw, behind the TOML/JSON canary prefixes), paths, and
    // documents (single JSON behind an even byte, NDJSON behind an odd one).
    let sh = crate::deid::schema::SAFE_HARBOR_TOML.as_bytes().to_vec();
    add(
        "deid_schema",
        "safe-harbor".into(),
        [&[0u8][..], &sh].concat(),
    );
    for (name, mode, text) in [
        (
            "json",
            0u8,
            r#"{"default":"redact","rules":[{"path":"Patient.birthDate","action":"redact","partial":"year"},{"path":"$.a[*].b","action":"tokenize","field":"ssn"}]}"#,
        ),
        (
            "toml-prefix",
            1,
            "[[rule]]\npath = \"Observation.where(code.coding.code='x').value\"\naction = \"generalize\"\nbucket = 5\n",
        ),
        (
            "json-prefix",
            2,
            r#""rules": [{"path": "Resource.id", "action": "reference"}]}"#,
        ),
        (
            "substitute",
            3,
            "[[rule]]\npath = \"nodesByType('HumanName')\"\naction = \"dateShift\"\noffset_days = 3\n",
        ),
        (
            "bad-action",
            0,
            "[[rule]]\npath = \"Patient.id\"\naction = \"Canary-v9\"\n",
        ),
    ] {
        add(
            "deid_schema",
            name.into(),
            [&[mode][..], text.as_bytes()].concat(),
        );
    }
    for (name, p) in [
        (
            "ssn",
            "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn').value",
        ),
        ("human-name", "nodesByType('HumanName')"),
        (
            "address-in-extension",
            "Patient.extension.nodesByType('Address').line",
        ),
        ("resource-id", "Resource.id"),
        ("choice", "Observation.value"),
        ("json", "$.identifier[*].value"),
        ("bad", "Patient..where(x = 'y'"),
    ] {
        add("deid_path", name.into(), p.as_bytes().to_vec());
    }
    let patient = DEID_PATH_DOC.replace('\n', "");
    add(
        "deid_document",
        "patient".into(),
        [&[0u8][..], patient.as_bytes()].concat(),
    );
    let bundle = r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11","resource":{"resourceType":"Patient","name":[{"family":"Canary-v9-family"}]}},{"resource":{"resourceType":"Observation","status":"final","subject":{"reference":"urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11"},"effectiveDateTime":"2020-01-02T03:04:05Z"}}]}"#;
    add(
        "deid_document",
        "bundle".into(),
        [&[0u8][..], bundle.as_bytes()].concat(),
    );
    let ndjson = format!("{patient}\n{{\"broken\n[1]\n{bundle}\n");
    add(
        "deid_document",
        "ndjson".into(),
        [&[3u8][..], ndjson.as_bytes()].concat(),
    );

    // CSV tokenization: column picks, header mode (0 own header, 1 fixed + \n, 2 fixed +
    // \r\n), batch size byte, then CSV.
    let rows = "900-12-3456,MRN0012345,Ada Quist,1980-02-29,patient-1,seen 2024-01-02\n\
                900-65-4321,MRN0099999,,1975-12-31,patient-2,\n\
                ,MRN0012345,Ada Quist,,patient-1,\"follow-up, fasting\"\n";
    let csv_seeds: &[(&str, [u8; 3], &str)] = &[
        ("ssn-mrn", [0b0000_0011, 1, 0], rows),
        ("all-with-subject", [0b0101_1111, 1, 1], rows),
        ("pseudonym-crlf", [0b0000_0110, 2, 7], rows),
        (
            "quoted",
            [0b0001_0010, 1, 0],
            "900-12-3456,\"MRN, \"\"7\"\"\",\"Quist, Ada\",,p1,\"line one\nline two\"\n",
        ),
        ("ragged", [0b0000_0011, 1, 0], "900-12-3456,MRN0012345\n"),
        (
            "ragged-after-batch",
            [0b0000_0010, 1, 0],
            ",MRN1,,,,\n,MRN2,,,,\n,MRN3\n",
        ),
        ("missing-column", [0b0010_0001, 1, 0], rows),
        ("missing-subject-column", [0b1100_0001, 1, 0], rows),
        (
            "own-header",
            [0b0000_0010, 0, 2],
            "mrn,other\nMRN1,x\nMRN2,\"y\"\"z\"\n",
        ),
        (
            "own-header-dup",
            [0b0000_0011, 0, 0],
            "ssn,mrn,ssn\n900-12-3456,,keep\n",
        ),
        ("empty", [0b0000_0011, 0, 0], ""),
        ("header-only", [0b0000_0011, 1, 0], ""),
        ("blank-lines", [0b0000_0010, 1, 3], "\n\n,MRN1,,,,\n\n"),
        ("bad-value", [0b0000_0001, 1, 0], "1234,,,,,\n"),
    ];
    for (name, head, body) in csv_seeds {
        let mut s = head.to_vec();
        s.extend_from_slice(body.as_bytes());
        add("csv_tokenize", (*name).to_owned(), s);
    }
    let mut s = vec![0b0000_0011, 1, 0];
    s.extend_from_slice(b"900-12-3456,MRN\xff1,,,,\n");
    add("csv_tokenize", "not-utf8".into(), s);

    let mut written = 0;
    for (target, name, data) in seeds {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        let p = d.join(name);
        if !p.exists() {
            std::fs::write(p, data)?;
            written += 1;
        }
    }
    Ok(written)
}

/// The fields of a vault header (the same postcard layout as `VaultHeader`: format, vault
/// id, creation time, root parameters, wrapped vault master key), for comparing headers by
/// meaning and for writing seeds with other root parameters.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct HeaderView {
    format: u32,
    vault_id: [u8; 16],
    created_unix: u64,
    root: crate::root::RootParams,
    wrapped_vmk: Vec<u8>,
}

impl HeaderView {
    fn decode(bytes: &[u8]) -> Option<Self> {
        match postcard::take_from_bytes::<HeaderView>(bytes) {
            Ok((h, [])) => Some(h),
            _ => None,
        }
    }
}

/// `header` with other root parameters.
fn postcard_header(header: &[u8], params: &crate::root::RootParams) -> Vec<u8> {
    match HeaderView::decode(header) {
        Some(mut h) => {
            h.root = params.clone();
            postcard::to_allocvec(&h).unwrap_or_default()
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_sorted_and_unique() {
        assert!(TARGETS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// The committed csv_tokenize seeds reach both outcomes, so the output checks run.
    #[test]
    fn csv_seeds_reach_success_and_errors() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/csv_tokenize");
        let ok = [
            "ssn-mrn",
            "all-with-subject",
            "pseudonym-crlf",
            "quoted",
            "own-header",
            "own-header-dup",
            "header-only",
            "blank-lines",
        ];
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).expect("seeds").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(e.path()).expect("seed");
            let r = csv_tokenize_checked(&data);
            assert_eq!(r.is_ok(), ok.contains(&name.as_str()), "{name}: {r:?}");
            if let Ok(report) = r
                && name != "header-only"
            {
                assert!(report.cells > 0, "{name} tokenizes nothing");
            }
            seen += 1;
        }
        assert!(seen > ok.len(), "error seeds too");
    }

    #[test]
    fn fixture_tokens_detokenize() {
        let fx = fixture();
        for t in &fx.tokens {
            let r = if t.subject {
                fx.vault
                    .owner()
                    .detokenize_for_subject(t.field, &t.token, SUBJECT, View::Plaintext)
            } else {
                fx.vault
                    .owner()
                    .detokenize(t.field, &t.token, View::Plaintext)
            };
            assert_eq!(r.expect("detokenize").as_str(), t.value);
        }
        // One subject key per (subject, keyring): the record's keyring and the tokens'.
        assert_eq!(fx.entries(Space::Subject).len(), 2);
        assert_eq!(fx.entries(Space::Record).len(), 1);
        assert!(!fx.entries(Space::Token).is_empty());
        assert!(!fx.entries(Space::Keyring).is_empty());
    }
}
