"""Uploads one file through the files page's chunked endpoint, as the page does: asks where
to continue (POST ?upload), then sends PATCH ?offset=K chunks of CHUNK bytes, each with the
SHA-256 of its bytes in Content-Digest, on one kept-alive connection.

Usage: web_upload.py HOST:PORT TOKEN FILE NAME [CHUNK]
Exits 0 once the server says the file is whole and verified."""
import base64
import hashlib
import http.client
import json
import os
import sys


def main():
    addr, token, path, name = sys.argv[1:5]
    chunk = int(sys.argv[5]) if len(sys.argv) > 5 else 8 << 20
    size = os.path.getsize(path)
    mtime = int(os.path.getmtime(path) * 1000)
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    auth = {"Authorization": "Bearer " + token}
    q = f"size={size}&mtime={mtime}"
    c.request("POST", f"/{name}?upload&{q}", headers=auth)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"start: {r.status} {body!r}")
    offset = json.loads(body)["offset"]
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            data = f.read(min(chunk, size - offset))
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            headers = dict(auth)
            headers["Content-Digest"] = f"sha-256=:{digest}:"
            c.request("PATCH", f"/{name}?offset={offset}&{q}", body=data, headers=headers)
            r = c.getresponse()
            body = r.read()
            if r.status not in (200, 201):
                sys.exit(f"chunk at {offset}: {r.status} {body!r}")
            reply = json.loads(body)
            offset = reply["offset"]
            if reply.get("done"):
                return
            if offset >= size:
                sys.exit("the server never said done")


if __name__ == "__main__":
    main()
