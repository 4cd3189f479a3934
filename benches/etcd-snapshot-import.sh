#!/usr/bin/env bash
# Importing an etcd snapshot: `tallyd --restore-snapshot` against `etcdctl snapshot restore` of
# the same file, on this machine. An etcd 3.4 member (Debian's etcd-server) is loaded with KEYS
# distinct keys by tally-bench and saved with `etcdctl snapshot save`; each run then times
#
#   - etcd:  `etcdctl snapshot restore` (to its data directory), and etcd started on it until it
#            serves a linearizable read;
#   - tally: `tallyd --restore-snapshot` until the data directory is written (its "restored"
#            log line), and until it serves;
#
# and prints the medians. Then the way back: `tallyd snapshot export-etcd` of a tally snapshot
# of the same keys, and `etcdctl snapshot restore` of what it wrote.
#
#   benches/etcd-snapshot-import.sh                 1,000,000 keys of 256 bytes, RUNS=3
#   KEYS=100000 RUNS=1 benches/etcd-snapshot-import.sh
#
# Knobs: KEYS (1000000), VAL_SIZE (256), RUNS (3), DATA (scratch dir, default /tmp),
# CARGO_TARGET_DIR. Needs etcd and etcdctl (apt-get install -y etcd-server etcd-client).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

KEYS=${KEYS:-1000000}
VAL_SIZE=${VAL_SIZE:-256}
RUNS=${RUNS:-3}
scratch=${DATA:-/tmp}/etcd-import-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$scratch"
export ETCDCTL_API=3
log() { echo "[etcd-import $(date -u +%H:%M:%S)] $*" >&2; }

cargo build --release -p tally-runtime-mio -p tally-benches --bin tallyd --bin tally-bench
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
tallyd=$target/release/tallyd
bench=$target/release/tally-bench

# The processes this script started, and only those, are stopped on exit.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
stop_last() {
    local p=${pids[-1]}
    kill "$p"
    wait "$p" 2>/dev/null || true
}

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# Waits until endpoint $1 (127.0.0.1:port) listens, then until it answers a linearizable read.
serving() {
    until (: </dev/tcp/127.0.0.1/"${1##*:}") 2>/dev/null; do sleep 0.01; done
    until etcdctl --endpoints="$1" --dial-timeout=1s --command-timeout=1s get probe >/dev/null 2>&1; do
        sleep 0.01
    done
}
# Waits until file $1 has a line matching $2.
wait_line() { until grep -q "$2" "$1" 2>/dev/null; do sleep 0.01; done; }

etcd_member() { # name data-dir client-port peer-port
    etcd --name "$1" --data-dir "$2" \
        --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
        --listen-peer-urls "http://127.0.0.1:$4" --initial-advertise-peer-urls "http://127.0.0.1:$4" \
        --initial-cluster "$1=http://127.0.0.1:$4" --quota-backend-bytes=8589934592 \
        >"$2.log" 2>&1 &
    pids+=($!)
}

log "loading $KEYS keys of $VAL_SIZE bytes into etcd"
etcd_member source "$scratch/source" 24791 24801
serving 127.0.0.1:24791
"$bench" put --endpoints=127.0.0.1:24791 --conns 16 --clients 400 --total "$KEYS" \
    --key-size 32 --val-size "$VAL_SIZE" --key-space-size "$KEYS" --sequential-keys --no-progress \
    >"$scratch/load.txt"
etcdctl --endpoints=127.0.0.1:24791 snapshot save "$scratch/etcd.db" >/dev/null 2>&1
stop_last
etcdctl snapshot status "$scratch/etcd.db" -w table

for run in $(seq "$RUNS"); do
    rm -rf "$scratch/restored.etcd" "$scratch/restored.tally"
    start=$(now)
    etcdctl snapshot restore "$scratch/etcd.db" --name restored --data-dir "$scratch/restored.etcd" \
        --initial-cluster restored=http://127.0.0.1:24802 \
        --initial-advertise-peer-urls http://127.0.0.1:24802 >/dev/null 2>&1
    since "$start" >>"$scratch/etcd-restore.txt"
    start=$(now)
    etcd_member restored "$scratch/restored.etcd" 24792 24802
    serving 127.0.0.1:24792
    since "$start" >>"$scratch/etcd-start.txt"
    stop_last

    start=$(now)
    "$tallyd" --name restored --data-dir "$scratch/restored.tally" \
        --listen-client-urls http://127.0.0.1:24793 --advertise-client-urls http://127.0.0.1:24793 \
        --listen-peer-urls http://127.0.0.1:24803 --initial-advertise-peer-urls http://127.0.0.1:24803 \
        --initial-cluster restored=http://127.0.0.1:24803 \
        --restore-snapshot "$scratch/etcd.db" 2>"$scratch/tally-$run.log" &
    pids+=($!)
    wait_line "$scratch/tally-$run.log" "tallyd: restored "
    since "$start" >>"$scratch/tally-restored.txt"
    serving 127.0.0.1:24793
    since "$start" >>"$scratch/tally-serving.txt"
    if [ "$run" = "$RUNS" ]; then
        etcdctl --endpoints=127.0.0.1:24793 snapshot save "$scratch/tally.snap" >/dev/null 2>&1
    fi
    stop_last
    log "run $run: etcd restore $(tail -1 "$scratch/etcd-restore.txt") s, tally restored $(tail -1 "$scratch/tally-restored.txt") s"
done

start=$(now)
"$tallyd" snapshot export-etcd "$scratch/tally.snap" "$scratch/exported.db" >/dev/null
export_s=$(since "$start")
start=$(now)
etcdctl snapshot restore "$scratch/exported.db" --name back --data-dir "$scratch/back.etcd" \
    --initial-cluster back=http://127.0.0.1:24804 \
    --initial-advertise-peer-urls http://127.0.0.1:24804 >/dev/null 2>&1
back_s=$(since "$start")

printf '\n%s keys, %s bytes each; medians of %s runs (seconds)\n' "$KEYS" "$VAL_SIZE" "$RUNS"
printf '%-52s %8s\n' "etcdctl snapshot restore" "$(median <"$scratch/etcd-restore.txt")"
printf '%-52s %8s\n' "  then etcd serving" "$(median <"$scratch/etcd-start.txt")"
printf '%-52s %8s\n' "tallyd --restore-snapshot: data directory written" "$(median <"$scratch/tally-restored.txt")"
printf '%-52s %8s\n' "tallyd --restore-snapshot: serving" "$(median <"$scratch/tally-serving.txt")"
printf '%-52s %8s\n' "tallyd snapshot export-etcd (once)" "$export_s"
printf '%-52s %8s\n' "  then etcdctl snapshot restore of it (once)" "$back_s"
log "files and logs in $scratch"
