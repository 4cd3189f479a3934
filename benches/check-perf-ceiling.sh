#!/usr/bin/env bash
# `etcdctl check perf` against three `grpc-noop` servers (benches/src/bin/grpc-noop.rs): gRPC
# servers that answer every call at once and do nothing else. Whatever throughput check perf
# reaches here is the most it can reach on this machine against any server, tally or etcd:
# what it misses against a real cluster, beyond this, is the cluster's.
#
#   benches/check-perf-ceiling.sh        check perf --load=l
#   benches/check-perf-ceiling.sh xl
#   benches/check-perf-ceiling.sh l 2000 the servers hold every answer 2,000 µs (grpc-noop
#                                         --delay-us): what latency alone costs the check
#
# Env: NOOP (default target/release/grpc-noop, built when missing). The servers listen on
# 127.0.0.1:24{1,2,3}79, the ports of check-perf-profile.sh: do not run both at once.
set -euo pipefail
cd "$(dirname "$0")/.."
load=${1:-l}
delay_us=${2:-0}
noop=${NOOP:-target/release/grpc-noop}
if [ ! -x "$noop" ]; then
    cargo build --release -p tally-benches --bin grpc-noop
fi
export ETCDCTL_API=3
endpoints=127.0.0.1:24179,127.0.0.1:24279,127.0.0.1:24379
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for i in 1 2 3; do
    "$noop" "127.0.0.1:24${i}79" --delay-us "$delay_us" &
    pids+=($!)
done
sleep 0.5
cpu() { # user+system clock ticks of the servers
    for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc
}
before=$(cpu)
client_time=$(mktemp)
# The progress bar redraws one line; keep the verdict lines only.
/usr/bin/time -f "%U %S" -o "$client_time" \
    etcdctl --endpoints=$endpoints check perf --load="$load" 2>&1 | tr '\r' '\n' |
    grep -E 'PASS|FAIL|Error|error' || true
hz=$(getconf CLK_TCK)
echo "servers: $(echo "scale=1; ($(cpu) - $before) / $hz" | bc) cpu-s"
read -r user sys < <(tail -n 1 "$client_time")
echo "etcdctl: user ${user}s sys ${sys}s"
rm -f "$client_time"
