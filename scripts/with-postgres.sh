#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster on 127.0.0.1 (Debian's package, installed when
# missing and we are root). DATABASE_URL is set for the command; the cluster is removed afterwards.
# The cluster skips fsync (it is thrown away); CERTNET_PG_FSYNC=on makes commits durable, as a
# deployment's are, for benchmarks that write.
set -euo pipefail
find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(find_pgbin)
if [ -z "$PGBIN" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "== installing postgresql (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find_pgbin)
  fi
  [ -n "$PGBIN" ] || { echo "PostgreSQL is not installed and cannot be installed here" >&2; exit 1; }
fi
PORT=${CERTNET_PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
FSYNC=${CERTNET_PG_FSYNC:-off}
case "$FSYNC" in on|off) ;; *) echo "CERTNET_PG_FSYNC must be on or off, not '$FSYNC'" >&2; exit 2 ;; esac
DIR=$(mktemp -d /tmp/certnet-pg.XXXXXX)
RUN=()
if [ "$(id -u)" = "0" ]; then
  chown postgres "$DIR"
  RUN=(runuser -u postgres --)
fi
cleanup() { "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"${RUN[@]}" "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 --no-locale >/dev/null
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -w -l "$DIR/log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c fsync=$FSYNC" start >/dev/null
"${RUN[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres certnet
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/certnet"
echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (fsync=$FSYNC)"
"$@"
