//! Streaming encryption for large objects (DICOM studies, whole-slide images, FASTQ/BAM/VCF):
//! the STREAM construction (as in Tink's streaming AEAD and age) with constant memory, close to
//! raw AES-GCM speed, and random access that decrypts only the segments it needs.
//!
//! A stream is a header, then fixed-size segments, each sealed with AES-256-GCM under a key
//! derived from the file's own data key (DEK) and its header and context. Segment `i` uses the
//! nonce `prefix(7) ‖ i (u32, big-endian) ‖ last (0x00 or 0x01)`, so reordering, duplication,
//! truncation (even at a segment boundary) and extension are all detected. The DEK is wrapped
//! like any envelope's (by the keyring's active KEK, or by the subject's key), so a rotation
//! rewraps the header only, and `forget_subject` kills the file. Byte layout: docs/FORMAT.md.
//!
//! ```
//! use phivault::{Context, Vault, root::KeyFile, Key32, stream::StreamOptions};
//! use std::io::{Read, Write};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! let ctx = Context::new().with("study", "1.2.840.1");
//! let mut w = vault.owner().encrypt_writer(Vec::new(), &ctx, &StreamOptions::default())?;
//! w.write_all(&vec![7u8; 200_000])?;
//! let sealed = w.finish()?;
//! let mut r = vault.owner().decrypt_reader(sealed.as_slice(), &ctx)?;
//! let mut out = Vec::new();
//! r.read_to_end(&mut out)?;
//! assert_eq!(out, vec![7u8; 200_000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security notes
//! A streaming reader releases each segment once it is authenticated; a stream cut short is
//! only detected at its end. Consumers that must not act on partial data should decrypt to a
//! temporary file and use it once the reader reports a clean end (the CLI does this).

use crate::audit::Action;
use crate::backend::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::context::Context;
use crate::envelope::{self, FLAG_SUBJECT, Kek, SUBJECT_ID_LEN, WRAPPED_DEK_LEN};
use crate::kdf::{self, label};
use crate::keyring::DEFAULT_KEYRING;
use crate::keys::Keys;
use crate::outfile::PrivateOutput;
use crate::policy::Resource;
use crate::secret::Key32;
use crate::secret::ct_eq;
use crate::session::{Session, target};
use crate::vault::Vault;
use crate::{Error, Result};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Magic of a stream.
pub const MAGIC: [u8; 3] = *b"PVS";
/// Stream format version.
pub const VERSION: u8 = 1;
/// Suite id: AES-256-GCM STREAM with HKDF-SHA256 key derivation and key commitment.
pub const SUITE_AES256GCM_STREAM: u8 = 1;
/// Default segment size: 2^16 = 64 KiB of plaintext per segment.
pub const DEFAULT_SEGMENT_LOG2: u8 = 16;
const MIN_SEGMENT_LOG2: u8 = 12;
const MAX_SEGMENT_LOG2: u8 = 24;
const PREFIX_LEN: usize = 7;
const COMMIT_LEN: usize = 32;
const WRAP_AAD_LABEL: &[u8] = b"PVSW";

/// Options for encrypting a stream.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Keyring (default `default`).
    pub keyring: String,
    /// Ties the file to a data subject.
    pub subject: Option<String>,
    /// log2 of the plaintext segment size, 12..=24 (default 16: 64 KiB).
    pub segment_log2: u8,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            keyring: DEFAULT_KEYRING.to_owned(),
            subject: None,
            segment_log2: DEFAULT_SEGMENT_LOG2,
        }
    }
}

/// A parsed stream header.
#[derive(Clone, Debug)]
pub struct StreamHeader {
    bytes: Vec<u8>,
    keyring: String,
    subject: Option<[u8; SUBJECT_ID_LEN]>,
    key_version: u32,
    key_part: (usize, usize),
    segment_log2: u8,
    prefix: [u8; PREFIX_LEN],
}

impl StreamHeader {
    /// The keyring id.
    pub fn keyring(&self) -> &str {
        &self.keyring
    }
    /// The key version (of the keyring's KEK, or of the subject key).
    pub fn key_version(&self) -> u32 {
        self.key_version
    }
    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> usize {
        1usize << self.segment_log2
    }
    /// Header length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Never empty; for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// Whether the file is tied to a data subject.
    pub fn has_subject(&self) -> bool {
        self.subject.is_some()
    }

    /// Reads and parses a header from `r`, consuming exactly its bytes.
    pub fn read_from(r: &mut impl Read) -> Result<StreamHeader> {
        let fail = || Error::AuthenticationFailed;
        let mut fixed = [0u8; 7];
        r.read_exact(&mut fixed).map_err(|_| fail())?;
        if fixed[..3] != MAGIC {
            return Err(fail());
        }
        if fixed[3] != VERSION {
            return Err(Error::UnsupportedVersion {
                what: "stream",
                version: u32::from(fixed[3]),
            });
        }
        if fixed[4] != SUITE_AES256GCM_STREAM || fixed[5] & !FLAG_SUBJECT != 0 {
            return Err(fail());
        }
        let klen = usize::from(fixed[6]);
        let subject_len = if fixed[5] & FLAG_SUBJECT != 0 {
            SUBJECT_ID_LEN
        } else {
            0
        };
        let rest_len = klen + subject_len + 4 + WRAPPED_DEK_LEN + 1 + PREFIX_LEN + COMMIT_LEN;
        let mut rest = vec![0u8; rest_len];
        r.read_exact(&mut rest).map_err(|_| fail())?;
        let mut bytes = fixed.to_vec();
        bytes.extend_from_slice(&rest);
        Self::parse(bytes)
    }

    fn parse(bytes: Vec<u8>) -> Result<StreamHeader> {
        let fail = || Error::AuthenticationFailed;
        let klen = usize::from(bytes[6]);
        let name = std::str::from_utf8(&bytes[7..7 + klen]).map_err(|_| fail())?;
        envelope::check_keyring_name(name).map_err(|_| fail())?;
        let keyring = name.to_owned();
        let mut pos = 7 + klen;
        let subject = if bytes[5] & FLAG_SUBJECT != 0 {
            let mut s = [0u8; SUBJECT_ID_LEN];
            s.copy_from_slice(&bytes[pos..pos + SUBJECT_ID_LEN]);
            pos += SUBJECT_ID_LEN;
            Some(s)
        } else {
            None
        };
        let key_start = pos;
        let key_version = u32::from_be_bytes(bytes[pos..pos + 4].try_into().map_err(|_| fail())?);
        if key_version == 0 {
            return Err(fail());
        }
        pos += 4 + WRAPPED_DEK_LEN;
        let key_end = pos;
        let segment_log2 = bytes[pos];
        if !(MIN_SEGMENT_LOG2..=MAX_SEGMENT_LOG2).contains(&segment_log2) {
            return Err(fail());
        }
        pos += 1;
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&bytes[pos..pos + PREFIX_LEN]);
        Ok(StreamHeader {
            bytes,
            keyring,
            subject,
            key_version,
            key_part: (key_start, key_end),
            segment_log2,
            prefix,
        })
    }

    /// The header bytes outside the key part (which rewrap may change).
    fn stable(&self) -> Vec<u8> {
        let (ks, ke) = self.key_part;
        let mut v = self.bytes[..ks].to_vec();
        v.extend_from_slice(&self.bytes[ke..self.bytes.len() - COMMIT_LEN]);
        v
    }

    fn wrap_aad(&self, version: u32) -> Vec<u8> {
        let mut aad = WRAP_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.bytes[..self.key_part.0]);
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn commitment(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - COMMIT_LEN..]
    }
}

/// Stream key and commitment: HKDF-Expand(DEK, label ‖ stable header ‖ context).
fn stream_keys(dek: &Key32, stable: &[u8], ctx: &Context) -> Result<(Key32, [u8; COMMIT_LEN])> {
    let mut c = Vec::new();
    ctx.encode_into(&mut c)?;
    let mut okm = Zeroizing::new([0u8; 64]);
    kdf::expand(
        dek,
        &[
            label::STREAM,
            &(stable.len() as u64).to_be_bytes(),
            stable,
            &c,
        ],
        okm.as_mut(),
    )?;
    let key = Key32::from_slice(&okm[..32])?;
    let mut commit = [0u8; COMMIT_LEN];
    commit.copy_from_slice(&okm[32..]);
    Ok((key, commit))
}

fn segment_nonce(prefix: &[u8; PREFIX_LEN], index: u32, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
    n[NONCE_LEN - 1] = u8::from(last);
    n
}

fn io_err(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// An encrypting `Write`: buffers one segment, seals it when full, writes the last segment on
/// [`EncryptingWriter::finish`]. Dropping it without `finish` leaves a stream that fails to
/// decrypt at its end (never one that silently ends early).
pub struct EncryptingWriter<W: Write> {
    out: Option<W>,
    aead: Box<dyn AeadKey>,
    prefix: [u8; PREFIX_LEN],
    seg: usize,
    buf: Zeroizing<Vec<u8>>,
    index: u32,
}

impl<W: Write> EncryptingWriter<W> {
    fn seal_segment(&mut self, last: bool) -> io::Result<()> {
        let nonce = segment_nonce(&self.prefix, self.index, last);
        let tag = self
            .aead
            .seal_detached(&nonce, &[], &mut self.buf)
            .map_err(io_err)?;
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("stream already finished"))?;
        out.write_all(&self.buf)?;
        out.write_all(&tag)?;
        self.buf.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io_err(Error::invalid("stream", "more than 2^32 segments")))?;
        Ok(())
    }

    /// Seals the final segment and returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_segment(true)?;
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("stream already finished"))?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < data.len() {
            if self.buf.len() == self.seg {
                // More data follows a full segment: it is not the last one.
                self.seal_segment(false)?;
            }
            let take = (self.seg - self.buf.len()).min(data.len() - done);
            self.buf.extend_from_slice(&data[done..done + take]);
            done += take;
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

/// A decrypting `Read`: authenticates each segment before releasing it; reports a stream
/// that ends without its final segment (truncation) or continues after it (extension) as an
/// `InvalidData` error wrapping [`Error::AuthenticationFailed`].
pub struct DecryptingReader<R: Read> {
    input: io::BufReader<R>,
    aead: Box<dyn AeadKey>,
    prefix: [u8; PREFIX_LEN],
    seg: usize,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    index: u32,
    done: bool,
}

impl<R: Read> DecryptingReader<R> {
    fn next_segment(&mut self) -> io::Result<()> {
        let want = self.seg + TAG_LEN;
        let mut buf = std::mem::take(&mut *self.plain);
        buf.clear();
        buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            let n = self.input.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let last = got < want || self.input.fill_buf()?.is_empty();
        if got < TAG_LEN {
            return Err(io_err(Error::AuthenticationFailed));
        }
        buf.truncate(got);
        let split = got - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buf[split..]);
        buf.truncate(split);
        let nonce = segment_nonce(&self.prefix, self.index, last);
        self.aead
            .open_detached(&nonce, &[], &mut buf, &tag)
            .map_err(io_err)?;
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io_err(Error::AuthenticationFailed))?;
        *self.plain = buf;
        self.pos = 0;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A decrypting reader with random access: `Seek` anywhere, and only the segments that hold
/// the requested bytes are read and authenticated.
pub struct SeekableReader<R: Read + Seek> {
    input: R,
    aead: Box<dyn AeadKey>,
    prefix: [u8; PREFIX_LEN],
    seg: usize,
    header_len: u64,
    segments: u64,
    plaintext_len: u64,
    pos: u64,
    cached: Option<(u64, Zeroizing<Vec<u8>>)>,
}

impl<R: Read + Seek> SeekableReader<R> {
    /// Total plaintext length.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        if self.cached.as_ref().is_some_and(|(i, _)| *i == index) {
            return Ok(());
        }
        let seg_ct = (self.seg + TAG_LEN) as u64;
        let start = self.header_len + index * seg_ct;
        let last = index + 1 == self.segments;
        let len = if last {
            (self.plaintext_len - index * self.seg as u64) as usize + TAG_LEN
        } else {
            self.seg + TAG_LEN
        };
        self.input.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; len];
        self.input
            .read_exact(&mut buf)
            .map_err(|_| io_err(Error::AuthenticationFailed))?;
        let split = len - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buf[split..]);
        buf.truncate(split);
        let idx = u32::try_from(index).map_err(|_| io_err(Error::AuthenticationFailed))?;
        let nonce = segment_nonce(&self.prefix, idx, last);
        self.aead
            .open_detached(&nonce, &[], &mut buf, &tag)
            .map_err(io_err)?;
        self.cached = Some((index, Zeroizing::new(buf)));
        Ok(())
    }
}

impl<R: Read + Seek> Read for SeekableReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plaintext_len || out.is_empty() {
            // An empty stream still has one (empty, last) segment to authenticate.
            if self.plaintext_len == 0 && self.segments == 1 {
                self.load(0)?;
            }
            return Ok(0);
        }
        let index = self.pos / self.seg as u64;
        self.load(index)?;
        let off = (self.pos - index * self.seg as u64) as usize;
        let plain = self
            .cached
            .as_ref()
            .map(|(_, p)| p.as_slice())
            .unwrap_or(&[]);
        let n = out.len().min(plain.len().saturating_sub(off));
        out[..n].copy_from_slice(&plain[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekableReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let t = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        self.pos = t;
        Ok(t)
    }
}

fn wrapping_key(
    keys: &Keys,
    opts: &StreamOptions,
) -> Result<(Option<[u8; SUBJECT_ID_LEN]>, Arc<Kek>)> {
    match &opts.subject {
        Some(s) => {
            let (id, key) = keys.subject_key_for_write(s, &opts.keyring)?;
            Ok((Some(id), key))
        }
        None => Ok((None, keys.keyring(&opts.keyring)?.active_kek()?)),
    }
}

/// Starts a stream into `out` under the keys of the vault: the header is written at once.
/// Who may is decided by the session that calls this.
fn start_writer<W: Write>(
    keys: &Keys,
    mut out: W,
    ctx: &Context,
    opts: &StreamOptions,
) -> Result<EncryptingWriter<W>> {
    envelope::check_keyring_name(&opts.keyring)?;
    if !(MIN_SEGMENT_LOG2..=MAX_SEGMENT_LOG2).contains(&opts.segment_log2) {
        return Err(Error::invalid(
            "segment size",
            "log2 must be between 12 and 24",
        ));
    }
    ctx.validate()?;
    let (subject, kek) = wrapping_key(keys, opts)?;
    let dek = Key32::random()?;
    let mut prefix = [0u8; PREFIX_LEN];
    crate::random::fill_random(&mut prefix)?;
    let mut h = MAGIC.to_vec();
    h.push(VERSION);
    h.push(SUITE_AES256GCM_STREAM);
    h.push(if subject.is_some() { FLAG_SUBJECT } else { 0 });
    h.push(opts.keyring.len() as u8);
    h.extend_from_slice(opts.keyring.as_bytes());
    if let Some(s) = &subject {
        h.extend_from_slice(s);
    }
    let key_start = h.len();
    let mut waad = WRAP_AAD_LABEL.to_vec();
    waad.extend_from_slice(&h);
    waad.extend_from_slice(&kek.version().to_be_bytes());
    h.extend_from_slice(&kek.version().to_be_bytes());
    h.extend_from_slice(&kek.wrap(&waad, dek.expose())?);
    let key_end = h.len();
    h.push(opts.segment_log2);
    h.extend_from_slice(&prefix);
    let mut stable = h[..key_start].to_vec();
    stable.extend_from_slice(&h[key_end..]);
    let (key, commit) = stream_keys(&dek, &stable, ctx)?;
    h.extend_from_slice(&commit);
    out.write_all(&h)
        .map_err(|e| Error::io("writing stream header", e))?;
    let seg = 1usize << opts.segment_log2;
    Ok(EncryptingWriter {
        out: Some(out),
        aead: keys.backend.aes256gcm(&key)?,
        prefix,
        seg,
        buf: Zeroizing::new(Vec::with_capacity(seg)),
        index: 0,
    })
}

/// Unwraps the stream key of an authenticated header under the vault's keys.
fn open_header(keys: &Keys, header: &StreamHeader, ctx: &Context) -> Result<Box<dyn AeadKey>> {
    let kek = match &header.subject {
        Some(id) => keys.subject_key_for_envelope(id, &header.keyring)?,
        None => keys
            .keyring(&header.keyring)?
            .decrypting_kek(header.key_version)?,
    };
    if kek.version() != header.key_version {
        return Err(Error::AuthenticationFailed);
    }
    let (ks, ke) = header.key_part;
    let dek = kek.unwrap(
        &header.wrap_aad(header.key_version),
        &header.bytes[ks + 4..ke],
    )?;
    let dek = Key32::from_slice(dek.expose()).map_err(|_| Error::AuthenticationFailed)?;
    let (key, commit) = stream_keys(&dek, &header.stable(), ctx)?;
    if !ct_eq(&commit, header.commitment()) {
        return Err(Error::AuthenticationFailed);
    }
    keys.backend.aes256gcm(&key)
}

impl Vault {
    /// Rewraps a stream file's header under its keyring's active version: only the key
    /// version and wrapped DEK (fixed size) change; segments are copied as they are. The new
    /// file is written beside the old one and renamed over it ([`crate::outfile`]), so a crash
    /// leaves the old file or the new one, never a torn header. Returns whether anything
    /// changed. Owner only; audited.
    pub fn rewrap_file(&self, path: &Path) -> Result<bool> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let header = StreamHeader::read_from(&mut f)?;
        if header.subject.is_some() {
            return Ok(false);
        }
        let kr = self.keys.keyring(&header.keyring)?;
        if kr.active == header.key_version {
            return Ok(false);
        }
        self.audit.admin(
            crate::audit::Action::Admin,
            &header.keyring,
            None,
            "rewrap stream file".into(),
        )?;
        let old = kr.decrypting_kek(header.key_version)?;
        let new = kr.active_kek()?;
        let (ks, ke) = header.key_part;
        let dek = old.unwrap(
            &header.wrap_aad(header.key_version),
            &header.bytes[ks + 4..ke],
        )?;
        let mut head = header.bytes[..ks].to_vec();
        head.extend_from_slice(&new.version().to_be_bytes());
        head.extend_from_slice(&new.wrap(&header.wrap_aad(new.version()), dek.expose())?);
        head.extend_from_slice(&header.bytes[ke..]);
        let io_err = |e| Error::io(format!("rewriting {}", path.display()), e);
        let mut out = PrivateOutput::create(path).map_err(io_err)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, out.take_file().map_err(io_err)?);
        w.write_all(&head).map_err(io_err)?;
        f.seek(SeekFrom::Start(header.len() as u64))
            .map_err(io_err)?;
        io::copy(&mut f, &mut w).map_err(io_err)?;
        let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        out.commit_file(file).map_err(io_err)?;
        Ok(true)
    }
}

/// Turns an `io::Error` that wraps a phivault error back into it.
fn unwrap_io(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner()
            && let Ok(err) = inner.downcast::<Error>()
        {
            return *err;
        }
        return Error::AuthenticationFailed;
    }
    Error::io("streaming", e)
}

fn copy_with_progress(
    r: &mut impl Read,
    w: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let mut buf = Zeroizing::new(vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
        progress(total);
    }
    Ok(total)
}

/// Streams as a [`Session`]'s caller: each call is one policy decision on the stream's keyring
/// (action `encrypt` or `decrypt`) and one audit entry, before any data moves.
impl Session<'_> {
    fn allow_stream(&self, action: Action, keyring: &str, detail: &str) -> Result<()> {
        let mut t = target(keyring, None, 1);
        t.detail = Some(detail.to_owned());
        self.allow(action, Resource::Keyring(keyring), t)
    }

    /// Starts encrypting a stream into `out` (the header is written at once).
    pub fn encrypt_writer<W: Write>(
        &self,
        out: W,
        ctx: &Context,
        opts: &StreamOptions,
    ) -> Result<EncryptingWriter<W>> {
        envelope::check_keyring_name(&opts.keyring)?;
        self.allow_stream(Action::Encrypt, &opts.keyring, "stream")?;
        start_writer(&self.vault().keys, out, ctx, opts)
    }

    /// Starts decrypting a stream from `input`: the header is read, the decision taken on its
    /// keyring, then the header is authenticated (all before this returns).
    pub fn decrypt_reader<R: Read>(&self, input: R, ctx: &Context) -> Result<DecryptingReader<R>> {
        let mut input = io::BufReader::with_capacity(1 << 20, input);
        let header = StreamHeader::read_from(&mut input)?;
        self.allow_stream(Action::Decrypt, &header.keyring, "stream")?;
        let aead = open_header(&self.vault().keys, &header, ctx)?;
        Ok(DecryptingReader {
            input,
            aead,
            prefix: header.prefix,
            seg: header.segment_size(),
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            index: 0,
            done: false,
        })
    }

    /// A random-access decrypting reader (the header is read, decided on and authenticated
    /// first).
    pub fn decrypt_seekable<R: Read + Seek>(
        &self,
        mut input: R,
        ctx: &Context,
    ) -> Result<SeekableReader<R>> {
        input
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seeking stream", e))?;
        let header = StreamHeader::read_from(&mut input)?;
        self.allow_stream(Action::Decrypt, &header.keyring, "stream (random access)")?;
        let aead = open_header(&self.vault().keys, &header, ctx)?;
        let total = input
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("seeking stream", e))?;
        let header_len = header.len() as u64;
        let body = total
            .checked_sub(header_len)
            .ok_or(Error::AuthenticationFailed)?;
        let seg = header.segment_size() as u64;
        let seg_ct = seg + TAG_LEN as u64;
        // Every segment but the last is full; the last holds 0..=seg bytes plus its tag.
        let segments = if body == 0 { 0 } else { body.div_ceil(seg_ct) };
        let last_len = body
            .checked_sub(segments.saturating_sub(1) * seg_ct)
            .ok_or(Error::AuthenticationFailed)?;
        if segments == 0 || last_len < TAG_LEN as u64 {
            return Err(Error::AuthenticationFailed);
        }
        let plaintext_len = (segments - 1) * seg + (last_len - TAG_LEN as u64);
        Ok(SeekableReader {
            input,
            aead,
            prefix: header.prefix,
            seg: seg as usize,
            header_len,
            segments,
            plaintext_len,
            pos: 0,
            cached: None,
        })
    }

    /// Encrypts file `input` to `output` as this caller. The output is written under a
    /// private temporary name and renamed into place, durably, only when complete
    /// ([`crate::outfile`]). Returns the plaintext length.
    pub fn encrypt_file(
        &self,
        input: &Path,
        output: &Path,
        ctx: &Context,
        opts: &StreamOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let mut src = std::fs::File::open(input)
            .map_err(|e| Error::io(format!("opening {}", input.display()), e))?;
        let mut out = PrivateOutput::create(output)
            .map_err(|e| Error::io(format!("creating a file beside {}", output.display()), e))?;
        let dst = out.take_file().map_err(|e| Error::io("writing", e))?;
        let mut w = self.encrypt_writer(io::BufWriter::with_capacity(1 << 20, dst), ctx, opts)?;
        let n = copy_with_progress(&mut src, &mut w, progress)
            .map_err(|e| Error::io("encrypting", e))?;
        let f = w.finish().map_err(|e| Error::io("encrypting", e))?;
        let f = f
            .into_inner()
            .map_err(|e| Error::io("writing", e.into_error()))?;
        out.commit_file(f)
            .map_err(|e| Error::io(format!("writing {}", output.display()), e))?;
        Ok(n)
    }

    /// Decrypts file `input` to `output` as this caller. The output (PHI) is written under a
    /// private temporary name (0600, created exclusively, never through a symbolic link) and
    /// renamed into place only when the whole stream authenticated: a damaged file, or a
    /// refused caller, leaves no output. Returns the length.
    pub fn decrypt_file(
        &self,
        input: &Path,
        output: &Path,
        ctx: &Context,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let src = std::fs::File::open(input)
            .map_err(|e| Error::io(format!("opening {}", input.display()), e))?;
        // The decision comes before any output file exists.
        let mut r = self.decrypt_reader(src, ctx)?;
        let mut out = PrivateOutput::create(output)
            .map_err(|e| Error::io(format!("creating a file beside {}", output.display()), e))?;
        let dst = out.take_file().map_err(|e| Error::io("writing", e))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, dst);
        let n = copy_with_progress(&mut r, &mut w, progress).map_err(unwrap_io)?;
        let f = w
            .into_inner()
            .map_err(|e| Error::io("writing", e.into_error()))?;
        out.commit_file(f)
            .map_err(|e| Error::io(format!("writing {}", output.display()), e))?;
        Ok(n)
    }
}
