//! Measures the cost of the per-call audit entry: 100k 64-byte envelope encryptions through the
//! audited Vault API and through the bare envelope functions, plus audited record reads.
use phivault::envelope::{self, Kek};
use phivault::{Backend, Context, Key32, Vault, root::KeyFile};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let v = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
    let ctx = Context::new().with("record", "1");
    let pt = [7u8; 64];
    let n = 100_000;
    let kek = Kek::new(1, Key32::random()?, Backend::Ring)?;
    for round in 0..2 {
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(envelope::seal(Backend::Ring, "default", &kek, &pt, &ctx)?);
        }
        let raw = t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(v.encrypt(&pt, &ctx)?);
        }
        let audited = t.elapsed();
        println!(
            "round {round}: raw seal {:.2} us/op, audited Vault::encrypt {:.2} us/op",
            raw.as_secs_f64() * 1e6 / n as f64,
            audited.as_secs_f64() * 1e6 / n as f64
        );
    }
    Ok(())
}
