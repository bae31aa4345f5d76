"""Uploads one file through the files page's chunked endpoint, as the page does: asks where
to continue (POST ?upload), then sends PATCH ?offset=K chunks of CHUNK bytes, each with the
SHA-256 of its bytes in Content-Digest, WINDOW of them in flight at once (each on its own
kept-alive connection, as a browser's requests go). A chunk cut off or damaged is sent again
at once; any other refusal lets the chunks in flight end, then asks again where to continue.

Usage: web_upload.py HOST:PORT TOKEN FILE NAME [CHUNK]
Environment: WINDOW=N chunks in flight (default 3, as the page; 1 sends them one after
another); TIMING=1 prints a line on stderr: the seconds spent reading and hashing chunks and
waiting for the server's answers (summed over the connections), and the wall time.
Exits 0 once the server says the file is whole and verified."""
import base64
import concurrent.futures as cf
import hashlib
import http.client
import json
import os
import sys
import threading
import time

local = threading.local()
spent = {"read+hash": 0.0, "send": 0.0, "answer": 0.0}
spent_lock = threading.Lock()


def account(what, t0):
    with spent_lock:
        spent[what] += time.monotonic() - t0


def conn(host, port):
    c = getattr(local, "conn", None)
    if c is None:
        c = local.conn = http.client.HTTPConnection(host, port, timeout=60)
    return c


def send_chunk(host, port, fd, auth, name, q, offset, n):
    """(status, reply) of the chunk of n bytes at offset; (0, error) if the connection broke."""
    t0 = time.monotonic()
    data = os.pread(fd, n, offset)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    account("read+hash", t0)
    headers = dict(auth)
    headers["Content-Digest"] = f"sha-256=:{digest}:"
    c = conn(host, port)
    try:
        t0 = time.monotonic()
        c.request("PATCH", f"/{name}?offset={offset}&{q}", body=data, headers=headers)
        account("send", t0)
        t0 = time.monotonic()
        r = c.getresponse()
        body = r.read()
        account("answer", t0)
    except (OSError, http.client.HTTPException) as e:
        c.close()
        local.conn = None
        return 0, str(e)
    try:
        reply = json.loads(body)
    except ValueError:
        reply = {"error": body.decode(errors="replace")}
    return r.status, reply


def main():
    addr, token, path, name = sys.argv[1:5]
    chunk = int(sys.argv[5]) if len(sys.argv) > 5 else 8 << 20
    window = max(1, int(os.environ.get("WINDOW", "3")))
    started = time.monotonic()
    size = os.path.getsize(path)
    mtime = int(os.path.getmtime(path) * 1000)
    host, port = addr.rsplit(":", 1)
    port = int(port)
    auth = {"Authorization": "Bearer " + token}
    q = f"size={size}&mtime={mtime}"
    fd = os.open(path, os.O_RDONLY)
    c = http.client.HTTPConnection(host, port, timeout=60)
    with cf.ThreadPoolExecutor(window) as pool:
        for _attempt in range(20):
            c.request("POST", f"/{name}?upload&{q}", headers=auth)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                sys.exit(f"start: {r.status} {body!r}")
            offset = json.loads(body)["offset"]
            following = {}  # future -> (offset, length)
            refused = None
            while True:
                while refused is None and len(following) < window and (
                    offset < size or (size == 0 and not following and offset == 0)
                ):
                    n = min(chunk, size - offset)
                    f = pool.submit(send_chunk, host, port, fd, auth, name, q, offset, n)
                    following[f] = (offset, n)
                    offset += n
                    if size == 0:
                        offset = 1  # the one empty chunk is on its way
                if not following:
                    break
                done, _ = cf.wait(following, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    at, n = following.pop(f)
                    status, reply = f.result()
                    if status == 201 and reply.get("done"):
                        if os.environ.get("TIMING"):
                            wall = time.monotonic() - started
                            parts = ", ".join(f"{k} {v:.2f}" for k, v in spent.items())
                            print(f"TIMING window {window}: {parts} s (summed); wall {wall:.2f} s",
                                  file=sys.stderr)
                        return
                    if status == 200:
                        continue
                    if status in (400, 422) and refused is None:
                        # Cut off or damaged on the way: the same chunk again, at once.
                        f = pool.submit(send_chunk, host, port, fd, auth, name, q, at, n)
                        following[f] = (at, n)
                    elif status in (0, 409, 503) or status >= 500:
                        refused = refused or f"chunk at {at}: {status} {reply}"
                    else:
                        sys.exit(f"chunk at {at}: {status} {reply}")
            print(f"asking again where to continue ({refused})", file=sys.stderr)
            time.sleep(0.2)
    sys.exit("the server never said done")


if __name__ == "__main__":
    main()
