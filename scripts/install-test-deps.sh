#!/usr/bin/env bash
# Installs what the tests need on a Debian machine, when run as root: etcdctl and etcd 3.4
# (Debian's etcd-client and etcd-server: the reference the compatibility tests compare against)
# and protoc (protobuf-compiler: the etcd-client crate, another project's client that the
# process tests drive tally with, compiles etcd's protos with it). Elsewhere it only checks.
# Python's grpcio is what tests/fixtures/etcd34/record.py sends its raw gRPC requests with,
# whose answers are compared with etcd's.
set -euo pipefail

missing=()
# A Python from pip's world (as a pyenv one) takes grpcio from PyPI; Debian's own python3
# refuses pip installs (PEP 668), so there it comes from Debian's python3-grpcio.
if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-grpcio)
elif ! python3 -c 'import grpc' 2>/dev/null; then
    python3 -m pip install -q grpcio 2>/dev/null || missing+=(python3-grpcio)
fi
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
