"""The seed's UDP client (001): sendto the server, recvfrom its answer.

Usage: seed_udp_client.py HOST PORT MESSAGE. Prints the answer (hex).
"""
import socket
import sys

host, port, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(20)
client.sendto(msg.encode("utf-8"), (host, port))
data, server_addr = client.recvfrom(65535)
client.close()
print("got", data.hex(), flush=True)
