#!/usr/bin/env bash
# The test command: installs what the tests need, builds once, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
