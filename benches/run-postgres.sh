#!/usr/bin/env bash
# The PostgreSQL store beside PostgreSQL's own speed (issue 21): starts a throwaway TLS-only
# PostgreSQL cluster (scripts/pg-cluster.sh: default settings but for TLS and
# max_connections, synchronous commit, loopback TCP with verify-full), runs
# `pgscale bench`, `pgscale procs`, `pgscale rewrap` and `pgscale memory`, and writes
# benches/RESULTS-scaleout.md.
#   benches/run-postgres.sh    # PV_N=20000 PV_ROUNDS=3 PV_PROCS_N=60000 PV_REWRAP_N=100000
#                              # PV_MEM_N=1000000
#   OUT=/tmp/x.md benches/run-postgres.sh   # somewhere else
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benches/RESULTS-scaleout.md}
PORT=${PV_PG_PORT:-55451}
TMP=$(mktemp -d -t pvpgb.XXXXXX)
. scripts/pg-cluster.sh
trap 'pg_cluster_stop "$TMP"; rm -rf "$TMP"' EXIT
[ -n "$PGBIN" ] || { echo "no PostgreSQL server binaries"; exit 1; }
cargo build --release -q -p phivault-benches --features postgres --bin pgscale
pg_cluster_start "$PORT" "$TMP"
BIN=target/release/pgscale
export PV_N=${PV_N:-20000} PV_ROUNDS=${PV_ROUNDS:-3}
bench=$("$BIN" bench)
procs=$(PV_N=${PV_PROCS_N:-60000} "$BIN" procs)
rewrap=$(PV_N=${PV_REWRAP_N:-100000} "$BIN" rewrap)
memory=$(PV_N=${PV_MEM_N:-1000000} "$BIN" memory)
{
  echo "# Scale-out: the PostgreSQL store beside PostgreSQL's own speed (issue 21)"
  echo
  echo "Command: \`benches/run-postgres.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),"
  echo "$(nproc) cores, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') throwaway cluster: loopback TCP with TLS"
  echo "(\`sslmode=verify-full\`, rustls), SCRAM password, default settings, synchronous commit)."
  echo "Every reference is measured in the same run over the same kind of connection (the vault's URL)."
  echo "Source: \`benches/src/bin/pgscale.rs\`."
  echo
  echo "## One thread, side by side with raw PostgreSQL"
  echo
  echo "$bench"
  echo
  echo "## Concurrent writers on one PostgreSQL vault"
  echo
  echo "Each process opens the vault and tokenizes new values of its own with its threads (batches"
  echo "of 1000); the rate is all values over the span from the first worker's start to the last"
  echo "one's end."
  echo
  echo "$procs"
  echo
  echo "## Rewrap by several worker processes"
  echo
  echo "Every record's data key moves to the new key version after a rotation; each worker process runs"
  echo "\`rewrap\` on the same PostgreSQL vault. Workers take pages no other worker holds (\`FOR UPDATE SKIP"
  echo "LOCKED\`); a worker that passed over rows makes a second, plain pass so that nothing a stopped"
  echo "worker held is left behind."
  echo
  echo "$rewrap"
  echo
  echo "## Memory during a large tokenize"
  echo
  echo "One process tokenizes new values in batches of 1000 through PostgreSQL; resident set size"
  echo "sampled as it goes."
  echo
  echo "$memory"
  echo
  echo "Why, and what bounds each figure: \`docs/scale-out.md\`."
} >"$OUT"
echo "wrote $OUT"
