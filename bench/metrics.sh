#!/usr/bin/env bash
# What the metrics cost the echo server: each binary given serves echo on 127.0.0.1 port 0
# (with `--metrics 127.0.0.1:0` when it has the flag) and is driven by
# `taojie bench --conns 50 --depth 16 --size 64`,
#
#   1. under callgrind: the server's user-space instructions per request, less a run that only
#      starts and stops (a count, so two builds compare on a machine that other work keeps
#      busy; it depends on batching, though: a busier server reads more requests per call);
#   2. natively: requests/s and the server's CPU time per request (from /proc/PID/stat).
#
# The chat fan-out is measured by bench/chat_fanout_count.sh with the same binaries.
#
#   bench/metrics.sh BIN [BIN...]              # e.g. /tmp/taojie-base target/release/taojie
#   ROUNDS=3 SECS=5 CG_SECS=3 bench/metrics.sh ...
#
# Needs valgrind. The load generator is the first BIN's `taojie bench`. Stops what it starts
# by PID.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CG_SECS=${CG_SECS:-3}
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
LOAD=$1
TMP=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT

# start_server CMD...: runs CMD in the background, waits (at most 60 s) for its `echo tcp ADDR`
# line; sets SERVER (pid) and ADDR.
start_server() {
  : >"$TMP/out"
  "$@" >>"$TMP/out" 2>"$TMP/err" &
  SERVER=$!
  for _ in $(seq 600); do
    ADDR=$(awk '/^echo tcp /{print $3}' "$TMP/out")
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$TMP/err")" >&2
  exit 1
}

stop_server() {
  kill -TERM "$SERVER"
  for _ in $(seq 300); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

# CPU ticks (user + system) of a process so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

for r in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    name=$(basename "$bin")
    extra=()
    if "$bin" serve --help | grep -q -- '--metrics'; then extra=(--metrics 127.0.0.1:0); fi
    # 1. callgrind: one run that only starts and stops (so start-up, the metrics endpoint's
    # included, drops out), one under load.
    start_server valgrind --tool=callgrind --callgrind-out-file="$TMP/cg0" "$bin" serve echo --listen 127.0.0.1:0 "${extra[@]}"
    stop_server
    start_server valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" "$bin" serve echo --listen 127.0.0.1:0 "${extra[@]}"
    cg_reqs=$(timeout 120 "$LOAD" bench "$ADDR" --conns 50 --depth 16 --size 64 --seconds "$CG_SECS" --json | json_field requests)
    stop_server
    ir=$(( $(awk '/^totals:/{print $2}' "$TMP/cg") - $(awk '/^totals:/{print $2}' "$TMP/cg0") ))
    # 2. natively.
    start_server "$bin" serve echo --listen 127.0.0.1:0 "${extra[@]}"
    t0=$(ticks "$SERVER")
    report=$(timeout 120 "$LOAD" bench "$ADDR" --conns 50 --depth 16 --size 64 --seconds "$SECS" --json)
    t1=$(ticks "$SERVER")
    stop_server
    reqs=$(json_field requests <<<"$report")
    rate=$(json_field requests_per_sec <<<"$report")
    awk -v r="$r" -v name="$name" -v ir="$ir" -v cgr="$cg_reqs" -v reqs="$reqs" -v rate="$rate" \
        -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      printf "round %d %-16s callgrind: %.0f instructions per request (%d requests) | native: %.0f req/s, %.2f us server CPU per request (load %s)\n",
        r, name, ir / cgr, cgr, rate, ticks / hz * 1e6 / reqs, load
    }'
  done
done
