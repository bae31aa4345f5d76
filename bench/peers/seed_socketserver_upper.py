"""The seed's socketserver upper-case server (seed 002, section 九), made to loop.

The seed answers one recv(1024) with sendall(data.upper()) and returns, on a TCPServer that
serves one client at a time. For a benchmark it must serve a stream and many clients, so:

* handle() loops: recv(1024) until end of stream, sendall(data.upper()) for each chunk. The
  seed's .strip() is left out because it is wrong on a stream cut at arbitrary places (the
  bench's payloads hold no whitespace, so it would change nothing there anyway), and so are its
  two print() calls per request, which would put the console on the measured path.
* ThreadingTCPServer instead of TCPServer: with TCPServer a looping handler holds the one
  serving thread until its client leaves, so 50 clients would be served one after another.
  One thread per connection is what the seed's authors reach for next (seeds 000/001).
* Everything else is socketserver's default, as in the seed: allow_reuse_address = True (the
  seed sets it), request_queue_size = 5, i.e. listen(5).

Usage: python3 seed_socketserver_upper.py [HOST:]PORT   (port 0 lets the system choose);
prints the bound HOST:PORT on stdout once listening.
"""

import socketserver
import sys


class Myserver(socketserver.BaseRequestHandler):
    def handle(self):  # self.request is the connection, as in the seed
        while True:
            data = self.request.recv(1024)
            if not data:
                break
            self.request.sendall(data.upper())


def main():
    spec = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    host, _, port = spec.rpartition(":")
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer((host or "127.0.0.1", int(port)), Myserver)
    addr = server.server_address
    print(f"{addr[0]}:{addr[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
