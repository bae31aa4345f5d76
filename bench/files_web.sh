#!/usr/bin/env bash
# bench/files_web.sh — the files page (`serve files --web`), each figure against its peer in
# the same run:
#   download: one file over the page's HTTP (curl -o /dev/null) against nginx's sendfile of
#             the same file (both from the page cache);
#   upload:   the same file through the page's chunked endpoint (bench/peers/web_upload.py:
#             8 MiB chunks, SHA-256 each, 3 in flight, as the page sends them) against
#             `taojie put`, both into roots on disk, verified, fsynced and renamed into place;
#   listing:  a folder of FILES empty files as the page's JSON (`?json`) and as WebDAV
#             (PROPFIND, Depth: 1), one request each.
# Medians of ROUNDS interleaved runs (the order swapped every round). Release build. Besides
# the wall times, the CPU time (user + system, from /proc/PID/stat) the serving process spent
# on each transfer: nginx's worker, the taojie server; on a shared machine that figure holds
# when wall times do not.
#
#   bench/files_web.sh                          # 1 GiB, 100,000 files, 3 rounds
#   SIZE_MB=256 FILES=10000 ROUNDS=1 bench/files_web.sh    # a quick check
#   TAOJIE_ARGS="--threads 1" bench/files_web.sh           # serve's runtime flags for both servers
#
# The file and the listed folder live in /dev/shm (removed at the end); upload roots on disk.
# Needs: nginx (Debian's), curl, python3, bc, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
FILES=${FILES:-100000}
ROUNDS=${ROUNDS:-3}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release -q
S=$(mktemp -d /dev/shm/taojie-web-bench.XXXXXX)
D=$(mktemp -d /var/tmp/taojie-web-bench.XXXXXX)
T=$D/taojie
cp target/release/taojie "$T"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
    rm -rf "$S" "$D"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # wait_for CMD...: up to 10 s
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2; exit 1
}
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.2f\n", ($14 + $15) / t}' "/proc/$1/stat"; }
timed() { # timed NAME PID CMD...: appends the seconds to $D/t.NAME, PID's CPU seconds to $D/c.NAME
    local name=$1 pid=$2 before; shift 2
    before=$(cpu "$pid")
    /usr/bin/time -f '%e' -o "$D/time" "$@"
    cat "$D/time" >> "$D/t.$name"
    echo "$(cpu "$pid") - $before" | bc -l >> "$D/c.$name"
}

# The file, in the page cache; nginx's workers may run as another user: let them read.
chmod 755 "$S"
mkdir -p "$S/www" "$S/list" "$D/tmp" "$D/put.root" "$D/web.root"
chmod 755 "$S/www"
head -c "${SIZE_MB}M" /dev/urandom > "$S/www/big.bin"
chmod 644 "$S/www/big.bin"
(cd "$S/list" && seq -f "file-%06g.txt" "$FILES" | xargs touch)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/key"; chmod 600 "$D/key"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$D/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $D/nginx.pid;
error_log $D/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $D/tmp/body;
    proxy_temp_path $D/tmp/proxy;
    fastcgi_temp_path $D/tmp/fastcgi;
    uwsgi_temp_path $D/tmp/uwsgi;
    scgi_temp_path $D/tmp/scgi;
    sendfile on;
    server { listen 127.0.0.1:$PORT; root $S/www; }
}
CONF
"$NGINX" -p "$D" -c "$D/nginx.conf" -e "$D/error.log" &
PIDS+=($!)
NGINX_URL="http://127.0.0.1:$PORT/big.bin"
wait_for curl -sf -o /dev/null -r 0-0 "$NGINX_URL"
NGINX_WORKER=$(pgrep -P "${PIDS[0]}" | head -1)

# Two taojie servers: one serving the file and the folder (its page), one taking uploads.
serve() { # serve ROOT NAME: sets ADDR (native), WEB (page), TOKEN
    "$T" serve ${TAOJIE_ARGS:-} files --listen 127.0.0.1:0 --root "$1" --key "$D/key" --web 127.0.0.1:0 \
        > "$D/$2.ann" 2> "$D/$2.log" &
    PIDS+=($!)
    wait_for grep -q '^files-web tcp' "$D/$2.ann"
    ADDR=$(awk '/^files tcp/ {print $3}' "$D/$2.ann")
    WEB=$(awk '/^files-web tcp/ {print $3}' "$D/$2.ann")
    TOKEN=$(sed -n 's/.*files-web login .*token=//p' "$D/$2.log")
}
serve "$S" read; RWEB=$WEB; RTOKEN=$TOKEN; RPID=${PIDS[1]}
serve "$D/web.root" write; WWEB=$WEB; WADDR=$ADDR; WTOKEN=$TOKEN; WPID=${PIDS[2]}
AUTH="Authorization: Bearer $RTOKEN"
cat "$S/www/big.bin" > /dev/null

for f in get.nginx get.taojie up.web up.put list.json list.dav; do : > "$D/t.$f"; : > "$D/c.$f"; done
for i in $(seq "$ROUNDS"); do
    nginx_get() { timed get.nginx "$NGINX_WORKER" curl -sSf -o /dev/null "$NGINX_URL"; }
    web_get() { timed get.taojie "$RPID" curl -sSf -H "$AUTH" -o /dev/null "http://$RWEB/www/big.bin"; }
    put_up() {
        rm -f "$D/put.root/big.bin"; sync
        timed up.put "$WPID" "$T" put "$WADDR" "$S/www/big.bin" --key "$D/key" --quiet
    }
    web_up() {
        rm -f "$D/web.root/big.bin"; sync
        timed up.web "$WPID" python3 bench/peers/web_upload.py "$WWEB" "$WTOKEN" "$S/www/big.bin" big.bin
    }
    if [ $((i % 2)) -eq 1 ]; then nginx_get; web_get; put_up; web_up; else web_get; nginx_get; web_up; put_up; fi
    cmp -s "$D/web.root/big.bin" "$S/www/big.bin" || { echo "the page's upload differs" >&2; exit 1; }
    timed list.json "$RPID" curl -sSf -H "$AUTH" -o "$D/list.json" "http://$RWEB/list/?json"
    timed list.dav "$RPID" curl -sSf -H "$AUTH" -X PROPFIND -H "Depth: 1" -o "$D/list.xml" "http://$RWEB/dav/list/"
done
n=$(grep -o '"name"' "$D/list.json" | wc -l)
[ "$n" -eq "$FILES" ] || { echo "the listing has $n names, not $FILES" >&2; exit 1; }

ng=$(median < "$D/t.get.nginx"); tg=$(median < "$D/t.get.taojie")
pu=$(median < "$D/t.up.put"); wu=$(median < "$D/t.up.web")
lj=$(median < "$D/t.list.json"); ld=$(median < "$D/t.list.dav")
cng=$(median < "$D/c.get.nginx"); ctg=$(median < "$D/c.get.taojie")
cpu_=$(median < "$D/c.up.put"); cwu=$(median < "$D/c.up.web")
mbps() { echo "scale=0; $SIZE_MB * 1048576 / $1 / 1000000" | bc -l; }
echo "files page: $SIZE_MB MiB file, $FILES-file folder, $ROUNDS rounds (medians), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "download  nginx sendfile ${ng}s ($(mbps "$ng") MB/s)   taojie page ${tg}s ($(mbps "$tg") MB/s)   ratio $(echo "scale=3; $ng / $tg" | bc -l)x (target >= 0.9)"
echo "upload    taojie put ${pu}s ($(mbps "$pu") MB/s)   page chunks ${wu}s ($(mbps "$wu") MB/s)   ratio $(echo "scale=3; $pu / $wu" | bc -l)x (target >= 0.8)"
per_gib() { echo "scale=2; $1 * 1024 / $SIZE_MB" | bc -l; }
echo "server CPU per GiB: download nginx $(per_gib "$cng") s, taojie $(per_gib "$ctg") s; upload put $(per_gib "$cpu_") s, page $(per_gib "$cwu") s"
echo "listing   $FILES files: page JSON ${lj}s, WebDAV PROPFIND ${ld}s (target < 1 s)"
echo "server peak RSS (VmHWM): reading $(awk '/VmHWM/ {print $2}' /proc/"${PIDS[1]}"/status) KiB, writing $(awk '/VmHWM/ {print $2}' /proc/"${PIDS[2]}"/status) KiB"
