#!/bin/bash
# Shadow-mode latency: p50 of N sequential Akana logins straight to the legacy stand-in, through
# a passthrough front and through a shadow front (bcrypt cost 4, SQLite, one keep-alive-less
# curl per request). BIN=path/to/credgate N=requests bench/shadow_latency.sh
set -e
PIDS=""
trap 'kill $PIDS 2>/dev/null' EXIT
BIN=${BIN:-target/release/credgate}
N=${N:-200}
D=$(mktemp -d)
start() { # name port extra-env...
  local name=$1 port=$2; shift 2
  env -C $D CREDGATE_LISTEN=127.0.0.1:$port CREDGATE_DATABASE_URL=$D/$name.db CREDGATE_ADMIN_TOKEN=bench-admin-token-0123456789 \
     CREDGATE_BCRYPT_COST=4 CREDGATE_LOG_LEVEL=warn CREDGATE_DIGEST_KEY_FILE=$D/$name.key CREDGATE_RESET__OUTBOX=$D/$name.jsonl "$@" $BIN serve >$D/$name.log 2>&1 &
  PIDS="$PIDS $!"
  for i in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && return; sleep 0.1; done; echo "$name did not start"; exit 1
}
start legacy 18701 CREDGATE_DIALECTS__DISABLED='["crafter","crayon","etapp","oauth-style"]'
curl -sf -X POST http://127.0.0.1:18701/admin/users -H 'Authorization: Bearer bench-admin-token-0123456789' -H 'content-type: application/json' \
  -d '{"username":"bench@example.com","password":"Bench-Pass-2019","aliases":{"akana":"b1.example"}}' >/dev/null
up() { echo "[{name=\"legacy\",dialect=\"akana\",base_url=\"http://127.0.0.1:18701\",mode=\"$1\",inbound=[\"akana\"]}]"; }
start passthrough 18702 CREDGATE_UPSTREAMS="$(up passthrough)"
start shadow 18703 CREDGATE_UPSTREAMS="$(up shadow)"
p50() { # port
  for i in $(seq $N); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST http://127.0.0.1:$1/api/login -H 'content-type: application/json' \
      -d '{"email":"bench@example.com","password":"Bench-Pass-2019"}'
  done | sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms\n", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000}'
}
# Warm-up (the shadow front syncs the user on its first login).
p50 18703 >/dev/null; N=20 p50 18702 >/dev/null; N=20 p50 18701 >/dev/null
echo "legacy alone:       $(p50 18701)"
echo "passthrough front:  $(p50 18702)"
echo "shadow front:       $(p50 18703)"
curl -s http://127.0.0.1:18703/admin/shadow/summary -H 'Authorization: Bearer bench-admin-token-0123456789'; echo
kill $PIDS
