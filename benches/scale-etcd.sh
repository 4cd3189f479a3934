#!/usr/bin/env bash
# How cost grows with the work: a 3-member tally cluster and a 3-member etcd 3.4 cluster, one
# after the other on this machine, through the same steps. Writes a table, JSON and plots.
#
#   benches/scale-etcd.sh                        sizes 0.1M 1M 4M keys, 10k and 100k watchers,
#                                                100k leases (about an hour on 2 cores)
#   SIZES="20000 100000" WATCHERS=1000 LEASES=5000 BIG_READ_KEYS=100000 benches/scale-etcd.sh
#                                                a smoke run of every step (a few minutes)
#
# Steps, for each system:
# - Store size. The store is loaded to each of SIZES keys (32-byte keys, 256-byte values), and
#   at each size: put throughput and p99 at 1,000 clients over the loaded keys, linearizable
#   range throughput (one key, 1,000 clients), the largest member's RSS, the page cache its data
#   files hold (fincore; what etcd's bbolt needs resident to read from memory), and its on-disk
#   size. Then recovery: a follower killed with -9 until it serves a linearizable read again,
#   a new member (member add + start) until it serves one, and the whole cluster stopped and
#   started until every member serves one. The new member is removed again afterwards.
# - Big reads, at each size of at least BIG_READ_KEYS: a range over the first BIG_READ_KEYS
#   keys through etcdctl, counted and in full, and the serving member's peak RSS. etcdctl 3.4
#   has no --count-only, so the count is a `get --limit 1 --keys-only`: the server walks the
#   whole range to count it and sends one key.
# - Watchers, on the loaded store: each of WATCHERS watches one prefix, over 1,000 streams on
#   1,000 connections; one writer puts 100/s; delivery p99 and the largest member's RSS.
# - Leases: LEASES leases with one key each, all expiring within a second of each other: the
#   time until every key is gone, the p99 of puts issued meanwhile, and whether the Raft term
#   moved (an election) on any member.
#
# Knobs: SIZES, WATCHERS (empty: no watcher step), LEASES (0: no lease step), BIG_READ_KEYS, SYSTEMS ("tally etcd"), PUT_TOTAL (150000),
# READ_SECS (10), DATA (scratch dir on the disk under test, default /tmp), CARGO_TARGET_DIR.
# Both systems get --quota-backend-bytes 8 GiB so that the largest store fits.
# Output: benches/results/scale-<date>.{json,txt} and docs/scale-*.svg (gnuplot).
# PLOT_FROM=benches/results/scale-<date>.tsv redraws the table, JSON and plots of that run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SIZES=${SIZES:-100000 1000000 4000000}
WATCHERS=${WATCHERS-10000 100000}
LEASES=${LEASES:-100000}
BIG_READ_KEYS=${BIG_READ_KEYS:-1000000}
SYSTEMS=${SYSTEMS:-tally etcd}
PUT_TOTAL=${PUT_TOTAL:-150000}
READ_SECS=${READ_SECS:-10}
KEY_BYTES=32
VALUE_BYTES=256
QUOTA_BYTES=$((8 << 30))
# The lease keys' indexes start here, far above any loaded key's.
LEASE_KEY_START=1000000000000
LEASE_ID_BASE=1
stamp=$(date -u +%Y%m%dT%H%M%SZ)
scratch=${DATA:-/tmp}/kvscale-$stamp
if [ -n "${PLOT_FROM:-}" ]; then
    # Only the table, the JSON and the plots, from an earlier run's rows.
    out=$root/${PLOT_FROM%.tsv}
    stamp=$(basename "$out")
    stamp=${stamp#scale-}
    SYSTEMS=""
else
    out=$root/benches/results/scale-$stamp
fi
logs=$out.logs
mkdir -p "$scratch" "$logs"
rows=$out.tsv
[ -n "${PLOT_FROM:-}" ] || : >"$rows"

log() { echo "[scale $(date -u +%H:%M:%S)] $*" >&2; }
row() { # system size metric value
    printf '%s\t%s\t%s\t%s\n' "$@" >>"$rows"
    log "$1 $2 keys: $3 = $4"
}
now_ms() { date +%s%3N; }

for need in etcd:etcd-server etcdctl:etcd-client gnuplot:gnuplot-nox fincore:util-linux; do
    if ! command -v "${need%%:*}" >/dev/null; then
        log "installing ${need#*:} from Debian"
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need#*:}" >/dev/null
    fi
done
export ETCDCTL_API=3

if [ -z "${PLOT_FROM:-}" ]; then
    log "building tallyd and tally-bench (release)"
    cargo build --release -p tally-runtime-mio -p tally-benches --bin tallyd --bin tally-bench >&2
    target=${CARGO_TARGET_DIR:-$root/target}
    case $target in /*) ;; *) target=$root/$target ;; esac
    # Neutral names, so that someone's `pkill tallyd` or `pkill etcd` does not end this run.
    mkdir -p "$scratch/bin"
    cp "$target/release/tallyd" "$scratch/bin/kv-b-member"
    cp "$target/release/tally-bench" "$scratch/bin/kv-bench"
    cp "$(command -v etcd)" "$scratch/bin/kv-a-member"
    cp "$(command -v etcdctl)" "$scratch/bin/kv-ctl"
fi
bench=$scratch/bin/kv-bench
ctl() { "$scratch/bin/kv-ctl" "$@"; }

cores=$(nproc)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
etcd_version=$(etcd --version | awk '/etcd Version/ { print $3 }')
log "machine: $cores cores ($cpu_model), $(free -g | awk '/Mem:/ { print $2 }') GiB, etcd $etcd_version"

# --- members ---------------------------------------------------------------------------------
# Four slots: three founding members and one that joins. Ports below Linux's ephemeral range.
client_ports=(24179 24279 24379 24479)
peer_ports=(24180 24280 24380 24480)
pids=(0 0 0 0)
system=""
endpoint() { echo "127.0.0.1:${client_ports[$1]}"; }
endpoints="$(endpoint 0),$(endpoint 1),$(endpoint 2)"
cluster_of() { # slots...
    local c="" i
    for i in "$@"; do c+="${c:+,}m$i=http://127.0.0.1:${peer_ports[$i]}"; done
    echo "$c"
}

start_member() { # slot state cluster
    local i=$1 bin args
    args=(--name "m$i" --data-dir "$scratch/data/m$i"
        --listen-client-urls "http://127.0.0.1:${client_ports[$i]}"
        --advertise-client-urls "http://127.0.0.1:${client_ports[$i]}"
        --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}"
        --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[$i]}"
        --initial-cluster-token "scale-$stamp" --initial-cluster "$3"
        --initial-cluster-state "$2" --quota-backend-bytes "$QUOTA_BYTES")
    if [ "$system" = etcd ]; then
        bin=$scratch/bin/kv-a-member
        args+=(--heartbeat-interval 100 --election-timeout 1000)
    else
        bin=$scratch/bin/kv-b-member
    fi
    "$bin" "${args[@]}" 2>>"$logs/$system-m$i.log" &
    pids[i]=$!
}
stop_member() { # slot [signal]
    local pid=${pids[$1]}
    [ "$pid" != 0 ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pids[$1]=0
}
stop_all() { local i; for i in 0 1 2 3; do stop_member "$i"; done; }
trap 'stop_all; rm -rf "$scratch"' EXIT INT TERM

# Waits until the member in `slot` answers a linearizable read; prints the milliseconds since
# `since_ms`.
serves_read() { # slot since_ms
    local deadline=$((SECONDS + 1800))
    # Until the port listens, so that etcdctl's first dial does not fail into gRPC's 1 s backoff.
    until (: >"/dev/tcp/127.0.0.1/${client_ports[$1]}") 2>/dev/null; do
        if [ $SECONDS -gt $deadline ]; then
            log "$system m$1 did not listen in 30 minutes; logs in $logs"
            exit 1
        fi
        sleep 0.01
    done
    until ctl --endpoints="$(endpoint "$1")" --command-timeout=5s get probe >/dev/null 2>&1; do
        if [ $SECONDS -gt $deadline ]; then
            log "$system m$1 served no read in 30 minutes; logs in $logs"
            exit 1
        fi
        sleep 0.05
    done
    echo $(($(now_ms) - $2))
}

start_cluster() {
    rm -rf "$scratch/data"
    mkdir -p "$scratch/data"
    local i
    for i in 0 1 2; do start_member "$i" new "$(cluster_of 0 1 2)"; done
    for i in 0 1 2; do serves_read "$i" 0 >/dev/null; done
}

# --- measures ---------------------------------------------------------------------------------
json_num() { # field json -> the first number after "field":
    { grep -o "\"$1\": [0-9.]*" <<<"$2" || true; } | head -1 | awk '{ print $2 }'
}
run_bench() { # name args... -> its JSON, kept in the logs
    local name=$1
    shift
    "$bench" "$@" --key-size "$KEY_BYTES" --output json --no-progress >"$logs/$system-$name.json" ||
        true
    cat "$logs/$system-$name.json"
}
bench_errors() { # json
    local e
    e=$(json_num errors "$1")
    [ "${e:-1}" = 0 ] || log "$system: errors: $(grep -o '"error_kinds": {[^}]*}' <<<"$1" || echo "$1")"
}
max_member_kib() { # field of /proc/pid/status
    local i max=0 kb
    for i in 0 1 2 3; do
        [ "${pids[$i]}" != 0 ] || continue
        kb=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/${pids[$i]}/status" 2>/dev/null || echo 0)
        [ "${kb:-0}" -gt "$max" ] && max=$kb
    done
    echo "$max"
}
reset_peaks() {
    local i
    for i in 0 1 2 3; do
        [ "${pids[$i]}" = 0 ] || echo 5 >"/proc/${pids[$i]}/clear_refs" 2>/dev/null || true
    done
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# The page cache the largest member's data files hold, MiB.
max_cache_mib() {
    local i max=0 b
    for i in 0 1 2; do
        b=$(find "$scratch/data/m$i" -type f -print0 | xargs -0 -r fincore -b -n -o RES 2>/dev/null |
            awk '{ s += $1 } END { printf "%.0f\n", s }')
        [ "$b" -gt "$max" ] && max=$b
    done
    awk -v b="$max" 'BEGIN { printf "%.1f", b / 1048576 }'
}
max_disk_mib() {
    local i max=0 b
    for i in 0 1 2; do
        b=$(du -sb "$scratch/data/m$i" | awk '{ print $1 }')
        [ "$b" -gt "$max" ] && max=$b
    done
    awk -v b="$max" 'BEGIN { printf "%.1f", b / 1048576 }'
}
key() { printf "%0${KEY_BYTES}d" "$1"; }
leader_slot() {
    local i
    for i in 0 1 2; do
        if ctl --endpoints="$(endpoint "$i")" endpoint status -w json 2>/dev/null |
            python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; sys.exit(0 if s["leader"] == s["header"]["member_id"] else 1)'; then
            echo "$i"
            return
        fi
    done
    echo 0
}
terms() { # the Raft term every founding member reports
    local i t=""
    for i in 0 1 2; do
        t+=" $(ctl --endpoints="$(endpoint "$i")" endpoint status -w json 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["raftTerm"])' || echo '?')"
    done
    echo "$t"
}

measure_size() { # size
    local size=$1 json t0
    json=$(run_bench "put-$size" put --conns 100 --clients 1000 --total "$PUT_TOTAL" \
        --val-size "$VALUE_BYTES" --key-space-size "$size" --endpoints "$endpoints")
    bench_errors "$json"
    row "$system" "$size" put_rps "$(json_num requests_per_s "$json")"
    row "$system" "$size" put_p99_ms "$(json_num p99 "$json")"
    json=$(run_bench "range-$size" range "$(key 0)" --conns 100 --clients 1000 --consistency l \
        --duration "$READ_SECS" --endpoints "$endpoints")
    bench_errors "$json"
    row "$system" "$size" range_l_rps "$(json_num requests_per_s "$json")"
    row "$system" "$size" rss_mib "$(mib "$(max_member_kib VmRSS)")"
    row "$system" "$size" page_cache_mib "$(max_cache_mib)"
    row "$system" "$size" disk_mib "$(max_disk_mib)"
    du -ab "$scratch/data/m0" | sort -n | tail -20 >"$logs/$system-du-$size.txt"

    if [ "$size" -ge "$BIG_READ_KEYS" ]; then
        local leader
        leader=$(leader_slot)
        reset_peaks
        t0=$(now_ms)
        ctl --endpoints="$(endpoint "$leader")" --command-timeout=600s get "$(key 0)" \
            "$(key "$BIG_READ_KEYS")" --limit 1 --keys-only -w json >"$logs/$system-count-$size.json" ||
            log "$system: the counting read failed"
        row "$system" "$size" big_read_count_ms $(($(now_ms) - t0))
        t0=$(now_ms)
        ctl --endpoints="$(endpoint "$leader")" --command-timeout=600s get "$(key 0)" \
            "$(key "$BIG_READ_KEYS")" 2>>"$logs/$system-full-$size.err" | wc -l >"$logs/$system-full-$size.lines" ||
            log "$system: the full read failed: $(tail -1 "$logs/$system-full-$size.err")"
        row "$system" "$size" big_read_full_ms $(($(now_ms) - t0))
        [ "$(cat "$logs/$system-full-$size.lines")" = $((2 * BIG_READ_KEYS)) ] ||
            log "$system: the full read returned $(cat "$logs/$system-full-$size.lines") lines"
        row "$system" "$size" big_read_peak_rss_mib \
            "$(mib "$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${pids[$leader]}/status")")"
    fi

    # A follower killed with -9, until it serves a linearizable read after its restart.
    local follower=$(( ($(leader_slot) + 1) % 3 ))
    stop_member "$follower" KILL
    t0=$(now_ms)
    start_member "$follower" new "$(cluster_of 0 1 2)"
    row "$system" "$size" follower_restart_ms "$(serves_read "$follower" "$t0")"

    # A new member, until it serves a linearizable read; then removed again.
    # etcd refuses a member add until every member has been connected for 5 s ("unhealthy
    # cluster"), as it is just after the follower's restart.
    local tries=0
    until ctl --endpoints="$endpoints" member add m3 --peer-urls="http://127.0.0.1:${peer_ports[3]}" \
        >"$logs/$system-add-$size.txt" 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt 120 ]; then
            log "$system: member add failed: $(cat "$logs/$system-add-$size.txt")"
            exit 1
        fi
        sleep 0.5
    done
    rm -rf "$scratch/data/m3"
    t0=$(now_ms)
    start_member 3 existing "$(cluster_of 0 1 2 3)"
    row "$system" "$size" new_member_ms "$(serves_read 3 "$t0")"
    local id
    id=$(ctl --endpoints="$(endpoint 3)" endpoint status -w json |
        python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
    ctl --endpoints="$endpoints" member remove "$id" >/dev/null
    stop_member 3
    rm -rf "$scratch/data/m3"

    # The whole cluster stopped and started, until every member serves a linearizable read.
    local i slowest=0 took
    for i in 0 1 2; do stop_member "$i"; done
    t0=$(now_ms)
    for i in 0 1 2; do start_member "$i" new "$(cluster_of 0 1 2)"; done
    for i in 0 1 2; do
        took=$(serves_read "$i" "$t0")
        [ "$took" -gt "$slowest" ] && slowest=$took
    done
    row "$system" "$size" cluster_restart_ms "$slowest"
}

watchers_step() { # size
    local w json
    for w in $WATCHERS; do
        json=$(run_bench "watch-$w" watch --watch-prefix --watchers "$w" --streams 1000 \
            --conns 1000 --total 1000 --rate 100 --val-size "$VALUE_BYTES" --endpoints "$endpoints")
        bench_errors "$json"
        row "$system" "$1" "watch_${w}_p99_ms" "$(json_num p99 "$json")"
        row "$system" "$1" "watch_${w}_rss_mib" "$(mib "$(max_member_kib VmRSS)")"
    done
}

leases_step() { # size
    local lead_ms deadline json t0 terms0 terms1 lease_range
    # Time enough to grant and attach every lease before the deadline, at the slowest rate seen.
    lead_ms=$((20000 + LEASES))
    deadline=$(($(now_ms) + lead_ms))
    # 100 clients: at 1,000, etcd refuses about half the grants ("too many requests": its
    # apply fell 5,000 entries behind its commits), and the storm would be half as big.
    json=$(run_bench lease-grant lease-grant --conns 10 --clients 100 --total "$LEASES" \
        --lease-id-base "$LEASE_ID_BASE" --key-start "$LEASE_KEY_START" \
        --lease-expire-at-ms "$deadline" --endpoints "$endpoints")
    bench_errors "$json"
    json=$(run_bench lease-put put --conns 10 --clients 100 --total "$LEASES" --sequential-keys \
        --key-space-size "$LEASES" --key-start "$LEASE_KEY_START" --lease-id-base "$LEASE_ID_BASE" \
        --val-size "$VALUE_BYTES" --endpoints "$endpoints")
    bench_errors "$json"
    if [ "$(now_ms)" -gt $((deadline - 2000)) ]; then
        log "$system: granting and attaching took past the deadline; the lease figures are off"
    fi
    terms0=$(terms)
    lease_range=("$(key "$LEASE_KEY_START")" "$(key $((LEASE_KEY_START + LEASES)))")
    # Puts from 2 s before the deadline, for 30 s, at 500/s.
    sleep "$(awk -v ms="$((deadline - 2000 - $(now_ms)))" 'BEGIN { print (ms > 0 ? ms / 1000 : 0) }')"
    "$bench" put --conns 10 --clients 100 --rate 500 --duration 30 --key-space-size 1000 \
        --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" --endpoints "$endpoints" \
        --output json --no-progress >"$logs/$system-lease-storm-puts.json" &
    local puts=$!
    local count=1 gone_ms=-1 give_up=$((SECONDS + 600))
    while [ $SECONDS -lt $give_up ]; do
        count=$(ctl --endpoints="$endpoints" --command-timeout=10s get "${lease_range[@]}" \
            --limit 1 --keys-only -w json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))' ||
            echo "?")
        if [ "$count" = 0 ]; then
            gone_ms=$(($(now_ms) - deadline))
            break
        fi
        sleep 0.2
    done
    wait "$puts" || true
    json=$(cat "$logs/$system-lease-storm-puts.json")
    bench_errors "$json"
    terms1=$(terms)
    row "$system" "$1" lease_storm_gone_ms "$gone_ms"
    row "$system" "$1" lease_storm_put_p99_ms "$(json_num p99 "$json")"
    row "$system" "$1" lease_storm_elections "$([ "$terms0" = "$terms1" ] && echo 0 || echo 1)"
    log "$system: terms before the storm:$terms0, after:$terms1"
}

for system in $SYSTEMS; do
    log "$system: starting 3 members"
    start_cluster
    loaded=0
    for size in $SIZES; do
        log "$system: loading keys $loaded..$size"
        t0=$(now_ms)
        json=$(run_bench "load-$size" put --conns 100 --clients 1000 --sequential-keys \
            --key-start "$loaded" --key-space-size $((size - loaded)) --total $((size - loaded)) \
            --val-size "$VALUE_BYTES" --endpoints "$endpoints")
        bench_errors "$json"
        row "$system" "$size" load_s "$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')"
        loaded=$size
        measure_size "$size"
    done
    watchers_step "$loaded"
    if [ "$LEASES" -gt 0 ]; then leases_step "$loaded"; fi
    stop_all
    rm -rf "$scratch/data"
done

# --- the table, the JSON and the plots ----------------------------------------------------------
raw_mib() { awk -v n="$1" -v k="$KEY_BYTES" -v v="$VALUE_BYTES" 'BEGIN { printf "%.1f", n * (k + v) / 1048576 }'; }
{
    echo "tally vs etcd $etcd_version on $cores cores ($cpu_model), $(date -u +%Y-%m-%d)"
    echo "keys of $KEY_BYTES bytes, values of $VALUE_BYTES bytes; raw live data per size:$(for s in $SIZES; do printf ' %s keys = %s MiB;' "$s" "$(raw_mib "$s")"; done)"
    printf '%-26s %10s %12s %12s %10s\n' figure keys etcd tally tally/etcd
    awk -F'\t' '
        { v[$1, $2, $3] = $4; if (!(($3, $2) in seen)) { seen[$3, $2] = 1; order[++n] = $3 "\t" $2 } }
        END {
            for (i = 1; i <= n; i++) {
                split(order[i], f, "\t"); e = v["etcd", f[2], f[1]]; t = v["tally", f[2], f[1]]
                r = (e != "" && t != "" && e + 0 > 0) ? sprintf("%.2f", t / e) : "-"
                printf "%-26s %10s %12s %12s %10s\n", f[1], f[2], (e == "" ? "-" : e), (t == "" ? "-" : t), r
            }
        }' "$rows"
    echo
    echo "rps: requests/s; p99 in ms; rss_mib: the largest member's RSS; page_cache_mib: its data"
    echo "files' pages in the page cache (fincore); disk_mib: its data dir; *_ms recovery: until the"
    echo "member serves a linearizable read; lease_storm_gone_ms: from the leases' deadline until"
    echo "their last key is gone; lease_storm_elections: 1 if any member's Raft term moved."
} | tee "$out.txt"
{
    printf '{"date": "%s", "command": "SIZES=\\"%s\\" WATCHERS=\\"%s\\" LEASES=%s BIG_READ_KEYS=%s benches/scale-etcd.sh",\n' \
        "$stamp" "$SIZES" "$WATCHERS" "$LEASES" "$BIG_READ_KEYS"
    printf ' "machine": {"cores": %s, "cpu": "%s", "etcd_version": "%s"},\n' "$cores" "$cpu_model" "$etcd_version"
    printf ' "key_bytes": %s, "value_bytes": %s,\n "rows": [\n' "$KEY_BYTES" "$VALUE_BYTES"
    awk -F'\t' '{ printf "%s  {\"system\": \"%s\", \"keys\": %s, \"figure\": \"%s\", \"value\": %s}", (NR > 1 ? ",\n" : ""), $1, $2, $3, ($4 ~ /^-?[0-9.]+$/ ? $4 : "null") } END { print "" }' "$rows"
    echo ' ]}'
} >"$out.json"

# One data file per figure: keys, etcd, tally (and raw MiB for memory).
plot_data() { # figure...
    local f
    for f in "$@"; do
        awk -F'\t' -v f="$f" '$3 == f { v[$1, $2] = $4; k[$2] = 1 } END { for (s in k) print s, (v["etcd", s] == "" ? "NaN" : v["etcd", s]), (v["tally", s] == "" ? "NaN" : v["tally", s]) }' \
            "$rows" | sort -n >"$scratch/$f.dat"
    done
}
plot_data put_rps range_l_rps rss_mib page_cache_mib follower_restart_ms new_member_ms cluster_restart_ms
for s in $SIZES; do echo "$s $(raw_mib "$s")"; done >"$scratch/raw.dat"
gnuplot <<EOF
set terminal svg size 1200,400 dynamic font "sans,11"
set logscale x
set xlabel "keys in the store (${KEY_BYTES} B keys, ${VALUE_BYTES} B values)"
set key top left
set grid
set output "$root/docs/scale-throughput.svg"
set multiplot layout 1,2 title "tally vs etcd $etcd_version, $cores cores, $(date -u +%Y-%m-%d)"
set ylabel "put/s at 1,000 clients"
set yrange [0:*]
plot "$scratch/put_rps.dat" using 1:3 with linespoints title "tally", "" using 1:2 with linespoints title "etcd"
set ylabel "linearizable range/s at 1,000 clients"
plot "$scratch/range_l_rps.dat" using 1:3 with linespoints title "tally", "" using 1:2 with linespoints title "etcd"
unset multiplot
set output "$root/docs/scale-memory.svg"
set multiplot layout 1,2 title "the largest member's memory, and recovery times"
set ylabel "MiB"
plot "$scratch/rss_mib.dat" using 1:3 with linespoints title "tally RSS", \
     "$scratch/rss_mib.dat" using 1:2 with linespoints title "etcd RSS", \
     "< paste $scratch/rss_mib.dat $scratch/page_cache_mib.dat" using 1:(\$2 + \$5) with linespoints title "etcd RSS + page cache", \
     "$scratch/raw.dat" using 1:2 with lines dashtype 2 title "raw keys + values"
set ylabel "ms until a linearizable read"
plot "$scratch/follower_restart_ms.dat" using 1:3 with linespoints title "tally follower kill -9", \
     "" using 1:2 with linespoints title "etcd follower kill -9", \
     "$scratch/new_member_ms.dat" using 1:3 with linespoints title "tally new member", \
     "" using 1:2 with linespoints title "etcd new member", \
     "$scratch/cluster_restart_ms.dat" using 1:3 with linespoints title "tally cluster restart", \
     "" using 1:2 with linespoints title "etcd cluster restart"
unset multiplot
EOF
log "wrote $out.txt, $out.json, docs/scale-throughput.svg, docs/scale-memory.svg (logs in $logs)"
