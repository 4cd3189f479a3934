#!/usr/bin/env bash
# The test command: installs what the tests need, builds once, runs the examples in their short
# mode, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

cargo build --workspace --all-targets --locked
# The examples, in their short mode: each checks its own outcome and exits non-zero on failure.
cargo run --locked -q -p tally-core --example counter_cluster -- --short
cargo run --locked -q -p tally-kvstore --example etcd_requests
cargo test --workspace --locked
