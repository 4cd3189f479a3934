#!/usr/bin/env bash
# Starts a local 3-member tally cluster on 127.0.0.1 (clients on 2379, 22379, 32379; peers on
# 2380, 22380, 32380), like etcd's Procfile, and stops it on Ctrl-C.
#   ./scripts/local-cluster.sh            build (release) and run in the foreground
#   DATA=/tmp/tally ./scripts/local-cluster.sh   choose where the data directories go
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tally-runtime-mio --bin tallyd
bin=target/release/tallyd
data=${DATA:-$(pwd)/local-cluster}
mkdir -p "$data"
cluster="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
    case $i in 1) c=2379; p=2380;; 2) c=22379; p=22380;; 3) c=32379; p=32380;; esac
    "$bin" --name "infra$i" --data-dir "$data/infra$i.tally" \
        --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster-token tally-local --initial-cluster "$cluster" --initial-cluster-state new \
        2>&1 | sed -u "s/^/infra$i | /" &
    pids+=($!)
done
echo "tally: 3 members up; try: ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 endpoint status -w table"
wait
