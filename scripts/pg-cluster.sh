# Sourced, not run: a throwaway TLS-only PostgreSQL cluster for tests and benches (issue 21).
#   . scripts/pg-cluster.sh; pg_cluster_start PORT DIR   # DIR: an empty temporary directory
#   ...; pg_cluster_stop DIR
# initdb/pg_ctl run as the unprivileged `postgres` user. The cluster makes its own CA and a
# server certificate for `localhost` only (not 127.0.0.1), takes SCRAM passwords, and has no
# plaintext entry in pg_hba.conf (the Unix socket in DIR stays, with trust, for local admin).
# Exports PHIVAULT_PG_URL (verify-full, with the password), PHIVAULT_PG_OTHER_CA (a CA that did
# not sign the server), PHIVAULT_STATE_DIR (the clients' anchor files, in DIR),
# PHIVAULT_PG_RESTART (a shell command that restarts the server).
# PGBIN: the newest /usr/lib/postgresql/*/bin, empty when there is none.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)

pg_cluster_start() {
  local port=$1 dir=$2 pw
  chown postgres "$dir"
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" >"$dir/pw"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=phivault-test-ca" -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other-ca" -keyout other.key -out other.crt
  ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log"; echo "could not make test certificates"; return 1; }
  chown postgres "$dir/pw" "$dir/server.key" "$dir/server.crt"
  chmod 600 "$dir/server.key"
  su postgres -s /bin/sh -c "'$PGBIN/initdb' -D '$dir/data' -A scram-sha-256 -U postgres --pwfile='$dir/pw'" >"$dir/pg.log" 2>&1 \
    || { cat "$dir/pg.log"; echo "initdb failed"; return 1; }
  rm -f "$dir/pw"
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n' >"$dir/data/pg_hba.conf"
  su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$dir/data' -l '$dir/data/server.log' -o '-p $port -k $dir -c listen_addresses=localhost -c max_connections=200 -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key' -w start" >>"$dir/pg.log" 2>&1 \
    || { cat "$dir/pg.log"; echo "postgres did not start"; return 1; }
  export PHIVAULT_PG_URL="postgres://postgres:$pw@localhost:$port/postgres?sslmode=verify-full&sslrootcert=$dir/ca.crt"
  export PHIVAULT_PG_OTHER_CA="$dir/other.crt"
  export PHIVAULT_STATE_DIR="$dir/state"
  # A command that restarts the server (fast shutdown: sessions are terminated), for the
  # reconnect test.
  export PHIVAULT_PG_RESTART="su postgres -s /bin/sh -c \"'$PGBIN/pg_ctl' -D '$dir/data' -l '$dir/data/server.log' -m fast -w restart >/dev/null 2>&1\""
}

pg_cluster_stop() {
  local dir=$1
  if [ -n "$PGBIN" ] && [ -f "$dir/data/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$dir/data' -m fast stop" >/dev/null 2>&1 || true
  fi
}
