#!/usr/bin/env bash
# The PostgreSQL store and the PKCS#11 root against real services (issue 11): starts a
# throwaway TLS-only PostgreSQL cluster (initdb/pg_ctl as the unprivileged `postgres` user, loopback
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
. scripts/pg-cluster.sh
cleanup() {
  pg_cluster_stop "$TMP"
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "$PGBIN" ] || ! id postgres >/dev/null 2>&1; then
  echo "*** SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or no 'postgres' user:"
  echo "*** the PostgreSQL store is NOT tested. Install the postgresql package to test it. ***"
  cargo test --workspace --test postgres_store --test postgres_tls \
    --test postgres_restart
else
  pg_cluster_start "$PORT" "$TMP"
  # `--workspace` (as test-pkcs11.sh): the feature set `cargo test --workspace` just built
  # (phivault gets `postgres` from the CLI, C and Python crates), so nothing is rebuilt.
  # The tests are #[ignore]d for runs without a server; here they run.
  cargo test --workspace --test postgres_store -- --include-ignored \
    --skip throughput_postgres_vs_sled --skip child_process
  cargo test --workspace --test postgres_tls -- --include-ignored \
    --skip pgpass_child
  # The Python pipeline over PostgreSQL (issue 22): Dask workers opening the shared store.
  # Needs the virtualenv and wheel scripts/test-python.sh made (test-all.sh runs it first).
  venv=${PHIVAULT_VENV:-$PWD/.venv}
  if [ ! -x "$venv/bin/pytest" ]; then
    echo "scripts/test-postgres.sh: run scripts/test-python.sh first (no $venv/bin/pytest)" >&2
    exit 1
  fi
  (cd python && "$venv/bin/pytest" -q -p no:cacheprovider tests/test_pipelines_postgres.py)
  # Last and alone: it restarts the server.
  cargo test --workspace --test postgres_restart -- --include-ignored
  if [ "${PV_BENCH:-0}" = 1 ]; then
    cargo test --release -p phivault --features postgres --test postgres_store -- \
      --ignored --exact throughput_postgres_vs_sled --nocapture
  fi
fi

if [ -x scripts/test-pkcs11.sh ]; then
  scripts/test-pkcs11.sh
fi
