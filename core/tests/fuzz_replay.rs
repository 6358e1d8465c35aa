//! Replays every committed fuzz seed (`fuzz/seeds/<target>/`) and crash-regression file
//! (`fuzz/regressions/<target>/`), and a local libFuzzer corpus (`fuzz/corpus/<target>/`) when
//! there is one, through the same target functions `cargo fuzz` runs (`phivault::fuzzing`),
//! on stable, as ordinary tests: a fixed crash stays fixed. Each target also runs on a few
//! hundred pseudo-random inputs (fixed seed), so every property is exercised even without
//! `cargo fuzz`.

use phivault::fuzzing::TARGETS;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The targets share one fixed vault (as in a libFuzzer process, where one input runs at a
/// time); some redefine a field, so the tests of this file run the targets one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(f: fn(&[u8]), data: &[u8]) -> bool {
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::panic::catch_unwind(|| f(data)).is_ok()
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn target(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("fuzz/*/{name}: no such target in phivault::fuzzing"))
}

fn replay(kind: &str, required: bool) -> usize {
    let root = fuzz_dir().join(kind);
    let mut n = 0;
    if required {
        for (name, _) in TARGETS {
            assert!(
                !files(&root.join(name)).is_empty(),
                "fuzz/{kind}/{name} has no files"
            );
        }
    }
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    let mut dirs: Vec<PathBuf> = dirs
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if phivault::fuzzing::OTHER_CRATES
            .iter()
            .any(|(n, _)| *n == name)
        {
            continue; // replayed by that crate's own test
        }
        let f = target(&name);
        for file in files(&dir) {
            let data = std::fs::read(&file).expect("read fuzz input");
            assert!(run(f, &data), "{} fails its target", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_replay() {
    let n = replay("seeds", true);
    assert!(n >= TARGETS.len(), "only {n} seeds");
}

#[test]
fn regressions_replay() {
    replay("regressions", false);
}

#[test]
fn local_corpus_replays() {
    replay("corpus", false);
}

/// xorshift64*: a fixed pseudo-random stream, so failures reproduce.
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn pseudo_random_inputs() {
    for (i, (name, f)) in TARGETS.iter().enumerate() {
        let mut next = stream(0x9e37_79b9_7f4a_7c15 ^ i as u64);
        for round in 0..300 {
            let len = (next() % 300) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert!(run(*f, &data), "{name}: pseudo-random input {round} fails");
        }
    }
}

/// A seed writer, not a test: `cargo test -p phivault --test fuzz_replay write_seeds --
/// --ignored` adds missing seed files to `fuzz/seeds/` (existing ones are never rewritten).
#[test]
#[ignore = "seed writer, not a test: run with --ignored to add missing seed files"]
fn write_seeds() {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testkit");
    let n = phivault::fuzzing::write_seeds(&fuzz_dir().join("seeds"), &testkit).expect("write");
    eprintln!("wrote {n} seed files");
}
