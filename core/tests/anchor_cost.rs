//! The cost of durable commits (the commit anchor's price): `cargo test --release -p phivault
//! --test anchor_cost -- --ignored --nocapture`. Ignored by default: it measures, it does not
//! check. Results in benches/RESULTS.md.

use phivault::root::KeyFile;
use phivault::{Key32, Vault};

#[test]
#[ignore]
fn durable_put_and_put_many_10k() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::random().expect("key")),
    )
    .expect("create");
    let body = vec![b'x'; 200];
    let rounds = 5;
    for r in 0..rounds {
        let t = std::time::Instant::now();
        for i in 0..200 {
            v.put("notes", &format!("p{r}-{i}"), &body, None)
                .expect("put");
        }
        let put_us = t.elapsed().as_secs_f64() * 1e6 / 200.0;
        let ids: Vec<String> = (0..10_000).map(|i| format!("m{r}-{i}")).collect();
        let items: Vec<(&str, &[u8])> = ids.iter().map(|i| (i.as_str(), body.as_slice())).collect();
        let t = std::time::Instant::now();
        v.put_many("notes", &items, &Default::default())
            .expect("put_many");
        let many_ms = t.elapsed().as_secs_f64() * 1e3;
        println!("round {r}: durable put {put_us:.0} us/op; put_many 10k {many_ms:.1} ms");
    }
}
