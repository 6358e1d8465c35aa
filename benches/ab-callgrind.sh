#!/usr/bin/env bash
# Before/after in instructions, not seconds: each bench of benches/ab.sh's hot paths runs under
# `valgrind --tool=callgrind` (criterion `--profile-time 2`) for the reference commit and the
# working tree, and the inclusive instruction count of the session call is divided by its call
# count (of the caller edge with the most calls: the bench's loop, not its setup). Repeatable whatever
# else the machine does. Writes benches/RESULTS-ab-callgrind.md.
#
#   benches/ab-callgrind.sh            reference bd0aaee
#   REF=<commit> benches/ab-callgrind.sh
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD
REF=${REF:-bd0aaee}
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WT="$TARGET/ab-ref-src"
OUT="$TARGET/ab-callgrind"
mkdir -p "$OUT/old" "$OUT/new"
rm -rf "$WT"; git worktree prune
git worktree add --detach "$WT" "$REF" >/dev/null
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
exe() { # DIR TARGETDIR BENCH
  local p
  p=$( (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench -p phivault-benches --bench "$3" --no-run 2>&1) \
    | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
  case $p in /*) echo "$p" ;; *) echo "$1/$p" ;; esac
}
per_call() { # SIDE EXE FILTER FUNCTION
  (cd "$OUT/$1" && valgrind --tool=callgrind --callgrind-out-file="$OUT/$1.cg" "$2" --bench "$3" \
    --profile-time 2 >/dev/null 2>&1)
  callgrind_annotate --inclusive=yes --tree=calling "$OUT/$1.cg" 2>/dev/null \
    | python3 -c '
import re, sys
fn = sys.argv[1]
best = None  # the caller edge with the most calls: the measured loop, not a setup call
for line in sys.stdin:  # read everything: stopping early would break the pipe
    m = re.match(r"^\s*([\d,]+) \([^)]*\)\s+>\s+\S*:" + re.escape(fn) + r" \(([\d,]+)x\)", line)
    if m:
        ir, calls = (int(x.replace(",", "")) for x in m.groups())
        if best is None or calls > best[1]:
            best = (ir, calls)
print(round(best[0] / best[1]) if best else None)
' "$4"
}
{
  echo "# Before/after in instructions (\`benches/ab-callgrind.sh\`)"
  echo
  echo "Reference \`$REF\` (old) against \`$(git rev-parse --short HEAD)\` plus the working tree (new),"
  echo "$(date -u '+%Y-%m-%d %H:%M') UTC: instructions per call of the session operation (inclusive, callgrind),"
  echo "in the criterion bench named. Instruction counts do not depend on the machine's load."
  echo
  echo "| bench | function | old | new | ratio new/old |"
  echo "|---|---|---|---|---|"
  for row in \
    "envelope|envelope-encrypt/64B/vault-audited|phivault::session::Session::encrypt_with" \
    "envelope|envelope-decrypt/64B/vault-audited|phivault::session::Session::decrypt" \
    "records|records-get/64B/phivault-get|phivault::session::Session::get" \
    "tokens|tokenize-single/pseudonym\$|phivault::session::Session::tokenize" \
    "tokens|detokenize-single/vaulted-mrn\$|phivault::session::Session::detokenize"; do
    IFS='|' read -r bench filter fn <<<"$row"
    old=$(per_call old "$(exe "$WT" "$TARGET/ab-ref" "$bench")" "$filter" "$fn")
    new=$(per_call new "$(exe "$ROOT" "$TARGET" "$bench")" "$filter" "$fn")
    ratio=$(python3 -c "print(f'{$new/$old:.3f}')")
    echo "| \`$filter\` | \`${fn##*::}\` | $old | $new | $ratio |"
  done
} >benches/RESULTS-ab-callgrind.md
echo "wrote benches/RESULTS-ab-callgrind.md" >&2
