"""An HTTP server that misbehaves on purpose, for `taojie http`'s tests.

Binds 127.0.0.1 port 0 and prints `http_quirks tcp 127.0.0.1:PORT`, then serves:
  /stall  Content-Length: 1000000, the first 1000 bytes, then nothing for 30 s
  /auth   200 "hello USER" when the Authorization header is `Basic base64(USER:PASSWORD)`
          for the USER and PASSWORD given as arguments, else 401
Usage: http_quirks.py USER PASSWORD
"""
import base64
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER, PASSWORD = sys.argv[1], sys.argv[2]
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


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
            time.sleep(30)
        elif self.path == "/auth":
            ok = self.headers.get("Authorization") == EXPECTED
            body = f"hello {USER}\n".encode() if ok else b"who are you?\n"
            self.send_response(200 if ok else 401)
            if not ok:
                self.send_header("WWW-Authenticate", 'Basic realm="quirks"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, format, *args):
        # Requests are logged to stderr without headers, so nothing secret is printed.
        sys.stderr.write("http_quirks: " + (format % args) + "\n")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("http_quirks tcp 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
