#!/usr/bin/env bash
# bench/secure.sh — what the encrypted channel (issue 11) costs, in one run on loopback:
#
#   1. throughput, 1 GiB: `taojie exec -- cat FILE > /dev/null` and `taojie put FILE`, encrypted
#      (this tree) against plaintext taojie (commit PLAIN_REV, the last before src/secure) and
#      against ssh / scp with their fastest settings (curve25519 key exchange, AES-128-GCM);
#      ROUNDS rounds, the tools alternating (odd rounds in one order, even rounds reversed),
#      medians; the client's, the taojie server's and the whole machine's CPU time per run;
#   2. latency of `taojie exec -- true`, encrypted against plaintext (hyperfine, LAT_RUNS runs
#      per pass, PASSES passes with the order swapped each time, all runs pooled): what the
#      Noise handshake adds, and the client's and server's CPU per connection;
#   3. server peak memory: VmHWM of a fresh exec and a fresh files server, each kind, after
#      1 GiB streamed through it, MEM_ROUNDS times, with the resident memory split into
#      anonymous (heap, stacks) and file-backed (mostly the binary's own code).
#
# It builds both binaries (the plaintext one in a temporary git worktree with its own target
# dir, target/bench-plain-PLAIN_REV, kept so a second run only recompiles taojie itself) and
# copies them aside, so a build running elsewhere cannot swap them mid-run; each server's
# first bytes (the protocol-2 banner, or protocol 1's random challenge) show it is the kind
# its name says. Servers listen on 127.0.0.1 port 0 and are found by the address line they
# print; sshd (Debian's) runs on a free port with a throwaway host key, user key and config,
# as in bench/exec.sh. Every wait is bounded; at the end every process it started is stopped
# by its PID, the worktree removed and the temp dirs (with the 1 GiB file) deleted.
#
#   apt-get install -y openssh-server openssh-client hyperfine   # not needed by tests or CI
#   bench/secure.sh           # the figures in BENCHMARKS.md: about 2 minutes on a quiet
#                             # machine, plus the builds (3 minutes the first time)
#   PUT_ROOT=/dev/shm bench/secure.sh                            # put and scp write to tmpfs
#   SRC_ROOT=/var/tmp bench/secure.sh                     # the 1 GiB source file on the disk
#   ROUNDS=3 LAT_RUNS=100 PASSES=2 MEM_ROUNDS=1 SIZE_MB=256 bench/secure.sh     # a quick look
#
# Knobs: ROUNDS (9; a median of nine rides out the run or two in which the VM is slow),
# SIZE_MB (1024), LAT_RUNS (200), PASSES (4), MEM_ROUNDS (3), PLAIN_REV (4392176), QUIET_PCT
# and QUIET_WAIT (before each round and pass, wait up to QUIET_WAIT seconds, 60, for half a
# second in which the machine is under QUIET_PCT % busy, 25; the busy % is printed either
# way), PUT_ROOT (where the files servers and scp write: the temp dir under /var/tmp, on
# disk, unless given), SRC_ROOT (where the 1 GiB file every tool reads lives: /dev/shm,
# tmpfs, when it has room, else the temp dir. On the benchmark VM a DAMON "pageout" scheme
# (/sys/kernel/mm/damon) evicts page-cache pages it sees as idle, so a source file on the
# disk is partly re-read from it mid-run, cat's profile showing workingset_refault; in tmpfs,
# with no swap, it stays in memory for every tool).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PLAIN_REV=${PLAIN_REV:-4392176}
ROUNDS=${ROUNDS:-9}
SIZE_MB=${SIZE_MB:-1024}
LAT_RUNS=${LAT_RUNS:-200}
PASSES=${PASSES:-4}
MEM_ROUNDS=${MEM_ROUNDS:-3}
QUIET_PCT=${QUIET_PCT:-25}
QUIET_WAIT=${QUIET_WAIT:-60}
PUT_ROOT=${PUT_ROOT:-}
SRC_ROOT=${SRC_ROOT:-}
if [ -z "$SRC_ROOT" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
    (( $(df --output=avail -k /dev/shm | tail -1) > (SIZE_MB + 256) * 1024 )); then
    SRC_ROOT=/dev/shm
fi
for tool in hyperfine ssh scp ssh-keygen /usr/sbin/sshd /usr/lib/openssh/sftp-server python3 \
    /usr/bin/time git cmp timeout; do
    command -v "$tool" >/dev/null || { echo "bench/secure.sh: $tool is missing" >&2; exit 1; }
done

# The put target is on the disk (/var/tmp), not tmpfs: taojie put fsyncs what it receives.
W=$(mktemp -d /var/tmp/taojie-bench-secure.XXXXXX)
R=$W
PIDS=()
PLAIN_TREE=
S=
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$PLAIN_TREE" ]; then git -C "$REPO" worktree remove --force "$PLAIN_TREE" || true; fi
    [ "$R" = "$W" ] || rm -rf "$R"
    [ -z "$S" ] || rm -rf "$S"
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -z "$PUT_ROOT" ] || R=$(mktemp -d "$PUT_ROOT/taojie-bench-secure.XXXXXX")
[ -z "$SRC_ROOT" ] || S=$(mktemp -d "$SRC_ROOT/taojie-bench-secure-src.XXXXXX")
BIG=${S:-$W}/big

say() { printf '%s\n' "$*"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the two binaries ------------------------------------------------------------------------
say "== building: encrypted (this tree, $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes')), plaintext ($PLAIN_REV)"
cargo build --release --quiet --bin taojie
mkdir -p "$W/bin"
cp target/release/taojie "$W/bin/enc"
PLAIN_TREE=$W/plain-src
git worktree add --quiet --detach "$PLAIN_TREE" "$PLAIN_REV"
if [ -n "$(git -C "$PLAIN_TREE" ls-tree HEAD src/secure)" ]; then
    echo "bench/secure.sh: $PLAIN_REV already has src/secure; it is not the plaintext version" >&2
    exit 1
fi
CARGO_TARGET_DIR=$REPO/target/bench-plain-$PLAIN_REV \
    cargo build --release --quiet --bin taojie --manifest-path "$PLAIN_TREE/Cargo.toml"
cp "$REPO/target/bench-plain-$PLAIN_REV/release/taojie" "$W/bin/plain"
ENC=$W/bin/enc
PLAIN=$W/bin/plain

# --- the file, the key, the servers ------------------------------------------------------------
head -c "${SIZE_MB}M" /dev/urandom > "$BIG"
cat "$BIG" > /dev/null                     # every tool starts from memory
"$ENC" keygen "$W/key" 2>/dev/null

# start NAME BIN SERVICE ARGS...: starts `BIN serve SERVICE --listen 127.0.0.1:0 ARGS...` and
# sets ${NAME}_PID and ${NAME}_ADDR from its "SERVICE tcp ADDR" line (bounded wait).
start() {
    local name=$1 bin=$2 service=$3 pid addr=
    shift 3
    "$bin" serve "$service" --listen 127.0.0.1:0 --key "$W/key" "$@" \
        >"$W/$name.out" 2>"$W/$name.log" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        addr=$(awk -v s="$service" '$1 == s && $2 == "tcp" { print $3 }' "$W/$name.out")
        [ -n "$addr" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$addr" ] || { echo "$name did not announce its address:" >&2; cat "$W/$name.log" >&2; exit 1; }
    printf -v "${name}_PID" %s "$pid"
    printf -v "${name}_ADDR" %s "$addr"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# CPU ticks (user + system) of a process itself, its children not included.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
# Resident now: anonymous (heap, stacks) and file-backed (mostly the binary's own code) KiB.
rss_split() { awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { print a, f }' "/proc/$1/status"; }

mkdir -p "$R/root-enc" "$R/root-plain"
start exec_enc "$ENC" exec
start exec_plain "$PLAIN" exec
start files_enc "$ENC" files --root "$R/root-enc"
start files_plain "$PLAIN" files --root "$R/root-plain"

# The encrypted servers open with the protocol-2 banner, the plaintext ones with a random
# 32-byte challenge: check that each binary is what its name says.
banner() {
    python3 - "$1" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
data = b""
while len(data) < 32:
    chunk = s.recv(32 - len(data))
    if not chunk:
        break
    data += chunk
print("encrypted" if data.startswith(b"taojie/2 ") else "plaintext")
EOF
}
for pair in "exec_enc encrypted" "files_enc encrypted" "exec_plain plaintext" "files_plain plaintext"; do
    set -- $pair
    addr_var=${1}_ADDR
    got=$(banner "${!addr_var}")
    [ "$got" = "$2" ] || { echo "bench/secure.sh: $1 speaks $got, expected $2" >&2; exit 1; }
done

# --- sshd with a throwaway host key and user key (as bench/exec.sh) -------------------------
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/user_key"
cp "$W/user_key.pub" "$W/authorized_keys"
SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $W/host_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$W/sshd_config" 2>"$W/sshd.log" &
PIDS+=($!)
# ssh's fastest configuration here: no post-quantum hybrid key exchange, AES-128-GCM (AES-NI).
SSH_OPTS=(-F /dev/null -i "$W/user_key" -o BatchMode=yes -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o KexAlgorithms=curve25519-sha256 -c aes128-gcm@openssh.com)
SSH=(ssh "${SSH_OPTS[@]}" -n -p "$SSH_PORT" 127.0.0.1)
SCP=(scp "${SSH_OPTS[@]}" -q -P "$SSH_PORT")
for _ in $(seq 100); do "${SSH[@]}" true 2>/dev/null && break; sleep 0.1; done
"${SSH[@]}" true || { echo "sshd did not come up:" >&2; cat "$W/sshd.log" >&2; exit 1; }

# Waits (up to QUIET_WAIT s) for half a second in which the machine is under QUIET_PCT % busy;
# prints the busy % of the last sample.
quiet() {
    python3 - "$QUIET_PCT" "$QUIET_WAIT" <<'EOF'
import sys, time
def sample():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f), f[3] + f[4]
end = time.time() + float(sys.argv[2])
while True:
    t0, i0 = sample(); time.sleep(0.5); t1, i1 = sample()
    busy = 100 * (1 - (i1 - i0) / max(1, t1 - t0))
    if busy < float(sys.argv[1]) or time.time() > end:
        print(f"{busy:.0f}")
        break
EOF
}

say
say "== environment"
say "$(uname -srm); $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
say "$(ssh -V 2>&1); $(hyperfine --version)"
fstype() { df --output=fstype "$1" | tail -1 | tr -d ' '; }
say "load average at start: $(load); the source file is on $(fstype "$BIG") ($BIG); put and scp write to $(fstype "$R") ($R)"

# --- 1. throughput -------------------------------------------------------------------------------
# CPU ticks the whole machine spent (user, nice, system, irq, softirq; not idle, iowait, steal).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# timed TOOL WHAT SERVER_PID CMD...: runs CMD (stdout to /dev/null), appends
# "TOOL WHAT wall_s client_cpu_s server_ticks machine_ticks" to $W/tp.
timed() {
    local tool=$1 what=$2 spid=$3 t0 t1 s0=0 s1=0 m0 m1 cpu
    shift 3
    [ "$spid" = - ] || s0=$(ticks "$spid")
    m0=$(machine_ticks)
    t0=$EPOCHREALTIME
    timeout 600 /usr/bin/time -f '%U %S' -o "$W/time" "$@" > /dev/null
    t1=$EPOCHREALTIME
    m1=$(machine_ticks)
    [ "$spid" = - ] || s1=$(ticks "$spid")
    cpu=$(awk '{ print $1 + $2 }' "$W/time")
    echo "$tool $what $(python3 -c "print(f'{$t1 - $t0:.3f}')") $cpu $(( s1 - s0 )) $(( m1 - m0 ))" >> "$W/tp"
}
TICK=$(getconf CLK_TCK)
: > "$W/tp"
EXEC_TOOLS=(enc plain ssh)
PUT_TOOLS=(enc plain scp)
run_exec() {
    case $1 in
        enc) timed enc exec "$exec_enc_PID" "$ENC" exec "$exec_enc_ADDR" --key "$W/key" -n -- cat "$BIG" ;;
        plain) timed plain exec "$exec_plain_PID" "$PLAIN" exec "$exec_plain_ADDR" --key "$W/key" -n -- cat "$BIG" ;;
        ssh) timed ssh exec - "${SSH[@]}" cat "$BIG" ;;
    esac
}
run_put() {
    local out
    sync
    case $1 in
        enc) timed enc put "$files_enc_PID" "$ENC" put "$files_enc_ADDR" "$BIG" --to "r$2" --key "$W/key" -q
             out=$R/root-enc/r$2/big ;;
        plain) timed plain put "$files_plain_PID" "$PLAIN" put "$files_plain_ADDR" "$BIG" --to "r$2" --key "$W/key" -q
               out=$R/root-plain/r$2/big ;;
        scp) timed scp put - "${SCP[@]}" "$BIG" "$(id -un)@127.0.0.1:$R/scp.out"
             out=$R/scp.out ;;
    esac
    cmp -s "$BIG" "$out" || { echo "bench/secure.sh: $1 put: the copy differs" >&2; exit 1; }
    rm -rf "$R/root-enc/r$2" "$R/root-plain/r$2" "$R/scp.out"
}

say
say "== 1. throughput: $SIZE_MB MiB, $ROUNDS rounds, alternating (seconds per run)"
for r in $(seq "$ROUNDS"); do
    order=("${EXEC_TOOLS[@]}"); porder=("${PUT_TOOLS[@]}")
    if (( r % 2 == 0 )); then order=(ssh plain enc); porder=(scp plain enc); fi
    busy=$(quiet)
    for t in "${order[@]}"; do run_exec "$t"; done
    for t in "${porder[@]}"; do run_put "$t" "$r"; done
    say "round $r (machine $busy % busy before it; load $(load)): $(tail -n 6 "$W/tp" | awk '{ printf "%s %s %.2f  ", $1, $2, $3 }')"
done
HWM_AFTER_TP="exec: encrypted $(hwm_kib "$exec_enc_PID") KiB, plaintext $(hwm_kib "$exec_plain_PID") KiB; files: encrypted $(hwm_kib "$files_enc_PID") KiB, plaintext $(hwm_kib "$files_plain_PID") KiB"

# --- 2. latency --------------------------------------------------------------------------------
say
say "== 2. latency of \`taojie exec -- true\`: $PASSES passes of $LAT_RUNS runs each, order swapped every pass"
ENC_TRUE="$ENC exec $exec_enc_ADDR --key $W/key -n -- true"
PLAIN_TRUE="$PLAIN exec $exec_plain_ADDR --key $W/key -n -- true"
: > "$W/lat_ticks"
for p in $(seq "$PASSES"); do
    busy=$(quiet)
    se0=$(ticks "$exec_enc_PID"); sp0=$(ticks "$exec_plain_PID")
    if (( p % 2 == 1 )); then
        cmds=(-n encrypted "$ENC_TRUE" -n plaintext "$PLAIN_TRUE")
    else
        cmds=(-n plaintext "$PLAIN_TRUE" -n encrypted "$ENC_TRUE")
    fi
    hyperfine -N --warmup 20 --runs "$LAT_RUNS" --style none --export-json "$W/lat$p.json" "${cmds[@]}" >/dev/null
    echo "$(( $(ticks "$exec_enc_PID") - se0 )) $(( $(ticks "$exec_plain_PID") - sp0 ))" >> "$W/lat_ticks"
    say "pass $p (machine $busy % busy before it; load $(load)) done"
done

# --- 3. server peak memory --------------------------------------------------------------------
say
say "== 3. server peak memory (VmHWM) of a fresh server after $SIZE_MB MiB, $MEM_ROUNDS round(s)"
: > "$W/mem"
for r in $(seq "$MEM_ROUNDS"); do
    for v in enc plain; do
        bin=$ENC; [ "$v" = plain ] && bin=$PLAIN
        start m_exec "$bin" exec
        idle=$(hwm_kib "$m_exec_PID")
        timeout 600 "$bin" exec "$m_exec_ADDR" --key "$W/key" -n -- cat "$BIG" > /dev/null
        echo "$v exec $idle $(hwm_kib "$m_exec_PID") $(rss_split "$m_exec_PID")" >> "$W/mem"
        stop "$m_exec_PID"
        start m_files "$bin" files --root "$R/root-$v"
        idle=$(hwm_kib "$m_files_PID")
        sync
        timeout 600 "$bin" put "$m_files_ADDR" "$BIG" --to m --key "$W/key" -q
        echo "$v files $idle $(hwm_kib "$m_files_PID") $(rss_split "$m_files_PID")" >> "$W/mem"
        stop "$m_files_PID"
        rm -rf "$R/root-$v/m"
    done
done
say "load average at the end: $(load)"

# --- summary -----------------------------------------------------------------------------------
say
say "== summary (encrypted: $(git rev-parse --short HEAD); plaintext: $PLAIN_REV)"
python3 - "$W" "$SIZE_MB" "$TICK" "$PASSES" "$LAT_RUNS" <<'EOF'
import json, statistics as st, sys
w, size_mb, tick, passes, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = [l.split() for l in open(f"{w}/tp")]
name = {"enc": "taojie encrypted", "plain": "taojie plaintext", "ssh": "ssh (aes128-gcm)", "scp": "scp (aes128-gcm)"}
med = {}
print(f"1. throughput, {size_mb} MiB; median of {len(rows) // 6} runs (all runs, s)")
print("| what | tool | median s | MiB/s | client CPU s | server CPU s | machine CPU s | all runs (s) |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for what in ("exec", "put"):
    for tool in ("enc", "plain", "ssh", "scp"):
        rs = [r for r in rows if r[0] == tool and r[1] == what]
        if not rs:
            continue
        wall = [float(r[2]) for r in rs]
        m = st.median(wall)
        med[(tool, what)] = m
        cli = st.median(float(r[3]) for r in rs)
        srv = "—" if tool in ("ssh", "scp") else f"{st.median(int(r[4]) for r in rs) / tick:.2f}"
        mach = st.median(int(r[5]) for r in rs) / tick
        label = "`exec -- cat` → /dev/null" if what == "exec" else "`put` (fsynced) / scp"
        print(f"| {label} | {name[tool]} | {m:.2f} | {size_mb / m:.0f} | {cli:.2f} | {srv} | {mach:.2f} | {' '.join(f'{x:.2f}' for x in wall)} |")
for what, other in (("exec", "ssh"), ("put", "scp")):
    e, p, o = med[("enc", what)], med[("plain", what)], med[(other, what)]
    print(f"{what}: encrypted / plaintext speed {p / e:.2f}x (target >= 0.8); "
          f"encrypted / {other} speed {o / e:.2f}x (target >= 2)")

print()
times = {"encrypted": [], "plaintext": []}
cpu = {"encrypted": [], "plaintext": []}
per_pass = []
for p in range(1, passes + 1):
    res = {r["command"]: r for r in json.load(open(f"{w}/lat{p}.json"))["results"]}
    line = []
    for k in ("encrypted", "plaintext"):
        times[k] += res[k]["times"]
        cpu[k].append(res[k]["user"] + res[k]["system"])
        line.append(f"{k} mean {res[k]['mean'] * 1e3:.2f} median {res[k]['median'] * 1e3:.2f}")
    per_pass.append("; ".join(line))
ticks = [tuple(map(int, l.split())) for l in open(f"{w}/lat_ticks")]
srv = {"encrypted": sum(t[0] for t in ticks), "plaintext": sum(t[1] for t in ticks)}
n = passes * (runs + 20)
print(f"2. `taojie exec -- true`, {passes} x {runs} runs pooled (ms)")
print("| | mean | median | min | client CPU (mean) | server CPU per run |")
print("|---|---:|---:|---:|---:|---:|")
for k in ("encrypted", "plaintext"):
    t = times[k]
    print(f"| {k} | {st.mean(t) * 1e3:.2f} | {st.median(t) * 1e3:.2f} | {min(t) * 1e3:.2f} | "
          f"{st.mean(cpu[k]) * 1e3:.2f} | {srv[k] / tick / n * 1e3:.2f} |")
dm = (st.mean(times["encrypted"]) - st.mean(times["plaintext"])) * 1e3
dmed = (st.median(times["encrypted"]) - st.median(times["plaintext"])) * 1e3
print(f"handshake adds: mean {dm:+.2f} ms, median {dmed:+.2f} ms (target <= 1 ms)")
for i, l in enumerate(per_pass, 1):
    print(f"  pass {i}: {l}")

print()
mem = [l.split() for l in open(f"{w}/mem")]
print(f"3. server VmHWM, a fresh server each time (KiB after start -> after {size_mb} MiB; "
      "then resident anonymous + file-backed KiB)")
for svc in ("exec", "files"):
    got = {}
    for v in ("enc", "plain"):
        rs = [r for r in mem if r[0] == v and r[1] == svc]
        got[v] = st.median(int(r[3]) for r in rs)
        runs = ", ".join(f"{r[2]} -> {r[3]} ({r[4]} + {r[5]})" for r in rs)
        print(f"{svc} {'encrypted' if v == 'enc' else 'plaintext'}: {runs}")
    d = (got["enc"] - got["plain"]) / 1024
    print(f"{svc}: median peak encrypted {got['enc'] / 1024:.1f} MiB, plaintext {got['plain'] / 1024:.1f} MiB, "
          f"difference {d:+.2f} MiB (target within 2 MiB)")
EOF
say "servers of phases 1-2, VmHWM after every throughput round: $HWM_AFTER_TP"
