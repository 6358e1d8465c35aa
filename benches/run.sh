#!/usr/bin/env bash
# Regenerates benches/RESULTS.md: every criterion bench (the envelope group twice, to show the
# noise), the pvbench figures (rewrap of 100k and 1M records with peak memory, vault open per
# Argon2 setting, bytes on disk, 1 vs 2 threads), a perf profile of the 64-byte envelope and
# the Python comparison of issue 7. Takes about 15 minutes on 2 cores.
#
#   benches/run.sh            everything
#   SKIP_PYTHON=1 benches/run.sh    without the Python comparison
#   STEPS="tokens python" benches/run.sh   re-run some parts (hotpaths envelope records tokens
#                                           pvbench profile python); the report is always rewritten
#   HOT_REF=<commit> HOT_ROUNDS=3 benches/run.sh   the hot-path table's "before" side
#   REWRAP_N="100000" benches/run.sh  rewrap sizes (default "100000 1000000")
#
# Needs: a Rust toolchain; perf (optional; apt package linux-perf) for the profile; for the
# Python comparison, the project's .venv with phivault (scripts/test-python.sh) and network
# access to the Python package index for the peers' virtualenv benches/.venv.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT="$TARGET/phivault-bench"
# STEPS picks parts to (re-)run; the outputs of the others stay from an earlier run.
STEPS=${STEPS:-"hotpaths envelope records tokens pvbench profile python"}
# The "before" side of the hot-path table: the last commit before issue 19's work.
HOT_REF=${HOT_REF:-70b7ad7}
HOT_ROUNDS=${HOT_ROUNDS:-3}
has() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
mkdir -p "$OUT"
REWRAP_N=${REWRAP_N:-"100000 1000000"}

log() { printf '\n== %s\n' "$*" >&2; }

log "criterion benches (bench profile = release)"
bench() { # NAME LOG BASELINE: a failing bench is reported, the rest still runs
  cargo bench -p phivault-benches --bench "$1" -- --save-baseline "$3" >"$OUT/$2" 2>&1 \
    || echo "bench $1 failed: see $OUT/$2" >&2
}
if has envelope; then
  bench envelope envelope-run1.log run1
  bench envelope envelope-run2.log run2
fi
if has records; then bench records records.log run1; fi
if has tokens; then
  bench tokens tokens.log run1
  # The CPU-bound token kinds again, in a process of their own (baseline run2): in the process
  # above they run after bulk durable writes, which slowed them 2-3x (see the report).
  cargo bench -p phivault-benches --bench tokens -- --save-baseline run2 \
    '^(tokenize-single|tokenize-batch10k|detokenize-single|detokenize-batch10k)/(ff1-ssn|fpe-crate-ff1-direct|pseudonym|date-shift)(-2threads)?$' \
    >"$OUT/tokens-cpu.log" 2>&1 || echo "bench tokens (cpu) failed: see $OUT/tokens-cpu.log" >&2
fi

if has hotpaths; then
  # Issue 19's table: each hot path beside its limit (benches/src/bin/hotpaths.rs), built at
  # the reference commit HOT_REF (before issue 19) and at the working tree, run alternately
  # (before, after, before, after, ...) so both sides see the same machine.
  log "hot paths: $HOT_REF (before) against the working tree (after)"
  WT="$TARGET/hot-ref-src"
  rm -rf "$WT"; git worktree prune
  git worktree add --detach "$WT" "$HOT_REF" >/dev/null
  cp benches/src/bin/hotpaths.rs "$WT/benches/src/bin/hotpaths.rs"
  (cd "$WT" && CARGO_TARGET_DIR="$TARGET/ab-ref" cargo build --release -q -p phivault-benches --bin hotpaths)
  cargo build --release -q -p phivault-benches --bin hotpaths
  OLD_HP="$TARGET/ab-ref/release/hotpaths"
  NEW_HP="$TARGET/release/hotpaths"
  REF_SHORT=$(git rev-parse --short "$HOT_REF")
  NEW_SHORT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- core benches || echo "+")
  : >"$OUT/hotpaths.jsonl"
  for r in $(seq "$HOT_ROUNDS"); do
    PV_ROUNDS=1 "$OLD_HP" before "$REF_SHORT" >>"$OUT/hotpaths.jsonl"
    PV_ROUNDS=1 "$NEW_HP" after "$NEW_SHORT" >>"$OUT/hotpaths.jsonl"
  done
  git worktree remove --force "$WT" >/dev/null 2>&1 || true
fi

log "pvbench"
cargo build --release -p phivault-benches --bin pvbench
PV="$TARGET/release/pvbench"
if has pvbench; then
"$PV" open >"$OUT/open.jsonl"
"$PV" disk 100000 >"$OUT/disk.jsonl"
"$PV" threads >"$OUT/threads.jsonl"
"$PV" sealmany64 1000000 >"$OUT/sealmany64.jsonl"
# CPU-bound work after bulk store writes in the same process (the allocator's effect).
{ "$PV" afterwrites 100 vault; "$PV" afterwrites 100; } >"$OUT/afterwrites.jsonl"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pvbench.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
: >"$OUT/rewrap.jsonl"
for n in $REWRAP_N; do
  "$PV" load "$SCRATCH/v$n" "$n" >>"$OUT/rewrap.jsonl"
  "$PV" rewrap "$SCRATCH/v$n" >>"$OUT/rewrap.jsonl"
  # Again (another rotation: every record moves again) on the vault's pool of 2 threads.
  PV_THREADS=2 "$PV" rewrap "$SCRATCH/v$n" >>"$OUT/rewrap.jsonl"
  rm -rf "$SCRATCH/v$n" "$SCRATCH/v$n.key"
  # The store's own ceiling for an in-place rewrap: raw sled compare-and-swap of as many entries.
  "$PV" sledcas "$n" >>"$OUT/rewrap.jsonl"
done
fi

log "profile of the 64-byte envelope"
has profile && for mode in seal64 vault64; do
  n=2000000
  [ "$mode" = vault64 ] && n=200000
  if command -v perf >/dev/null && perf record -q -o "$OUT/perf-$mode.data" -g -- "$PV" "$mode" "$n" >"$OUT/$mode.jsonl" 2>"$OUT/perf-record.log"; then
    perf report -i "$OUT/perf-$mode.data" --no-children --stdio --percent-limit 0.1 \
      --sort symbol -g none 2>/dev/null >"$OUT/perf-report-$mode.txt" || true
  else
    "$PV" "$mode" "$n" >"$OUT/$mode.jsonl"
  fi
done

if has python && [ -z "${SKIP_PYTHON:-}" ]; then
  log "Python comparison (issue 7)"
  if [ ! -x benches/.venv/bin/python ]; then
    python3 -m venv benches/.venv
  fi
  benches/.venv/bin/pip install -q cryptography tink aws-encryption-sdk ff3 pyffx \
    >"$OUT/pip.log" 2>&1 || echo "some peers did not install (see $OUT/pip.log)" >&2
  export PHIVAULT_PYTHON=${PHIVAULT_PYTHON:-$ROOT/.venv/bin/python}
  if ! "$PHIVAULT_PYTHON" -c 'import phivault' 2>/dev/null; then
    ./scripts/test-python.sh >"$OUT/test-python.log" 2>&1 || true
  fi
  benches/.venv/bin/python benches/compare_python.py --json "$OUT/python.json" \
    | tee "$OUT/python.txt" || true
fi

log "writing benches/RESULTS.md"
python3 benches/report.py "$OUT" "$TARGET/criterion" >benches/RESULTS.md
echo "benches/RESULTS.md written (raw outputs in $OUT)" >&2
