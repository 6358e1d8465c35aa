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
  cargo test -p phivault --features postgres --test postgres_store --test postgres_tls
else
  chown postgres "$TMP"
  # TLS only (issue 21): a CA and a server certificate for `localhost` made here, SCRAM
  # passwords, no plaintext entry in pg_hba.conf (the Unix socket stays for local admin).
  PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$PW" >"$TMP/pw"
  (
    cd "$TMP"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=phivault-test-ca" -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other-ca" -keyout other.key -out other.crt
  ) >"$TMP/openssl.log" 2>&1 || { cat "$TMP/openssl.log"; echo "could not make test certificates"; exit 1; }
  chown postgres "$TMP/pw" "$TMP/server.key" "$TMP/server.crt"
  chmod 600 "$TMP/server.key"
  su postgres -s /bin/sh -c "'$PGBIN/initdb' -D '$TMP/data' -A scram-sha-256 -U postgres --pwfile='$TMP/pw'" >"$TMP/pg.log" 2>&1
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n' >"$TMP/data/pg_hba.conf"
  su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$TMP/data' -l '$TMP/data/server.log' -o '-p $PORT -k $TMP -c listen_addresses=localhost -c max_connections=200 -c ssl=on -c ssl_cert_file=$TMP/server.crt -c ssl_key_file=$TMP/server.key' -w start" >>"$TMP/pg.log" 2>&1 \
    || { cat "$TMP/pg.log"; echo "postgres did not start"; exit 1; }
  export PHIVAULT_PG_URL="postgres://postgres:$PW@localhost:$PORT/postgres?sslmode=verify-full&sslrootcert=$TMP/ca.crt"
  export PHIVAULT_PG_OTHER_CA="$TMP/other.crt"
  # Clients' commit anchor files (anchor.rs) for this run, not the user's state directory.
  export PHIVAULT_STATE_DIR="$TMP/state"
  # The tests are #[ignore]d for runs without a server; here they run.
  cargo test -p phivault --features postgres --test postgres_store -- --include-ignored \
    --skip throughput_postgres_vs_sled --skip child_process
  cargo test -p phivault --features postgres --test postgres_tls -- --include-ignored \
    --skip pgpass_child
  if [ "${PV_BENCH:-0}" = 1 ]; then
    cargo test --release -p phivault --features postgres --test postgres_store -- \
      --ignored --exact throughput_postgres_vs_sled --nocapture
  fi
fi

if [ -x scripts/test-pkcs11.sh ]; then
  scripts/test-pkcs11.sh
fi
