#!/usr/bin/env bash
# Echo: `taojie serve echo` against the single-threaded C epoll server, both driven by a C load
# generator (bench/peers/echo_load.c), so no part of taojie sits on the measuring side.
#
# Builds bench/peers/epoll_echo.c and bench/peers/echo_load.c with `cc -O2` and taojie in
# release mode (unless TAOJIE names a binary), then runs ROUNDS rounds; in each, every
# scenario runs once against each server, the order of the two servers swapped every round
# (alternating rounds). Each run starts a fresh server on 127.0.0.1 port 0, waits for the
# address it prints, reads its CPU time (utime+stime of all its threads, /proc/PID/stat)
# before and after the load, and stops it by PID. Prints every run, then the medians per
# scenario and taojie's ratio to C: requests/s, server CPU µs per request, p50/p99.
#
# With PERF=1 each run is also counted with `perf stat` on the server's process (all its
# threads): system calls, futex calls, epoll waits, context switches and CPU time per request.
# These counts hold on a shared machine, where wall-clock figures do not.
#
# Usage: bench/echo_c.sh                   # 5 rounds × 4 scenarios × 2 servers × 5 s ≈ 4 min
#   ROUNDS=7 SECONDS_PER_RUN=10 bench/echo_c.sh
#   TAOJIE=/tmp/taojie-before TAOJIE_ARGS="--threads 1" PERF=1 ROUNDS=1 bench/echo_c.sh
#   SCENARIOS="50x1x64 1x1x64" bench/echo_c.sh
#   TAOJIE_MODES="default;--threads 1;--per-core" bench/echo_c.sh
#       several runtime modes of the one binary in the same rounds (`;` between their
#       TAOJIE_ARGS, `default` for none), each against C's: which one should be the default
# Scenarios are CONNSxDEPTHxSIZE; the default is the issue's three plus 1 connection (latency).
# Loopback only; every run is bounded (the load generator's -t, and an alarm of -t + 30 s).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-5}
SCENARIOS=${SCENARIOS:-"50x1x64 50x16x64 4x4x16384 1x1x64"}
PERF=${PERF:-0}
TAOJIE_ARGS=${TAOJIE_ARGS:-}
# The taojie modes to run, t0 t1 ...: TAOJIE_MODES split at `;`, or TAOJIE_ARGS alone.
IFS=';' read -r -a MODES <<<"${TAOJIE_MODES:-${TAOJIE_ARGS:-default}}"
SERVERS="c"
for i in "${!MODES[@]}"; do
    [ "${MODES[$i]}" = default ] && MODES[$i]=""
    SERVERS="$SERVERS t$i"
done

T=$(mktemp -d /tmp/taojie-echo-c.XXXXXX)
SPID=""
PERFPID=""
cleanup() {
    [ -n "$PERFPID" ] && kill "$PERFPID" 2>/dev/null || true
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

cc -O2 -o "$T/epoll_echo" bench/peers/epoll_echo.c
cc -O2 -o "$T/echo_load" bench/peers/echo_load.c
if [ -z "${TAOJIE:-}" ]; then
    cargo build --release --quiet --bin taojie
    TAOJIE=$PWD/target/release/taojie
fi
[ "$PERF" = 1 ] && ! command -v perf >/dev/null && { echo "bench/echo_c.sh: perf is missing" >&2; exit 1; }
TCK=$(getconf CLK_TCK)

# Starts server $1 (c, or tI: taojie in mode I); sets SPID and ADDR once it has printed its
# address.
start_server() {
    : >"$T/out"
    if [ "$1" = c ]; then
        "$T/epoll_echo" 127.0.0.1:0 >"$T/out" 2>"$T/err" &
    else
        # shellcheck disable=SC2086
        "$TAOJIE" serve echo --listen 127.0.0.1:0 ${MODES[${1#t}]} >"$T/out" 2>"$T/err" &
    fi
    SPID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(grep -oE '127\.0\.0\.1:[0-9]+' "$T/out" | head -1 || true)
        [ -n "$ADDR" ] && return 0
        sleep 0.1
    done
    echo "bench/echo_c.sh: server $1 printed no address in 10 s:" >&2
    cat "$T/err" >&2
    exit 1
}

stop_server() {
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One run: server $1, scenario $2, round $3; appends a line to $T/runs.
run_one() {
    local server=$1 scen=$2 round=$3 c d s
    IFS=x read -r c d s <<<"$scen"
    start_server "$server"
    if [ "$PERF" = 1 ]; then
        perf stat -x, -o "$T/perf" -p "$SPID" -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_write &
        PERFPID=$!
        sleep 0.5
    fi
    local before after line
    before=$(cpu_ticks "$SPID")
    line=$("$T/echo_load" "$ADDR" -c "$c" -d "$d" -s "$s" -t "$SECS")
    after=$(cpu_ticks "$SPID")
    local perfline=""
    if [ "$PERF" = 1 ]; then
        kill -INT "$PERFPID"
        wait "$PERFPID" 2>/dev/null || true
        PERFPID=""
        perfline=$(awk -F, '$1 ~ /^[0-9.]+$/ {gsub(/.*:/, "", $3); printf "%s=%s ", $3, $1}' "$T/perf")
    fi
    stop_server
    local reqs
    reqs=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    local cpu_us
    cpu_us=$(awk -v a="$after" -v b="$before" -v t="$TCK" -v n="$reqs" 'BEGIN {printf "%.3f", (a - b) * 1e6 / t / n}')
    echo "round=$round server=$server scenario=$scen $line cpu_us_per_req=$cpu_us $perfline" | tee -a "$T/runs"
}

echo "# taojie: $TAOJIE; $ROUNDS rounds, $SECS s per run; $(nproc) CPUs; $(date -u +%FT%TZ)"
for i in "${!MODES[@]}"; do echo "# t$i: serve echo ${MODES[$i]:-(default runtime)}"; done
for round in $(seq "$ROUNDS"); do
    # Odd rounds C first, even rounds C last (and the modes reversed).
    if [ $((round % 2)) = 1 ]; then order=$SERVERS; else order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' '); fi
    for scen in $SCENARIOS; do
        for server in $order; do
            run_one "$server" "$scen" "$round"
        done
    done
done

# Medians per (scenario, server) of every numeric field, then each taojie mode / C.
echo
echo "# medians over $ROUNDS rounds (ratio = taojie mode / C)"
python3 - "$T/runs" "$PERF" "$SERVERS" "${MODES[@]/#/=}" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split())
    runs.setdefault((f["scenario"], f["server"]), []).append(f)
perf = sys.argv[2] == "1"
servers = sys.argv[3].split()
label = {"c": "C"}
for i, mode in enumerate(sys.argv[4:]):
    label[f"t{i}"] = f"t{i} " + (mode[1:] or "default")
cols = ["rps", "cpu_us_per_req", "p50_us", "p99_us"]
print(f"{'scenario':<12}{'server':<20}" + "".join(f"{c:>16}{'ratio':>7}" for c in cols))
for scen in dict.fromkeys(s for s, _ in runs):
    med = {srv: {c: statistics.median(float(r[c]) for r in runs[(scen, srv)]) for c in cols}
           for srv in servers}
    for srv in servers:
        row = f"{scen:<12}{label[srv]:<20}"
        for c in cols:
            a, b = med["c"][c], med[srv][c]
            row += f"{b:>16.2f}{(b / a if a else 0):>7.2f}"
        print(row)
if perf:
    print("\n# per request (medians of perf stat counts / requests answered)")
    keys = ["sys_enter", "sys_enter_recvfrom", "sys_enter_read", "sys_enter_sendto",
            "sys_enter_write", "sys_enter_epoll_wait", "sys_enter_epoll_pwait",
            "sys_enter_futex", "context-switches", "cpu-migrations", "task-clock"]
    for scen in dict.fromkeys(s for s, _ in runs):
        for srv in servers:
            rs = runs[(scen, srv)]
            per = {k: statistics.median(float(r.get(k, 0)) / float(r["requests"]) for r in rs)
                   for k in keys}
            # task-clock is in ms: µs of CPU per request
            per["task-clock"] *= 1000
            print(f"{scen:<12} {label[srv]:<20}" + " ".join(f"{k.replace('sys_enter_', '')}={v:.3f}" for k, v in per.items()))
EOF
