#!/usr/bin/env bash
# Echo: the user-space instructions each server executes per request (callgrind), the C epoll
# server (bench/peers/epoll_echo.c) against taojie's runtime modes, under the same C load
# (bench/peers/echo_load.c). Instructions do not depend on how busy the machine is, so this
# runs on a shared one (this VM's perf has no `instructions` counter). The kernel's share is
# not counted: bench/echo_c.sh with PERF=1 counts the system calls and context switches.
#
# Each run starts the server under callgrind with instrumentation off, waits for its address
# line, turns instrumentation on (callgrind_control -i on), sends REQUESTS requests of the
# scenario, dumps the counts (callgrind_control -d) and stops the server by its PID; the
# figure is the dump's instruction total / requests answered. Under valgrind the threads of
# a process take turns on one CPU, so a multi-threaded server's hand-offs are all there but
# never in parallel.
#
# Usage: bench/echo_callgrind.sh
#   REQUESTS=100000 SCENARIOS="50x1x64 50x16x64 4x4x16384" \
#   TAOJIE_MODES="default;--threads 1;--per-core" TAOJIE=target/release/taojie bench/echo_callgrind.sh
# Loopback only; every run is bounded (load -t 120, 60 s for a server to come up).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-100000}
SCENARIOS=${SCENARIOS:-"50x1x64 50x16x64 4x4x16384"}
IFS=';' read -r -a MODES <<<"${TAOJIE_MODES:-default;--threads 1;--per-core}"

T=$(mktemp -d /tmp/taojie-echo-cg.XXXXXX)
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

for need in valgrind callgrind_control cc; do
    command -v "$need" >/dev/null || { echo "bench/echo_callgrind.sh: $need is missing" >&2; exit 1; }
done
cc -O2 -o "$T/epoll_echo" bench/peers/epoll_echo.c
cc -O2 -o "$T/echo_load" bench/peers/echo_load.c
if [ -z "${TAOJIE:-}" ]; then
    cargo build --release --quiet --bin taojie
    TAOJIE=$PWD/target/release/taojie
fi

# One run: server c or tI (taojie in mode I), scenario $2; prints its line.
run_one() {
    local server=$1 scen=$2 c d s mode
    IFS=x read -r c d s <<<"$scen"
    : >"$T/out"
    rm -f "$T"/cg.*
    if [ "$server" = c ]; then
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$T/cg.%p" \
            "$T/epoll_echo" 127.0.0.1:0 >"$T/out" 2>"$T/err" &
    else
        mode=${MODES[${server#t}]}
        [ "$mode" = default ] && mode=""
        # shellcheck disable=SC2086
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$T/cg.%p" \
            "$TAOJIE" serve echo --listen 127.0.0.1:0 $mode >"$T/out" 2>"$T/err" &
    fi
    SPID=$!
    local addr="" _
    for _ in $(seq 600); do
        addr=$(grep -oE '127\.0\.0\.1:[0-9]+' "$T/out" | head -1 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "server $server printed no address in 60 s: $(cat "$T/err")" >&2; exit 1; }
    callgrind_control -i on "$SPID" >/dev/null 2>&1 || { echo "callgrind_control -i on failed" >&2; exit 1; }
    local line
    line=$("$T/echo_load" "$addr" -c "$c" -d "$d" -s "$s" -n "$REQUESTS" -t 120)
    callgrind_control -d "$SPID" >/dev/null 2>&1 || { echo "callgrind_control -d failed" >&2; exit 1; }
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
    local reqs ir
    reqs=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    # The dump taken after the load: cg.PID.1 (the process was killed before a final one).
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$T"/cg.*.1)
    local label=C
    [ "$server" = c ] || label="taojie ${MODES[${server#t}]}"
    printf '%-10s %-24s requests=%s instructions=%s per_request=%.0f\n' "$scen" "$label" \
        "$reqs" "$ir" "$(echo "$ir / $reqs" | bc -l)"
}

echo "# $TAOJIE; $REQUESTS requests per run; $(date -u +%FT%TZ)"
for scen in $SCENARIOS; do
    run_one c "$scen"
    for i in "${!MODES[@]}"; do run_one "t$i" "$scen"; done
done
