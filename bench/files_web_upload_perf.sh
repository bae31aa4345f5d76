#!/usr/bin/env bash
# bench/files_web_upload_perf.sh SIZE_MB BIN[@WINDOW] ...: for each taojie binary, one server
# (native files port and the page), then one upload of the same SIZE_MB MiB file through the
# page's chunked endpoint (bench/peers/web_upload.py, as the page sends it) and one
# `taojie put` of it, each under `perf stat -p SERVER`: the server's CPU time (task-clock),
# context switches and syscalls by kind, all per GiB; the average socket read
# (bytes / recvfrom calls); and the client's time waiting for answers (web_upload.py's
# TIMING line). Counts, not times: they hold on a busy machine. Roots on /var/tmp (disk).
#   bench/files_web_upload_perf.sh 1024 /var/tmp/taojie-before@1 target/release/taojie@1 target/release/taojie
# BIN@N sends N chunks in flight (web_upload.py's WINDOW; a build from before several chunks
# could be in flight takes only 1); without it, web_upload.py's own default (WINDOW=N in the
# environment sets it for all). RECORD=1: `perf record` instead, and the server's top symbols
# (use `cargo build --profile profiling` for them).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=$1; shift
W=$(mktemp -d /var/tmp/taojie-web-up-perf.XXXXXX)
SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; rm -rf $W' EXIT
head -c "${SIZE_MB}M" /dev/urandom > $W/in
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/key; chmod 600 $W/key
EV=task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_sync_file_range,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_fadvise64,syscalls:sys_enter_openat,syscalls:sys_enter_pwrite64
per_gib() { awk -v mb="$SIZE_MB" '
    /task-clock/ {printf "  cpu %.3f s/GiB", $1 / 1000 * 1024 / mb}
    /context-switches/ {gsub(",", "", $1); printf "  ctxsw %d/GiB", $1 * 1024 / mb}
    /raw_syscalls:sys_enter/ {gsub(",", "", $1); printf "  syscalls %d/GiB", $1 * 1024 / mb}
    /syscalls:sys_enter_/ {gsub(",", "", $1); n = $2; sub(".*sys_enter_", "", n); if ($1 > 0) printf "  %s %d", n, $1 * 1024 / mb}
    /syscalls:sys_enter_recvfrom/ {gsub(",", "", $1); if ($1 > 0) printf " (avg %d KiB)", mb * 1024 / $1}
    END {print ""}' "$1"; }
measure() { # measure NAME CMD...: perf stat on the server around CMD
    local name=$1; shift
    sync; sleep 0.5
    if [ -n "${RECORD:-}" ]; then
        perf record -q -F 999 -g -p $SRV -o $W/perf.data 2>/dev/null &
    else
        perf stat -e "$EV" -p $SRV -o $W/stat 2>/dev/null &
    fi
    local p=$!
    sleep 0.5
    local t0; t0=$(date +%s.%N)
    "$@" 2> $W/client.err
    local t1; t1=$(date +%s.%N)
    kill -INT $p; wait $p || true
    printf '%-12s wall %.2f s' "$name" "$(echo "$t1 - $t0" | bc -l)"
    if [ -n "${RECORD:-}" ]; then
        echo
        perf report -i $W/perf.data --no-children --sort sym --stdio 2>/dev/null |
            grep '%' | grep -v '^#' | head -25
    else
        per_gib $W/stat
    fi
    grep '^TIMING' $W/client.err | sed 's/^/             /' || true
}
for ARG in "$@"; do
    BIN=${ARG%@*}; WIN=${WINDOW:-}
    [ "$BIN" != "$ARG" ] && WIN=${ARG##*@}
    rm -rf $W/root; mkdir $W/root
    "$BIN" serve files --listen 127.0.0.1:0 --root $W/root --key $W/key --web 127.0.0.1:0 \
        > $W/ann 2> $W/log &
    SRV=$!
    for _ in $(seq 100); do grep -q '^files-web tcp' $W/ann && break; sleep 0.1; done
    ADDR=$(awk '/^files tcp/ {print $3}' $W/ann)
    WEB=$(awk '/^files-web tcp/ {print $3}' $W/ann)
    TOKEN=$(sed -n 's/.*files-web login .*token=//p' $W/log)
    cat $W/in > /dev/null
    echo "== $BIN, ${WIN:-default} in flight ($SIZE_MB MiB, load $(cut -d' ' -f1-3 /proc/loadavg))"
    measure "page upload" env TIMING=1 ${WIN:+WINDOW=$WIN} python3 bench/peers/web_upload.py "$WEB" "$TOKEN" $W/in web.bin
    cmp $W/in $W/root/web.bin
    measure "put" "$BIN" put "$ADDR" $W/in --key $W/key --quiet
    cmp $W/in $W/root/in
    kill $SRV; wait $SRV || true; SRV=
done
