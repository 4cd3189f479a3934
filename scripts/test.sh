#!/usr/bin/env bash
# The test command: installs what the tests need, builds once, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # etcdctl (Debian's etcd-client) drives the process-level compatibility tests.
    if ! command -v etcdctl >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-client >/dev/null
    fi
fi

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
