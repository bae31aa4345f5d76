#!/usr/bin/env bash
# The chat broker's TCP fan-out measured by counts rather than by time, so that two builds can be
# compared on a machine that other work keeps busy: bench/chat_web.py's fan-out (500 line
# clients in one room, examples/chat_load --throughput SECS) against each broker binary given,
#
#   1. under callgrind: the broker's user-space instructions per delivered line (the run's total
#      less a run that only connects the 500 clients, so the cost of connecting drops out);
#   2. natively, with `perf stat -p`: system calls, context switches and CPU time per delivery.
#
# Counts do not depend on the clock, but they do on batching: a broker that falls behind reads
# more lines per read and writes more per writev, so each round's lines/s is printed beside them.
#
#   bench/chat_fanout_count.sh BIN [BIN...]        # e.g. target/release/taojie /tmp/taojie-old
#   ROUNDS=3 SECS=5 bench/chat_fanout_count.sh ...
#
# Needs valgrind and perf (linux-perf); builds examples/chat_load. Stops what it starts by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CLIENTS=500
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
cargo build --release --quiet --example chat_load
LOAD=$PWD/target/release/examples/chat_load
ulimit -n "$(ulimit -Hn)"
TMP=$(mktemp -d)
BROKER=""
trap '[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null; rm -rf "$TMP"' EXIT

# start_broker CMD...: runs CMD in the background, waits (at most 60 s) for its `chat tcp ADDR`
# line; sets BROKER (pid) and ADDR.
start_broker() {
  : >"$TMP/out"
  "$@" >>"$TMP/out" 2>"$TMP/err" &
  BROKER=$!
  for _ in $(seq 600); do
    ADDR=$(awk '/^chat tcp /{print $3}' "$TMP/out")
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "broker did not start: $(cat "$TMP/err")" >&2
  exit 1
}

stop_broker() {
  kill -TERM "$BROKER"
  for _ in $(seq 300); do kill -0 "$BROKER" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER" 2>/dev/null || true
  wait "$BROKER" 2>/dev/null || true
  BROKER=""
}

# Instructions callgrind counted over the broker's whole life.
callgrind_total() { awk '/^totals:/{print $2}' "$1"; }

for r in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    name=$(basename "$bin")
    # 1. callgrind: one run that only connects, one that also floods.
    start_broker valgrind --tool=callgrind --callgrind-out-file="$TMP/cg0" "$bin" serve chat --listen 127.0.0.1:0
    timeout 300 "$LOAD" "$ADDR" "$BROKER" $CLIENTS --throughput 0 --latency 0 >/dev/null
    stop_broker
    start_broker valgrind --tool=callgrind --callgrind-out-file="$TMP/cg1" "$bin" serve chat --listen 127.0.0.1:0
    out=$(timeout 300 "$LOAD" "$ADDR" "$BROKER" $CLIENTS --throughput "$SECS" --latency 0)
    stop_broker
    got=$(sed -n 's/.* \([0-9]*\) delivered of.*/\1/p' <<<"$out")
    cg_rate=$(sed -n 's/.*= \([0-9]*\) lines\/s summed.*/\1/p' <<<"$out")
    ir=$(( $(callgrind_total "$TMP/cg1") - $(callgrind_total "$TMP/cg0") ))
    # 2. natively under perf stat.
    start_broker "$bin" serve chat --listen 127.0.0.1:0
    perf stat -x, -e raw_syscalls:sys_enter,context-switches,task-clock -p "$BROKER" -o "$TMP/perf" &
    perf=$!
    out=$(timeout 300 "$LOAD" "$ADDR" "$BROKER" $CLIENTS --throughput "$SECS" --latency 0)
    kill -INT "$perf"; wait "$perf" || true
    stop_broker
    n=$(sed -n 's/.* \([0-9]*\) delivered of.*/\1/p' <<<"$out")
    rate=$(sed -n 's/.*= \([0-9]*\) lines\/s summed.*/\1/p' <<<"$out")
    sys=$(awk -F, '/raw_syscalls:sys_enter/{print $1}' "$TMP/perf")
    cs=$(awk -F, '/context-switches/{print $1}' "$TMP/perf")
    ms=$(awk -F, '/task-clock/{print $1}' "$TMP/perf")
    awk -v r="$r" -v name="$name" -v ir="$ir" -v got="$got" -v cgr="$cg_rate" -v n="$n" \
        -v rate="$rate" -v sys="$sys" -v cs="$cs" -v ms="$ms" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      printf "round %d %-16s callgrind: %.2f instructions per delivery (%d delivered, %.2f M/s) | native: %.4f syscalls, %.5f context switches, %.1f ns CPU per delivery (%d delivered, %.2f M/s, load %s)\n",
        r, name, ir / got, got, cgr / 1e6, sys / n, cs / n, ms * 1e6 / n, n, rate / 1e6, load
    }'
  done
done
