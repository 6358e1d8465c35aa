//! Reading sled's log below sled: finding damaged messages on open, and stepping over them in
//! a *copy* of the log for salvage, so that sled's recovery reads what follows the damage.
//!
//! sled 0.34 keeps its data in one log file (`db`) of fixed-size segments. Each segment starts
//! with a 20-byte header (CRC32, LSN, max stable LSN) and holds messages, each with a header
//! (CRC32 over header and body, kind, body length, segment number, page id) and a body (a page
//! or a page fragment). sled's recovery reads the first message whose CRC fails as the torn end
//! of its segment and drops the rest of that segment without a word, so one flipped bit can
//! silently drop writes that follow it.
//!
//! - [`damaged_messages`] (read only) counts damaged messages that valid ones follow: the vault
//!   refuses to open a store that has any (`Error::StoreCorrupted`).
//! - [`repair_log`] (salvage's copy only, never a vault's own store) rewrites each damaged
//!   message recovery can do without as one "canceled" message (the kind sled writes for an
//!   aborted reservation and skips on recovery), found from the next message whose CRC holds,
//!   rebuilds a damaged segment header from its first message, and deletes sled's snapshot
//!   files so that recovery replays the whole log ([`Repair::StepOver`]); or ends the log
//!   cleanly at the first damage ([`Repair::EndAtDamage`]). Every entry salvage copies is
//!   still authenticated by phivault itself.
//!
//! The byte layout is sled 0.34's (`pagecache/logger.rs`, `pagecache/iterator.rs`,
//! `serialization.rs`); the workspace pins `sled` to `~0.34.7`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Bytes of a segment header.
const SEG_HEADER_LEN: usize = 20;
/// The most bytes a message header takes.
const MAX_MSG_HEADER_LEN: usize = 32;
/// The fewest bytes a message header takes (CRC, kind, three one-byte varints).
const MIN_MSG_HEADER_LEN: usize = 8;
/// sled's message kinds this module reads or writes.
const KIND_CORRUPTED: u8 = 0;
const KIND_CANCELED: u8 = 1;
const KIND_CAP: u8 = 2;
const KIND_BATCH_MANIFEST: u8 = 3;
const KIND_FREE: u8 = 4;
const KIND_COUNTER: u8 = 5;
const KIND_INLINE_META: u8 = 6;
const KIND_BLOB_NODE: u8 = 9;
const KIND_INLINE_LINK: u8 = 10;
const KIND_BLOB_LINK: u8 = 11;
const KIND_MAX: u8 = 11;

/// What [`repair_log`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogRepair {
    /// Segments whose header authenticated and were walked.
    pub segments: u64,
    /// Damaged stretches replaced by a canceled message (or a segment cap).
    pub stretches: u64,
    /// Bytes in those stretches: the data lost.
    pub bytes: u64,
}

/// sled's variable-length integer (`serialization.rs`, `impl Serialize for u64`).
fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    match first {
        0..=240 => Some((u64::from(first), 1)),
        241..=248 => Some((
            240 + 256 * (u64::from(first) - 241) + u64::from(*buf.get(1)?),
            2,
        )),
        249 => Some((
            2288 + 256 * u64::from(*buf.get(1)?) + u64::from(*buf.get(2)?),
            3,
        )),
        other => {
            let sz = usize::from(other) - 247;
            let mut aligned = [0u8; 8];
            aligned[..sz].copy_from_slice(buf.get(1..=sz)?);
            Some((u64::from_le_bytes(aligned), sz + 1))
        }
    }
}

fn write_varint(v: u64, out: &mut Vec<u8>) {
    // Each arm's value fits the bytes it writes (the bounds are sled's).
    if v <= 240 {
        out.push(v as u8);
    } else if v <= 2287 {
        out.push(((v - 240) / 256 + 241) as u8);
        out.push(((v - 240) % 256) as u8);
    } else if v <= 67823 {
        out.push(249);
        out.push(((v - 2288) / 256) as u8);
        out.push(((v - 2288) % 256) as u8);
    } else {
        let bytes = v.to_le_bytes();
        let sz = (8 - (v.leading_zeros() / 8) as usize).max(3);
        out.push(247 + sz as u8);
        out.extend_from_slice(&bytes[..sz]);
    }
}

/// sled's message CRC: over the body, then the header after its CRC field, inverted.
fn message_crc(header_after_crc: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(body);
    h.update(header_after_crc);
    h.finalize() ^ 0xFFFF_FFFF
}

/// The length of the valid message at `at` in `seg` (a segment's bytes), with its kind.
fn valid_message(seg: &[u8], at: usize, segment_number: u64) -> Option<(usize, u8)> {
    let rest = seg.get(at..)?;
    if rest.len() < MAX_MSG_HEADER_LEN {
        return None;
    }
    let crc = u32::from_le_bytes(rest[..4].try_into().ok()?);
    let kind = rest[4];
    if kind == KIND_CORRUPTED || kind > KIND_MAX {
        return None;
    }
    let mut pos = 5;
    let (len, n) = read_varint(&rest[pos..])?;
    pos += n;
    let (seg_no, n) = read_varint(&rest[pos..])?;
    pos += n;
    let (_pid, n) = read_varint(&rest[pos..])?;
    pos += n;
    if seg_no != segment_number {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    let body = rest.get(pos..pos.checked_add(len)?)?;
    (message_crc(&rest[4..pos], body) == crc).then_some((pos + len, kind))
}

/// A message of `kind` taking exactly `total` bytes (header and body), its body zeroed.
fn filler(kind: u8, total: usize, segment_number: u64) -> Option<Vec<u8>> {
    for header_len in MIN_MSG_HEADER_LEN..=MAX_MSG_HEADER_LEN {
        let body_len = total.checked_sub(header_len)? as u64;
        let mut h = Vec::with_capacity(MAX_MSG_HEADER_LEN);
        h.push(kind);
        write_varint(body_len, &mut h);
        write_varint(segment_number, &mut h);
        write_varint(0, &mut h);
        if 4 + h.len() != header_len {
            continue;
        }
        let body = vec![0u8; total - header_len];
        let mut out = message_crc(&h, &body).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&body);
        return Some(out);
    }
    None
}

/// A damaged message's header read without its checksum: (kind, total length, page id).
fn damaged_header(seg: &[u8], at: usize, segment_number: u64) -> Option<(u8, usize, u64)> {
    let rest = seg.get(at..)?;
    let kind = *rest.get(4)?;
    let mut pos = 5;
    let (len, n) = read_varint(rest.get(pos..)?)?;
    pos += n;
    let (seg_no, n) = read_varint(rest.get(pos..)?)?;
    pos += n;
    let (pid, n) = read_varint(rest.get(pos..)?)?;
    pos += n;
    let total = pos.checked_add(usize::try_from(len).ok()?)?;
    (seg_no == segment_number && (KIND_BATCH_MANIFEST..=KIND_MAX).contains(&kind))
        .then_some((kind, total, pid))
}

/// One message slot of the log, as recovery meets it.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// A message whose checksum holds.
    Valid {
        /// Offset in the log file, and length.
        at: usize,
        len: usize,
        kind: u8,
        pid: u64,
    },
    /// A damaged stretch up to the next valid message (or the end of the segment).
    Damaged {
        at: usize,
        stop: usize,
        /// The damaged message's header, if it still reads.
        header: Option<(u8, usize, u64)>,
        /// A valid message follows in the segment.
        more: bool,
    },
}

/// The message slots of one segment (`seg` starts at log offset `base`), up to its cap or
/// the unwritten end.
fn slots(seg: &[u8], base: usize, segment_number: u64, out: &mut Vec<Slot>) {
    let end = seg.len().saturating_sub(MAX_MSG_HEADER_LEN);
    let mut at = SEG_HEADER_LEN;
    while at < end {
        if let Some((len, kind)) = valid_message(seg, at, segment_number) {
            if kind == KIND_CAP {
                return;
            }
            let pid = damaged_header(seg, at, segment_number).map_or(0, |h| h.2);
            out.push(Slot::Valid {
                at: base + at,
                len,
                kind,
                pid,
            });
            at += len;
            continue;
        }
        // Damage, or the unwritten end of the segment (zeros: sled's normal end of log).
        if seg[at..].iter().all(|&b| b == 0) {
            return;
        }
        let next = (at + MIN_MSG_HEADER_LEN..end)
            .find(|&q| seg[q] != 0 && valid_message(seg, q, segment_number).is_some());
        let stop = next.unwrap_or(seg.len());
        out.push(Slot::Damaged {
            at: base + at,
            stop: base + stop,
            header: damaged_header(seg, at, segment_number),
            more: next.is_some(),
        });
        at = stop;
    }
}

fn is_replace(kind: u8) -> bool {
    (KIND_INLINE_META..=KIND_BLOB_NODE).contains(&kind) && kind != KIND_COUNTER
}

fn is_link(kind: u8) -> bool {
    kind == KIND_INLINE_LINK || kind == KIND_BLOB_LINK
}

/// The log offsets to overwrite with filler messages: (from, to, cap).
///
/// A damaged stretch is stepped over when recovery can do without it: a page fragment (the
/// page keeps its other fragments), a counter or batch marker, or a page replacement of a
/// page that an earlier message created (the page keeps that older state) or that a later
/// replacement re-creates (the fragments between, which amended the lost state, are stepped
/// over too). Any other damage — a page that would be left with no state at all, which sled
/// cannot recover from — is left for recovery to cut the segment there, as it does today.
fn plan(slots: &[Slot], segment_size: usize) -> Vec<(usize, usize, bool)> {
    let mut replaced_later: HashMap<u64, Vec<usize>> = HashMap::new();
    for s in slots {
        if let Slot::Valid { at, kind, pid, .. } = *s
            && (is_replace(kind) || kind == KIND_FREE)
        {
            replaced_later.entry(pid).or_default().push(at);
        }
    }
    let mut seen: HashSet<u64> = HashSet::new();
    // Pages whose lost state is re-created at a later offset: their fragments before it go.
    let mut orphaned: HashMap<u64, usize> = HashMap::new();
    let mut fills = Vec::new();
    // Once recovery cuts a segment, the rest of that segment is not read.
    let mut cut: HashSet<usize> = HashSet::new();
    for s in slots {
        match *s {
            Slot::Valid { at, len, kind, pid } => {
                if cut.contains(&(at / segment_size)) {
                    continue;
                }
                if is_link(kind) && orphaned.get(&pid).is_some_and(|&until| at < until) {
                    fills.push((at, at + len, false));
                    continue;
                }
                // A page has a state to fall back on while its last message is not a free.
                if kind == KIND_FREE {
                    seen.remove(&pid);
                } else if kind > KIND_COUNTER {
                    seen.insert(pid);
                }
            }
            Slot::Damaged {
                at,
                stop,
                header,
                more,
            } => {
                if cut.contains(&(at / segment_size)) {
                    continue;
                }
                let skip = match header {
                    Some((kind, _, _)) if is_link(kind) => true,
                    Some((KIND_BATCH_MANIFEST | KIND_COUNTER, total, _)) => at + total == stop,
                    Some((_, total, pid)) if at + total == stop || !more => {
                        if seen.contains(&pid) {
                            true
                        } else if let Some(&later) = replaced_later
                            .get(&pid)
                            .and_then(|v| v.iter().find(|&&l| l > at))
                        {
                            orphaned.insert(pid, later);
                            true
                        } else {
                            false
                        }
                    }
                    _ => false,
                };
                if skip {
                    fills.push((at, stop, !more));
                } else {
                    // Recovery stops reading this segment here.
                    cut.insert(at / segment_size);
                }
            }
        }
    }
    fills
}

/// [`Repair::EndAtDamage`]: the cap at the first damage; the later segments' headers zeroed
/// in `log` (recovery ignores a segment whose header does not check).
fn end_at_damage(
    slots: &[Slot],
    size: usize,
    order: &[(u64, usize, u64)],
    log: &mut [u8],
) -> Vec<(usize, usize, bool)> {
    let Some(at) = slots.iter().find_map(|s| match *s {
        Slot::Damaged { at, .. } => Some(at),
        Slot::Valid { .. } => None,
    }) else {
        return Vec::new();
    };
    let seg = at / size;
    let seg_end = ((seg + 1) * size).min(log.len());
    let Some(pos) = order.iter().position(|&(_, i, _)| i == seg) else {
        return Vec::new();
    };
    for &(_, i, _) in &order[pos + 1..] {
        log[i * size..i * size + SEG_HEADER_LEN].fill(0);
    }
    vec![(at, seg_end, true)]
}

/// The LSN of a segment whose header is damaged, from its first message's segment number.
fn lost_header_lsn(seg: &[u8], size: usize) -> Option<u64> {
    let rest = seg.get(SEG_HEADER_LEN..)?;
    let mut pos = 5;
    let (_, n) = read_varint(rest.get(pos..)?)?;
    pos += n;
    let (seg_no, _) = read_varint(rest.get(pos..)?)?;
    valid_message(seg, SEG_HEADER_LEN, seg_no)?;
    seg_no.checked_mul(size as u64)
}

fn segment_header(lsn: u64, max_stable_lsn: u64) -> [u8; SEG_HEADER_LEN] {
    let mut h = [0u8; SEG_HEADER_LEN];
    h[4..12].copy_from_slice(&(lsn ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
    h[12..20].copy_from_slice(&(max_stable_lsn ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
    let crc = crc32fast::hash(&h[4..20]) ^ 0xFFFF_FFFF;
    h[..4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The segment size in sled's `conf` file of the store in `dir`.
fn segment_size(dir: &Path) -> std::io::Result<usize> {
    // Text lines, then sled's binary checksum.
    let conf = std::fs::read(dir.join("conf"))?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|s| s.is_power_of_two() && *s >= 256)
        .ok_or_else(|| std::io::Error::other("sled conf has no valid segment_size"))
}

/// How [`repair_log`] treats damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Step over the damaged messages recovery can do without (the rules are in `plan`).
    StepOver,
    /// End the log cleanly at its first damaged message: that segment is capped there and
    /// every later segment dropped. For logs where stepping over leaves sled a page state it
    /// cannot recover (it asserts); loses everything after the damage, as sled's own
    /// recovery would, but leaves a log it recovers from.
    EndAtDamage,
}

/// One valid message of a sled log (for tests and diagnosis: where the log's pages are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogMessage {
    /// Offset in the log file.
    pub offset: usize,
    /// Bytes, header and body.
    pub len: usize,
    /// sled's message kind (8: a page, 10: a page fragment).
    pub kind: u8,
    /// The page id.
    pub pid: u64,
}

/// The valid messages of the sled store in `dir`, in log order (read only).
pub fn messages(dir: &Path) -> std::io::Result<Vec<LogMessage>> {
    let size = segment_size(dir)?;
    let log = std::fs::read(dir.join("db"))?;
    let all = log_slots(&log, size, &segment_order(&log, size));
    Ok(all
        .into_iter()
        .filter_map(|s| match s {
            Slot::Valid { at, len, kind, pid } => Some(LogMessage {
                offset: at,
                len,
                kind,
                pid,
            }),
            Slot::Damaged { .. } => None,
        })
        .collect())
}

/// Damaged messages in the log of the sled store in `dir` that sled's recovery would read as
/// the end of their segment although valid messages follow: written data lost, which the
/// store itself does not report. Unwritten (zeroed) stretches, which a crash can leave, do
/// not count; neither does damage at the very end of a segment (indistinguishable from a torn
/// last write: the commit anchor covers that). Read only.
pub fn damaged_messages(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let size = segment_size(dir)?;
    let file = std::fs::File::open(dir.join("db"))?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    // One segment in memory at a time: headers first, then each segment in log order.
    let mut head = [0u8; SEG_HEADER_LEN];
    let mut order = Vec::new();
    for i in 0..len.div_ceil(size) {
        if len - i * size < SEG_HEADER_LEN + MAX_MSG_HEADER_LEN {
            continue;
        }
        file.read_exact_at(&mut head, (i * size) as u64)?;
        if let Some((lsn, stable)) = segment_header_fields(&head) {
            order.push((lsn, i, stable));
        }
    }
    order.sort_unstable();
    let mut seg = vec![0u8; size];
    let mut found = 0u64;
    for (lsn, i, _) in order {
        let n = size.min(len - i * size);
        file.read_exact_at(&mut seg[..n], (i * size) as u64)?;
        let mut slots_of = Vec::new();
        slots(&seg[..n], 0, lsn / size as u64, &mut slots_of);
        found += slots_of
            .iter()
            .filter(|sl| match **sl {
                Slot::Damaged { at, stop, more, .. } => {
                    more && seg[at..stop].iter().any(|&b| b != 0)
                }
                Slot::Valid { .. } => false,
            })
            .count() as u64;
    }
    Ok(found)
}

/// The message slots of the segments in `order`, in log order.
fn log_slots(log: &[u8], size: usize, order: &[(u64, usize, u64)]) -> Vec<Slot> {
    let mut all = Vec::new();
    for &(lsn, i, _) in order {
        let end = ((i + 1) * size).min(log.len());
        slots(&log[i * size..end], i * size, lsn / size as u64, &mut all);
    }
    all
}

/// The LSN and max stable LSN of a segment header that checks.
fn segment_header_fields(seg: &[u8]) -> Option<(u64, u64)> {
    let head = seg.get(..SEG_HEADER_LEN)?;
    let crc = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) ^ 0xFFFF_FFFF;
    if crc != crc32fast::hash(&head[4..]) {
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(w) ^ 0x7FFF_FFFF_FFFF_FFFF
    };
    Some((word(4), word(12)))
}

/// The segments whose header checks, as (LSN, index in the file, max stable LSN).
fn segment_order(log: &[u8], size: usize) -> Vec<(u64, usize, u64)> {
    let mut order = Vec::new();
    for (i, seg) in log.chunks(size).enumerate() {
        if seg.len() < SEG_HEADER_LEN + MAX_MSG_HEADER_LEN {
            continue;
        }
        if let Some((lsn, stable)) = segment_header_fields(seg) {
            order.push((lsn, i, stable));
        }
    }
    order.sort_unstable();
    order
}

/// Repairs the log of the sled store in `dir` (a copy) as `how` says, gives a segment whose
/// header is damaged its header back (from its first message), and removes sled's snapshot
/// files, so that sled's recovery replays the whole log.
pub fn repair_log(dir: &Path, how: Repair) -> std::io::Result<LogRepair> {
    let size = segment_size(dir)?;
    let path = dir.join("db");
    let mut log = std::fs::read(&path)?;
    let mut repair = LogRepair::default();
    let mut changed = false;
    // Segments in log order (recovery's order), each by its header's LSN.
    let mut order = segment_order(&log, size);
    let mut lost_headers = Vec::new();
    for (i, seg) in log.chunks(size).enumerate() {
        if seg.len() >= SEG_HEADER_LEN + MAX_MSG_HEADER_LEN
            && !order.iter().any(|&(_, j, _)| j == i)
            && let Some(lsn) = lost_header_lsn(seg, size)
        {
            lost_headers.push((lsn, i));
        }
    }
    for (lsn, i) in lost_headers {
        if order.iter().any(|&(l, _, _)| l == lsn) {
            continue;
        }
        // The stable LSN the nearest earlier segment recorded: never more than this one's.
        let stable = order
            .iter()
            .filter(|&&(l, _, _)| l < lsn)
            .map(|&(_, _, s)| s)
            .max()
            .unwrap_or(0);
        log[i * size..i * size + SEG_HEADER_LEN].copy_from_slice(&segment_header(lsn, stable));
        order.push((lsn, i, stable));
        repair.stretches += 1;
        repair.bytes += SEG_HEADER_LEN as u64;
        changed = true;
    }
    order.sort_unstable();
    repair.segments = order.len() as u64;
    let all = log_slots(&log, size, &order);
    let fills = match how {
        Repair::StepOver => plan(&all, size),
        Repair::EndAtDamage => end_at_damage(&all, size, &order, &mut log),
    };
    for (from, to, cap) in fills {
        let segment_number = order
            .iter()
            .find(|&&(_, i, _)| i == from / size)
            .map_or(0, |&(lsn, _, _)| lsn / size as u64);
        let kind = if cap { KIND_CAP } else { KIND_CANCELED };
        let Some(fill) = filler(kind, to - from, segment_number) else {
            continue;
        };
        log[from..to].copy_from_slice(&fill);
        repair.stretches += 1;
        repair.bytes += (to - from) as u64;
        changed = true;
    }
    if changed {
        std::fs::write(&path, &log)?;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(repair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0,
            240,
            241,
            2287,
            2288,
            67823,
            67824,
            0xFF_FFFF,
            1 << 24,
            u64::MAX >> 8,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(read_varint(&out), Some((v, out.len())), "{v}");
        }
    }

    #[test]
    fn a_filler_is_a_valid_message_of_exactly_its_length() {
        for total in [8, 9, 40, 300, 2300, 70_000] {
            let mut seg = vec![0u8; SEG_HEADER_LEN + total + MAX_MSG_HEADER_LEN];
            let f = filler(KIND_CANCELED, total, 7).expect("filler");
            assert_eq!(f.len(), total);
            seg[SEG_HEADER_LEN..SEG_HEADER_LEN + total].copy_from_slice(&f);
            assert_eq!(
                valid_message(&seg, SEG_HEADER_LEN, 7),
                Some((total, KIND_CANCELED))
            );
            assert_eq!(valid_message(&seg, SEG_HEADER_LEN, 8), None);
        }
    }

    /// Applies `plan` to one segment at log offset 0, as `skip_damaged_messages` does.
    fn repair(seg: &mut [u8], segment_number: u64) -> usize {
        let mut all = Vec::new();
        slots(seg, 0, segment_number, &mut all);
        let fills = plan(&all, seg.len());
        for &(from, to, cap) in &fills {
            let kind = if cap { KIND_CAP } else { KIND_CANCELED };
            let fill = filler(kind, to - from, segment_number).expect("filler");
            seg[from..to].copy_from_slice(&fill);
        }
        fills.len()
    }

    fn message(kind: u8, total: usize, segment_number: u64, pid: u64) -> Vec<u8> {
        let mut h = vec![kind];
        let header = 4 + 1 + 1 + 1 + 1;
        write_varint((total - header) as u64, &mut h);
        write_varint(segment_number, &mut h);
        write_varint(pid, &mut h);
        assert_eq!(4 + h.len(), header);
        let body = vec![0x5a; total - header];
        let mut out = message_crc(&h, &body).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn a_damaged_fragment_becomes_a_canceled_message_and_the_next_is_kept() {
        let mut seg = vec![0u8; 4096];
        let a = message(KIND_INLINE_LINK, 100, 3, 9);
        let b = message(KIND_INLINE_LINK, 60, 3, 9);
        let at = SEG_HEADER_LEN;
        seg[at..at + 100].copy_from_slice(&a);
        seg[at + 100..at + 160].copy_from_slice(&b);
        seg[at + 50] ^= 0x04;
        assert_eq!(repair(&mut seg, 3), 1);
        assert_eq!(valid_message(&seg, at, 3), Some((100, KIND_CANCELED)));
        assert_eq!(&seg[at + 100..at + 160], &b[..]);
        // A clean segment is left alone.
        let before = seg.clone();
        assert_eq!(repair(&mut seg, 3), 0);
        assert_eq!(seg, before);
    }

    #[test]
    fn a_lost_first_page_state_is_left_for_recovery_to_cut() {
        const NODE: u8 = 8;
        let mut seg = vec![0u8; 4096];
        let at = SEG_HEADER_LEN;
        seg[at..at + 100].copy_from_slice(&message(NODE, 100, 3, 9));
        seg[at + 100..at + 160].copy_from_slice(&message(NODE, 60, 3, 10));
        seg[at + 50] ^= 0x04;
        let before = seg.clone();
        assert_eq!(repair(&mut seg, 3), 0, "page 9 would have no state");
        assert_eq!(seg, before);
        // With a later replacement of page 9, the damaged one and the fragments between go.
        seg[at + 160..at + 200].copy_from_slice(&message(KIND_INLINE_LINK, 40, 3, 9));
        seg[at + 200..at + 300].copy_from_slice(&message(NODE, 100, 3, 9));
        assert_eq!(repair(&mut seg, 3), 2);
        assert_eq!(valid_message(&seg, at, 3), Some((100, KIND_CANCELED)));
        assert_eq!(valid_message(&seg, at + 160, 3), Some((40, KIND_CANCELED)));
        assert_eq!(valid_message(&seg, at + 200, 3), Some((100, NODE)));
    }

    #[test]
    fn a_damaged_segment_header_is_rebuilt_from_its_first_message() {
        let size = 4096;
        let mut seg = vec![0u8; size];
        seg[..SEG_HEADER_LEN].copy_from_slice(&segment_header(5 * size as u64, 0));
        seg[SEG_HEADER_LEN..SEG_HEADER_LEN + 60].copy_from_slice(&message(NODE_KIND, 60, 5, 1));
        seg[6] ^= 0x01;
        assert_eq!(lost_header_lsn(&seg, size), Some(5 * size as u64));
    }

    const NODE_KIND: u8 = 8;
}
