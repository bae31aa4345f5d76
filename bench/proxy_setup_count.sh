#!/usr/bin/env bash
# What one SOCKS5 connection setup through `taojie serve proxy` costs the proxy, counted rather
# than timed, for each runtime mode: system calls, `futex` calls (threads waking each other),
# `epoll_wait`s, context switches and CPU per setup, from `perf stat -p` on the proxy (all its
# threads) while bench/proxy_peer.py makes SETUP setups one after another (connect, greeting,
# CONNECT to a loopback echo server, close). The counts of each kind of call hold on a busy
# machine; context switches, `epoll_wait` and CPU move with the load. bench/proxy.sh times the
# same setups (p50/p99) on a quiet machine.
#
# Usage: bench/proxy_setup_count.sh
#   ROUNDS=3 SETUP=2000 TAOJIE_MODES="default;--threads 1;--per-core" TAOJIE=target/release/taojie \
#     bench/proxy_setup_count.sh
# Loopback only; every wait is bounded (10 s for a server to come up, 300 s per client run).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SETUP=${SETUP:-2000}
IFS=';' read -r -a MODES <<<"${TAOJIE_MODES:-default;--threads 1;--per-core}"
command -v perf >/dev/null || { echo "bench/proxy_setup_count.sh: perf is missing" >&2; exit 1; }
if [ -z "${TAOJIE:-}" ]; then cargo build --release -q --bin taojie; TAOJIE=target/release/taojie; fi

W=$(mktemp -d /tmp/taojie-proxy-count.XXXXXX)
ECHO_PID=""; PROXY_PID=""; PERF_PID=""
cleanup() {
    for p in "$PERF_PID" "$PROXY_PID" "$ECHO_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench/proxy_setup_count.sh: timed out waiting for: $*" >&2; exit 1
}

python3 bench/proxy_peer.py echo >"$W/echo.port" & ECHO_PID=$!
wait_for test -s "$W/echo.port"
ECHO=127.0.0.1:$(cat "$W/echo.port")

echo "# $TAOJIE; $SETUP setups per run, $ROUNDS rounds; per setup; $(date -u +%FT%TZ)"
for round in $(seq "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        args=$mode; [ "$args" = default ] && args=""
        : >"$W/ann"
        # shellcheck disable=SC2086
        "$TAOJIE" serve $args proxy --listen 127.0.0.1:0 --allow 127.0.0.1 --max-conns 4096 \
            --max-handshakes 4096 --max-handshakes-per-addr 4096 >"$W/ann" 2>"$W/log" &
        PROXY_PID=$!
        wait_for grep -q ' tcp ' "$W/ann"
        proxy=$(awk '/ tcp / {print $3; exit}' "$W/ann")
        perf stat -x, -o "$W/perf" -p "$PROXY_PID" -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait &
        PERF_PID=$!
        sleep 0.5
        timeout 300 python3 bench/proxy_peer.py setup "$proxy" "$ECHO" "$SETUP" >"$W/times"
        kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
        kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""
        printf 'round=%s %-14s ' "$round" "${mode// /_}"
        # task-clock is in ms: µs of CPU per setup.
        awk -F, -v n="$SETUP" '$1 ~ /^[0-9.]+$/ {gsub(/.*:/, "", $3); v = $1 / n;
            if ($3 == "task-clock") v *= 1000; printf "%s=%.2f ", $3, v} END {print ""}' "$W/perf"
    done
done
