#!/usr/bin/env bash
# Replays every committed fuzz seed (fuzz/seeds/) and crash-regression file (fuzz/regressions/)
# through the fuzz targets' own functions (phivault::fuzzing; for c_api, phivault_ffi::fuzzing),
# on stable, as ordinary tests; also a local libFuzzer corpus (fuzz/corpus/) when there is one.
# Needs no cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
# Selected across the workspace (not with -p): the same feature set as `cargo test --workspace`,
# so nothing is rebuilt after scripts/test-all.sh's test run.
cargo test --workspace --test fuzz_replay
cargo test --workspace --lib fuzzing::
