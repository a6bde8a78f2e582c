# Shared by the shadow latency scripts (sourced): a scratch directory, gateways started on
# loopback over SQLite at bcrypt cost 4 and stopped on exit, the legacy stand-in with its one
# Akana user, an upstream binding to it, and one timed login.
set -e
PIDS=""
trap 'kill $PIDS 2>/dev/null' EXIT
D=$(mktemp -d)
start() { # binary name port extra-env...
  local bin=$1 name=$2 port=$3; shift 3
  env -C $D CREDGATE_LISTEN=127.0.0.1:$port CREDGATE_DATABASE_URL=$D/$name.db CREDGATE_ADMIN_TOKEN=bench-admin-token-0123456789 \
     CREDGATE_BCRYPT_COST=4 CREDGATE_LOG_LEVEL=warn CREDGATE_DIGEST_KEY_FILE=$D/$name.key CREDGATE_RESET__OUTBOX=$D/$name.jsonl "$@" "$bin" serve >$D/$name.log 2>&1 &
  PIDS="$PIDS $!"
  for i in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && return; sleep 0.1; done; echo "$name did not start"; exit 1
}
start_legacy() { # binary: the stand-in on port 18701, serving only Akana, with the bench user
  start "$1" legacy 18701 CREDGATE_DIALECTS__DISABLED='["crafter","crayon","etapp","oauth-style"]'
  curl -sf -X POST http://127.0.0.1:18701/admin/users -H 'Authorization: Bearer bench-admin-token-0123456789' -H 'content-type: application/json' \
    -d '{"username":"bench@example.com","password":"Bench-Pass-2019","aliases":{"akana":"b1.example"}}' >/dev/null
}
up() { # mode: CREDGATE_UPSTREAMS binding the Akana client dialect to the stand-in
  echo "[{name=\"legacy\",dialect=\"akana\",base_url=\"http://127.0.0.1:18701\",mode=\"$1\",inbound=[\"akana\"]}]"
}
login() { # port: one Akana login on a fresh connection; prints its seconds
  curl -s -o /dev/null -w '%{time_total}' -X POST http://127.0.0.1:$1/api/login -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Pass-2019"}'
}
