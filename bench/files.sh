#!/usr/bin/env bash
# bench/files.sh — one file over loopback: `taojie put` (verified, fsynced, renamed into place)
# and `taojie get` of it back, against an nc pipe (unverified, not fsynced), scp and rsync over
# a throwaway loopback sshd. The file is read once first so every tool starts from the page
# cache; outputs go to a disk directory (not tmpfs) and are removed, with a `sync`, between
# runs. Reports the median of ROUNDS interleaved runs, and the peak RSS (VmHWM) of both
# taojie ends.
#
#   bench/files.sh                 # 1 GiB, 3 rounds
#   SIZE_MB=256 ROUNDS=5 bench/files.sh
#   BASELINE=/tmp/taojie-old ONLY_TAOJIE=1 ROUNDS=9 bench/files.sh
#                                  # this tree against another build, put and get, A/B
#
# BASELINE: another taojie binary (say, a build of the commit before a change); it gets its
# own server and root, and each round runs its put and get next to this tree's, the order
# swapped every round, so both see the same machine. ONLY_TAOJIE=1 leaves out nc, scp and
# rsync (and needs none of them).
#
# Needs: nc (netcat-openbsd), /usr/bin/time, openssh-server/-client, rsync.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
BASELINE=${BASELINE:-}
ONLY_TAOJIE=${ONLY_TAOJIE:-}
cargo build --release -q
W=$(mktemp -d /var/tmp/taojie-files-bench.XXXXXX)
# Copies, so a build running meanwhile cannot swap a binary mid-run.
T=$W/taojie
cp target/release/taojie "$T"
if [ -n "$BASELINE" ]; then cp "$BASELINE" "$W/taojie-base"; B=$W/taojie-base; fi
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 5 s
    for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}

head -c "${SIZE_MB}M" /dev/urandom > "$W/in"
cat "$W/in" > /dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"

# taojie server (and the baseline's)
serve() { # serve BIN NAME: starts a files server rooted in $W/NAME.root; sets ADDR and SRV
    mkdir -p "$W/$2.root"
    "$1" serve files --listen 127.0.0.1:0 --root "$W/$2.root" --key "$W/key" \
        > "$W/$2.ann" 2> "$W/$2.log" &
    SRV=$!; PIDS+=("$SRV")
    wait_for grep -q '^files tcp' "$W/$2.ann"
    ADDR=$(awk '/^files tcp/ {print $3}' "$W/$2.ann")
}
serve "$T" new
NEW_ADDR=$ADDR NEW_SRV=$SRV
if [ -n "$BASELINE" ]; then
    serve "$B" base
    BASE_ADDR=$ADDR BASE_SRV=$SRV
fi
mkdir -p "$W/out"

# CPU seconds (user + system) process $1 has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# timed OP NAME SRV CMD...: runs the client CMD, appending its seconds to $W/t.OP.NAME, its
# peak RSS to $W/rss.OP.NAME and the CPU seconds of client and server together (less noisy
# than the clock on a busy machine) to $W/cpu.OP.NAME.
timed() {
    local op=$1 name=$2 srv=$3 before secs rss user sys
    shift 3
    before=$(cpu_of "$srv")
    /usr/bin/time -f '%e %M %U %S' -o "$W/time" "$@"
    read -r secs rss user sys < "$W/time"
    echo "$secs" >> "$W/t.$op.$name"; echo "$rss" >> "$W/rss.$op.$name"
    echo "$user + $sys + $(cpu_of "$srv") - $before" | bc -l >> "$W/cpu.$op.$name"
}

# put_get BIN ADDR SRV NAME ROUND: one put and one get of it back, each checked against the
# source and removed after.
put_get() {
    local bin=$1 addr=$2 srv=$3 name=$4 i=$5
    sync
    timed put "$name" "$srv" "$bin" put "$addr" "$W/in" --to "r$i" --key "$W/key" --quiet
    cmp -s "$W/in" "$W/$name.root/r$i/in" || { echo "$name put: output differs" >&2; exit 1; }
    sync
    timed get "$name" "$srv" "$bin" get "$addr" "r$i/in" -o "$W/out" --key "$W/key" --quiet
    cmp -s "$W/in" "$W/out/in" || { echo "$name get: output differs" >&2; exit 1; }
    rm -rf "$W/$name.root/r$i" "$W/out/in"; sync
}

if [ -z "$ONLY_TAOJIE" ]; then
# throwaway sshd on a high port
SSHPORT=$((30000 + RANDOM % 20000))
ssh-keygen -q -t ed25519 -N '' -f "$W/host"
ssh-keygen -q -t ed25519 -N '' -f "$W/user"
cp "$W/user.pub" "$W/authorized_keys"
cat > "$W/sshd_config" <<CONF
Port $SSHPORT
ListenAddress 127.0.0.1
HostKey $W/host
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" &
PIDS+=("$!")
SSHOPTS=(-i "$W/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes)
wait_for ssh -p "$SSHPORT" "${SSHOPTS[@]}" 127.0.0.1 true
USER_AT="$(id -un)@127.0.0.1"
fi

for f in {t,rss,cpu}.{put,get}.{new,base} t.nc t.scp t.rsync load; do : > "$W/$f"; done
for i in $(seq "$ROUNDS"); do
    cut -d' ' -f1 /proc/loadavg >> "$W/load"
    if [ -z "$BASELINE" ]; then
        put_get "$T" "$NEW_ADDR" "$NEW_SRV" new "$i"
    elif (( i % 2 )); then
        put_get "$T" "$NEW_ADDR" "$NEW_SRV" new "$i"; put_get "$B" "$BASE_ADDR" "$BASE_SRV" base "$i"
    else
        put_get "$B" "$BASE_ADDR" "$BASE_SRV" base "$i"; put_get "$T" "$NEW_ADDR" "$NEW_SRV" new "$i"
    fi
    [ -z "$ONLY_TAOJIE" ] || continue

    P=$((20000 + RANDOM % 10000))
    nc -l 127.0.0.1 "$P" > "$W/nc.out" &
    NC=$!
    wait_for sh -c "ss -ltn | grep -q '127.0.0.1:$P '"
    t0=$(now); nc -N 127.0.0.1 "$P" < "$W/in"; wait "$NC"; since "$t0" >> "$W/t.nc"
    rm -f "$W/nc.out"; sync

    t0=$(now); scp -q -P "$SSHPORT" "${SSHOPTS[@]}" "$W/in" "$USER_AT:$W/scp.out"; since "$t0" >> "$W/t.scp"
    rm -f "$W/scp.out"; sync

    t0=$(now); rsync -e "ssh -p $SSHPORT ${SSHOPTS[*]}" "$W/in" "$USER_AT:$W/rsync.out"; since "$t0" >> "$W/t.rsync"
    rm -f "$W/rsync.out"; sync
done

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
mbps() { echo "scale=0; $SIZE_MB * 1048576 / $1 / 1000000" | bc -l; }
row() { # row LABEL FILE
    local m; m=$(median < "$W/$2")
    printf '%-34s %8.2f %8s  %s\n' "$1" "$m" "$(mbps "$m")" "$(tr '\n' ' ' < "$W/$2")"
}
echo "file: $SIZE_MB MiB from the page cache, $ROUNDS rounds, median seconds (all runs)"
echo "load average (1 min) at each round: $(tr '\n' ' ' < "$W/load")"
printf '%-34s %8s %8s  %s\n' tool seconds MB/s runs
row "taojie put (BLAKE3, fsync)" t.put.new
row "taojie get (BLAKE3, fsync)" t.get.new
if [ -n "$BASELINE" ]; then
    row "baseline put" t.put.base
    row "baseline get" t.get.base
    for op in put get; do
        n=$(median < "$W/t.$op.new"); b=$(median < "$W/t.$op.base")
        nc_=$(median < "$W/cpu.$op.new"); bc_=$(median < "$W/cpu.$op.base")
        echo "$op: this tree / baseline = $(echo "scale=3; $n / $b" | bc -l) (median seconds)," \
            "$(echo "scale=3; $nc_ / $bc_" | bc -l) (median CPU seconds, client + server:" \
            "$nc_ vs $bc_)"
        echo "  $op CPU seconds, this tree: $(tr '\n' ' ' < "$W/cpu.$op.new")"
        echo "  $op CPU seconds, baseline:  $(tr '\n' ' ' < "$W/cpu.$op.base")"
    done
fi
if [ -z "$ONLY_TAOJIE" ]; then
    row "nc pipe (no check, no fsync)" t.nc
    row "scp (loopback sshd)" t.scp
    row "rsync over ssh" t.rsync
    echo "taojie put / nc: $(echo "scale=2; $(median < "$W/t.put.new") / $(median < "$W/t.nc")" | bc -l)x"
fi
echo "peak RSS: taojie put client $(median < "$W/rss.put.new") KiB (median), server $(hwm "$NEW_SRV") KiB (VmHWM over all rounds)"
[ -z "$BASELINE" ] || echo "peak RSS, baseline: put client $(median < "$W/rss.put.base") KiB, server $(hwm "$BASE_SRV") KiB"
