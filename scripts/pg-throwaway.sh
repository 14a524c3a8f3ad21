#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for one command (make demo-postgres):
#   scripts/pg-throwaway.sh run -- COMMAND [ARGS...]
# initdb's a fresh cluster in a temporary directory (as user postgres when run as root: initdb refuses
# root), starts it on a free loopback port with fsync=off, runs COMMAND with
# DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres (superuser, no password), then stops the
# cluster (pg_ctl -m fast) and removes the directory, also on Ctrl-C. Exits with COMMAND's status.
# Never touches the package's own cluster on 5432. The same recipe as relay/tests/common/postgres.rs.
set -euo pipefail

say() { printf '\033[1m[pg-throwaway]\033[0m %s\n' "$*" >&2; }
usage() { echo "usage: $0 run -- COMMAND [ARGS...]" >&2; exit 2; }

[ "${1:-}" = run ] || usage
shift
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || usage

bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ]; then
  bin=$(pg_config --bindir 2>/dev/null || true)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL not found (no /usr/lib/postgresql/15/bin/initdb); run: bash scripts/setup.sh" >&2
    exit 1
  fi
fi

# initdb and pg_ctl run as postgres when we are root, from the cluster's directory (that user may not
# enter ours).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  # No python3: probe random high ports until one refuses a connection.
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/pg-throwaway.XXXXXX")
data="$dir/data"

cleanup() {
  local status=$?
  if [ -f "$data/postmaster.pid" ]; then
    local pid
    pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
    if ! as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1; then
      # Only a live postgres: after a crash the pid file may name a reused pid.
      if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 700 "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
if ! as_pg "$bin/initdb" -D "$data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  say "initdb failed"
  exit 1
fi

started=0
for _ in 1 2 3; do
  port=$(free_port)
  if as_pg "$bin/pg_ctl" -D "$data" -l "$dir/log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
    started=1
    break
  fi
  # Taken between choosing it and binding it: try another port; anything else is fatal.
  grep -q "already in use" "$dir/log" 2>/dev/null || break
done
if [ $started = 0 ]; then
  cat "$dir/log" >&2 2>/dev/null || true
  say "PostgreSQL did not start"
  exit 1
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
say "PostgreSQL 15 at $DATABASE_URL (throwaway: stopped and deleted on exit)"
if command -v psql >/dev/null; then
  say "connect from another shell: psql \"$DATABASE_URL\"   (or $bin/psql \"$DATABASE_URL\")"
else
  say "connect from another shell: $bin/psql \"$DATABASE_URL\""
fi

set +e
"$@"
status=$?
set -e
exit $status
