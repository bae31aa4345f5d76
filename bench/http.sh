#!/usr/bin/env bash
# bench/http.sh — one large file from nginx on loopback: `taojie http -o` (release build)
# against `curl -o`, in the same run, alternating which goes first each round. The file is
# read once first so nginx serves it from the page cache; both clients write into one disk
# directory (/var/tmp, not tmpfs), and the output is removed, with a `sync`, before each run.
#
# taojie syncs the file before renaming it into place; curl does not. So a third column,
# `curl -o` then `sync FILE` (coreutils: fsync of that file), timed as one, gives curl the
# same durability and shows what the sync costs. Reports median wall seconds, MB/s, median CPU
# seconds (user + system), and the ratios of speeds.
#
#   bench/http.sh                  # 1 GiB, 5 rounds
#   SIZE_MB=256 ROUNDS=7 bench/http.sh
#
# Needs: nginx (Debian's), curl, /usr/bin/time, bc, python3 (to find a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-5}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release -q
T=$PWD/target/release/taojie
W=$(mktemp -d /var/tmp/taojie-http-bench.XXXXXX)
NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$W"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 5 s
    for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}

# nginx's workers may run as another user (nobody, when started by root): let them read.
mkdir -p "$W/www" "$W/tmp"
chmod 755 "$W" "$W/www"
head -c "${SIZE_MB}M" /dev/urandom > "$W/www/big.bin"
chmod 644 "$W/www/big.bin"
cat "$W/www/big.bin" > /dev/null
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$W/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $W/nginx.pid;
error_log $W/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $W/tmp/body;
    proxy_temp_path $W/tmp/proxy;
    fastcgi_temp_path $W/tmp/fastcgi;
    uwsgi_temp_path $W/tmp/uwsgi;
    scgi_temp_path $W/tmp/scgi;
    sendfile on;
    server {
        listen 127.0.0.1:$PORT;
        root $W/www;
    }
}
CONF
"$NGINX" -p "$W" -c "$W/nginx.conf" -e "$W/error.log" &
NGINX_PID=$!
URL="http://127.0.0.1:$PORT/big.bin"
wait_for curl -sf -o /dev/null -r 0-0 "$URL"

# run NAME CMD...: one timed run into $W/out, checked, then removed.
run() {
    local name=$1; shift
    rm -f "$W/out"; sync
    /usr/bin/time -f '%e %U %S' -o "$W/time" "$@"
    read -r secs user sys < "$W/time"
    echo "$secs" >> "$W/t.$name"
    echo "$user + $sys" | bc -l >> "$W/cpu.$name"
    cmp -s "$W/out" "$W/www/big.bin" || { echo "$name: the file differs" >&2; exit 1; }
}
taojie_run() { run taojie "$T" http -o "$W/out" "$URL"; }
curl_run() { run curl curl -sSf -o "$W/out" "$URL"; }
curl_sync_run() { run curl_sync sh -c 'curl -sSf -o "$1" "$2" && sync "$1"' sh "$W/out" "$URL"; }

: > "$W/t.taojie"; : > "$W/t.curl"; : > "$W/t.curl_sync"
for i in $(seq "$ROUNDS"); do
    if [ $((i % 2)) -eq 1 ]; then
        taojie_run; curl_run; curl_sync_run
    else
        curl_sync_run; curl_run; taojie_run
    fi
done

tj=$(median < "$W/t.taojie"); cu=$(median < "$W/t.curl"); cs=$(median < "$W/t.curl_sync")
mbps() { echo "scale=0; $SIZE_MB * 1048576 / $1 / 1000000" | bc -l; }
echo "file: $SIZE_MB MiB from nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1 (page cache), written to $(df --output=source "$W" | tail -1) ($(stat -f -c %T "$W")); $ROUNDS rounds, alternating"
printf '%-34s %8s %8s %8s  %s\n' client seconds MB/s "CPU s" "runs (s)"
printf '%-34s %8.2f %8s %8.2f  %s\n' "taojie http -o (fsync, rename)" "$tj" "$(mbps "$tj")" "$(median < "$W/cpu.taojie")" "$(tr '\n' ' ' < "$W/t.taojie")"
printf '%-34s %8.2f %8s %8.2f  %s\n' "curl -o (no fsync)" "$cu" "$(mbps "$cu")" "$(median < "$W/cpu.curl")" "$(tr '\n' ' ' < "$W/t.curl")"
printf '%-34s %8.2f %8s %8.2f  %s\n' "curl -o; sync FILE" "$cs" "$(mbps "$cs")" "$(median < "$W/cpu.curl_sync")" "$(tr '\n' ' ' < "$W/t.curl_sync")"
echo "taojie speed / curl speed: $(echo "scale=2; $cu / $tj" | bc -l)x; against curl with sync: $(echo "scale=2; $cs / $tj" | bc -l)x"
