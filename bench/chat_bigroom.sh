#!/usr/bin/env bash
# Chat in one big room (issue 29, item 4): MEMBERS clients in one room, every member a sender,
# the room's lines spread evenly over them (member i sends its k-th line at (k*MEMBERS + i)/R
# s, so R lines/s in all, one line each every MEMBERS/R s; R = MEMBERS is the issue's "one
# line each per second"). For each aggregate rate R in RATES, taojie serve chat and the C
# reference bench/peers/chat_epoll.c take turns (the order alternates from round to round), and
# examples/chat_load --all-send reports delivery latency p50/p99 over every delivery,
# delivered/expected, broker CPU per delivery and broker RSS peak. A summary with the median
# p99 of each broker per rate closes the run.
#
#   bench/chat_bigroom.sh                           # MEMBERS=10000, RATES="2 5 10", ROUNDS=3
#   MEMBERS=1000 RATES="20 50 100" ROUNDS=2 SECS=5 bench/chat_bigroom.sh   # smoke
#   PERF=1 ...   # also counts the broker's system calls per delivery (perf stat -p)
#
# Every phase is bounded (chat_load: SECS of sending, at most 5 s more to hand lines to
# sockets, at most 30 s to collect owed deliveries; a 300 s timeout over each driver run).
# Loopback only; brokers on port 0, stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${MEMBERS:-10000}
RATES=${RATES:-"2 5 10"}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
READERS=${READERS:-1}
PERF=${PERF:-0}
cargo build --release --quiet --bin taojie --example chat_load
BIN=target/release/taojie
LOAD=target/release/examples/chat_load
mkdir -p bench/out
cc -O2 -Wall -o bench/out/chat_epoll bench/peers/chat_epoll.c
CREF=bench/out/chat_epoll
# One descriptor per member in the driver and in the broker, plus a few.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((MEMBERS + 64)) ]; then
    echo "open-file limit $(ulimit -n) is below MEMBERS + 64" >&2
    exit 1
fi
[ "$PERF" = 1 ] && ! command -v perf >/dev/null && { echo "PERF=1 needs perf" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a broker that prints "chat tcp ADDR" and sets $addr and $pid from that line.
start_broker() {
    "$@" >"$tmp/announce" 2>"$tmp/broker.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        addr=$(awk '$1 == "chat" && $2 == "tcp" {print $3}' "$tmp/announce")
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "$1 did not announce its address: $(cat "$tmp/broker.err")" >&2
    exit 1
}

# run NAME RATE: one driver run against the broker just started; its report goes to stdout
# and to $tmp/results as "NAME RATE p99 delivered expected".
run() {
    local name=$1 rate=$2 perf_pid=""
    timeout 300 "$LOAD" "$addr" "$pid" "$MEMBERS" --all-send --rate "$rate" \
        --latency "$SECS" --readers "$READERS" >"$tmp/load" &
    local load=$!
    if [ "$PERF" = 1 ]; then
        # Count from the end of connecting (the driver's first line) to the end of the run.
        for _ in $(seq 1200); do grep -q '^clients' "$tmp/load" && break; sleep 0.1; done
        perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" \
            -o "$tmp/perf" 2>/dev/null &
        perf_pid=$!
    fi
    wait "$load"
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
    fi
    cat "$tmp/load"
    local line
    line=$(grep '^latency' "$tmp/load")
    local p99 got want
    p99=$(sed -E 's/.* p99 ([0-9.]+) ms.*/\1/' <<<"$line")
    got=$(sed -E 's/.*: ([0-9]+) samples of ([0-9]+) expected.*/\1/' <<<"$line")
    want=$(sed -E 's/.*: ([0-9]+) samples of ([0-9]+) expected.*/\2/' <<<"$line")
    if [ -n "$perf_pid" ]; then
        local calls
        calls=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$tmp/perf")
        echo "perf stat: broker system calls $calls = $(awk -v c="$calls" -v g="$got" \
            'BEGIN {printf "%.3f", c / (g > 0 ? g : 1)}') per delivery"
    fi
    echo "$name $rate $p99 $got $want" >>"$tmp/results"
}

echo "== one room of $MEMBERS, every member sending; rates ${RATES// /, } lines/s in all; $ROUNDS round(s) of $SECS s"
for round in $(seq "$ROUNDS"); do
    for rate in $RATES; do
        order="taojie cref"
        [ $((round % 2)) = 0 ] && order="cref taojie"
        for name in $order; do
            echo "== round $round, $name, $MEMBERS members, $rate lines/s in all"
            if [ "$name" = taojie ]; then
                start_broker "$BIN" serve chat --listen 127.0.0.1:0
            else
                start_broker "$CREF" 127.0.0.1:0
            fi
            run "$name" "$rate"
            kill "$pid"
            wait "$pid" 2>/dev/null || true
            pids=()
        done
    done
done

echo "== summary: median p99 (ms) over $ROUNDS round(s); delivered/expected summed over rounds"
for rate in $RATES; do
    for name in taojie cref; do
        awk -v n="$name" -v r="$rate" '$1 == n && $2 == r' "$tmp/results" | sort -k3,3g | awk \
            -v n="$name" -v r="$rate" '{p[NR] = $3; g += $4; w += $5}
            END {m = NR % 2 ? p[(NR + 1) / 2] : (p[NR / 2] + p[NR / 2 + 1]) / 2;
                 printf "%-6s %6s lines/s: p99 median %.2f ms (rounds, sorted: ", n, r, m;
                 for (i = 1; i <= NR; i++) printf "%s%s", p[i], i < NR ? " " : "";
                 printf "), delivered %d of %d\n", g, w}'
    done
done
