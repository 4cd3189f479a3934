#!/usr/bin/env bash
# One `etcdctl check perf` run against a fresh 3-member tally cluster on loopback, with where
# the CPU went: the check's verdict, CPU seconds (user and system) of every member thread (the
# loop, tally-wal, tally-snapshot) and of etcdctl, members' CPU per committed entry, and the
# members' system calls per entry (with `perf`, when installed and allowed).
#
#   benches/check-perf-profile.sh                 check perf --load=l
#   benches/check-perf-profile.sh xl --snapshot-count 1000000   load, then extra tallyd flags
#
# Env: TALLYD (default target/release/tallyd, built when missing), DATA (scratch directory,
# default /tmp/tally-check-perf; wiped). Members listen on 127.0.0.1:24{1,2,3}79 (clients) and
# 24{1,2,3}80 (peers), away from scripts/local-cluster.sh. Run it on a quiet machine and compare
# A/B variants alternately: the speed of a shared VM drifts by tens of percent within an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
load=${1:-l}
shift || true
tallyd=${TALLYD:-target/release/tallyd}
if [ ! -x "$tallyd" ]; then
    cargo build --release -p tally-runtime-mio --bin tallyd
fi
data=${DATA:-/tmp/tally-check-perf}
rm -rf "$data"
mkdir -p "$data"
export ETCDCTL_API=3
endpoints=127.0.0.1:24179,127.0.0.1:24279,127.0.0.1:24379
cluster="m1=http://127.0.0.1:24180,m2=http://127.0.0.1:24280,m3=http://127.0.0.1:24380"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for i in 1 2 3; do
    "$tallyd" --name "m$i" --data-dir "$data/m$i" \
        --listen-client-urls "http://127.0.0.1:24${i}79" --advertise-client-urls "http://127.0.0.1:24${i}79" \
        --listen-peer-urls "http://127.0.0.1:24${i}80" --initial-advertise-peer-urls "http://127.0.0.1:24${i}80" \
        --initial-cluster-token check-perf --initial-cluster "$cluster" --initial-cluster-state new \
        "$@" >"$data/m$i.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 50); do
    etcdctl --endpoints=$endpoints endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done

# "<pid>/<thread name> <utime> <stime>" in clock ticks, for every member thread.
threads() {
    for p in "${pids[@]}"; do
        for t in /proc/"$p"/task/*; do
            echo "$p/$(cat "$t/comm") $(awk '{print $14, $15}' "$t/stat")"
        done
    done | sort
}
applied() {
    curl -s "127.0.0.1:24179/metrics" | awk '/^etcd_server_proposals_applied_total/{print $2}'
}

before=$(threads)
entries_before=$(applied)
perf_out=$data/perf-stat.txt
run=(etcdctl --endpoints=$endpoints check perf --load="$load")
if command -v perf >/dev/null && perf stat -e 'raw_syscalls:sys_enter' -- true >/dev/null 2>&1; then
    member_list=$(IFS=,; echo "${pids[*]}")
    perf stat -x, -o "$perf_out" -e 'raw_syscalls:sys_enter,context-switches' -p "$member_list" &
    perf_pid=$!
else
    perf_pid=
fi
# The progress bar redraws one line; keep the verdict lines only.
/usr/bin/time -f "%U %S" -o "$data/client-time" "${run[@]}" 2>&1 | tr '\r' '\n' |
    grep -E 'PASS|FAIL|Slowest|Stddev|Throughput|Error|error' || true
[ -n "$perf_pid" ] && kill -INT "$perf_pid" && wait "$perf_pid" 2>/dev/null || true
after=$(threads)
entries=$(($(applied) - entries_before))
hz=$(getconf CLK_TCK)

echo "committed entries: $entries"
# time(1) puts "Command exited with non-zero status" first when the check FAILs.
read -r client_user client_sys < <(tail -n 1 "$data/client-time")
echo "etcdctl: user ${client_user}s sys ${client_sys}s"
join <(echo "$before") <(echo "$after") | awk -v hz="$hz" -v n="$entries" '
    { u = ($4 - $2) / hz; s = ($5 - $3) / hz; total += u + s
      printf "%-24s user %6.1fs sys %6.1fs\n", $1, u, s }
    END { if (n > 0) printf "members: %.1f cpu-s, %.0f us per entry\n", total, total * 1e6 / n }'
if [ -s "$perf_out" ]; then
    awk -F, -v n="$entries" '$1 ~ /^[0-9]+$/ && n > 0 { printf "members %s per entry: %.2f\n", $3, $1 / n }' "$perf_out"
fi
grep -h "slow loop turn\|took" "$data"/m*.log | sort | uniq -c | sort -rn | head -n 5 || true
