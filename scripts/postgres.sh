# Sourced by scripts/test: makes ORGSYNC_TEST_PG_URL point at a PostgreSQL server
# that accepts the `postgres` user without a password.
#  1. ORGSYNC_TEST_PG_URL already set: use it.
#  2. A server on 127.0.0.1:5432 answers: use it.
#  3. Else start a throwaway cluster (initdb + pg_ctl from Debian's `postgresql`
#     package, installed if missing) on a free port, stopped when the script ends.

ensure_postgres() {
  if [ -n "${ORGSYNC_TEST_PG_URL:-}" ]; then
    echo "PostgreSQL: $ORGSYNC_TEST_PG_URL (from ORGSYNC_TEST_PG_URL)"
    return
  fi
  if pg_answers 127.0.0.1 5432; then
    export ORGSYNC_TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
    echo "PostgreSQL: $ORGSYNC_TEST_PG_URL"
    return
  fi
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ]; then
    echo "PostgreSQL not found: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  local port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/orgsync-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
  ORGSYNC_PG_STOP="${run[*]} $bindir/pg_ctl -D $dir/data -m immediate stop"
  trap 'eval "$ORGSYNC_PG_STOP" >/dev/null 2>&1 || true' EXIT
  export ORGSYNC_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL: started a throwaway cluster at $ORGSYNC_TEST_PG_URL"
}

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$1" -p "$2" -U postgres
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}
