//! `phivault`: the operations CLI for phivault vaults.
//!
//! Every command prints a one-line error on stderr and exits non-zero on failure; the exit
//! codes are listed in `exit.rs` and in `phivault --help`.

#![forbid(unsafe_code)]

mod args;
mod audit;
mod commands;
mod demo;
mod exit;
mod io;
mod keys;
mod rootkey;
mod stream;
mod tokens;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("phivault: error: {}", exit::describe(&e));
            std::process::exit(exit::code(&e));
        }
    }
}
