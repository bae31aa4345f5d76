#!/usr/bin/env bash
# bench/wormhole.sh — one file through Magic Wormhole on loopback, start to end of both commands,
# inside a private network namespace with only `lo` (so every direct hint is 127.0.0.1 and no
# byte leaves it): the real mailbox server (PyPI) and transit relay (Debian) in it, and
# `taojie serve relay` beside them. Medians of ROUNDS interleaved runs of:
#
#   taojie    taojie send  -> taojie receive          (direct)
#   wormhole  wormhole send -> wormhole receive        (direct)
#   t->w      taojie send  -> wormhole receive        (direct)
#   put       taojie put   -> taojie serve files      (the same file, keyed channel)
#   relay     taojie send  -> taojie receive, --no-listen on both: the Python transit relay
#   t-mbox    taojie send  -> taojie receive, direct, with `taojie serve relay` as the mailbox
#   t-relay   the same through `taojie serve relay` (mailbox and transit), --no-listen on both
#
# then one resume: a taojie transfer killed at half and run again, with the TCP bytes the
# second run moved (nftables counter on the namespace's lo).
# The source is read from /dev/shm (this VM's DAMON pageout evicts idle page-cache pages);
# outputs go to a disk directory and are removed, with a sync, between runs.
#
#   bench/wormhole.sh                   # 1 GiB, 3 rounds
#   SIZE_MB=64 ROUNDS=1 bench/wormhole.sh      # a quick check that it works
#
# Needs root (ip netns, nft), magic-wormhole, magic-wormhole-transit-relay (Debian) and
# magic-wormhole-mailbox-server (pip): .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
PY=${PY:-python3}
cargo build --release -q
T=$PWD/target/release/taojie
NS=tjwhb$$
W=$(mktemp -d /var/tmp/taojie-wormhole-bench.XXXXXX)
SRC=$(mktemp -d /dev/shm/taojie-wormhole-src.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$W" "$SRC"
}
trap cleanup EXIT
inns() { ip netns exec "$NS" "$@"; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}

ip netns add "$NS"
inns ip link set lo up
# The real servers on 4000/4001 (the namespace is ours alone).
ip netns exec "$NS" "$PY" -m twisted wormhole-mailbox --port=tcp:4000:interface=127.0.0.1 \
    --channel-db="$W/channel.sqlite" --usage-db="$W/usage.sqlite" >"$W/mailbox.log" 2>&1 &
PIDS+=($!)
(cd "$W" && exec ip netns exec "$NS" twist3 transitrelay --port=tcp:4001:interface=127.0.0.1 >"$W/relay.log" 2>&1) &
PIDS+=($!)
ip netns exec "$NS" "$T" serve relay --listen 127.0.0.1:0 --transit 127.0.0.1:0 >"$W/trelay.ann" 2>"$W/trelay.log" &
PIDS+=($!)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"
mkdir -p "$W/root"
ip netns exec "$NS" "$T" serve files --listen 127.0.0.1:0 --root "$W/root" --key "$W/key" >"$W/files.ann" 2>"$W/files.log" &
PIDS+=($!)
wait_for sh -c "ip netns exec $NS ss -Hltn | grep -q '127.0.0.1:4000 ' && ip netns exec $NS ss -Hltn | grep -q '127.0.0.1:4001 '"
wait_for grep -q '^relay-transit tcp' "$W/trelay.ann"
wait_for grep -q '^files tcp' "$W/files.ann"
PYR=(--relay-url ws://127.0.0.1:4000/v1 --transit-helper tcp:127.0.0.1:4001)
TJR=(--relay-url "ws://$(awk '$1=="relay"{print $3}' "$W/trelay.ann")/v1"
     --transit-helper "tcp:$(awk '$1=="relay-transit"{print $3}' "$W/trelay.ann")")
FILES=$(awk '/^files tcp/ {print $3}' "$W/files.ann")

head -c "${SIZE_MB}M" /dev/urandom > "$SRC/data.bin"
mkdir -p "$W/out"
fresh() { rm -rf "$W/out" "$W/root"/*; mkdir -p "$W/out"; sync; }
N=0
code() { N=$((N + 1)); echo "$N-crossover-clockwork"; }

# run_pair SEND_CMD... -- RECV_CMD...: both at once; prints the seconds until both ended.
run_pair() {
    local send=() recv=()
    while [ "$1" != -- ]; do send+=("$1"); shift; done; shift; recv=("$@")
    local t0; t0=$(now)
    (cd "$SRC" && ip netns exec "$NS" "${send[@]}" >/dev/null 2>>"$W/send.err") & local sp=$!
    (cd "$W/out" && ip netns exec "$NS" "${recv[@]}" >/dev/null 2>>"$W/recv.err") & local rp=$!
    wait $sp; wait $rp
    echo "$(now) - $t0" | bc -l
}
cmp_out() { cmp -s "$SRC/data.bin" "$1" || { echo "output differs: $1" >&2; exit 1; }; }

declare -A TIMES
for round in $(seq "$ROUNDS"); do
    for case in taojie wormhole t-w put relay t-mbox t-relay; do
        fresh
        c=$(code)
        case $case in
        taojie) t=$(run_pair "$T" send --code "$c" data.bin "${PYR[@]}" -- \
                    "$T" receive "$c" --accept "${PYR[@]}"); cmp_out "$W/out/data.bin" ;;
        wormhole) t=$(run_pair wormhole "${PYR[@]}" send --hide-progress --code "$c" data.bin -- \
                    wormhole "${PYR[@]}" receive --hide-progress --accept-file "$c"); cmp_out "$W/out/data.bin" ;;
        t-w) t=$(run_pair "$T" send --code "$c" data.bin "${PYR[@]}" -- \
                    wormhole "${PYR[@]}" receive --hide-progress --accept-file "$c"); cmp_out "$W/out/data.bin" ;;
        put) t0=$(now); inns "$T" put "$FILES" "$SRC/data.bin" --key "$W/key" >/dev/null 2>>"$W/send.err"
             t=$(echo "$(now) - $t0" | bc -l); cmp_out "$W/root/data.bin" ;;
        relay) t=$(run_pair "$T" send --no-listen --code "$c" data.bin "${PYR[@]}" -- \
                    "$T" receive "$c" --no-listen --accept "${PYR[@]}"); cmp_out "$W/out/data.bin" ;;
        t-mbox) t=$(run_pair "$T" send --code "$c" data.bin "${TJR[@]}" -- \
                    "$T" receive "$c" --accept "${TJR[@]}"); cmp_out "$W/out/data.bin" ;;
        t-relay) t=$(run_pair "$T" send --no-listen --code "$c" data.bin "${TJR[@]}" -- \
                    "$T" receive "$c" --no-listen --accept "${TJR[@]}"); cmp_out "$W/out/data.bin" ;;
        esac
        TIMES[$case]="${TIMES[$case]:-} $t"
        printf 'round %d %-9s %6.2f s\n' "$round" "$case" "$t"
    done
done

med() { tr ' ' '\n' <<<"${TIMES[$1]}" | grep . | median; }
echo
printf '%-9s %8s %10s\n' case "median s" "MB/s"
for case in taojie wormhole t-w put relay t-mbox t-relay; do
    m=$(med "$case")
    printf '%-9s %8.2f %10.1f\n' "$case" "$m" "$(echo "$SIZE_MB * 1.048576 / $m" | bc -l)"
done
r() { echo "$(med "$1") / $(med "$2")" | bc -l; }
printf '\ntaojie vs wormhole: %.2fx   taojie vs put: %.2fx (with taojie'"'"'s mailbox %.2fx)   t->w vs wormhole: %.2fx   relay vs direct: %.2fx (taojie'"'"'s: %.2fx)\n' \
    "$(r wormhole taojie)" "$(r put taojie)" "$(r put t-mbox)" "$(r wormhole t-w)" "$(r taojie relay)" "$(r t-mbox t-relay)"

# Resume: kill the receiver at about half, run again, count what the second run moved.
fresh
inns nft add table inet tjb
inns nft add counter inet tjb wire
inns nft add chain inet tjb out '{ type filter hook output priority 0 ; }'
inns nft add rule inet tjb out meta l4proto tcp counter name wire
c=$(code)
(cd "$SRC" && ip netns exec "$NS" "$T" send --code "$c" data.bin "${PYR[@]}" >/dev/null 2>&1 || true) &
sp=$!
ip netns exec "$NS" "$T" receive "$c" --accept -o "$W/out" "${PYR[@]}" >/dev/null 2>&1 &
rp=$!
half=$((SIZE_MB * 1024 * 1024 / 2))
for _ in $(seq 6000); do
    s=$(stat -c %s "$W/out/.data.bin.taojie-part" 2>/dev/null || echo 0)
    [ "$s" -ge "$half" ] && break
    sleep 0.01
done
kill -9 $rp; wait $rp 2>/dev/null || true; wait $sp || true
held=$(stat -c %s "$W/out/.data.bin.taojie-part")
bytes() { inns nft list counter inet tjb wire | awk '/bytes/ {for (i=1;i<NF;i++) if ($i=="bytes") print $(i+1)}'; }
before=$(bytes)
c=$(code)
t=$(run_pair "$T" send --code "$c" data.bin "${PYR[@]}" -- "$T" receive "$c" --accept "${PYR[@]}")
cmp_out "$W/out/data.bin"
moved=$(( $(bytes) - before ))
printf '\nresume: %d of %d bytes held after the kill; the second run moved %d TCP bytes (%.1f%% of the file) in %.2f s; output identical\n' \
    "$held" "$((SIZE_MB * 1024 * 1024))" "$moved" "$(echo "100 * $moved / ($SIZE_MB * 1048576)" | bc -l)" "$t"
