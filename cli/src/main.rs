//! `phivault`: the operations CLI for phivault vaults.
//!
//! Every command prints a one-line error on stderr and exits non-zero on failure; the exit
//! codes are listed in `exit.rs` and in `phivault --help`.

#![forbid(unsafe_code)]

mod args;
mod audit;
mod backup;
mod commands;
mod demo;
mod exit;
mod fhir;
mod integrity;
mod io;
mod keys;
mod migrate;
mod rootkey;
mod stream;
mod tokens;

use clap::Parser;

/// mimalloc rather than glibc malloc: after sled's bulk writes glibc's heap is fragmented and
/// CPU-bound work in the same process ran about 3x slower (`pvbench afterwrites`,
/// benches/notes.md). The library leaves the choice to the application; this binary makes it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A reader that went away (`phivault keys list --json | head`) is not an error: exit quietly
/// with the conventional 128 + SIGPIPE instead of a panic message.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    exit_quietly_on_broken_pipe();
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("phivault: error: {}", exit::describe(&e));
            std::process::exit(exit::code(&e));
        }
    }
}
