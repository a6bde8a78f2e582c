#!/bin/bash
# Shadow-mode latency: p50 of N sequential Akana logins straight to the legacy stand-in, through
# a passthrough front and through a shadow front (bcrypt cost 4, SQLite, one keep-alive-less
# curl per request), and the median of what each front adds to the legacy request of the same
# round. A bare forwarder (actix-web + reqwest handing the request on, nothing else; from
# credgate-bench) is asked in the same rounds: what one HTTP hop costs on this machine, so that
# a front's figure splits into the hop and credgate's own work.
# BIN=path/to/credgate N=rounds [BENCH=path/to/credgate-bench] bench/shadow_latency.sh
BIN=${BIN:-target/release/credgate}
N=${N:-200}
BENCH=${BENCH:-$(dirname $BIN)/credgate-bench}
[ -x "$BENCH" ] || { echo "no $BENCH: cargo build --release -p credgate-bench (or set BENCH)"; exit 1; }
source "$(dirname "$0")/shadow_common.sh"
start_legacy $BIN
start $BIN passthrough 18702 CREDGATE_UPSTREAMS="$(up passthrough)"
start $BIN shadow 18703 CREDGATE_UPSTREAMS="$(up shadow)"
$BENCH --serve-bare-forwarder 18704 --forward-to http://127.0.0.1:18701 >$D/forwarder.log 2>&1 &
PIDS="$PIDS $!"
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18704/readyz && break; sleep 0.1; done
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Warm-up (the shadow front syncs the user on its first login).
for i in $(seq 20); do login 18703; login 18702; login 18704; login 18701; done >/dev/null
# The four are asked in turn (legacy, forwarder, passthrough, shadow; N rounds), so that a busy
# moment of the machine hits them alike; each front is also compared with the legacy request of
# its own round.
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
