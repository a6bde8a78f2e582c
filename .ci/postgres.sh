#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (when missing) and starts a throwaway cluster on
# loopback as the unprivileged user `postgres`. Prints the exports the tests need:
#   CREDGATE_TEST_POSTGRES_URL   the database URL
#   CREDGATE_TEST_POSTGRES_DATA  the cluster's data folder (tests stop and restart it)
#   CREDGATE_TEST_PG_CTL         the pg_ctl binary
# Usage: eval "$(bash .ci/postgres.sh)"
set -euo pipefail

port="${CREDGATE_TEST_POSTGRES_PORT:-55432}"
data="${CREDGATE_TEST_POSTGRES_DATA:-/tmp/credgate-pg}"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
id postgres >/dev/null 2>&1 || useradd --system --create-home postgres

run_as_postgres() { su postgres -s /bin/sh -c "$*"; }

if [ -f "$data/postmaster.pid" ]; then
  run_as_postgres "$bindir/pg_ctl -D $data -m immediate stop" >/dev/null 2>&1 || true
fi
rm -rf "$data"
mkdir -p "$data"
chown postgres "$data"
run_as_postgres "$bindir/initdb -D $data -U postgres --auth=trust -E UTF8" >&2
# Durable and quick enough for tests; loopback only.
run_as_postgres "$bindir/pg_ctl -D $data -l $data/server.log -w -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200' start" >&2
run_as_postgres "$bindir/createdb -h 127.0.0.1 -p $port -U postgres credgate_test" >&2

echo "export CREDGATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/credgate_test"
echo "export CREDGATE_TEST_POSTGRES_DATA=$data"
echo "export CREDGATE_TEST_PG_CTL=$bindir/pg_ctl"
