#!/usr/bin/env bash
# The exec server's peak memory, part 3 of bench/secure.sh on its own and for any binaries:
# for each BIN, ROUNDS times, a fresh `BIN serve exec` on 127.0.0.1 port 0 with a throwaway key,
# SIZE_MB of random bytes through `BIN exec ADDR -- cat`, then VmHWM (idle and after) and the
# resident memory split into anonymous and file-backed, from /proc/PID/status.
#
#   bench/exec_memory.sh target/release/taojie target/bench-plain-4392176/release/taojie
#   ROUNDS=3 SIZE_MB=512 bench/exec_memory.sh BIN...
set -euo pipefail
ROUNDS=${ROUNDS:-3}
SIZE_MB=${SIZE_MB:-512}
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
W=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$W"' EXIT
head -c "${SIZE_MB}M" /dev/urandom > "$W/big"
"$1" keygen "$W/key" > /dev/null 2>&1
status() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
for r in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    : > "$W/out"
    "$bin" serve exec --listen 127.0.0.1:0 --key "$W/key" >> "$W/out" 2> /dev/null &
    PID=$!
    addr=""
    for _ in $(seq 100); do
      addr=$(awk '/^exec tcp /{ print $3 }' "$W/out")
      [ -n "$addr" ] && break
      sleep 0.1
    done
    [ -n "$addr" ] || { echo "$bin: no address line" >&2; exit 1; }
    idle=$(status "$PID" VmHWM)
    timeout 600 "$bin" exec "$addr" --key "$W/key" -n -- cat "$W/big" > /dev/null
    echo "round $r $bin: VmHWM $idle -> $(status "$PID" VmHWM) KiB; RssAnon $(status "$PID" RssAnon), RssFile $(status "$PID" RssFile) KiB"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    PID=""
  done
done
