//! Streaming encryption: round trips around segment boundaries; truncation at every boundary,
//! swapped, duplicated and extended segments detected; random access equals the plaintext
//! slice; context binding; rotation (header-only rewrap); subjects.

use phivault::root::KeyFile;
use phivault::stream::StreamOptions;
use phivault::{Context, Error, Key32, Vault};
use proptest::prelude::*;
use std::io::{Read, Seek, SeekFrom, Write};

const SEG_LOG2: u8 = 12;
const SEG: usize = 1 << SEG_LOG2;
const TAG: usize = 16;

fn vault(dir: &tempfile::TempDir) -> Vault {
    Vault::create(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[6u8; 32]).expect("32")),
    )
    .expect("create")
}

fn opts() -> StreamOptions {
    StreamOptions {
        segment_log2: SEG_LOG2,
        ..StreamOptions::default()
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn seal(v: &Vault, pt: &[u8], ctx: &Context, o: &StreamOptions) -> Vec<u8> {
    let mut w = v
        .owner()
        .encrypt_writer(Vec::new(), ctx, o)
        .expect("writer");
    // uneven writes
    for chunk in pt.chunks(1000) {
        w.write_all(chunk).expect("write");
    }
    w.finish().expect("finish")
}

fn open_all(v: &Vault, ct: &[u8], ctx: &Context) -> Result<Vec<u8>, std::io::Error> {
    let mut r = v
        .owner()
        .decrypt_reader(ct, ctx)
        .map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

fn header_len(ct_len: usize, pt_len: usize) -> usize {
    let segs = if pt_len == 0 { 1 } else { pt_len.div_ceil(SEG) };
    ct_len - pt_len - segs * TAG
}

#[test]
fn round_trips_around_segment_boundaries() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new().with("study", "s1");
    for n in [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 7 * SEG + 5] {
        let pt = data(n);
        let ct = seal(&v, &pt, &ctx, &opts());
        let segs = if n == 0 { 1 } else { n.div_ceil(SEG) };
        assert_eq!(ct.len(), header_len(ct.len(), n) + n + segs * TAG, "n={n}");
        assert_eq!(open_all(&v, &ct, &ctx).expect("open"), pt, "n={n}");
    }
}

#[test]
fn truncation_at_every_boundary_and_every_byte_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new();
    for n in [0, SEG, 3 * SEG, 3 * SEG + 100] {
        let pt = data(n);
        let ct = seal(&v, &pt, &ctx, &opts());
        let h = header_len(ct.len(), n);
        // every segment boundary (with and without tags) and a spread of other cut points
        let mut cuts: Vec<usize> = (0..=n / SEG + 1)
            .flat_map(|i| [h + i * (SEG + TAG), h + i * (SEG + TAG) + TAG])
            .collect();
        cuts.extend((0..ct.len()).step_by(97));
        for cut in cuts.into_iter().filter(|&c| c < ct.len()) {
            assert!(
                open_all(&v, &ct[..cut], &ctx).is_err(),
                "n={n}: truncation to {cut} accepted"
            );
        }
        // extension
        let mut longer = ct.clone();
        longer.extend_from_slice(&[0u8; TAG + 1]);
        assert!(open_all(&v, &longer, &ctx).is_err(), "extension accepted");
    }
}

#[test]
fn swapped_duplicated_and_flipped_segments_are_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new();
    let pt = data(4 * SEG);
    let ct = seal(&v, &pt, &ctx, &opts());
    let h = header_len(ct.len(), pt.len());
    let s = SEG + TAG;
    let seg = |i: usize| ct[h + i * s..h + (i + 1) * s].to_vec();
    let mut swapped = ct[..h].to_vec();
    for i in [0, 2, 1, 3] {
        swapped.extend(seg(i));
    }
    assert!(open_all(&v, &swapped, &ctx).is_err());
    let mut dup = ct[..h].to_vec();
    for i in [0, 1, 1, 2, 3] {
        dup.extend(seg(i));
    }
    assert!(open_all(&v, &dup, &ctx).is_err());
    let mut dropped = ct[..h].to_vec();
    for i in [0, 1, 3] {
        dropped.extend(seg(i));
    }
    assert!(open_all(&v, &dropped, &ctx).is_err());
    for bit in (0..ct.len() * 8).step_by(331) {
        let mut bad = ct.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            open_all(&v, &bad, &ctx).is_err(),
            "flip of bit {bit} accepted"
        );
    }
    // context binding
    assert!(open_all(&v, &ct, &Context::new().with("study", "other")).is_err());
}

#[test]
fn random_access_reads_equal_the_plaintext_slice() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new().with("k", "v");
    let pt = data(9 * SEG + 123);
    let ct = seal(&v, &pt, &ctx, &opts());
    let mut r = v
        .owner()
        .decrypt_seekable(std::io::Cursor::new(ct.clone()), &ctx)
        .expect("seekable");
    assert_eq!(r.plaintext_len(), pt.len() as u64);
    for (start, len) in [
        (0usize, 10usize),
        (SEG - 3, 7),
        (5 * SEG, SEG),
        (9 * SEG + 100, 23),
        (pt.len() - 1, 5),
        (17, 3 * SEG),
    ] {
        r.seek(SeekFrom::Start(start as u64)).expect("seek");
        let mut got = vec![0u8; len];
        let want = &pt[start..(start + len).min(pt.len())];
        let mut filled = 0;
        while filled < want.len() {
            let k = r.read(&mut got[filled..]).expect("read");
            assert!(k > 0);
            filled += k;
        }
        assert_eq!(&got[..filled], want, "slice at {start}");
    }
    // a stream truncated at a segment boundary fails even for random access to the new end
    let h = header_len(ct.len(), pt.len());
    let cut = h + 5 * (SEG + TAG);
    let mut r = v
        .owner()
        .decrypt_seekable(std::io::Cursor::new(ct[..cut].to_vec()), &ctx)
        .expect("header ok");
    r.seek(SeekFrom::Start((4 * SEG) as u64)).expect("seek");
    let mut b = [0u8; 10];
    assert!(
        r.read(&mut b).is_err(),
        "the new last segment was not sealed as last"
    );
}

#[test]
fn rotation_rewraps_the_header_only_and_subjects_are_forgotten() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new();
    let pt = data(3 * SEG + 9);
    let src = dir.path().join("in.bin");
    std::fs::write(&src, &pt).expect("w");
    let enc = dir.path().join("in.pvs");
    v.owner()
        .encrypt_file(&src, &enc, &ctx, &opts(), &mut |_| {})
        .expect("encrypt");
    let before = std::fs::read(&enc).expect("r");
    v.rotate("default").expect("rotate");
    assert!(v.rewrap_file(&enc).expect("rewrap"));
    assert!(!v.rewrap_file(&enc).expect("again"), "idempotent");
    let after = std::fs::read(&enc).expect("r");
    assert_eq!(before.len(), after.len());
    let h = header_len(after.len(), pt.len());
    assert_eq!(before[h..], after[h..], "segments untouched");
    v.destroy_key_version("default", 1, true)
        .expect("destroy v1");
    let out = dir.path().join("out.bin");
    v.owner()
        .decrypt_file(&enc, &out, &ctx, &mut |_| {})
        .expect("decrypt after rewrap");
    assert_eq!(std::fs::read(&out).expect("r"), pt);
    // subject files die with the subject, and a failed decrypt leaves no output
    let so = StreamOptions {
        subject: Some("patient-7".into()),
        ..opts()
    };
    let senc = dir.path().join("s.pvs");
    v.owner()
        .encrypt_file(&src, &senc, &ctx, &so, &mut |_| {})
        .expect("encrypt");
    v.forget_subject("patient-7").expect("forget");
    let sout = dir.path().join("s.out");
    assert!(matches!(
        v.owner().decrypt_file(&senc, &sout, &ctx, &mut |_| {}),
        Err(Error::SubjectForgotten)
    ));
    assert!(!sout.exists());
    let mut cut = std::fs::read(&enc).expect("r");
    cut.truncate(cut.len() - 20);
    std::fs::write(&enc, &cut).expect("w");
    let out2 = dir.path().join("out2.bin");
    assert!(matches!(
        v.owner().decrypt_file(&enc, &out2, &ctx, &mut |_| {}),
        Err(Error::AuthenticationFailed)
    ));
    assert!(
        !out2.exists() && !dir.path().join("out2.bin.partial").exists(),
        "no partial output"
    );
}

#[test]
fn bad_headers_and_options_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new();
    for junk in [
        &b""[..],
        b"PVS",
        b"PVE\x01\x01\x00\x07default",
        &[0xffu8; 200],
    ] {
        assert!(v.owner().decrypt_reader(junk, &ctx).is_err());
    }
    let ct = seal(&v, b"x", &ctx, &opts());
    let mut newer = ct.clone();
    newer[3] = 2;
    assert!(matches!(
        v.owner().decrypt_reader(newer.as_slice(), &ctx).map(|_| ()),
        Err(Error::UnsupportedVersion { .. })
    ));
    assert!(
        v.owner()
            .encrypt_writer(
                Vec::new(),
                &ctx,
                &StreamOptions {
                    segment_log2: 30,
                    ..opts()
                }
            )
            .is_err()
    );
    assert!(
        v.owner()
            .encrypt_writer(
                Vec::new(),
                &ctx,
                &StreamOptions {
                    keyring: "missing".into(),
                    ..opts()
                }
            )
            .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_length_and_write_pattern_round_trips(len in 0usize..(6 * SEG), chunk in 1usize..5000) {
        let dir = tempfile::tempdir().expect("tmp");
        let v = vault(&dir);
        let ctx = Context::new().with("p", "q");
        let pt = data(len);
        let mut w = v.owner().encrypt_writer(Vec::new(), &ctx, &opts()).expect("writer");
        for c in pt.chunks(chunk) {
            w.write_all(c).expect("write");
        }
        let ct = w.finish().expect("finish");
        prop_assert_eq!(open_all(&v, &ct, &ctx).expect("open"), pt);
    }
}
