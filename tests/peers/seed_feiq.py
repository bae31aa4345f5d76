"""Seed 000's Feiq (飞秋) broadcast, aimed at one host: the exact datagram the seed sends, GBK,
sent twice with the same packet number (as a client re-sends an unacknowledged message).
Prints each acknowledgement as `IP PORT PACKET` (the packet decoded as GBK).

    python3 seed_feiq.py OWN_IP TARGET_IP
"""
import socket
import sys

own, target = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((own, 2425))
s.settimeout(5)
str1 = '1_lbt4_10#32499#002481627512#0#0#0:1289671407:名字:备注:288:发送的内容'
for i in range(2):
    s.sendto(str1.encode("gbk"), (target, 2425))
    data, address = s.recvfrom(8192)
    print(address[0], address[1], data.decode("gbk").rstrip("\0"), flush=True)
