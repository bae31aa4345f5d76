"""A TCP client written like the seeds' (000/003): connect, send, recv until the server closes.

Usage: seed_tcp_client.py HOST PORT MESSAGE. Prints what it received (hex).
"""
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode("utf-8")
clientSocket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
clientSocket.settimeout(20)
clientSocket.connect((host, port))
clientSocket.send(message)
got = b""
while True:
    recvData = clientSocket.recv(1024)
    if not recvData:
        break
    got += recvData
clientSocket.close()
print("got", got.hex(), flush=True)
