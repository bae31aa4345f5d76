#!/usr/bin/env bash
# Chat across brokers (issue 13), in one run on loopback with a release build: a
# `nats-server -js` and three `taojie serve chat --nats` brokers on this machine, driven by
# examples/chat_load with CLIENTS line clients in ROOMS rooms:
#   1. latency: RATE lines/s per room (and RATE2, ten times the deliveries, for the marginal
#      CPU per delivery) for SECS s; room r's writer is on broker r mod 3 and the
#      room's clients on the other two, so every delivery measured crossed from one broker to
#      another through NATS; p50/p99/max, and CPU per delivery summed over the three brokers
#      and nats-server;
#   2. throughput: each room's writer as fast as the slowest reader of its room takes lines
#      (TSECS s), delivered lines/s summed over clients;
#   3. the same two with one broker alone (no --nats) and the same clients;
#   4. one broker with --nats and every client on it (what publishing to NATS costs one
#      broker whose members are all local).
# Every phase is bounded in time (see examples/chat_load/); the run takes about 2 minutes.
# Each group gets a fresh nats-server store, so no history of an earlier group is replayed.
# Knobs: CLIENTS, ROOMS, RATE, RATE2, SECS, TSECS, READERS (driver reader threads).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
ROOMS=${ROOMS:-10}
RATE=${RATE:-10}
RATE2=${RATE2:-100}
SECS=${SECS:-10}
TSECS=${TSECS:-5}
READERS=${READERS:-1}
cargo build --release --quiet --bin taojie --example chat_load
BIN=target/release/taojie
LOAD=target/release/examples/chat_load
ulimit -n "$(ulimit -Hn)"
# Debian installs nats-server in /usr/sbin, which a user's PATH may leave out.
PATH=$PATH:/usr/sbin
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Starts nats-server on a port it picks; sets $nats_url and $nats_pid once it is ready.
start_nats() {
    rm -f "$tmp/nats.log"
    nats-server -js -a 127.0.0.1 -p -1 -sd "$tmp/nats.$RANDOM" 2>"$tmp/nats.log" &
    nats_pid=$!
    pids+=("$nats_pid")
    for _ in $(seq 100); do
        grep -q "Server is ready" "$tmp/nats.log" && break
        sleep 0.1
    done
    port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/nats.log")
    [ -n "$port" ] || { echo "nats-server did not start" >&2; cat "$tmp/nats.log" >&2; exit 1; }
    nats_url="nats://127.0.0.1:$port"
}

# Starts a broker (taojie serve chat ARGS) and sets $addr and $pid from its announce line.
start_broker() {
    local out="$tmp/announce.$RANDOM"
    : >"$out"
    "$BIN" serve chat --listen 127.0.0.1:0 "$@" >"$out" 2>>"$tmp/broker.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        addr=$(awk '$1 == "chat" && $2 == "tcp" {print $3}' "$out")
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "broker did not announce its address" >&2
    cat "$tmp/broker.err" >&2
    exit 1
}

load() { timeout 300 "$LOAD" "$@" --readers "$READERS"; }

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $(nats-server --version)"
start_nats
addrs=()
bpids=()
for _ in 1 2 3; do
    start_broker --nats "$nats_url"
    addrs+=("$addr")
    bpids+=("$pid")
done
list=$(IFS=,; echo "${addrs[*]}")
plist=$(IFS=,; echo "${bpids[*]}"),$nats_pid
for rate in $RATE $RATE2; do
    echo "== three brokers joined through NATS ($list), $CLIENTS clients in $ROOMS rooms, $rate lines/s per room"
    load "$list" "$plist" "$CLIENTS" --rooms "$ROOMS" --rate "$rate" --latency "$SECS"
done
echo "== three brokers: throughput"
load "$list" "$plist" "$CLIENTS" --rooms "$ROOMS" --throughput "$TSECS" --latency 0
for p in "${bpids[@]}" "$nats_pid"; do kill "$p"; done

for rate in $RATE $RATE2; do
    echo "== one broker alone (no NATS), $CLIENTS clients in $ROOMS rooms, $rate lines/s per room"
    start_broker
    load "$addr" "$pid" "$CLIENTS" --rooms "$ROOMS" --rate "$rate" --latency "$SECS"
    kill "$pid"
done
echo "== one broker alone: throughput"
start_broker
load "$addr" "$pid" "$CLIENTS" --rooms "$ROOMS" --throughput "$TSECS" --latency 0
kill "$pid"

start_nats
start_broker --nats "$nats_url"
echo "== one broker with --nats, every client on it, $RATE lines/s per room"
load "$addr" "$pid,$nats_pid" "$CLIENTS" --rooms "$ROOMS" --rate "$RATE" --latency "$SECS"
echo "== one broker with --nats: throughput"
load "$addr" "$pid,$nats_pid" "$CLIENTS" --rooms "$ROOMS" --throughput "$TSECS" --latency 0
kill "$pid" "$nats_pid"
