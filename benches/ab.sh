#!/usr/bin/env bash
# Before/after: the same criterion benches of a reference commit and of the working tree, run
# alternately (old, new, old, new, ...) on this machine, so both sides see the same noise.
# Writes benches/RESULTS-ab.md: the median of each round, their median per side, and the
# ratio new/old.
#
#   benches/ab.sh                     reference bd0aaee (before issues 16 and 17), 3 rounds
#   REF=<commit> ROUNDS=5 benches/ab.sh
#   FILTER_ENV='...' FILTER_REC='...' FILTER_TOK='...' benches/ab.sh    other criterion filters
#
# The reference is built in a worktree with a target folder of its own (target/ab-ref), so
# the two builds never share artifacts.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD
REF=${REF:-bd0aaee}
ROUNDS=${ROUNDS:-3}
FILTER_ENV=${FILTER_ENV:-'envelope-(en|de)crypt/64B/vault-audited'}
FILTER_REC=${FILTER_REC:-'records-get/64B/phivault-get|records-put-durable/64B/phivault-put|records-put-batch10k/64B/phivault-put_many'}
FILTER_TOK=${FILTER_TOK:-'tokenize-single/(ff1-ssn|pseudonym)$|detokenize-single/vaulted-mrn$|tokenize-batch10k/ff1-ssn$'}
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WT="$TARGET/ab-ref-src"
OUT="$TARGET/ab"
mkdir -p "$OUT"
rm -rf "$WT"; git worktree prune
git worktree add --detach "$WT" "$REF" >/dev/null
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT

exe() { # DIR TARGETDIR BENCH: build and print the bench executable (absolute path)
  local p
  p=$( (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench -p phivault-benches --bench "$3" --no-run 2>&1) \
    | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
  case $p in /*) echo "$p" ;; *) echo "$1/$p" ;; esac
}
OLD_E=$(exe "$WT" "$TARGET/ab-ref" envelope); OLD_R=$(exe "$WT" "$TARGET/ab-ref" records)
NEW_E=$(exe "$ROOT" "$TARGET" envelope); NEW_R=$(exe "$ROOT" "$TARGET" records)
OLD_T=$(exe "$WT" "$TARGET/ab-ref" tokens); NEW_T=$(exe "$ROOT" "$TARGET" tokens)
: >"$OUT/raw.txt"
run() { # SIDE EXE FILTER
  (cd "$OUT" && "$2" --bench "$3" --noplot 2>/dev/null) \
    | python3 -c '
import re, sys
name = None
for line in sys.stdin:
    m = re.match(r"^(\S+/\S+)\s*$", line) or re.match(r"^(\S+/\S+)\s+time:", line)
    if m: name = m.group(1)
    t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", line)
    if t and name:
        v, u = float(t.group(1)), t.group(2)
        scale = {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3, "s": 1e6}[u]
        print(sys.argv[1], name, v * scale); name = None
' "$1" >>"$OUT/raw.txt"
}
for r in $(seq "$ROUNDS"); do
  for side in old new; do
    if [ $side = old ]; then E=$OLD_E; R=$OLD_R; T=$OLD_T; else E=$NEW_E; R=$NEW_R; T=$NEW_T; fi
    run $side "$E" "$FILTER_ENV"
    run $side "$R" "$FILTER_REC"
    [ -z "$FILTER_TOK" ] || run $side "$T" "$FILTER_TOK"
  done
done
python3 - "$OUT/raw.txt" "$REF" "$(git rev-parse --short HEAD)" "$ROUNDS" >benches/RESULTS-ab.md <<'PY'
import statistics, sys, collections, datetime
raw, ref, head, rounds = sys.argv[1:]
d = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(raw):
    side, name, us = line.split()
    d[name][side].append(float(us))
print("# Before/after benchmarks (`benches/ab.sh`)\n")
print(f"Reference `{ref}` (old) against `{head}` plus the working tree (new), {rounds} alternating")
print(f"rounds on this machine, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC. Each cell is a criterion median")
print("(µs); the ratio is median(new) / median(old). The 2 cores are shared: single rounds move by")
print("10-30%, so read the per-round figures before the ratio.\n")
print("| bench | old, per round | new, per round | ratio new/old |")
print("|---|---|---|---|")
for name in sorted(d):
    o, n = d[name]["old"], d[name]["new"]
    if not o or not n: continue
    r = statistics.median(n) / statistics.median(o)
    print(f"| `{name}` | {', '.join(f'{x:.1f}' for x in o)} | {', '.join(f'{x:.1f}' for x in n)} | {r:.2f} |")
PY
echo "wrote benches/RESULTS-ab.md" >&2
