#!/usr/bin/env bash
# Installs what the tests need on a Debian machine, when run as root: etcdctl and etcd 3.4
# (Debian's etcd-client and etcd-server: the reference the compatibility tests compare against)
# and protoc (protobuf-compiler: the etcd-client crate, another project's client that the
# process tests drive tally with, compiles etcd's protos with it). Elsewhere it only checks.
# Python's grpcio, with which tests/fixtures/etcd34/record.py sends the raw gRPC requests
# whose answers are compared with etcd's, comes from PyPI.
set -euo pipefail

if command -v python3 >/dev/null && ! python3 -c 'import grpc' 2>/dev/null; then
    python3 -m pip install -q grpcio
fi

missing=()
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [ "${#missing[@]}" = 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian's etcd-server package starts a system etcd on 2379 where an init system runs it;
    # the tests start their own members and need that port free.
    if command -v systemctl >/dev/null; then
        systemctl stop etcd >/dev/null 2>&1 || true
    fi
else
    echo "missing: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
fi
