"""Forged UDP datagrams from a raw socket, for the chat hub's amplification test.

Run as root inside a network namespace the test made. Sends, to HUB_IP:HUB_PORT:
  - REGS empty datagrams ("I am here") from forged sources: 16 ports on each of REGS/16
    addresses in 10.217.0.0/16 (addresses nobody in the test owns: replies to them die in
    the attacker's namespace, which does not forward);
  - MSGS datagrams `mallory: N xxx...` of SIZE bytes from one more forged source.
Paced in bursts of 16 with a millisecond between, and a pause before the messages, so the
hub's socket is not simply overrun (a flood it drops would prove nothing).
Prints `sent BYTES` (UDP payload bytes) when done.
Usage: udp_spoof.py HUB_IP HUB_PORT REGS MSGS SIZE
"""
import socket
import struct
import sys
import time

hub_ip, hub_port = sys.argv[1], int(sys.argv[2])
regs, msgs, size = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
count = 0


def send(src_ip, src_port, payload):
    global sent, count
    udp_len = 8 + len(payload)
    # UDP checksum 0: none (allowed over IPv4). The kernel fills in the IP checksum and id.
    udp = struct.pack("!HHHH", src_port, hub_port, udp_len, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
        socket.inet_aton(src_ip), socket.inet_aton(hub_ip),
    )
    raw.sendto(ip + udp, (hub_ip, 0))
    sent += len(payload)
    count += 1
    if count % 16 == 0:
        time.sleep(0.001)


def forged(i):
    return "10.217.%d.%d" % (i // 200, i % 200 + 1)


for i in range(regs):
    send(forged(i // 16), 40000 + i % 16, b"")
time.sleep(0.5)
for n in range(msgs):
    text = ("mallory: %d " % n).encode()
    send("10.217.250.1", 50000, text + b"x" * max(0, size - len(text)))
print("sent %d" % sent, flush=True)
