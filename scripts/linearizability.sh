#!/usr/bin/env bash
# Runs the linearizability process tests (a 3-member cluster, clients on every member, a nemesis
# of SIGKILL, SIGSTOP and partitions) for as long as asked, and keeps each run's history.
#   scripts/linearizability.sh [SECONDS] [HISTORY_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
dir=${2:-$(pwd)/target/linearizability}
mkdir -p "$dir"
cargo build -p tally-runtime-mio --bin tallyd
LIN_SECONDS=$seconds LIN_HISTORY_DIR=$dir \
    cargo test -p tally-tests --test linearizability -- --nocapture --test-threads=1
echo "histories in $dir"
