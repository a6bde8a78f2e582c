#!/bin/bash
# Shadow-mode latency: p50 of N sequential Akana logins straight to the legacy stand-in, through
# a passthrough front and through a shadow front (bcrypt cost 4, SQLite, one keep-alive-less
# curl per request), and the median of what each front adds to the legacy request of the same
# round. A bare forwarder (actix-web + reqwest handing the request on, nothing else; from
# credgate-bench) is asked in the same rounds: what one HTTP hop costs on this machine, so that
# a front's figure splits into the hop and credgate's own work.
# BIN=path/to/credgate N=rounds [BENCH=path/to/credgate-bench] bench/shadow_latency.sh
set -e
PIDS=""
trap 'kill $PIDS 2>/dev/null' EXIT
BIN=${BIN:-target/release/credgate}
N=${N:-200}
BENCH=${BENCH:-$(dirname $BIN)/credgate-bench}
[ -x "$BENCH" ] || { echo "no $BENCH: cargo build --release -p credgate-bench (or set BENCH)"; exit 1; }
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
$BENCH --serve-bare-forwarder 18704 --forward-to http://127.0.0.1:18701 >$D/forwarder.log 2>&1 &
PIDS="$PIDS $!"
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18704/readyz && break; sleep 0.1; done
login() { # port
  curl -s -o /dev/null -w '%{time_total}\n' -X POST http://127.0.0.1:$1/api/login -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Pass-2019"}'
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Warm-up (the shadow front syncs the user on its first login).
for i in $(seq 20); do login 18703; login 18702; login 18704; login 18701; done >/dev/null
# The four are asked in turn (legacy, forwarder, passthrough, shadow; N rounds), so that a busy moment of
# the machine hits all three alike; each front is also compared with the legacy request of its
# own round.
echo "N = $N rounds, load average before: $(load)"
for i in $(seq $N); do echo "$(login 18701) $(login 18704) $(login 18702) $(login 18703)"; done >$D/times
echo "load average after: $(load)"
q() { # awk-expression: its p50 and p90 over the rounds, in ms
  awk "{print ($1) * 1000}" $D/times | sort -g | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms", a[int(NR*0.5)], a[int(NR*0.9)]}'
}
echo "legacy alone:       $(q '$1')"
echo "bare forwarder:     $(q '$2')   forwarder - legacy of the round: $(q '$2 - $1')"
echo "passthrough front:  $(q '$3')   front - legacy of the round: $(q '$3 - $1')"
echo "shadow front:       $(q '$4')   front - legacy of the round: $(q '$4 - $1')"
echo "credgate's own work (front - forwarder of the round): passthrough $(q '$3 - $2'), shadow $(q '$4 - $2')"
curl -s http://127.0.0.1:18703/admin/shadow/summary -H 'Authorization: Bearer bench-admin-token-0123456789'; echo
kill $PIDS
