#!/usr/bin/env bash
# The PostgreSQL store and the PKCS#11 root against real services (issue 11): starts a
# throwaway PostgreSQL cluster (initdb/pg_ctl as the unprivileged `postgres` user, loopback
# port, temporary directory), runs the shared-store tests, stops the cluster. Then installs
# SoftHSM2 if it can, initialises a token in a temporary directory and runs the HSM tests.
# Without PostgreSQL server binaries the store tests are skipped, loudly.
#   PV_TOKENIZE_N=100000 scripts/test-postgres.sh   # the issue's 100k-value run
#   PV_BENCH=1 scripts/test-postgres.sh             # also the PostgreSQL vs sled throughput
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
PORT=${PV_PG_PORT:-55441}
TMP=$(mktemp -d -t pvpg.XXXXXX)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
cleanup() {
  if [ -n "$PGBIN" ] && [ -f "$TMP/data/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$TMP/data' -m fast stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "$PGBIN" ] || ! id postgres >/dev/null 2>&1; then
  echo "*** SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or no 'postgres' user:"
  echo "*** the PostgreSQL store is NOT tested. Install the postgresql package to test it. ***"
  cargo test -p phivault --features postgres --test postgres_store
else
  chown postgres "$TMP"
  su postgres -s /bin/sh -c "'$PGBIN/initdb' -D '$TMP/data' -A trust -U postgres" >"$TMP/pg.log" 2>&1
  su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$TMP/data' -l '$TMP/data/server.log' -o '-p $PORT -k $TMP -c listen_addresses=127.0.0.1 -c max_connections=200' -w start" >>"$TMP/pg.log" 2>&1 \
    || { cat "$TMP/pg.log"; echo "postgres did not start"; exit 1; }
  export PHIVAULT_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
  # Clients' commit anchor files (anchor.rs) for this run, not the user's state directory.
  export PHIVAULT_STATE_DIR="$TMP/state"
  # The tests are #[ignore]d for runs without a server; here they run.
  cargo test -p phivault --features postgres --test postgres_store -- --include-ignored \
    --skip throughput_postgres_vs_sled --skip child_process
  if [ "${PV_BENCH:-0}" = 1 ]; then
    cargo test --release -p phivault --features postgres --test postgres_store -- \
      --ignored --exact throughput_postgres_vs_sled --nocapture
  fi
fi

if [ -x scripts/test-pkcs11.sh ]; then
  scripts/test-pkcs11.sh
fi
