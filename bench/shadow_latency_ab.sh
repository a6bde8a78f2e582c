#!/bin/bash
# Shadow-mode latency, A/B: two builds' fronts against one legacy stand-in, asked in turn.
# The machine's speed drifts between runs (the same request can take twice as long an hour
# later), so two builds are compared within one run: each round asks the legacy stand-in alone,
# then both builds' passthrough fronts and both builds' shadow fronts (which build goes first
# alternates), and each front's figure is the median of what it adds to the legacy request of
# its round. Same conditions as bench/shadow_latency.sh (SQLite, bcrypt cost 4, one curl per
# request, no keep-alive). A=old-binary B=new-binary [L=legacy-binary, default B] N=rounds
A=${A:?A=path/to/credgate (the build to compare against)}
B=${B:-target/release/credgate}
L=${L:-$B}
N=${N:-500}
source "$(dirname "$0")/shadow_common.sh"
start_legacy "$L"
start "$A" passthrough-a 18702 CREDGATE_UPSTREAMS="$(up passthrough)"
start "$B" passthrough-b 18703 CREDGATE_UPSTREAMS="$(up passthrough)"
start "$A" shadow-a 18704 CREDGATE_UPSTREAMS="$(up shadow)"
start "$B" shadow-b 18705 CREDGATE_UPSTREAMS="$(up shadow)"
# Warm-up (a shadow front syncs the user on its first login).
for i in $(seq 20); do for port in 18701 18702 18703 18704 18705; do login $port; done; done >/dev/null
echo "N = $N rounds, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq $N); do # columns: legacy, passthrough A, passthrough B, shadow A, shadow B
  if [ $((i % 2)) = 0 ]; then
    echo "$(login 18701) $(login 18702) $(login 18703) $(login 18704) $(login 18705)"
  else
    l=$(login 18701); pb=$(login 18703); pa=$(login 18702); sb=$(login 18705); sa=$(login 18704)
    echo "$l $pa $pb $sa $sb"
  fi
done >$D/times
q() { # awk-expression: its p50 over the rounds, in ms
  awk "{print ($1) * 1000}" $D/times | sort -g | awk '{a[NR]=$1} END {printf "%.2f ms", a[int(NR*0.5)]}'
}
echo "legacy alone:            p50 $(q '$1')"
echo "passthrough front adds:  A $(q '$2 - $1')   B $(q '$3 - $1')"
echo "shadow front adds:       A $(q '$4 - $1')   B $(q '$5 - $1')"
