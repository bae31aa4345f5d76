#!/usr/bin/env bash
# bench/files_put_perf.sh BIN SIZE_MB [record]: one `taojie put` of SIZE_MB MiB to a files server on
# /var/tmp under `perf stat -p SERVER` (task-clock, context switches, page faults, syscalls by
# kind) or, with `record`, `perf record -g` and its top symbols; the server's user/kernel ticks,
# VmHWM and the /proc/vmstat reclaim counters around it. Counts hold on a shared machine.
# Use a build with symbols: `cargo build --profile profiling`, BIN=target/profiling/taojie.
set -euo pipefail
BIN=$1; SIZE_MB=$2; REC=${3:-}
W=$(mktemp -d /var/tmp/taojie-put-perf.XXXXXX)
trap 'kill $SRV 2>/dev/null; rm -rf $W' EXIT
head -c "${SIZE_MB}M" /dev/urandom > $W/in
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/key; chmod 600 $W/key
mkdir $W/root
$BIN serve files --listen 127.0.0.1:0 --root $W/root --key $W/key > $W/ann 2>$W/log &
SRV=$!
for _ in $(seq 50); do grep -q '^files tcp' $W/ann && break; sleep 0.1; done
ADDR=$(awk '/^files tcp/ {print $3}' $W/ann)
cat $W/in > /dev/null; sync
vm() { grep -E '^(pgsteal_kswapd|pgsteal_direct|pgscan_kswapd|pgscan_direct|allocstall_normal|allocstall_movable|pgfree|nr_dirtied|nr_written|pgactivate|workingset_refault_file) ' /proc/vmstat; }
vm > $W/vm0
EV=task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sync_file_range,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_fadvise64
if [ -n "$REC" ]; then
  perf record -q -g -F 999 -p $SRV -o $W/perf.data 2>/dev/null &
else
  perf stat -e "$EV" -p $SRV -o $W/stat 2>/dev/null &
fi
P=$!
sleep 0.5
u0=$(awk '{print $14, $15}' /proc/$SRV/stat)
t0=$(date +%s.%N)
$BIN put $ADDR $W/in --to r --key $W/key --quiet
t1=$(date +%s.%N)
u1=$(awk '{print $14, $15}' /proc/$SRV/stat)
kill -INT $P; wait $P || true
vm > $W/vm1
echo "wall $(echo "$t1 - $t0" | bc -l) s; server ticks user/sys before $u0 after $u1; VmHWM $(awk '/VmHWM/ {print $2}' /proc/$SRV/status) KiB"
paste $W/vm0 $W/vm1 | awk '{printf "%s %d\n", $1, $4-$2}'
if [ -n "$REC" ]; then
  perf report -i $W/perf.data --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | grep '%' | head -45
else
  cat $W/stat
fi
