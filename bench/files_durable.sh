#!/usr/bin/env bash
# bench/files_durable.sh — durable uploads (issue 29, item 3): `taojie put` of one file to a
# files server on the same disk, durable when the client exits (every segment's BLAKE3
# checked, fsynced, renamed into place), against the two floors a user would compare it with:
#
#   nc | dd conv=fsync   nc -l 127.0.0.1 P | dd of=OUT bs=1M conv=fsync   (durable, no check)
#   nc > file            nc -l 127.0.0.1 P > OUT                        (not durable)
#
# and `taojie get` of a file from that server against nc | dd conv=fsync in the other
# direction (the served copy as nc's source). Rounds alternate: the order of the tools turns
# every round, so each sees the same machine. Every output goes to a directory on the disk
# (DIR, default /var/tmp: ext4 on /, not tmpfs), is checked against the source for taojie and
# removed, with a `sync`, after each transfer. Reports medians, every run, the ratios, the
# server's CPU seconds per put (user and kernel) and its peak RSS (VmHWM over all rounds).
#
#   bench/files_durable.sh                          # 512 MiB, 5 rounds, quiet machine
#   SIZE_MB=1024 bench/files_durable.sh             # 1 GiB
#   BUSY=1 bench/files_durable.sh                   # with one `yes > /dev/null` beside it
#   SIZE_MB=64 ROUNDS=2 TAOJIE=target/profiling/taojie bench/files_durable.sh   # smoke run
#
# TAOJIE: a taojie binary to measure instead of building `target/release/taojie`.
# Needs: nc (netcat-openbsd), dd, bc, ss.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-512}
ROUNDS=${ROUNDS:-5}
BUSY=${BUSY:-}
DIR=${DIR:-/var/tmp}
TAOJIE=${TAOJIE:-}

# The source, the served copy and one output at a time, with room to spare.
need_kb=$((SIZE_MB * 1024 * 4))
free_kb=$(df -Pk "$DIR" | awk 'NR == 2 {print $4}')
if (( free_kb < need_kb )); then
    echo "files_durable: $DIR has $((free_kb / 1024)) MiB free, needs $((need_kb / 1024)) MiB" >&2
    exit 1
fi
case $(stat -f -c %T "$DIR") in
    tmpfs|ramfs) echo "files_durable: $DIR is in memory; give DIR on a disk" >&2; exit 1 ;;
esac
if [ -z "$TAOJIE" ]; then
    cargo build --release -q
    TAOJIE=target/release/taojie
fi
W=$(mktemp -d "$DIR/taojie-durable.XXXXXX")
# A copy, so a build running meanwhile cannot swap the binary mid-run.
T=$W/taojie
cp "$TAOJIE" "$T"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=3; $1 / $2" | bc -l; }
wait_for() { # wait_for CMD...: up to 5 s
    for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}
free_port() { # a port no TCP socket has, in any state (nc takes it a moment later; without
    # SO_REUSEADDR, even a connection in TIME_WAIT on it, such as thousands left by another
    # benchmark just before, makes its bind fail)
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -tanH "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

head -c "${SIZE_MB}M" /dev/urandom > "$W/in"
mkdir -p "$W/root/src" "$W/out"
cp "$W/in" "$W/root/src/in"
sync
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"

"$T" serve files --listen 127.0.0.1:0 --root "$W/root" --key "$W/key" > "$W/ann" 2> "$W/log" &
SRV=$!; PIDS+=("$SRV")
wait_for grep -q '^files tcp' "$W/ann"
ADDR=$(awk '/^files tcp/ {print $3}' "$W/ann")

if [ -n "$BUSY" ]; then
    yes > /dev/null &
    PIDS+=("$!")
fi

# The server's CPU ticks so far: user, kernel.
ticks() { awk '{print $14, $15}' "/proc/$SRV/stat"; }
HZ=$(getconf CLK_TCK)

# Each transfer starts from the page cache, as a user's file just written or read would.
warm() { cat "$W/in" "$W/root/src/in" > /dev/null; sync; }

put_taojie() { # put_taojie ROUND
    local t0 u0 s0 u1 s1
    read -r u0 s0 < <(ticks)
    t0=$(now)
    "$T" put "$ADDR" "$W/in" --to "r$1" --key "$W/key" --quiet
    echo "$(now) - $t0" | bc -l >> "$W/t.put"
    read -r u1 s1 < <(ticks)
    echo "$(( (u1 - u0) * 1000 / HZ )) $(( (s1 - s0) * 1000 / HZ ))" >> "$W/cpu.put"
    cmp -s "$W/in" "$W/root/r$1/in" || { echo "put: output differs" >&2; exit 1; }
    rm -rf "$W/root/r$1"; sync
}

get_taojie() {
    local t0
    t0=$(now)
    "$T" get "$ADDR" src/in -o "$W/out" --key "$W/key" --quiet
    echo "$(now) - $t0" | bc -l >> "$W/t.get"
    cmp -s "$W/in" "$W/out/in" || { echo "get: output differs" >&2; exit 1; }
    rm -f "$W/out/in"; sync
}

# nc_to SOURCE FILE [fsync]: SOURCE through nc over loopback into FILE, with `dd conv=fsync`
# when asked; the seconds until the receiving end has exited.
nc_to() {
    local src=$1 out=$2 fsync=${3:-} p rx t0
    p=$(free_port)
    if [ -n "$fsync" ]; then
        nc -l 127.0.0.1 "$p" | dd of="$out" bs=1M conv=fsync status=none &
    else
        nc -l 127.0.0.1 "$p" > "$out" &
    fi
    rx=$!
    wait_for sh -c "ss -ltnH 'sport = :$p' | grep -q ."
    t0=$(now)
    nc -N 127.0.0.1 "$p" < "$src" > /dev/null
    wait "$rx"
    echo "$(now) - $t0" | bc -l
    [ "$(stat -c %s "$out")" = $((SIZE_MB * 1048576)) ] || { echo "nc: short output" >&2; exit 1; }
    rm -f "$out"; sync
}

for f in t.put t.get t.dd t.raw t.getdd cpu.put load; do : > "$W/$f"; done
for i in $(seq "$ROUNDS"); do
    cut -d' ' -f1 /proc/loadavg >> "$W/load"
    # put and its two floors, the order turned every round
    steps=(taojie dd raw)
    for k in 0 1 2; do
        warm
        case ${steps[$(( (k + i) % 3 ))]} in
            taojie) put_taojie "$i" ;;
            dd) nc_to "$W/in" "$W/nc.out" fsync >> "$W/t.dd" ;;
            raw) nc_to "$W/in" "$W/nc.out" >> "$W/t.raw" ;;
        esac
    done
    # get and its floor, alternating
    warm
    if (( i % 2 )); then
        get_taojie; nc_to "$W/root/src/in" "$W/nc.out" fsync >> "$W/t.getdd"
    else
        nc_to "$W/root/src/in" "$W/nc.out" fsync >> "$W/t.getdd"; warm; get_taojie
    fi
done

row() { # row LABEL FILE
    printf '%-40s %7.2f   %s\n' "$1" "$(median < "$W/$2")" "$(tr '\n' ' ' < "$W/$2")"
}
echo "files_durable: $SIZE_MB MiB to $DIR ($(stat -f -c %T "$DIR")), $ROUNDS rounds${BUSY:+, one CPU busy (yes > /dev/null)}"
echo "load average (1 min) at each round: $(tr '\n' ' ' < "$W/load")"
printf '%-40s %7s   %s\n' transfer median "all runs (s)"
row "taojie put (BLAKE3, fsync, rename)" t.put
row "nc | dd conv=fsync" t.dd
row "nc > file (no fsync)" t.raw
row "taojie get (BLAKE3, fsync, rename)" t.get
row "nc | dd conv=fsync (get's direction)" t.getdd
put=$(median < "$W/t.put")
echo "put / nc|dd fsync: $(ratio "$put" "$(median < "$W/t.dd")")x (target <= 1.1)"
echo "put / nc > file:   $(ratio "$put" "$(median < "$W/t.raw")")x (target <= 1.3)"
echo "get / nc|dd fsync: $(ratio "$(median < "$W/t.get")" "$(median < "$W/t.getdd")")x (target <= 1.1)"
echo "server CPU per put, ms user kernel: $(tr '\n' ',' < "$W/cpu.put" | sed 's/,$//; s/,/, /g')"
echo "server peak RSS (VmHWM over all rounds): $(awk '/VmHWM/ {print $2}' "/proc/$SRV/status") KiB (target <= 32768)"
