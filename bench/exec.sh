#!/usr/bin/env bash
# Benchmark: taojie exec against OpenSSH on loopback, side by side in one run.
#
#   1. latency of running `true`          (hyperfine, no shell in between)
#   2. throughput of `cat` on a 1 GiB file to /dev/null
#   3. the exec server's peak RSS (VmHWM) while streaming 100 MB and 1 GiB
#
# Needs: a release build (built here), sshd and ssh (Debian: openssh-server openssh-client),
# hyperfine, python3. sshd runs from a throwaway config, host key and user key in a temp dir,
# on 127.0.0.1 only, and is stopped (by its PID) at the end. All traffic stays on loopback.
#
# ssh runs twice: with its defaults, and tuned for speed (curve25519 key exchange instead of
# the post-quantum hybrid, AES-128-GCM instead of ChaCha20-Poly1305), so the comparison is not
# against a strawman.
#
# Usage: bench/exec.sh [RUNS]        RUNS: latency runs per tool (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-100}
TP_RUNS=5
for tool in hyperfine ssh ssh-keygen /usr/sbin/sshd python3; do
    command -v "$tool" >/dev/null || { echo "bench/exec.sh: $tool is missing" >&2; exit 1; }
done

cargo build --release --quiet
TAOJIE=$PWD/target/release/taojie
T=$(mktemp -d /tmp/taojie-bench-exec.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- sshd with a throwaway host key and user key -------------------------------------------
ssh-keygen -q -t ed25519 -N '' -f "$T/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$T/user_key"
cp "$T/user_key.pub" "$T/authorized_keys"
SSH_PORT=$(free_port)
cat > "$T/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $T/host_key
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel ERROR
EOF
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
PIDS+=($!)
SSH=(ssh -F /dev/null -n -i "$T/user_key" -p "$SSH_PORT" -o BatchMode=yes
     -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR 127.0.0.1)
SSH_FAST=("${SSH[@]:0:${#SSH[@]}-1}" -o KexAlgorithms=curve25519-sha256 -c aes128-gcm@openssh.com 127.0.0.1)
for _ in $(seq 100); do "${SSH[@]}" true 2>/dev/null && break; sleep 0.1; done
"${SSH[@]}" true || { echo "sshd did not come up:" >&2; cat "$T/sshd.log" >&2; exit 1; }

# --- taojie serve exec ------------------------------------------------------------------------
"$TAOJIE" keygen "$T/exec.key" 2>/dev/null
start_exec() {
    : > "$T/exec.out"
    "$TAOJIE" serve exec --listen 127.0.0.1:0 --key "$T/exec.key" >"$T/exec.out" 2>/dev/null &
    EXEC_PID=$!
    PIDS+=("$EXEC_PID")
    for _ in $(seq 100); do grep -q '^exec tcp ' "$T/exec.out" && break; sleep 0.05; done
    EXEC_ADDR=$(awk '$1 == "exec" && $2 == "tcp" { print $3 }' "$T/exec.out")
    [ -n "$EXEC_ADDR" ] || { echo "taojie serve exec did not announce" >&2; exit 1; }
}
stop_exec() { kill "$EXEC_PID"; wait "$EXEC_PID" 2>/dev/null || true; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

start_exec
EXEC=("$TAOJIE" exec "$EXEC_ADDR" --key "$T/exec.key" -n --)

echo "== environment"
echo "$(uname -srm); $(nproc) CPUs; $(ssh -V 2>&1); hyperfine $(hyperfine --version | cut -d' ' -f2)"
echo "taojie $(git rev-parse --short HEAD) (release build)"

echo
echo "== 1. latency of running \`true\` ($RUNS runs each)"
hyperfine -N --warmup 10 --runs "$RUNS" --style basic --export-json "$T/lat.json" \
    -n "taojie exec" "${EXEC[*]} true" \
    -n "ssh" "${SSH[*]} true" \
    -n "ssh (tuned)" "${SSH_FAST[*]} true"

echo
echo "== 2. throughput: cat of a 1 GiB file to /dev/null ($TP_RUNS runs each)"
head -c $((1 << 30)) /dev/urandom > "$T/big"
head -c 100000000 "$T/big" > "$T/100m"
hyperfine -N --warmup 1 --runs "$TP_RUNS" --style basic --export-json "$T/tp.json" \
    -n "taojie exec" "${EXEC[*]} cat $T/big" \
    -n "ssh" "${SSH[*]} cat $T/big" \
    -n "ssh (tuned)" "${SSH_FAST[*]} cat $T/big"

echo
echo "== 3. exec server's peak RSS (VmHWM), a fresh server per size"
stop_exec
start_exec
idle=$(hwm_kib "$EXEC_PID")
for f in 100m big; do
    stop_exec
    start_exec
    "$TAOJIE" exec "$EXEC_ADDR" --key "$T/exec.key" -n -- cat "$T/$f" > /dev/null
    echo "$f: $(hwm_kib "$EXEC_PID") KiB" >> "$T/rss"
done
echo "after start: $idle KiB"
cat "$T/rss"

echo
echo "== summary"
python3 - "$T/lat.json" "$T/tp.json" <<'EOF'
import json, statistics, sys
lat = {r['command']: r for r in json.load(open(sys.argv[1]))['results']}
tp = {r['command']: r for r in json.load(open(sys.argv[2]))['results']}
for name, r in lat.items():
    print(f"latency    {name:12} mean {r['mean']*1e3:7.2f} ms  median {r['median']*1e3:7.2f} ms  "
          f"min {r['min']*1e3:6.2f} ms")
for ssh in ('ssh', 'ssh (tuned)'):
    print(f"latency ratio taojie/{ssh} (mean): {lat['taojie exec']['mean'] / lat[ssh]['mean']:.3f}"
          "  (target <= 0.5)")
for name, r in tp.items():
    print(f"throughput {name:12} {1024 / r['median']:8.0f} MiB/s (median of {len(r['times'])}, "
          f"{r['median']:.2f} s per GiB)")
for ssh in ('ssh', 'ssh (tuned)'):
    print(f"throughput ratio taojie/{ssh}: {tp[ssh]['median'] / tp['taojie exec']['median']:.2f}"
          "  (target >= 1)")
EOF
