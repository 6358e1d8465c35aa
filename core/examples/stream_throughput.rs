//! Streaming encryption throughput against the raw limit, measured in one run: 1 GiB through
//! `Vault::encrypt_writer` into a sink, and 1 GiB of raw AES-256-GCM (ring) sealed in the same
//! 64 KiB segments. Prints MiB/s and the ratio. `cargo run --release -p phivault --example
//! stream_throughput`
use phivault::{Backend, Context, Key32, Vault, root::KeyFile, stream::StreamOptions};
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let v = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
    let ctx = Context::new().with("study", "s");
    let total: usize = 1 << 30;
    let chunk = vec![0x5au8; 1 << 20];
    let key = Backend::Ring.aes256gcm(&Key32::random()?)?;
    for round in 0..3 {
        let t = Instant::now();
        let mut w = v
            .owner()
            .encrypt_writer(std::io::sink(), &ctx, &StreamOptions::default())?;
        for _ in 0..total / chunk.len() {
            w.write_all(&chunk)?;
        }
        w.finish()?;
        let stream = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut seg = vec![0u8; 1 << 16];
        for i in 0..(total >> 16) {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            seg.copy_from_slice(&chunk[..1 << 16]);
            std::hint::black_box(key.seal_detached(&nonce, &[], &mut seg)?);
        }
        let raw = t.elapsed().as_secs_f64();
        let mib = (total >> 20) as f64;
        println!(
            "round {round}: stream {:.0} MiB/s, raw ring AES-256-GCM {:.0} MiB/s, ratio {:.1}%",
            mib / stream,
            mib / raw,
            100.0 * raw / stream
        );
    }
    Ok(())
}
