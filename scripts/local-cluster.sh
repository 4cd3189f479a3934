#!/usr/bin/env bash
# Starts a local 3-member tally cluster on 127.0.0.1 (clients on 2379, 22379, 32379; peers on
# 2380, 22380, 32380), like etcd's Procfile, in the foreground.
#   ./scripts/local-cluster.sh                   build (release) and run
#   DATA=/tmp/tally ./scripts/local-cluster.sh   put the data directories there
#   FRESH=1 ./scripts/local-cluster.sh           delete the data first: a new, empty cluster
# Data: DATA/infra1.tally, infra2.tally and infra3.tally, where DATA is ./local-cluster at the
# top of the repository unless set. A second start reuses it: the members restart with the keys
# they held. FRESH=1 replaces it.
# Stopping: Ctrl-C, `kill` of this script, or an error in it stops all three members, and so
# does `kill -9` of it (a watcher notices within a second). Killing one member (the PIDs are
# printed) leaves the other two serving, to watch a failover.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tally-runtime-mio --bin tallyd
bin=${CARGO_TARGET_DIR:-target}/release/tallyd
data=${DATA:-$(pwd)/local-cluster}
for port in 2379 2380 22379 22380 32379 32380; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "local-cluster: port $port is in use (another local cluster, or etcd?)" >&2
        exit 1
    fi
done
if [[ ${FRESH:-0} == 1 ]]; then
    rm -rf "$data"/infra{1,2,3}.tally
fi
mkdir -p "$data"
cluster="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
pids=()
watcher=
stop() {
    trap - EXIT INT TERM
    if [[ -n $watcher ]]; then kill "$watcher" 2>/dev/null || true; fi
    if ((${#pids[@]})); then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
        echo "local-cluster: members stopped; data kept in $data"
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for i in 1 2 3; do
    case $i in 1) c=2379; p=2380;; 2) c=22379; p=22380;; 3) c=32379; p=32380;; esac
    "$bin" --name "infra$i" --data-dir "$data/infra$i.tally" \
        --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster-token tally-local --initial-cluster "$cluster" --initial-cluster-state new \
        > >(sed -u "s/^/infra$i | /") 2>&1 &
    pids+=($!)
done
# A script killed with SIGKILL runs no trap: this watcher stops the members then. It ignores
# Ctrl-C, which the trap above handles.
script=$$
(
    trap '' INT
    while kill -0 "$script" 2>/dev/null; do sleep 1; done
    kill "${pids[@]}" 2>/dev/null
) &
watcher=$!
echo "local-cluster: members infra1, infra2, infra3 up as PIDs ${pids[*]}; data in $data"
echo "local-cluster: try: ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 endpoint status -w table"
status=0
wait "${pids[@]}" || status=$?
pids=()
echo "local-cluster: every member has exited"
exit "$status"
