#!/usr/bin/env bash
# What authentication costs the put path: `tally-bench put` at 1,000 clients on a 3-member
# cluster without auth, then with auth on and a user whose role holds 100 key permissions
# (99 that do not match, one that covers the benchmark's keys), on tally and on etcd 3.4, one
# after the other on this machine. Prints each system's throughput both ways and the ratio.
#
#   benches/auth-overhead.sh            TOTAL=50000 puts per run, RUNS=2 runs per case
#
# Needs etcd and etcdctl 3.4 (Debian's etcd-server, etcd-client) and python3 with grpcio (to
# get a token: etcdctl prints none).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TOTAL=${TOTAL:-50000}
RUNS=${RUNS:-2}
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -p tally-runtime-mio --bin tallyd -p tally-benches --bin tally-bench >&2
scratch=$(mktemp -d /tmp/auth-overhead.XXXXXX)
export ETCDCTL_API=3
ports=(25179 25279 25379)
peers=(25180 25280 25380)
endpoints=127.0.0.1:25179,127.0.0.1:25279,127.0.0.1:25379
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop; rm -rf "$scratch"' EXIT INT TERM

start() { # system
    local cluster="" i
    rm -rf "$scratch/data"
    for i in 0 1 2; do cluster+="${cluster:+,}m$i=http://127.0.0.1:${peers[$i]}"; done
    for i in 0 1 2; do
        local args=(--name "m$i" --data-dir "$scratch/data/m$i"
            --listen-client-urls "http://127.0.0.1:${ports[$i]}"
            --advertise-client-urls "http://127.0.0.1:${ports[$i]}"
            --listen-peer-urls "http://127.0.0.1:${peers[$i]}"
            --initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}"
            --initial-cluster-token auth-overhead --initial-cluster "$cluster"
            --initial-cluster-state new)
        if [ "$1" = etcd ]; then
            etcd "${args[@]}" 2>"$scratch/$1-m$i.log" &
        else
            "$target/release/tallyd" "${args[@]}" 2>"$scratch/$1-m$i.log" &
        fi
        pids+=($!)
    done
    for _ in $(seq 100); do
        etcdctl --endpoints=$endpoints endpoint health >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "the $1 cluster did not start" >&2
    exit 1
}

# root, and the user `bench` with a role of 100 permissions; then auth on.
enable_auth() {
    local ctl=(etcdctl --endpoints=127.0.0.1:25179)
    "${ctl[@]}" user add root:rootpw >/dev/null
    "${ctl[@]}" user grant-role root root >/dev/null
    "${ctl[@]}" user add bench:benchpw >/dev/null
    "${ctl[@]}" role add bench >/dev/null
    for i in $(seq -w 0 98); do
        "${ctl[@]}" role grant-permission bench readwrite "/decoy/$i/" --prefix >/dev/null
    done
    # The benchmark's keys are digits: every key from "0" up to ":" (after "9").
    "${ctl[@]}" role grant-permission bench readwrite 0 : >/dev/null
    "${ctl[@]}" user grant-role bench bench >/dev/null
    "${ctl[@]}" auth enable >/dev/null
}

token() { # endpoint
    python3 - "$1" <<'EOF'
import sys, grpc
def field(number, text):
    data = text.encode()
    return bytes([number << 3 | 2, len(data)]) + data
channel = grpc.insecure_channel(sys.argv[1])
call = channel.unary_unary("/etcdserverpb.Auth/Authenticate")
answer = call(field(1, "bench") + field(2, "benchpw"))
# AuthenticateResponse: the token is field 2 (length-delimited).
at = 0
while at < len(answer):
    key, at = answer[at], at + 1
    length = answer[at]; at += 1
    if key == (2 << 3 | 2):
        print(answer[at:at + length].decode()); break
    at += length
EOF
}

put_rps() { # extra tally-bench flags...
    "$target/release/tally-bench" put --endpoints "$endpoints" --conns 100 --clients 1000 \
        --total "$TOTAL" --val-size 256 --key-space-size 100000 --output json --no-progress "$@" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["requests_per_s"]), r["errors"])'
}

declare -A plain authed
for system in tally etcd; do
    start "$system"
    plain[$system]=""
    authed[$system]=""
    for _ in $(seq "$RUNS"); do
        read -r rps errors < <(put_rps)
        [ "$errors" = 0 ] || echo "$system: $errors errors without auth" >&2
        plain[$system]+=" $rps"
    done
    enable_auth
    tok=$(token 127.0.0.1:25179)
    for _ in $(seq "$RUNS"); do
        read -r rps errors < <(put_rps --token "$tok")
        [ "$errors" = 0 ] || echo "$system: $errors errors with auth" >&2
        authed[$system]+=" $rps"
    done
    stop
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "put at 1,000 clients, $TOTAL puts, 256-byte values; $RUNS runs each, medians"
printf '%-6s %14s %14s %8s\n' system no-auth auth-100-perms ratio
for system in tally etcd; do
    p=$(echo "${plain[$system]}" | median)
    a=$(echo "${authed[$system]}" | median)
    printf '%-6s %14s %14s %8.2f   (runs:%s /%s)\n' "$system" "$p" "$a" "$(echo "$a / $p" | bc -l)" \
        "${plain[$system]}" "${authed[$system]}"
done
