"""The seed's UDP upper-case server (001): recvfrom, sendto(msg.upper()).

Prints its port, answers COUNT datagrams (or gives up after 20 s of silence), prints each
request (hex) and exits.
"""
import socket
import sys

count = int(sys.argv[1])
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
server.settimeout(20)
print("port", server.getsockname()[1], flush=True)
for _ in range(count):
    msg, client_addr = server.recvfrom(65535)
    server.sendto(msg.upper(), client_addr)
    print("got", msg.hex(), flush=True)
server.close()
