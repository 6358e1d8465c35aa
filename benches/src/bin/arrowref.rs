//! The Rust reference of `benches/compare_arrow.py` (issue 22): `Session::tokenize_many` over
//! the same N SSNs (FF1) and N patient ids (pseudonyms) the Python script makes, in a vault
//! with the default options; the best of `ROUNDS` runs of each, as JSON values per second.
//!
//!     arrowref N ROUNDS

use phivault_benches::default_vault;
use serde_json::json;
use std::time::Instant;

/// The SSNs of `compare_arrow.py` (`ssns(n)`): 9 digits in the 3-2-4 shape.
fn ssns(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{:03}-{:02}-{:04}", 100 + i % 800, 10 + i % 89, i % 10_000))
        .collect()
}

fn best(rounds: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut top = 0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        top = top.max(n as f64 / t.elapsed().as_secs_f64());
    }
    top
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("N and ROUNDS are numbers"))
        .collect();
    let n = args.first().copied().unwrap_or(200_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    let dir = tempfile::tempdir().expect("temporary directory");
    let vault = default_vault(&dir.path().join("v"));
    let values = ssns(n);
    let ids: Vec<String> = (0..n).map(|i| format!("patient-{i}")).collect();
    let owner = vault.owner();
    let ff1 = best(rounds, n, || {
        std::hint::black_box(owner.tokenize_many("ssn", &values).expect("ff1"));
    });
    let psn = best(rounds, n, || {
        std::hint::black_box(owner.tokenize_many("pseudonym", &ids).expect("pseudonym"));
    });
    println!("{}", json!({"ff1": ff1, "pseudonym": psn}));
}
