"""An HTTP server that misbehaves on purpose, for `taojie http`'s tests.

Binds 127.0.0.1 port 0 and prints `http_quirks tcp 127.0.0.1:PORT`, then serves:
  /stall  Content-Length: 1000000, the first 1000 bytes, then nothing for 120 s
  /auth   200 "hello USER" when the Authorization header is `Basic base64(USER:PASSWORD)`
          for the USER and PASSWORD given as arguments, else 401
  /to-file, /to-data  302 to file:///etc/passwd, to data:text/plain,hello
  /bomb   gzip (Content-Encoding) of 200 MiB of zeros: about 200 KiB on the wire
  /big    Content-Length: 3000000 of plain bytes
Usage: http_quirks.py USER PASSWORD
"""
import base64
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER, PASSWORD = sys.argv[1], sys.argv[2]
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
BOMB = []


def bomb():
    """200 MiB of zeros, gzip-compressed a MiB at a time (made once, on first use)."""
    if not BOMB:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(1 << 20)
        parts = [z.compress(zeros) for _ in range(200)]
        parts.append(z.flush())
        BOMB.append(b"".join(parts))
    return BOMB[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            time.sleep(120)  # longer than the test lets the client run: only a timeout ends it
        elif self.path == "/auth":
            ok = self.headers.get("Authorization") == EXPECTED
            body = f"hello {USER}\n".encode() if ok else b"who are you?\n"
            self.send_response(200 if ok else 401)
            if not ok:
                self.send_header("WWW-Authenticate", 'Basic realm="quirks"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path in ("/to-file", "/to-data"):
            to = "file:///etc/passwd" if self.path == "/to-file" else "data:text/plain,hello"
            self.send_response(302)
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/bomb":
            body = bomb()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "3000000")
            self.end_headers()
            self.wfile.write(b"b" * 3000000)
        else:
            self.send_error(404)

    def log_message(self, format, *args):
        # Requests are logged to stderr without headers, so nothing secret is printed.
        sys.stderr.write("http_quirks: " + (format % args) + "\n")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("http_quirks tcp 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
