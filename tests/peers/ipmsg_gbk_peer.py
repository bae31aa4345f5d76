#!/usr/bin/env python3
"""An IP Messenger member as the old GBK clients (Feiq, the seed) are, written without
taojie: it builds and parses `Ver:PacketNo:User:Host:Command:Extra` itself and encodes and
decodes its texts as GBK, never announcing UTF-8. Prints one JSON line per step on stdout.

    ipmsg_gbk_peer.py OWN_IP TARGET_IP TEXT_OUT TEXT_IN

1. Announces itself to TARGET_IP (BR_ENTRY, nickname and group in GBK) and waits for the
   answer (ANSENTRY).
2. Sends TEXT_OUT (GBK, SENDCHECKOPT) and waits for its acknowledgement (RECVMSG with the
   packet number).
3. Answers entries (ANSENTRY, still GBK) and waits for a message from any member (taojie's
   `msg send` speaks from an address of its own); acknowledges it; reports its text decoded
   as GBK and whether its bytes were GBK rather than UTF-8.
"""
import json
import socket
import sys
import time

own, target, text_out, text_in = sys.argv[1:5]
BR_ENTRY, ANSENTRY, SENDMSG, RECVMSG = 0x01, 0x03, 0x20, 0x21
SENDCHECK, UTF8, CAPUTF8 = 0x100, 0x800000, 0x1000000
USER, HOST, NICK, GROUP = 'laowang', 'oldpc', '老王', '开发部'

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((own, 2425))
s.settimeout(1)
number = int(time.time()) % 1000000


def packet(command, extra):
    global number
    number += 1
    head = '1_lbt4_10#128#000C29000000#0#0#0:%d:%s:%s:%d:' % (number, USER, HOST, command)
    return number, head.encode('ascii') + extra


def parse(data):
    parts = data.split(b':', 5)
    if len(parts) < 6:
        return None
    return {'number': int(parts[1]), 'command': int(parts[4]), 'extra': parts[5]}


def report(**kw):
    print(json.dumps(kw, ensure_ascii=False), flush=True)


def wait_for(pred, what, limit=30, anyone=False):
    """The next packet from TARGET_IP (or, with `anyone`, from any member) that `pred`
    accepts; entries met on the way are answered."""
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            data, addr = s.recvfrom(8192)
        except socket.timeout:
            continue
        p = parse(data)
        if p is None:
            continue
        if p['command'] & 0xff == BR_ENTRY:
            # Answer every entry, as a GBK member: no UTF-8 option bits.
            _, ans = packet(ANSENTRY, (NICK + '\0' + GROUP + '\0').encode('gbk'))
            s.sendto(ans, addr)
        if (anyone or addr[0] == target) and pred(p):
            return p, addr
    sys.exit('no %s from %s in %d s' % (what, target, limit))


# 1. The entry and its answer.
_, entry = packet(BR_ENTRY, (NICK + '\0' + GROUP + '\0').encode('gbk'))
s.sendto(entry, (target, 2425))
p, _ = wait_for(lambda p: p['command'] & 0xff == ANSENTRY, 'answer to our entry')
report(step='entry', answered=True, utf8=bool(p['command'] & (UTF8 | CAPUTF8)))

# 2. Our message, in GBK, until acknowledged (as IP Messenger re-sends).
n, msg = packet(SENDMSG | SENDCHECK, text_out.encode('gbk') + b'\0')
acked = False
for _ in range(4):
    s.sendto(msg, (target, 2425))
    try:
        wait_for(lambda p: p['command'] & 0xff == RECVMSG
                 and p['extra'].rstrip(b'\0') == str(n).encode(), 'acknowledgement', 2)
        acked = True
        break
    except SystemExit:
        continue
report(step='sent', acked=acked)

# 3. A message to us, decoded as GBK here.
p, addr = wait_for(lambda p: p['command'] & 0xff == SENDMSG, 'message', 60, anyone=True)
raw = p['extra'].split(b'\0', 1)[0]
try:
    raw.decode('utf-8')
    utf8_valid = True
except UnicodeDecodeError:
    utf8_valid = False
_, ack = packet(RECVMSG, str(p['number']).encode('ascii'))
s.sendto(ack, addr)
report(step='received', text=raw.decode('gbk', 'replace'), utf8_bytes=utf8_valid,
       utf8_option=bool(p['command'] & UTF8))
