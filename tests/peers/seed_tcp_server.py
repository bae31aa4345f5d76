"""A TCP server written like the seeds' (000/003): bind, listen(5), accept, recv(1024) loop.

Prints its port, serves one client, then prints what it got (hex) and exits.
Modes: `upper` answers each recv with its upper-case copy (the seed's socketserver);
`after-eof` reads until the client half-closes, then answers once (a strict half-close test).
"""
import socket
import sys

mode = sys.argv[1]
tcpSerSocket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcpSerSocket.bind(("127.0.0.1", 0))
tcpSerSocket.listen(5)
tcpSerSocket.settimeout(20)
print("port", tcpSerSocket.getsockname()[1], flush=True)

newSocket, clientAddr = tcpSerSocket.accept()
newSocket.settimeout(20)
got = b""
while True:
    recvData = newSocket.recv(1024)
    if len(recvData) == 0:
        break
    got += recvData
    if mode == "upper":
        newSocket.sendall(recvData.upper())
if mode == "after-eof":
    newSocket.sendall(b"after your eof: " + got.upper())
newSocket.close()
tcpSerSocket.close()
print("got", got.hex(), flush=True)
