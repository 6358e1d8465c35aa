#!/usr/bin/env bash
# Regenerates benches/RESULTS.md: every criterion bench (the envelope group twice, to show the
# noise), the pvbench figures (rewrap of 100k and 1M records with peak memory, vault open per
# Argon2 setting, bytes on disk, 1 vs 2 threads), a perf profile of the 64-byte envelope and
# the Python comparison of issue 7. Takes about 15 minutes on 2 cores.
#
#   benches/run.sh            everything
#   SKIP_PYTHON=1 benches/run.sh    without the Python comparison
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
rm -rf "$OUT"
mkdir -p "$OUT"
REWRAP_N=${REWRAP_N:-"100000 1000000"}

log() { printf '\n== %s\n' "$*" >&2; }

log "criterion benches (bench profile = release)"
cargo bench -p phivault-benches --bench envelope -- --save-baseline run1 2>&1 | tee "$OUT/envelope-run1.log" >/dev/null
cargo bench -p phivault-benches --bench envelope -- --save-baseline run2 2>&1 | tee "$OUT/envelope-run2.log" >/dev/null
cargo bench -p phivault-benches --bench records -- --save-baseline run1 2>&1 | tee "$OUT/records.log" >/dev/null
cargo bench -p phivault-benches --bench tokens -- --save-baseline run1 2>&1 | tee "$OUT/tokens.log" >/dev/null

log "pvbench"
cargo build --release -p phivault-benches --bin pvbench
PV="$TARGET/release/pvbench"
"$PV" open >"$OUT/open.jsonl"
"$PV" disk 100000 >"$OUT/disk.jsonl"
"$PV" threads >"$OUT/threads.jsonl"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pvbench.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
: >"$OUT/rewrap.jsonl"
for n in $REWRAP_N; do
  "$PV" load "$SCRATCH/v$n" "$n" >>"$OUT/rewrap.jsonl"
  "$PV" rewrap "$SCRATCH/v$n" >>"$OUT/rewrap.jsonl"
  rm -rf "$SCRATCH/v$n" "$SCRATCH/v$n.key"
done

log "profile of the 64-byte envelope"
if command -v perf >/dev/null && perf record -q -o "$OUT/perf.data" -g -- "$PV" seal64 2000000 >"$OUT/seal64.jsonl" 2>"$OUT/perf-record.log"; then
  perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 1 \
    --sort symbol -g none 2>/dev/null >"$OUT/perf-report.txt" || true
else
  "$PV" seal64 2000000 >"$OUT/seal64.jsonl"
  echo "perf not available" >"$OUT/perf-report.txt"
fi

if [ -z "${SKIP_PYTHON:-}" ]; then
  log "Python comparison (issue 7)"
  if [ ! -x benches/.venv/bin/python ]; then
    python3 -m venv benches/.venv
  fi
  benches/.venv/bin/pip install -q cryptography tink aws-encryption-sdk ff3 pyffx \
    >"$OUT/pip.log" 2>&1 || echo "some peers did not install (see $OUT/pip.log)" >&2
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import phivault' 2>/dev/null; then
    ./scripts/test-python.sh >"$OUT/test-python.log" 2>&1 || true
  fi
  benches/.venv/bin/python benches/compare_python.py --json "$OUT/python.json" \
    | tee "$OUT/python.txt" || true
fi

log "writing benches/RESULTS.md"
python3 benches/report.py "$OUT" "$TARGET/criterion" >benches/RESULTS.md
echo "benches/RESULTS.md written (raw outputs in $OUT)" >&2
