#!/usr/bin/env bash
# Chat benchmark (issue 5), in one run on loopback with a release build:
#   1. ncat --chat, taojie serve chat and the C reference bench/peers/chat_epoll.c (one thread,
#      epoll: the same-run floor), 500 line clients each: lines delivered per second summed
#      over clients (one writer, 41-byte lines, as fast as the slowest reader takes them), the
#      share of lines attributed to their sender, p99 delivery latency at half that rate,
#      broker RSS;
#   2. taojie and the C reference with 10,000 clients in one room: RSS per idle client, p99
#      latency at moderate rates, broker and driver CPU per delivery;
#   3. taojie with 10,000 clients in 100 rooms of 100, one writer per room;
#   4. taojie and the C reference at one common rate with 500 clients, RATE_500 lines/s (about
#      ncat's half rate), and taojie --lanes 1 with 10,000 at 1 line/s: what writing a big room
#      from every CPU buys.
# Every phase is bounded in time (see examples/chat_load/); the whole run takes a few minutes.
# Knobs: SECS (phase length), RATES_10K (lines/s into the 10,000-client room), ROOMS_RATE
# (lines/s into each of the 100 rooms), RATE_500 (lines/s in step 4), READERS (driver reader
# threads).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
RATES_10K=${RATES_10K:-"1 5 20"}
ROOMS_RATE=${ROOMS_RATE:-10}
RATE_500=${RATE_500:-10000}
READERS=${READERS:-1}
cargo build --release --quiet --bin taojie --example chat_load
BIN=target/release/taojie
LOAD=target/release/examples/chat_load
mkdir -p bench/out
cc -O2 -Wall -o bench/out/chat_epoll bench/peers/chat_epoll.c
CREF=bench/out/chat_epoll
ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a broker that prints "chat tcp ADDR" (taojie, the C reference) and sets $addr and
# $pid from that line.
start_broker() {
    "$@" >"$tmp/announce" 2>"$tmp/broker.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        addr=$(awk '$1 == "chat" && $2 == "tcp" {print $3}' "$tmp/announce")
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "$1 did not announce its address" >&2
    exit 1
}
start_taojie() { start_broker "$BIN" serve chat --listen 127.0.0.1:0 "$@"; }
start_cref() { start_broker "$CREF" 127.0.0.1:0; }

# Runs the driver (bounded by its own phases; the timeout is a last guard).
load() { timeout 300 "$LOAD" "$@" --readers "$READERS"; }

echo "== ncat --chat ($(ncat --version 2>&1 | head -1)), 500 clients"
port=$(free_port)
ncat --chat --max-conns 2000 -l 127.0.0.1 "$port" 2>"$tmp/ncat.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do nc -z 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
load "127.0.0.1:$port" "$pid" 500 --throughput "$SECS" --latency "$SECS"
kill "$pid"

echo "== taojie serve chat, 500 clients"
start_taojie
load "$addr" "$pid" 500 --throughput "$SECS" --latency "$SECS"
kill "$pid"

echo "== C reference (bench/peers/chat_epoll.c: one thread, epoll), 500 clients"
start_cref
load "$addr" "$pid" 500 --throughput "$SECS" --latency "$SECS"
kill "$pid"

for rate in $RATES_10K; do
    echo "== taojie serve chat, 10000 clients, $rate lines/s"
    start_taojie
    load "$addr" "$pid" 10000 --rate "$rate" --latency "$SECS"
    kill "$pid"
    echo "== C reference, 10000 clients, $rate lines/s"
    start_cref
    load "$addr" "$pid" 10000 --rate "$rate" --latency "$SECS"
    kill "$pid"
done

echo "== taojie serve chat, 10000 clients in 100 rooms of 100, $ROOMS_RATE lines/s per room"
start_taojie
load "$addr" "$pid" 10000 --rooms 100 --rate "$ROOMS_RATE" --latency "$SECS"
kill "$pid"

echo "== taojie serve chat, 500 clients, $RATE_500 lines/s"
start_taojie
load "$addr" "$pid" 500 --rate "$RATE_500" --latency "$SECS"
kill "$pid"
echo "== C reference, 500 clients, $RATE_500 lines/s"
start_cref
load "$addr" "$pid" 500 --rate "$RATE_500" --latency "$SECS"
kill "$pid"

echo "== taojie serve chat --lanes 1, 10000 clients, 1 lines/s"
start_taojie --lanes 1
load "$addr" "$pid" 10000 --rate 1 --latency "$SECS"
kill "$pid"
