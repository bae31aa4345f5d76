#!/usr/bin/env bash
# bench/files.sh — one file over loopback: `taojie put` (verified, fsynced, renamed into place)
# against an nc pipe (unverified, not fsynced), scp and rsync over a throwaway loopback sshd.
# The file is read once first so every tool starts from the page cache; outputs go to a disk
# directory (not tmpfs) and are removed, with a `sync`, between runs. Reports the median of
# ROUNDS interleaved runs, and the peak RSS (VmHWM) of both taojie ends.
#
#   bench/files.sh                 # 1 GiB, 3 rounds
#   SIZE_MB=256 ROUNDS=5 bench/files.sh
#
# Needs: nc (netcat-openbsd), /usr/bin/time, openssh-server/-client, rsync.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
cargo build --release -q
T=$PWD/target/release/taojie
W=$(mktemp -d /var/tmp/taojie-files-bench.XXXXXX)
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
mkdir -p "$W/root"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"

# taojie server
"$T" serve files --listen 127.0.0.1:0 --root "$W/root" --key "$W/key" > "$W/ann" 2> "$W/srv.log" &
SRV=$!; PIDS+=("$SRV")
wait_for grep -q '^files tcp' "$W/ann"
ADDR=$(awk '/^files tcp/ {print $3}' "$W/ann")

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

: > "$W/t.put"; : > "$W/t.nc"; : > "$W/t.scp"; : > "$W/t.rsync"; : > "$W/rss.put"
for i in $(seq "$ROUNDS"); do
    sync
    /usr/bin/time -f '%e %M' -o "$W/time" "$T" put "$ADDR" "$W/in" --to "r$i" --key "$W/key" --quiet
    read -r secs rss < "$W/time"; echo "$secs" >> "$W/t.put"; echo "$rss" >> "$W/rss.put"
    cmp -s "$W/in" "$W/root/r$i/in" || { echo "taojie put: output differs" >&2; exit 1; }
    rm -rf "$W/root/r$i"; sync

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

SRV_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$SRV/status")
put=$(median < "$W/t.put"); nc=$(median < "$W/t.nc"); scp=$(median < "$W/t.scp"); rs=$(median < "$W/t.rsync")
mbps() { echo "scale=0; $SIZE_MB * 1048576 / $1 / 1000000" | bc -l; }
echo "file: $SIZE_MB MiB from the page cache, $ROUNDS rounds, median seconds (all runs)"
printf '%-32s %8s %8s  %s\n' tool seconds MB/s runs
printf '%-32s %8.2f %8s  %s\n' "taojie put (BLAKE3, fsync)" "$put" "$(mbps "$put")" "$(tr '\n' ' ' < "$W/t.put")"
printf '%-32s %8.2f %8s  %s\n' "nc pipe (no check, no fsync)" "$nc" "$(mbps "$nc")" "$(tr '\n' ' ' < "$W/t.nc")"
printf '%-32s %8.2f %8s  %s\n' "scp (loopback sshd)" "$scp" "$(mbps "$scp")" "$(tr '\n' ' ' < "$W/t.scp")"
printf '%-32s %8.2f %8s  %s\n' "rsync over ssh" "$rs" "$(mbps "$rs")" "$(tr '\n' ' ' < "$W/t.rsync")"
echo "taojie put / nc: $(echo "scale=2; $put / $nc" | bc -l)x"
echo "peak RSS: taojie put client $(median < "$W/rss.put") KiB (median), server $SRV_RSS KiB (VmHWM over all rounds)"
