//! Generates the C header `phivault.h` with cbindgen (pinned in Cargo.toml).
//!
//! The header is always written to `$OUT_DIR/phivault.h`. The checked-in copy,
//! `include/phivault.h`, is written only when it is missing or `PHIVAULT_BLESS_HEADER=1` is
//! set, so that a plain build never hides drift: the unit test `header_is_current` compares
//! the two, and `scripts/test-c.sh` runs it.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/phivault.h");
    println!("cargo:rerun-if-env-changed=PHIVAULT_BLESS_HEADER");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()?;
    let generated = out_dir.join("phivault.h");
    bindings.write_to_file(&generated);
    let checked_in = crate_dir.join("include").join("phivault.h");
    let bless = std::env::var("PHIVAULT_BLESS_HEADER").is_ok_and(|v| v == "1");
    if bless || !checked_in.exists() {
        std::fs::create_dir_all(crate_dir.join("include"))?;
        std::fs::copy(&generated, &checked_in)?;
    } else if std::fs::read(&generated)? != std::fs::read(&checked_in)? {
        println!(
            "cargo:warning=include/phivault.h is out of date; regenerate with PHIVAULT_BLESS_HEADER=1 cargo build -p phivault-ffi"
        );
    }
    Ok(())
}
