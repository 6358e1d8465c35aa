#!/usr/bin/env bash
# Before/after of the PostgreSQL store, alternating rounds on one throwaway cluster (a database
# per side, so that neither side's schema migration touches the other's): the ignored test
# `throughput_postgres_vs_sled` of two builds of core/tests/postgres_store.rs.
#   benches/ab-postgres.sh OLD_TEST_EXE NEW_TEST_EXE      (N=20000 values by default)
# Build each side with `cargo test --release -p phivault --features postgres --test
# postgres_store --no-run` (the old one in a worktree with its own CARGO_TARGET_DIR).
set -euo pipefail
PORT=55499
TMP=$(mktemp -d -t pvab.XXXXXX)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
chown postgres "$TMP"
su postgres -s /bin/sh -c "'$PGBIN/initdb' -D '$TMP/data' -A trust -U postgres" >/dev/null 2>&1
su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$TMP/data' -l '$TMP/data/server.log' -o '-p $PORT -k $TMP -c listen_addresses=127.0.0.1 -c max_connections=200' -w start" >/dev/null 2>&1
trap "su postgres -s /bin/sh -c \"'$PGBIN/pg_ctl' -D '$TMP/data' -m fast stop\" >/dev/null 2>&1; rm -rf $TMP" EXIT
for db in old new; do "$PGBIN/psql" -h 127.0.0.1 -p $PORT -U postgres -qc "CREATE DATABASE $db" postgres; done
export PHIVAULT_STATE_DIR="$TMP/state"
OLD=$1; NEW=$2
for round in 1 2 3 4 5; do
  for side in old new; do
    exe=$OLD; [ $side = new ] && exe=$NEW
    echo -n "round $round $side: "
    PHIVAULT_PG_URL="postgres://postgres@127.0.0.1:$PORT/$side" PV_BENCH_N=${N:-20000} $exe --ignored --exact throughput_postgres_vs_sled --nocapture 2>&1 | grep "BENCH postgres" || echo failed
  done
done
