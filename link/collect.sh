#!/usr/bin/env bash
# Writes link/hot-functions.txt: the functions a release taojie runs as an exec server, an exec
# client, a files server with put and get, and `taojie serve` with every service, in that order
# (mangled names, one per line, each once). build.rs hands the file to the linker, which places
# these functions next to each other at the start of .text: a server then maps a few hundred KiB of
# contiguous code instead of touching 64 KiB windows (the kernel's fault-around) spread over the
# whole 8 MB of text. Names carry hashes that change with the compiler and the dependencies; a name
# the linker no longer finds is skipped, so a stale file only loses some of the gain. Re-run after
# upgrading the toolchain or dependencies:
#
#   cargo build --release && link/collect.sh target/release/taojie
set -euo pipefail
BIN=${1:-target/release/taojie}
OUT=$(dirname "$0")/hot-functions.txt
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
head -c 4M /dev/urandom > "$W/big"
"$BIN" keygen "$W/key" > /dev/null 2>&1
cg() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$W/cg.$1.%p" "${@:2}" 2> /dev/null; }
# Starts a server under callgrind and sets addr to the address of its first listener named $2.
start() {
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$W/cg.$1.%p" "$BIN" "${@:3}" \
    > "$W/$1.out" 2> /dev/null &
  PIDS+=($!)
  for _ in $(seq 600); do
    addr=$(awk -v s="$2" '$1 == s && $2 == "tcp" { print $3; exit }' "$W/$1.out" 2> /dev/null || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "collect.sh: $2 server did not start" >&2; exit 1
}
stop() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

start 1-exec-server exec serve exec --listen 127.0.0.1:0 --key "$W/key"
cg 2-exec-client "$BIN" exec "$addr" --key "$W/key" -n -- cat "$W/big" > /dev/null
"$BIN" exec "$addr" --key "$W/key" -- true
stop
mkdir "$W/root"
start 3-files-server files serve files --listen 127.0.0.1:0 --key "$W/key" --root "$W/root"
cg 4-put "$BIN" put "$addr" --key "$W/key" "$W/big"
mkdir "$W/back"
cg 5-get "$BIN" get "$addr" --key "$W/key" -o "$W/back" big
stop
XDG_DATA_HOME="$W/data" start 6-serve echo serve --any-port
printf 'hello\n' | "$BIN" connect "$addr" > /dev/null
stop
for f in "$W"/cg.*; do
  grep -oE '^c?fn=\([0-9]+\) .*' "$f" | sed -E 's/^c?fn=\([0-9]+\) //'
done | grep -vE '^0x[0-9a-f]+$' | awk '!seen[$0]++' > "$OUT"
echo "$(wc -l < "$OUT") functions in $OUT"
