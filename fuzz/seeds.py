#!/usr/bin/env python3
"""Writes fuzz/seeds/TARGET/seed-*: real, valid messages of each decoder, taken from the unit
tests, tests/ and the peers they talk to (the seeds' Python clients, iptux, ntplib). The
fuzzer's own finds go to fuzz/corpus/TARGET (see run.sh), minimized with `cargo fuzz cmin`;
the seeds and every crash found (crash-*) stay here, never minimized away."""
import hashlib, json, os, struct

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def native(kind, payload):
    return bytes([kind]) + struct.pack(">I", len(payload)) + payload


def control(obj):
    return native(0, json.dumps(obj, separators=(",", ":")).encode())


hello = lambda s: control({"type": "hello", "protocol": "taojie", "version": 2, "service": s})

# The first byte of every stream target picks the size of the reads (byte + 1).
put("native_frames", "hello", b"\xff" + hello("exec"))
put("native_frames", "hello-split", b"\x02" + hello("files") + native(1, b"payload") + native(1, b""))
put("native_frames", "refused", b"\x10" + control({"type": "error", "message": "peer wants the \"files\" service; this is \"exec\""}))
put("native_frames", "channels", b"\x00" + native(2, b"err") + native(15, b"x" * 40) + native(2, b""))

put("exec_messages", "session", b"\xff" + hello("exec") + control({"type": "request", "argv": ["ls", "-l"], "shell": False}) + native(1, b"stdin") + native(1, b""))
put("exec_messages", "answers", b"\x07" + control({"type": "started"}) + native(1, b"out\n") + native(2, b"err\n") + native(1, b"") + native(2, b"") + control({"type": "exit", "code": 3, "signal": None}))
put("exec_messages", "signal", b"\xff" + control({"type": "exit", "code": 137, "signal": 9}) + control({"type": "error", "message": "refused"}))
put("exec_messages", "shell", b"\xff" + control({"type": "request", "argv": ["echo hi | wc -c"], "shell": True}))

hdr = {"name": "dir/a.txt", "size": 5, "mode": 0o644, "mtime_ns": 1700000000123456789}
h = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
put("files_messages", "put", b"\xff" + hello("files") + control({"type": "put_file", "header": hdr, "overwrite": False}) + control({"type": "accept", "offset": 0}) + native(1, b"hello") + native(1, b"") + control({"type": "segment", "index": 0, "hash": h}) + control({"type": "verified", "blake3": h, "received": 5}) + control({"type": "end"}))
put("files_messages", "get", b"\xff" + control({"type": "get", "names": ["a.txt", "dir"]}) + control({"type": "file", "header": hdr}) + control({"type": "refuse", "message": "a.txt already exists"}))
put("files_messages", "ls", b"\x20" + control({"type": "ls", "dir": "sub/"}) + control({"type": "entries", "entries": [{"name": "a.txt", "kind": "file", "size": 5, "mtime": 1700000000}, {"name": "d", "kind": "dir", "size": 0, "mtime": 0}]}) + control({"type": "end"}))
put("files_messages", "resume", b"\xff" + control({"type": "put_file", "header": dict(hdr, size=3 * 4194304 + 10), "overwrite": True}) + control({"type": "accept", "offset": 8388608}) + control({"type": "failed", "message": "segment 2 does not match"}) + control({"type": "error", "message": "no such file"}))

md5 = hashlib.md5(b"hello").hexdigest()
chead = json.dumps({"file_size": 5, "file_name": "/a/b/c/hello.txt", "md5": md5}).encode()
put("classic_frames", "upload", b"\xff" + struct.pack("<i", len(chead)) + chead + b"hello")
put("classic_frames", "windows", b"\x03" + struct.pack("<i", 62) + json.dumps({"file_size": 0, "file_name": "C:\\x\\y.bin", "md5": hashlib.md5(b"").hexdigest()}).encode()[:62])
put("classic_frames", "output", b"\xff" + struct.pack("<i", 12) + b"total 0\nok\n\n")

MB4 = 4 << 20
def state_seed(size, mtime, flag, rest):
    return struct.pack("<Q", size) + struct.pack("<q", mtime) + bytes([flag]) + rest
put("files_state", "two-segments", state_seed(3 * MB4 + 10, 42, 1, bytes(range(32)) + bytes(range(32, 64))))
put("files_state", "torn-tail", state_seed(3 * MB4 + 10, 42, 1, bytes(range(32)) + b"torn"))
put("files_state", "other-stamp", state_seed(3 * MB4 + 10, 42, 0, b"taojie-part v1 12582922 43\n" + bytes(32)))
put("files_state", "empty-file", state_seed(0, 0, 1, b""))

banner = lambda words: (b"taojie/2 " + words).ljust(31, b" ") + b"\n"
noise = lambda n: struct.pack(">H", n) + bytes(range(n))
put("handshake", "native-answer", b"\x00" + bytes(64))
put("handshake", "open-answer", b"\x01" + bytes(range(64)))
put("handshake", "classic-answer", b"\x02" + bytes(32))
put("handshake", "challenge-proof", b"\x03" + bytes(range(32)) + bytes(32))
put("handshake", "client-psk", b"\x04" + banner(b"psk") + noise(48))
put("handshake", "client-nn", b"\x04" + banner(b"nn") + noise(32))
put("handshake", "server-psk", b"\x05" + banner(b"psk xx nn") + noise(48) + noise(40))
put("handshake", "server-nn", b"\x06" + banner(b"nn") + noise(48))
put("handshake", "old-server", b"\x05" + bytes(range(32)) + bytes(32))

# secure_records: a byte for the reader's buffer (1 + 260 × byte), then steps: 0 LEN LEN seals
# a record of that plaintext length (0 ends the stream), 1 N BYTES puts raw bytes on the
# wire, 2 AT flips a bit of the last record.
rec = lambda n: b"\x00" + struct.pack(">H", n)
put("secure_records", "exec-session", b"\x10" + rec(5) + rec(4096) + rec(65519) + rec(0))
put("secure_records", "small-reads", b"\x00" + rec(100) + rec(3) + rec(0) + rec(7))
put("secure_records", "cut", b"\xff" + rec(1000) + rec(20))
put("secure_records", "flipped", b"\x40" + rec(64) + rec(64) + b"\x02\x09" + rec(0))
put("secure_records", "garbage", b"\x40" + rec(64) + b"\x01\x05hello" + rec(0))
put("secure_records", "flipped-end", b"\xff" + rec(8) + rec(0) + b"\x02\x01")

put("chat_lines", "lines", b"\x3f" + b"hello\nworld\r\n/nick alice\n/join room-1\nbye")
put("chat_lines", "escapes", b"\xbf" + b"a\x1b]0;pwned\x07\r\nb\x1b[2J\x7f\xc2\x9b\n\xff\xfe\n")
put("chat_lines", "long", b"\x47" + b"x" * 20 + b"\nshort\n" + b"y" * 100)
put("chat_lines", "names", b"\xff" + "аlice\nALICE\nnaïve_名字\n".encode())

def ntp(li, vn, mode, stratum, ref, ts):
    return bytes([li << 6 | vn << 3 | mode, stratum, 6, 0xe9]) + struct.pack(">II", 0, 0x10000) + ref + b"".join(struct.pack(">Q", t) for t in ts)
t = (3_900_000_000 << 32) | 0x12345678
put("sntp", "client-v4", ntp(0, 4, 3, 0, bytes(4), [0, 0, 0, t]))
put("sntp", "ntplib-v3", ntp(0, 3, 3, 0, bytes(4), [0, 0, 0, t]))
put("sntp", "server", ntp(0, 4, 4, 1, b"GPS\0", [t - (1 << 32), t, t + 5, t + 9]))
put("sntp", "kiss", ntp(3, 4, 4, 0, b"RATE", [0, t, 0, 0]))
put("sntp", "era-1", ntp(0, 4, 4, 2, bytes([192, 0, 2, 1]), [0x7fffffff << 32, 5 << 32, 5 << 32, 6 << 32]))

when = struct.pack("<q", 1_700_000_000)
put("strftime", "default", when)
put("strftime", "seed", when + b"%Y-%m-%d %X")
put("strftime", "wide", when + b"%+ %c %Z %z %:z %j %U %W %G-W%V-%u %s %.3f %e %k %l %p %P")
put("strftime", "bad", when + b"%Y-%Q %")
put("strftime", "padding", when + b"%-d %_m %0e %#Y %%")

put("ipmsg", "feiq", b"1_lbt4_10#32499#002481627512#0#0#0:1289671407:user:host:288:text")
put("ipmsg", "iptux-entry", b"1_iptux 0.8.3:1:ann:box:257:Ann\0dev\0\0utf-8\0")
put("ipmsg", "gbk", b"1_lbt4_10#1#2#0#0#0:9:u:h:288:" + "你好".encode("gbk"))
put("ipmsg", "attach", b"1_iptux 0.8.3:12:u:h:2097440:files\0" + b"10000:a.txt:1f:65f0a3b2:1:\x07:10001:b::c.bin:400:65f0a3b2:1:14=1:\x07" + b"\0")
put("ipmsg", "getfiledata", b"1:13:u:h:96:3039:2710:0:\0")
put("ipmsg", "hex-command", b"1:1:u:h:0x20:" + "名字".encode())
put("ipmsg", "ack", b"1_taojie_0.1.0:5:u:h:33:1289671407\0")

# taojie serve proxy: curl's SOCKS5 greeting, login and request (IPv4, a name, IPv6), a
# CONNECT head with Basic credentials and early bytes, and rule and URL lines.
socks_login = b"\x05\x02\x00\x02" + b"\x01\x03ann\x06s3cret" + b"\x05\x01\x00\x03\x09localhost\x1f\x90GET /"
put("proxy_requests", "socks-login", b"\x00" + socks_login)
put("proxy_requests", "socks-v4", b"\x03\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50")
put("proxy_requests", "socks-v6", b"\x07\x05\x01\x00\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x01\xbb")
put("proxy_requests", "connect", b"\x10CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic YW5uOnMzY3JldA==\r\n\r\nearly")
put("proxy_requests", "text", b"\xff10.0.0.0/8:22\n*.example.com\n[fe80::/10]:1-1024\nsocks5h://ann:s3cret@[::1]:1080\nhttp://u:p%40ss@h:3128\n")

put("http", "auth", b"http://user:pa%20ss@example.com:8080/path?q=1#frag\nhttp://127.0.0.1:9000\n127.0.0.1:9000\nname=x&token=" + b"0" * 64)
put("http", "v6", b"https://[::1]/x%2Fy\nhttps://localhost\n[::1]:443\ntoken=zz")
put("http", "no-scheme", b"localhost:8080/x\nnull\nchat.localhost.\n")
put("http", "idn", "http://bücher.example/ä?ü=1\nhttp://evil.example\nevil.example\n".encode())

# files_web: the first byte picks the part (mod 5): 0 a request path, 1 a Range (after an
# 8-byte file size), 2 a WebDAV body, 3 header lines (If, Lock-Token, Timeout,
# Content-Digest), 4 a share link's token.
put("files_web", "path", b"\x00photos/2026/a%20b%E5%90%8D.jpg")
put("files_web", "path-climb", b"\x00d/%2e%2e/%2E%2E/key")
put("files_web", "path-folder", b"\x00docs/inner/")
put("files_web", "range", b"\x01" + struct.pack(">Q", 1 << 20) + b"bytes=100-")
put("files_web", "range-suffix", b"\x01" + struct.pack(">Q", 10) + b"bytes=-3")
put("files_web", "propfind", b"\x02" + b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/><D:getcontentlength/><D:resourcetype/></D:prop></D:propfind>')
put("files_web", "lockinfo", b"\x02" + b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:a&amp;b</D:href></D:owner></D:lockinfo>')
put("files_web", "xxe", b"\x02" + b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
put("files_web", "headers", b"\x03(<opaquelocktoken:0a1b2c3d-0000-4000-8000-00000000abcd>)\n<opaquelocktoken:x>\nSecond-600, Infinite\nsha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:")
put("files_web", "share", b"\x04cGhvdG9z.1796671034." + b"0" * 64)

put("ipcalc", "describe", b"\x00192.168.1.10/24\n")
put("ipcalc", "compare", b"\x01# cases\n10.0.0.1 10.0.0.200 --mask 255.255.255.0\n\n2001:db8::1 2001:db8::ffff/64\n")
put("ipcalc", "split", b"\x002001:db8::/64 --split 66\n172.16.0.0/12 --split 14 --json\n")
put("ipcalc", "zone", b"\x01fe80::1%eth0/64\n1.2.3.4/255.255.0.255\n::ffff:1.2.3.4\n")
