#!/usr/bin/env bash
# bench/forward.sh — taojie forward against socat, ssh -L and openssl, on loopback:
#
#  1. SIZE_MB through each relay from a sender to a sink (bench/forward_peer.py: sendfile in,
#     big reads out, the same ends for every case): no relay at all, `socat
#     TCP-LISTEN:P,fork,reuseaddr TCP:SINK`, `taojie forward` (splice), a two-hop `--to-key` /
#     `--from-key` tunnel (two taojie processes), and `ssh -L` (aes128-gcm) through a
#     throwaway loopback sshd. Throughput end to end, and the relay's CPU seconds per GiB,
#     its child processes included (socat forks one per connection; sshd's session
#     processes are children of its master).
#  2. 64-byte request/response latency (p50, p99 of RR round trips, one at a time) to an
#     echo server: directly, through socat, through taojie forward; then again with the
#     client, relay and echo server pinned to one CPU (each relay's own cost, without the
#     luck of where the scheduler puts them).
#  3. SIZE_MB from `openssl s_server` to `taojie connect --tls` and to `openssl s_client`.
#
# Each figure is the median of ROUNDS rounds, the cases interleaved within each round so all
# see the same machine. The machine should be quiet: the figures are ratios measured in the
# same run, but two cores shared with a build are not a benchmark.
#
#   bench/forward.sh                          # 1 GiB, 3 rounds, 20,000 round trips
#   SIZE_MB=64 ROUNDS=1 RR=2000 bench/forward.sh   # a quick look that it works
#   NO_SSH=1 bench/forward.sh                 # without the ssh -L case (needs no sshd)
#
# The payload lives in /dev/shm (removed at the end). Needs: socat, openssl, python3, bc,
# taskset (util-linux);
# openssh-server and -client for the ssh case.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
RR=${RR:-20000}
NO_SSH=${NO_SSH:-}
cargo build --release -q
W=$(mktemp -d /dev/shm/taojie-forward-bench.XXXXXX)
T=$W/taojie
cp target/release/taojie "$T"
PEER="python3 bench/forward_peer.py"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }
# CPU seconds (user + system, and reaped children's) of PID and its live descendants.
tree_cpu() {
    local hz total=0 p
    hz=$(getconf CLK_TCK)
    for p in $1 $(descendants "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        total=$(awk -v hz="$hz" -v t="$total" '{sub(/^.*\) /, ""); print t + ($12 + $13 + $14 + $15) / hz}' "/proc/$p/stat")
    done
    echo "$total"
}
descendants() { local c; for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
cpu_of() { local sum=0 p; for p in "$@"; do sum=$(echo "$sum + $(tree_cpu "$p")" | bc -l); done; echo "$sum"; }
announced() { # announced FILE: the address of a `SERVICE PROTO ADDR` line
    wait_for grep -q ' tcp ' "$1"; awk '/ tcp / {print $3; exit}' "$1"
}

head -c "${SIZE_MB}M" /dev/urandom > "$W/in"
GIB=$(echo "$SIZE_MB / 1024" | bc -l)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/key"; chmod 600 "$W/key"

# The ends.
$PEER sink > "$W/sink.port" & PIDS+=("$!")
$PEER echo > "$W/echo.port" & PIDS+=("$!"); ECHO_PID=$!
wait_for test -s "$W/sink.port"; wait_for test -s "$W/echo.port"
SINK=127.0.0.1:$(cat "$W/sink.port"); ECHO=127.0.0.1:$(cat "$W/echo.port")

# The relays, each to the sink and to the echo server. relay_NAME TARGET sets ADDR (where
# clients go) and RELAY (the PIDs whose CPU counts); every process is stopped at the end.
relay_direct() { ADDR=$1; RELAY=(); }
relay_socat() {
    local port; port=$(free_port)
    socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "TCP:$1" & PIDS+=("$!"); RELAY=("$!")
    wait_for listening "$port"; ADDR=127.0.0.1:$port
}
relay_forward() {
    local ann; ann=$(mktemp -p "$W")
    "$T" forward 127.0.0.1:0 "$1" > "$ann" 2>> "$W/forward.log" & PIDS+=("$!"); RELAY=("$!")
    ADDR=$(announced "$ann")
}
relay_tunnel() {
    local a b server
    a=$(mktemp -p "$W"); b=$(mktemp -p "$W")
    "$T" forward 127.0.0.1:0 "$1" --from-key "$W/key" > "$a" 2>> "$W/forward.log" & PIDS+=("$!"); RELAY=("$!")
    server=$(announced "$a")
    "$T" forward 127.0.0.1:0 "$server" --to-key "$W/key" > "$b" 2>> "$W/forward.log" & PIDS+=("$!"); RELAY+=("$!")
    ADDR=$(announced "$b")
}
relay_ssh() {
    local port; port=$(free_port)
    ssh -N -p "$SSHPORT" "${SSHOPTS[@]}" -c aes128-gcm@openssh.com -o Compression=no \
        -L "127.0.0.1:$port:$1" "$USER_AT" & PIDS+=("$!"); RELAY=("$!" "$SSHD")
    wait_for listening "$port"; ADDR=127.0.0.1:$port
}

CASES=(direct socat forward tunnel)
if [ -z "$NO_SSH" ]; then
    SSHPORT=$(free_port)
    ssh-keygen -q -t ed25519 -N '' -f "$W/host"; ssh-keygen -q -t ed25519 -N '' -f "$W/user"
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
AllowTcpForwarding yes
CONF
    mkdir -p /run/sshd
    /usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" & PIDS+=("$!"); SSHD=$!
    SSHOPTS=(-i "$W/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes)
    USER_AT="$(id -un)@127.0.0.1"
    wait_for ssh -p "$SSHPORT" "${SSHOPTS[@]}" "$USER_AT" true
    CASES+=(ssh)
fi

# 1. Throughput and CPU per GiB.
for c in "${CASES[@]}"; do : > "$W/t.$c"; : > "$W/cpu.$c"; done
for c in "${CASES[@]}"; do
    "relay_$c" "$SINK"; eval "ADDR_$c=\$ADDR; RELAY_$c=\"\${RELAY[*]:-}\""
done
: > "$W/load"
for i in $(seq "$ROUNDS"); do
    cut -d' ' -f1 /proc/loadavg >> "$W/load"
    for c in "${CASES[@]}"; do
        eval "addr=\$ADDR_$c; pids=(\$RELAY_$c)"
        before=$(cpu_of "${pids[@]}")
        read -r secs _ < <($PEER send "$addr" "$W/in")
        echo "$secs" >> "$W/t.$c"
        echo "($(cpu_of "${pids[@]}") - $before) / $GIB" | bc -l >> "$W/cpu.$c"
    done
done

# 2. Latency, 64-byte requests.
LAT=(direct socat forward)
for c in "${LAT[@]}"; do
    "relay_$c" "$ECHO"; eval "LADDR_$c=\$ADDR; LRELAY_$c=\"\${RELAY[*]:-}\""
    : > "$W/p50.$c"; : > "$W/p99.$c"; : > "$W/p50.pinned-$c"; : > "$W/p99.pinned-$c"
done
for i in $(seq "$ROUNDS"); do
    for c in "${LAT[@]}"; do
        eval "addr=\$LADDR_$c"
        read -r p50 p99 < <($PEER rr "$addr" "$RR" 64)
        echo "$p50" >> "$W/p50.$c"; echo "$p99" >> "$W/p99.$c"
    done
done
# The same with the client, the relay and the echo server on one CPU. On a 2-vCPU VM a
# request/response chain split across vCPUs pays a cross-CPU wake-up per hop (tens of us),
# and where the scheduler puts a long-lived relay is luck per connection (a Python select()
# relay shows the same two modes), while socat's child is forked beside the client. Pinned,
# the figures are each relay's own cost.
for c in "${LAT[@]}"; do
    eval "pids=(\$LRELAY_$c)"
    for p in "$ECHO_PID" "${pids[@]}"; do taskset -a -p -c 0 "$p" > /dev/null; done
done
for i in $(seq "$ROUNDS"); do
    for c in "${LAT[@]}"; do
        eval "addr=\$LADDR_$c"
        read -r p50 p99 < <(taskset -c 0 $PEER rr "$addr" "$RR" 64)
        echo "$p50" >> "$W/p50.pinned-$c"; echo "$p99" >> "$W/p99.pinned-$c"
    done
done

# 3. openssl s_server to taojie connect --tls and to openssl s_client. s_server serves the
# file with -WWW (its stdin relay stalls after 16 KiB on a large file): each client sends the
# request and keeps stdin open (a sleep's pipe), so neither ends its side first.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$W/tls.key" -out "$W/tls.pem" 2>/dev/null
: > "$W/t.connect-tls"; : > "$W/t.s_client"
for i in $(seq "$ROUNDS"); do
    for c in connect-tls s_client; do
        port=$(free_port)
        (cd "$W" && exec openssl s_server -accept "127.0.0.1:$port" -cert tls.pem -key tls.key \
            -quiet -naccept 1 -WWW > /dev/null 2>&1) & PIDS+=("$!")
        wait_for listening "$port"
        exec {HOLD}< <(printf 'GET /in HTTP/1.0\r\n\r\n'; exec sleep 3600); PIDS+=("$!")
        t0=$(now)
        if [ "$c" = connect-tls ]; then
            "$T" connect "127.0.0.1:$port" --tls --cacert "$W/tls.pem" <&"$HOLD" > "$W/tls.out"
        else
            openssl s_client -connect "127.0.0.1:$port" -CAfile "$W/tls.pem" -quiet <&"$HOLD" > "$W/tls.out" 2>/dev/null
        fi
        echo "$(now) - $t0" | bc -l >> "$W/t.$c"
        exec {HOLD}<&-
        got=$(stat -c %s "$W/tls.out"); rm -f "$W/tls.out"
        [ "$got" -ge $((SIZE_MB << 20)) ] || { echo "$c: got $got bytes" >&2; exit 1; }
    done
done

mbps() { echo "$SIZE_MB / $(median < "$W/t.$1")" | bc -l; }
printf '\nforward: %s MiB per transfer, median of %s rounds, load %s; %s\n' "$SIZE_MB" "$ROUNDS" \
    "$(tr '\n' ' ' < "$W/load")" "$(date -u +%FT%TZ)"
printf '%-34s %10s %14s %12s %12s\n' case MiB/s "relay CPU s/GiB" "vs socat" "CPU vs socat"
S_T=$(mbps socat); S_C=$(median < "$W/cpu.socat")
for c in "${CASES[@]}"; do
    t=$(mbps "$c"); cpu=$(median < "$W/cpu.$c")
    printf '%-34s %10.0f %14.3f %11.2fx %11.2fx\n' "$c" "$t" "$cpu" "$(echo "$t / $S_T" | bc -l)" \
        "$(echo "if ($S_C > 0) $cpu / $S_C else 0" | bc -l)"
done
F_T=$(mbps forward)
printf '%-34s %10s %11.2fx\n' "tunnel vs forward" "" "$(echo "$(mbps tunnel) / $F_T" | bc -l)"
[ -n "$NO_SSH" ] || printf '%-34s %10s %11.2fx\n' "tunnel vs ssh -L" "" "$(echo "$(mbps tunnel) / $(mbps ssh)" | bc -l)"
printf '\n64-byte request/response, %s round trips: p50 / p99 (us)\n' "$RR"
for c in "${LAT[@]}" $(printf 'pinned-%s ' "${LAT[@]}"); do
    printf '%-34s %8.1f %8.1f\n' "$c" "$(median < "$W/p50.$c")" "$(median < "$W/p99.$c")"
done
printf '\nTLS from openssl s_server, %s MiB\n' "$SIZE_MB"
for c in connect-tls s_client; do printf '%-34s %10.0f MiB/s\n' "$c" "$(mbps "$c")"; done
printf '%-34s %10s %11.2fx\n' "connect --tls vs s_client" "" "$(echo "$(mbps connect-tls) / $(mbps s_client)" | bc -l)"
