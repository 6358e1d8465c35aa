//! What the audit log costs per call, measured side by side in one run (100k calls each):
//! 64-byte `Vault::encrypt` against the bare `envelope::seal`, and `Vault::decrypt`,
//! `Vault::detokenize` (vaulted) and `Vault::get` with read auditing on and off.
//! `cargo run --release -p phivault --example audit_cost`
use phivault::envelope::{self, Kek};
use phivault::tokens::View;
use phivault::{Backend, Context, Key32, Vault, root::KeyFile};
use std::time::Instant;

fn per_op(
    n: usize,
    mut f: impl FnMut(usize) -> Result<(), phivault::Error>,
) -> Result<f64, phivault::Error> {
    let t = Instant::now();
    for i in 0..n {
        f(i)?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let v = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
    let ctx = Context::new().with("record", "1");
    let pt = [7u8; 64];
    let n = 100_000;
    let kek = Kek::new(1, Key32::random()?, Backend::Ring)?;
    let ct = v.owner().encrypt(&pt, &ctx)?;
    let tokens: Vec<String> = (0..1000)
        .map(|i| v.owner().tokenize("mrn", &format!("MRN{i:07}")))
        .collect::<Result<_, _>>()?;
    let items: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("r{i}"), vec![1u8; 64]))
        .collect();
    let refs: Vec<(&str, &[u8])> = items
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_slice()))
        .collect();
    v.owner().put_many("c", &refs, &Default::default())?;
    for round in 0..2 {
        let raw = per_op(n, |_| {
            envelope::seal(Backend::Ring, "default", &kek, &pt, &ctx).map(|_| ())
        })?;
        let enc_on = per_op(n, |_| v.owner().encrypt(&pt, &ctx).map(|_| ()))?;
        let dec_on = per_op(n, |_| v.owner().decrypt(&ct, &ctx).map(|_| ()))?;
        let det_on = per_op(n, |i| {
            v.owner()
                .detokenize("mrn", &tokens[i % 1000], View::Plaintext)
                .map(|_| ())
        })?;
        let get_on = per_op(n, |i| {
            v.owner().get("c", &format!("r{}", i % 1000)).map(|_| ())
        })?;
        v.set_read_auditing(false)?;
        let enc_off = per_op(n, |_| v.owner().encrypt(&pt, &ctx).map(|_| ()))?;
        let dec_off = per_op(n, |_| v.owner().decrypt(&ct, &ctx).map(|_| ()))?;
        let det_off = per_op(n, |i| {
            v.owner()
                .detokenize("mrn", &tokens[i % 1000], View::Plaintext)
                .map(|_| ())
        })?;
        let get_off = per_op(n, |i| {
            v.owner().get("c", &format!("r{}", i % 1000)).map(|_| ())
        })?;
        v.set_read_auditing(true)?;
        println!(
            "round {round} (µs/op, audit on / off): envelope::seal {raw:.2}; encrypt {enc_on:.2} / {enc_off:.2}; decrypt {dec_on:.2} / {dec_off:.2}; detokenize {det_on:.2} / {det_off:.2}; get {get_on:.2} / {get_off:.2}"
        );
    }
    assert!(v.audit_verify()?.ok);
    Ok(())
}
