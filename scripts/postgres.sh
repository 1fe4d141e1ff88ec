# Sourced by scripts/test: makes ORGSYNC_TEST_PG_URL point at a PostgreSQL server
# that accepts the `postgres` user without a password.
#  1. ORGSYNC_TEST_PG_URL already set: use it.
#  2. A server on 127.0.0.1:5432 answers: use it.
#  3. Else start a throwaway cluster (initdb + pg_ctl from Debian's `postgresql`
#     package, installed if missing), stopped when the script ends.
# PostgreSQL cannot listen on port 0 and report the port it got, so it is given
# one: a random port below the kernel's ephemeral range (which bind(0) and
# outgoing connections never use, so only processes choosing ports themselves
# can race for it), and a start that fails because the port is taken
# ("Address already in use" in its log) is retried with another one.

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
  local port dir attempt
  dir=$(mktemp -d /tmp/orgsync-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$(candidate_port)
    if "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log.$attempt" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null 2>&1; then
      break
    fi
    if ! grep -q "Address already in use" "$dir/log.$attempt" || [ "$attempt" = 10 ]; then
      echo "PostgreSQL did not start (port $port):" >&2
      cat "$dir/log.$attempt" >&2
      return 1
    fi
  done
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

# A random 127.0.0.1 port below the ephemeral range that is free right now.
candidate_port() {
  local low=32768 port
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  if [ "$low" -le 11000 ]; then
    # No room below the ephemeral range: the kernel's pick (the retry covers the race).
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  while :; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}
