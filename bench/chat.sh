#!/usr/bin/env bash
# Chat benchmark (issue 5), in one run on loopback with a release build:
#   1. ncat --chat and taojie serve chat, 500 line clients each: lines delivered per second
#      summed over clients (one writer, 41-byte lines, as fast as the slowest reader takes
#      them), the share of lines attributed to their sender, p99 delivery latency at half that
#      rate, broker RSS;
#   2. taojie alone with 10,000 clients: RSS per idle client, p99 latency at moderate rates.
# Every phase is bounded in time (see examples/chat_load.rs). Knobs: SECS (phase length),
# RATES_10K (lines/s into the 10,000-client room).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
RATES_10K=${RATES_10K:-"1 5 20"}
cargo build --release --quiet --bin taojie --example chat_load
BIN=target/release/taojie
LOAD=target/release/examples/chat_load
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

# Starts taojie serve chat and sets $addr and $pid from its announce line.
start_taojie() {
    "$BIN" serve chat --listen 127.0.0.1:0 >"$tmp/announce" 2>"$tmp/taojie.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        addr=$(awk '$1 == "chat" && $2 == "tcp" {print $3}' "$tmp/announce")
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "taojie did not announce its address" >&2
    exit 1
}

echo "== ncat --chat ($(ncat --version 2>&1 | head -1)), 500 clients"
port=$(free_port)
ncat --chat --max-conns 2000 -l 127.0.0.1 "$port" 2>"$tmp/ncat.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do nc -z 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
"$LOAD" "127.0.0.1:$port" "$pid" 500 --throughput "$SECS" --latency "$SECS"
kill "$pid"

echo "== taojie serve chat, 500 clients"
start_taojie
"$LOAD" "$addr" "$pid" 500 --throughput "$SECS" --latency "$SECS"
kill "$pid"

for rate in $RATES_10K; do
    echo "== taojie serve chat, 10000 clients, $rate lines/s"
    start_taojie
    "$LOAD" "$addr" "$pid" 10000 --rate "$rate" --latency "$SECS"
    kill "$pid"
done
