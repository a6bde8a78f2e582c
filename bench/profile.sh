#!/usr/bin/env bash
# Per-request instruction profiles of the cheap path (see BENCHMARKS.md, "Cheap-path profiles").
# Usage: bench/profile.sh BINARY OUTDIR [valgrind|perf|plain]   (DUR=6 CONNS=8 by default)
# Starts credgate (cost 4, log_level info, metrics on) over a fresh SQLite database, logs in via
# Akana and Crafter, then per request type: zero the counters, run wrk, dump. Needs wrk and
# valgrind (or perf). Read a dump with `callgrind_annotate --inclusive=yes OUTDIR/cg.out.N` and
# divide by the request count in OUTDIR/wrk.NAME.txt.
set -u
BIN=$1; OUT=$2; MODE=${3:-valgrind}
rm -rf $OUT; mkdir -p $OUT; cd $OUT
PORT=18016
export CREDGATE_DATABASE_URL=$OUT/cg.db CREDGATE_LISTEN=127.0.0.1:$PORT CREDGATE_BCRYPT_COST=4 \
  CREDGATE_ADMIN_TOKEN=profile-admin-token-0123456789abcdef CREDGATE_RESET__OUTBOX=$OUT/outbox.jsonl
echo 'Margaret10-Example' | $BIN user add --username margaret@example.com --password-stdin >/dev/null 2>&1 || { echo "user add failed"; exit 1; }
case $MODE in
  valgrind) valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.out --dump-instr=no $BIN serve 2>$OUT/gw.log & ;;
  *) $BIN serve 2>$OUT/gw.log & ;;
esac
GW=$!
for i in $(seq 1 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
B=http://127.0.0.1:$PORT
AK=$(curl -s -D - -o /dev/null -X POST $B/api/login -H 'content-type: application/json' -d '{"email":"margaret@example.com","password":"Margaret10-Example"}' | grep -i '^set-cookie: AtmoAuthToken' | head -1 | sed 's/^[Ss]et-[Cc]ookie: //; s/;.*//' | tr -d '\r')
CR=$(curl -s -D - -o /dev/null -X POST $B/studio/api/1/services/api/1/security/login.json -H 'content-type: application/json' -d '{"username":"margaret@example.com","password":"Margaret10-Example"}' | grep -i '^set-cookie: JSESSIONID' | head -1 | sed 's/^[Ss]et-[Cc]ookie: //; s/;.*//' | tr -d '\r')
echo "akana cookie: ${AK:0:30}... crafter: ${CR:0:20}..."
declare -a NAMES=(healthz akana_status crafter_validate crafter_get unauth_401)
declare -a URLS=("$B/healthz" "$B/api/login/status" "$B/studio/api/1/services/api/1/security/validate-session.json" "$B/studio/api/1/services/api/1/user/get.json?username=margaret%40example.com" "$B/api/login/status")
declare -a HDRS=("X-None: 1" "Cookie: $AK" "Cookie: $CR" "Cookie: $CR" "X-None: 1")
DUR=${DUR:-6}
for i in 0 1 2 3 4; do
  n=${NAMES[$i]}
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "${HDRS[$i]}" "${URLS[$i]}")
  echo "== $n status $code"
  [ "$MODE" = valgrind ] && callgrind_control -z $GW >/dev/null
  [ "$MODE" = perf ] && { perf record -e cpu-clock -F 2000 -g -p $GW -o $OUT/perf.$n.data 2>/dev/null & PP=$!; sleep 0.5; }
  wrk -t2 -c${CONNS:-8} -d${DUR}s -H "${HDRS[$i]}" "${URLS[$i]}" > $OUT/wrk.$n.txt
  grep -E "requests in|Requests/sec|Non-2xx" $OUT/wrk.$n.txt
  [ "$MODE" = valgrind ] && { callgrind_control -d $n $GW >/dev/null; }
  [ "$MODE" = perf ] && { kill -INT $PP; wait $PP; }
done
kill $GW; wait $GW 2>/dev/null
ls $OUT
