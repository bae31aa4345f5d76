#!/usr/bin/env bash
# bench/forward_cost.sh — what each relay process spends per GiB, a figure that load changes
# far less than throughput: SIZE_MB from bench/forward_peer.py's sender to its sink through
# `taojie forward` (splice), a two-hop `--to-key` / `--from-key` tunnel (its entry and exit
# process each), and `ssh -L` (aes128-gcm; the ssh client and the sshd session processes),
# with `perf stat -e task-clock,context-switches,cpu-migrations` (plus cycles and
# instructions where the CPU has counters) attached to each process for the transfer; then
# once more under `strace -c -f` for the system calls per MiB.
#
#   bench/forward_cost.sh                        # 1 GiB, 3 rounds, the release build
#   TAOJIE=target/profiling/taojie BEFORE=/tmp/taojie-old bench/forward_cost.sh
#                                                # also the tunnel of another build, same run
#   SIZE_MB=256 ROUNDS=1 NO_SSH=1 NO_STRACE=1 bench/forward_cost.sh
#
# Each figure is the median of ROUNDS rounds, the cases interleaved within each round.
# Needs perf, strace, python3, bc; openssh-server and -client for the ssh case.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
NO_SSH=${NO_SSH:-}
NO_STRACE=${NO_STRACE:-}
BEFORE=${BEFORE:-}
if [ -z "${TAOJIE:-}" ]; then
    cargo build --release -q
    TAOJIE=target/release/taojie
fi
W=$(mktemp -d /dev/shm/taojie-forward-cost.XXXXXX)
cp "$TAOJIE" "$W/taojie"
[ -z "$BEFORE" ] || cp "$BEFORE" "$W/before"
PEER="python3 bench/forward_peer.py"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }
announced() { wait_for grep -q ' tcp ' "$1"; awk '/ tcp / {print $3; exit}' "$1"; }
descendants() { local c; for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }

head -c "${SIZE_MB}M" /dev/urandom > "$W/in"
GIB=$(echo "$SIZE_MB / 1024" | bc -l)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"
EVENTS=task-clock,context-switches,cpu-migrations
# Virtual machines often have no hardware counters: cycles and instructions only where they count.
counters=$(perf stat -x, -e cycles,instructions true 2>&1 || true)
case "$counters" in *"not supported"* | *"not counted"*) ;; *) EVENTS=$EVENTS,cycles,instructions ;; esac

$PEER sink > "$W/sink.port" & PIDS+=("$!")
wait_for test -s "$W/sink.port"
SINK=127.0.0.1:$(cat "$W/sink.port")

# Each case: ADDR (where the sender goes) and, per measured process, a name and a PID.
ADDR=(); NAMES=(); MEASURED=()
add() { NAMES+=("$1"); MEASURED+=("$2"); }
start_forward() {
    local ann; ann=$(mktemp -p "$W")
    "$W/taojie" forward 127.0.0.1:0 "$SINK" > "$ann" 2>> "$W/log" & PIDS+=("$!")
    add forward "$!"; ADDR+=("forward=$(announced "$ann")")
}
start_tunnel() { # start_tunnel NAME BINARY
    local a b server
    a=$(mktemp -p "$W"); b=$(mktemp -p "$W")
    "$2" forward 127.0.0.1:0 "$SINK" --from-key "$W/key" > "$a" 2>> "$W/log" & PIDS+=("$!")
    local exit_pid=$!
    server=$(announced "$a")
    "$2" forward 127.0.0.1:0 "$server" --to-key "$W/key" > "$b" 2>> "$W/log" & PIDS+=("$!")
    add "$1-entry" "$!"; add "$1-exit" "$exit_pid"; ADDR+=("$1=$(announced "$b")")
}
start_ssh() {
    local port sshport sshd
    sshport=$(free_port); port=$(free_port)
    ssh-keygen -q -t ed25519 -N '' -f "$W/host"; ssh-keygen -q -t ed25519 -N '' -f "$W/user"
    cp "$W/user.pub" "$W/authorized_keys"
    cat > "$W/sshd_config" <<CONF
Port $sshport
ListenAddress 127.0.0.1
HostKey $W/host
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
CONF
    mkdir -p /run/sshd
    /usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" & PIDS+=("$!"); sshd=$!
    local opts=(-i "$W/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o LogLevel=ERROR -o BatchMode=yes -c aes128-gcm@openssh.com -o Compression=no)
    wait_for listening "$sshport"
    ssh -N -p "$sshport" "${opts[@]}" -L "127.0.0.1:$port:$SINK" "$(id -un)@127.0.0.1" &
    PIDS+=("$!"); add ssh "$!"
    wait_for listening "$port"
    local p
    for p in $(descendants "$sshd"); do add "sshd-$p" "$p"; done
    ADDR+=("ssh=127.0.0.1:$port")
}

start_forward
start_tunnel tunnel "$W/taojie"
[ -z "$BEFORE" ] || start_tunnel before "$W/before"
[ -n "$NO_SSH" ] || start_ssh

# The PIDs measured for a case (its processes' names begin with the case's name).
pids_of() {
    local i out=()
    for i in "${!NAMES[@]}"; do
        case "${NAMES[$i]}" in "$1" | "$1"-*) out+=("${MEASURED[$i]}") ;; esac
    done
    [ "$1" != ssh ] || for i in "${!NAMES[@]}"; do
        case "${NAMES[$i]}" in sshd-*) out+=("${MEASURED[$i]}") ;; esac
    done
    echo "${out[@]}"
}
name_of() { local i; for i in "${!MEASURED[@]}"; do [ "${MEASURED[$i]}" != "$1" ] || echo "${NAMES[$i]}"; done; }

for i in $(seq "$ROUNDS"); do
    for entry in "${ADDR[@]}"; do
        c=${entry%%=*}; addr=${entry#*=}
        # One perf stat per process, nested, around the transfer.
        cmd=($PEER send "$addr" "$W/in")
        for p in $(pids_of "$c"); do
            cmd=(perf stat -x, -e "$EVENTS" -p "$p" -o "$W/perf.$p" -- "${cmd[@]}")
        done
        "${cmd[@]}" > /dev/null
        for p in $(pids_of "$c"); do
            n=$(name_of "$p")
            awk -F, -v gib="$GIB" -v n="$n" '$1 ~ /^[0-9.]+$/ {
                v = $1; if ($3 == "task-clock") v = v / 1000; print n, $3, v / gib }' \
                "$W/perf.$p" >> "$W/figures"
        done
    done
done

# System calls, one more transfer per case under strace (its own cost is not counted above).
if [ -z "$NO_STRACE" ]; then
    for entry in "${ADDR[@]}"; do
        c=${entry%%=*}; addr=${entry#*=}
        for p in $(pids_of "$c"); do
            strace -qq -c -f -p "$p" -o "$W/strace.$p" & PIDS+=("$!"); eval "ST_$p=\$!"
        done
        sleep 0.5
        $PEER send "$addr" "$W/in" > /dev/null
        for p in $(pids_of "$c"); do
            eval "s=\$ST_$p"; kill -INT "$s"; wait "$s" || true
            awk -v mib="$SIZE_MB" -v n="$(name_of "$p")" '$NF == "total" { print n, "syscalls", $4 / mib }
                $NF ~ /^(read|write|readv|writev|recvfrom|sendto|recvmsg|sendmsg|splice|epoll_wait|futex)$/ {
                    print n, $NF, $4 / mib }' "$W/strace.$p" >> "$W/syscalls"
        done
    done
fi

printf '\nforward_cost: %s MiB per transfer, median of %s rounds; %s; load %s\n' "$SIZE_MB" "$ROUNDS" \
    "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'per GiB, each process attached with perf stat -e %s\n' "$EVENTS"
printf '%-16s %-18s %14s\n' process event "per GiB"
for n in $(cut -d' ' -f1 "$W/figures" | awk '!seen[$0]++'); do
    for e in $(awk -v n="$n" '$1 == n {print $2}' "$W/figures" | awk '!seen[$0]++'); do
        v=$(awk -v n="$n" -v e="$e" '$1 == n && $2 == e {print $3}' "$W/figures" | median)
        unit=; [ "$e" != task-clock ] || unit=" s"
        printf '%-16s %-18s %14.3f%s\n' "$n" "$e" "$v" "$unit"
    done
done
if [ -s "$W/syscalls" ] 2>/dev/null; then
    printf '\nsystem calls per MiB (strace -c -f, one transfer)\n'
    while read -r n e v; do printf '%-16s %-18s %14.1f\n' "$n" "$e" "$v"; done < "$W/syscalls"
fi
