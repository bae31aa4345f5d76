"""A plain thread-per-connection echo server in the style of seeds 000 and 001.

socket(), SO_REUSEADDR, bind, listen(5), then accept() in a loop and one threading.Thread per
accepted socket that recv(1024)s until end of stream and sends each chunk back with sendall()
(the seeds' send() may send only part of a chunk). The seeds' per-message print() is left out
so the console is not on the measured path; listen(5) is kept as the seeds have it.

Usage: python3 thread_echo.py [HOST:]PORT   (port 0 lets the system choose);
prints the bound HOST:PORT on stdout once listening.
"""

import socket
import sys
from threading import Thread


def deal_with_client(conn):
    with conn:
        while True:
            data = conn.recv(1024)
            if not data:
                break
            conn.sendall(data)


def main():
    spec = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    host, _, port = spec.rpartition(":")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host or "127.0.0.1", int(port)))
    server.listen(5)
    addr = server.getsockname()
    print(f"{addr[0]}:{addr[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        Thread(target=deal_with_client, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
