#!/usr/bin/env bash
# Side by side: a 3-member etcd 3.4 cluster (Debian's etcd-server) and a 3-member tally cluster on
# this machine, one at a time, with the same tally-bench workloads; prints the tally/etcd ratio of
# the medians and writes everything as JSON to benches/results/compare-<date>.json.
#
#   benches/compare-etcd.sh                    full run: RUNS=3 per system, ~30 min on 2 cores
#   QUICK=1 RUNS=1 benches/compare-etcd.sh     smoke run: small totals, check perf --load=s only
#   WORKLOADS="put-1000 range-l" benches/compare-etcd.sh
#
# The check perf workloads also run against "noop": three grpc-noop servers (answer at once, do
# nothing else), whose writes/s are check perf's own ceiling on this machine; the table shows
# each system's fraction of it.
#
# Knobs: RUNS (3), QUICK (0), SYSTEMS ("etcd tally noop"), WORKLOADS (all of: put-1 put-1000 range-l range-s txn-put watch
# lease-keepalive check-perf-l check-perf-xl), DATA (scratch dir for data and logs, on the disk
# under test; default /tmp), CARGO_TARGET_DIR. Needs root for apt-get when etcd is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

RUNS=${RUNS:-3}
QUICK=${QUICK:-0}
ALL="put-1 put-1000 range-l range-s txn-put watch lease-keepalive check-perf-l check-perf-xl"
[ "$QUICK" = 1 ] && ALL=${ALL% check-perf-xl}
WORKLOADS=${WORKLOADS:-$ALL}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
scratch=${DATA:-/tmp}/kvcmp-$stamp
out_json=$root/benches/results/compare-$stamp.json
logs=$root/benches/results/compare-$stamp.logs
mkdir -p "$scratch" "$logs" "$root/benches/results"
rows=$scratch/rows.tsv
: >"$rows"

log() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    log "installing etcd 3.4 from Debian"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client
fi
export ETCDCTL_API=3

log "building tallyd and tally-bench (release)"
cargo build --release -p tally-runtime-mio -p tally-benches --bin tallyd --bin tally-bench --bin grpc-noop
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
# Members and clients run from copies with neutral names, so that a `pkill tallyd` or
# `pkill etcd` by someone else on a shared machine does not end this run half-way.
mkdir -p "$scratch/bin"
cp "$target/release/tallyd" "$scratch/bin/kv-b-member"
cp "$target/release/tally-bench" "$scratch/bin/kv-bench"
cp "$target/release/grpc-noop" "$scratch/bin/kv-noop"
cp "$(command -v etcd)" "$scratch/bin/kv-a-member"
cp "$(command -v etcdctl)" "$scratch/bin/kv-ctl"
tallyd=$scratch/bin/kv-b-member
bench=$scratch/bin/kv-bench
etcd_bin=$scratch/bin/kv-a-member
noop=$scratch/bin/kv-noop
ctl() { "$scratch/bin/kv-ctl" "$@"; }

# --- the machine ---------------------------------------------------------------------------
cores=$(nproc)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
# O_DSYNC overwrites of a preallocated file: a data sync without metadata, as a WAL does it.
(cd "$scratch" && dd if=/dev/zero of=fsync-probe bs=4k count=200 2>/dev/null)
fsync_ms=$(cd "$scratch" && dd if=/dev/zero of=fsync-probe bs=4k count=200 conv=notrunc oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") t = $(i-1); print t * 1000 / 200 }')
rm -f "$scratch/fsync-probe"
etcd_version=$(etcd --version | awk '/etcd Version/ { print $3 }')
log "machine: $cores cores ($cpu_model), 4 KiB O_DSYNC write ${fsync_ms} ms, etcd $etcd_version"

# --- clusters ------------------------------------------------------------------------------
# Ports away from the defaults, so a developer's local cluster does not collide, and below
# Linux's ephemeral range (32768-60999): check perf xl opens 3,000 connections, and a port of
# theirs still held when the next cluster starts made its bind fail.
client_ports=(23179 23279 23379)
peer_ports=(23180 23280 23380)
pids=()
endpoints=""

stop_cluster() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_cluster; rm -rf "$scratch/data" "$scratch/bin"' EXIT INT TERM

start_cluster() { # system run
    local system=$1 run=$2 cluster="" i
    rm -rf "$scratch/data"
    mkdir -p "$scratch/data"
    for i in 0 1 2; do
        cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer_ports[$i]}"
    done
    endpoints=""
    for i in 0 1 2; do
        local c=${client_ports[$i]} p=${peer_ports[$i]} bin
        endpoints+="${endpoints:+,}127.0.0.1:$c"
        local common=(--name "m$i" --data-dir "$scratch/data/m$i"
            --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c"
            --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p"
            --initial-cluster-token "cmp-$run" --initial-cluster "$cluster"
            --initial-cluster-state new)
        if [ "$system" = etcd ]; then
            "$etcd_bin" "${common[@]}" --heartbeat-interval 100 --election-timeout 1000 \
                2>"$logs/$system-run$run-m$i.log" &
        else
            "$tallyd" "${common[@]}" 2>"$logs/$system-run$run-m$i.log" &
        fi
        pids+=($!)
    done
    local deadline=$((SECONDS + 60))
    until ctl --endpoints="$endpoints" --command-timeout=2s endpoint health >/dev/null 2>&1; do
        if [ $SECONDS -gt $deadline ]; then
            log "$system did not become healthy; logs in $logs"
            ctl --endpoints="$endpoints" endpoint health || true
            exit 1
        fi
        sleep 0.5
    done
    ctl --endpoints="$endpoints" put foo bar >/dev/null
}

# Three no-op gRPC servers on the client ports: check perf's ceiling.
start_noop() { # run
    local run=$1 i
    endpoints=""
    for i in 0 1 2; do
        endpoints+="${endpoints:+,}127.0.0.1:${client_ports[$i]}"
        "$noop" "127.0.0.1:${client_ports[$i]}" 2>"$logs/noop-run$run-s$i.log" &
        pids+=($!)
    done
    sleep 0.5
}

# Peak RSS since the last reset (largest member, MiB) and CPU seconds of all members.
reset_peaks() {
    local pid
    for pid in "${pids[@]}"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done
}
member_cpu_s() {
    local pid total=0 ticks
    ticks=$(getconf CLK_TCK)
    for pid in "${pids[@]}"; do
        # Fields 14 and 15 (utime, stime), counted after the ")" that ends the command name.
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0)))
    done
    awk -v t="$total" -v k="$ticks" 'BEGIN { printf "%.2f", t / k }'
}
member_rss_mib() {
    local pid max=0 kb
    for pid in "${pids[@]}"; do
        kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "$kb" -gt "$max" ] && max=$kb
    done
    awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }'
}
alive() {
    local pid
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}

# --- workloads -----------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    put1_total=200 put_total=5000 read_secs=3 txn_secs=3 watch_puts=200 perf_loads="s"
else
    put1_total=2000 put_total=50000 read_secs=10 txn_secs=10 watch_puts=1000 perf_loads="l xl"
fi
many=(--conns 100 --clients 1000)

json_num() { # field json -> the first number after "field":
    { grep -o "\"$1\": [0-9.]*" <<<"$2" || true; } | head -1 | awk '{ print $2 }'
}

bench_args() { # workload -> tally-bench arguments
    case $1 in
    put-1) echo put --conns 1 --clients 1 --total "$put1_total" --val-size 256 --key-space-size 100000 ;;
    put-1000) echo put "${many[@]}" --total "$put_total" --val-size 256 --key-space-size 100000 ;;
    range-l) echo range foo "${many[@]}" --consistency l --duration "$read_secs" ;;
    range-s) echo range foo "${many[@]}" --consistency s --duration "$read_secs" ;;
    txn-put) echo txn-put "${many[@]}" --duration "$txn_secs" --val-size 256 --key-space-size 100000 ;;
    watch) echo watch --watchers 1000 --streams 100 --conns 10 --total "$watch_puts" --rate 100 --val-size 256 ;;
    lease-keepalive) echo lease-keepalive "${many[@]}" --duration "$read_secs" ;;
    *) return 1 ;;
    esac
}

# Appends one row: system run workload rps p99_ms slowest_ms errors regressions rss_mib cpu_s pass
run_workload() { # system run workload
    local system=$1 run=$2 w=$3 cpu0 cpu1 rps p99 slowest errors regr pass=- result
    reset_peaks
    cpu0=$(member_cpu_s)
    case $w in
    check-perf-*)
        local load=${w#check-perf-}
        [ "$QUICK" = 1 ] && load=s
        ctl --endpoints="$endpoints" check perf --load="$load" >"$logs/$system-run$run-$w.txt" 2>&1 ||
            true
        # "PASS: Throughput is N writes/s" or "FAIL: Throughput too low: N writes/s", and
        # "[PASS: ]Slowest request took[ too long:] Xs".
        result=$(tr '\r' '\n' <"$logs/$system-run$run-$w.txt" |
            grep -oE '(PASS|FAIL|Throughput|Slowest|Stddev).*$' || true)
        rps=$({ grep -oE 'Throughput (is|too low:) [0-9]+' <<<"$result" || true; } | awk '{ print $NF }')
        slowest=$({ grep -oE 'Slowest request took( too long:)? [0-9.]+' <<<"$result" || true; } |
            awk '{ print $NF * 1000 }')
        pass=$(grep -xE 'PASS|FAIL' <<<"$result" | tail -1 || true)
        pass=${pass:-none}
        p99=- errors=0 regr=0
        [ "$pass" = PASS ] || errors=1
        ;;
    *)
        # shellcheck disable=SC2046
        result=$("$bench" $(bench_args "$w") --endpoints "$endpoints" --output json --no-progress ||
            echo '{"errors": 1}')
        echo "$result" >"$logs/$system-run$run-$w.json"
        rps=$(json_num requests_per_s "$result")
        p99=$(json_num p99 "$result")
        slowest=$(json_num slowest "$result")
        errors=$(json_num errors "$result")
        regr=$(json_num revision_regressions "$result")
        ;;
    esac
    cpu1=$(member_cpu_s)
    local rss cpu
    rss=$(member_rss_mib)
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
    alive || { log "$system: a member died during $w (logs in $logs)"; errors="${errors:-0}+died"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$run" "$w" "${rps:--}" \
        "${p99:--}" "${slowest:--}" "${errors:--}" "${regr:--}" "$rss" "$cpu" "$pass" >>"$rows"
    log "$system run $run $w: ${rps:--}/s p99 ${p99:--} ms slowest ${slowest:--} ms errors ${errors:--} regressions ${regr:--} rss ${rss} MiB cpu ${cpu} s $pass"
}

for run in $(seq 1 "$RUNS"); do
    for system in ${SYSTEMS:-etcd tally noop}; do
        if [ "$system" = noop ]; then
            case " $WORKLOADS " in *" check-perf-"*) ;; *) continue ;; esac
            log "noop run $run: starting 3 no-op gRPC servers"
            start_noop "$run"
        else
            log "$system run $run: starting 3 members"
            start_cluster "$system" "$run"
        fi
        for w in $WORKLOADS; do
            case $system:$w in noop:check-perf-*) ;; noop:*) continue ;; esac
            run_workload "$system" "$run" "$w"
        done
        stop_cluster
        rm -rf "$scratch/data"
    done
done

# --- medians, the table and the JSON ---------------------------------------------------------
summary=$(awk -F'\t' -v workloads="$WORKLOADS" '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return "-"
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    for (m = 4; m <= 10; m++) if (m != 7 && m != 8 && $m != "-") v[$1, $3, m] = v[$1, $3, m] " " $m
    err[$1, $3] += $7; reg[$1, $3] += $8
    if ($11 != "-") pass[$1, $3] = pass[$1, $3] (pass[$1, $3] == "" ? "" : "/") $11
}
END {
    split("rps p99_ms slowest_ms errors regressions rss_mib cpu_s", name, " ")
    n = split(workloads, w, " ")
    for (i = 1; i <= n; i++) {
        for (m = 4; m <= 10; m++) {
            if (m == 7 || m == 8) continue
            e = median(v["etcd", w[i], m]); t = median(v["tally", w[i], m])
            r = (e != "-" && t != "-" && e + 0 != 0) ? sprintf("%.2f", t / e) : "-"
            printf "%s\t%s\t%s\t%s\t%s\n", w[i], name[m - 3], e, t, r
        }
        printf "%s\terrors\t%s\t%s\t-\n", w[i], err["etcd", w[i]] + 0, err["tally", w[i]] + 0
        printf "%s\tregressions\t%s\t%s\t-\n", w[i], reg["etcd", w[i]] + 0, reg["tally", w[i]] + 0
        if (pass["etcd", w[i]] != "" || pass["tally", w[i]] != "")
            printf "%s\tpass\t%s\t%s\t-\n", w[i], pass["etcd", w[i]], pass["tally", w[i]]
        c = median(v["noop", w[i], 4])
        if (c != "-" && c + 0 != 0) {
            e = median(v["etcd", w[i], 4]); t = median(v["tally", w[i], 4])
            printf "%s\tnoop_rps\t-\t%s\t-\n", w[i], c
            printf "%s\tof_noop_rps\t%s\t%s\t-\n", w[i], (e == "-" ? "-" : sprintf("%.2f", e / c)), (t == "-" ? "-" : sprintf("%.2f", t / c))
        }
    }
}' "$rows")

{
    echo
    echo "tally vs etcd $etcd_version: medians of $RUNS run(s) each; $cores cores ($cpu_model); O_DSYNC 4 KiB write ${fsync_ms} ms; $(date -u +%Y-%m-%d)"
    printf '%-16s %-12s %12s %12s %12s\n' workload figure etcd tally tally/etcd
    awk -F'\t' '{ printf "%-16s %-12s %12s %12s %12s\n", $1, $2, $3, $4, $5 }' <<<"$summary"
    echo
    echo "rps: requests/s (watch: events delivered/s; check-perf: its writes/s). p99/slowest in ms"
    echo "(watch: delivery latency). rss_mib: peak RSS of the largest member during the workload."
    echo "cpu_s: CPU seconds of all 3 members during the workload. errors, regressions: sums."
    echo "noop_rps: check perf against three no-op gRPC servers (its ceiling here); of_noop_rps:"
    echo "each system's writes/s as a fraction of it."
} | tee "$scratch/table.txt"

{
    printf '{\n  "date": "%s", "command": "RUNS=%s QUICK=%s WORKLOADS=\\"%s\\" benches/compare-etcd.sh",\n' \
        "$stamp" "$RUNS" "$QUICK" "$WORKLOADS"
    printf '  "machine": {"cores": %s, "cpu": "%s", "dsync_write_4k_ms": %s, "etcd_version": "%s"},\n' \
        "$cores" "$cpu_model" "${fsync_ms:-null}" "$etcd_version"
    echo '  "runs": ['
    awk -F'\t' '{
        printf "%s    {\"system\": \"%s\", \"run\": %s, \"workload\": \"%s\", \"rps\": %s, \"p99_ms\": %s, \"slowest_ms\": %s, \"errors\": \"%s\", \"regressions\": \"%s\", \"rss_mib\": %s, \"cpu_s\": %s, \"pass\": \"%s\"}",
            (NR > 1 ? ",\n" : ""), $1, $2, $3, ($4 == "-" ? "null" : $4), ($5 == "-" ? "null" : $5),
            ($6 == "-" ? "null" : $6), $7, $8, $9, $10, $11
    } END { print "" }' "$rows"
    echo '  ],'
    echo '  "medians": ['
    awk -F'\t' '
    function j(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?$/ ? x : (x == "-" || x == "" ? "null" : "\"" x "\"") }
    {
        printf "%s    {\"workload\": \"%s\", \"figure\": \"%s\", \"etcd\": %s, \"tally\": %s, \"ratio\": %s}",
            (NR > 1 ? ",\n" : ""), $1, $2, j($3), j($4), j($5)
    } END { print "" }' <<<"$summary"
    echo '  ]'
    echo '}'
} >"$out_json"
log "wrote $out_json (logs in $logs)"
