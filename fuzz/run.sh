#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after another, and prints
# executions, executions per second and coverage per target.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# FUZZ_SANITIZER=address (default: AddressSanitizer; on a stable toolchain this sets
# RUSTC_BOOTSTRAP=1 for the nightly-only -Zsanitizer flag) or none (plain stable).
# New inputs go to fuzz/corpus/<target>/ (not committed); fuzz/seeds/<target>/ and
# fuzz/regressions/<target>/ are read as extra corpora. Logs: fuzz/logs/<target>.log;
# crashes: fuzz/artifacts/<target>/ (keep each as fuzz/regressions/<target>/<name>).
# Everything runs under nice -n 19, one fuzzing process at a time.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
san=${FUZZ_SANITIZER:-address}
if [ "$san" != none ]; then export RUSTC_BOOTSTRAP=1; fi
# Separate build folders per sanitizer, so switching does not rebuild everything.
if [ "$san" = none ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/$san}
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

echo "building ${#targets[@]} targets (sanitizer: $san)"
mkdir -p logs
nice -n 19 cargo fuzz build -s "$san" >logs/build.log 2>&1 || { tail -20 logs/build.log >&2; exit 1; }

stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
status=0
printf '%-20s %6s %12s %9s %9s %9s %8s %7s  %s\n' target secs execs exec/s cov0 cov ft corpus result
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  extra=(); for d in "seeds/$t" "regressions/$t"; do [ -d "$d" ] && extra+=("$d"); done
  log="logs/$t.log"
  rc=0
  nice -n 19 cargo fuzz run -s "$san" "$t" "corpus/$t" "${extra[@]}" -- \
    -max_total_time="$secs" -timeout=30 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(stat number_of_executed_units "$log")
  rate=$(stat average_exec_per_sec "$log")
  cov0=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  if [ "$rc" -eq 0 ]; then result=ok; else result="FAILED (exit $rc, see $log and artifacts/$t/)"; status=1; fi
  printf '%-20s %6s %12s %9s %9s %9s %8s %7s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
    "${cov0:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
exit $status
