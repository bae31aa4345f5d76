"""taojie's protocol 2, written again from its description (src/secure/handshake.rs,
src/framing/native.rs, src/framing/hello.rs) with another Noise implementation
(noiseprotocol), so that the tests have a peer that is not taojie's own library.

- Each side's 32-byte line: `taojie/2 MODES`, space-padded, ending in a newline. The server
  sends its line (the modes it offers) first; the client answers with the one it uses.
- The Noise handshake of that mode (here `psk`: Noise_NNpsk0_25519_AESGCM_SHA256 with the
  pre-shared key HMAC-SHA256(key file bytes, PSK_LABEL)), each message a 2-byte big-endian
  length and the message, with both lines as the prologue.
- The server's verdict, the first transport record: `ok`, or why it refuses.
- Records: a 2-byte big-endian length and the sealed bytes (at most 65535, so 65519 of
  plaintext); an empty record is the end of the stream.
- Inside, native frames: a kind byte (0 control JSON, 1-15 data channels) and a big-endian
  u32 length, then the payload; both sides first send a hello control message.
"""
import hashlib
import hmac
import json
import socket
import struct

from noise.connection import NoiseConnection

PSK_LABEL = b'taojie 2026-11 noise pre-shared key'
PATTERN_PSK = b'Noise_NNpsk0_25519_AESGCM_SHA256'
MAX_PLAIN = 65535 - 16


def read_key(path):
    """A key file's bytes; one trailing newline is not part of the key."""
    key = open(path, 'rb').read()
    return key[:-1] if key.endswith(b'\n') else key


def line(words):
    text = b'taojie/2 ' + words
    return text[:31].ljust(31) + b'\n'


def recv_exact(s, n):
    data = b''
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError('closed after %d of %d bytes' % (len(data), n))
        data += chunk
    return data


class Channel:
    """One end of a protocol-2 connection over socket `s`, after the handshake."""

    def __init__(self, s, noise):
        self.s, self.noise = s, noise
        self.buf = b''
        self.ended = False

    @classmethod
    def connect(cls, s, key):
        """The client's side with the shared key."""
        banner = recv_exact(s, 32)
        if not banner.startswith(b'taojie/2 '):
            raise SystemExit('not a protocol-2 server: %r' % banner)
        if b'psk' not in banner[9:].split():
            raise SystemExit('the server offers no shared key: %r' % banner)
        answer = line(b'psk')
        s.sendall(answer)
        noise = NoiseConnection.from_name(PATTERN_PSK)
        noise.set_as_initiator()
        noise.set_psks(psk=hmac.new(key, PSK_LABEL, hashlib.sha256).digest())
        noise.set_prologue(banner + answer)
        noise.start_handshake()
        ch = cls(s, noise)
        ch.send_msg(noise.write_message())
        noise.read_message(ch.recv_msg())
        verdict = noise.decrypt(ch.recv_msg())
        if verdict != b'ok':
            raise SystemExit('refused: %r' % verdict)
        return ch

    @classmethod
    def accept(cls, s, key):
        """The server's side with the shared key."""
        banner = line(b'psk')
        s.sendall(banner)
        answer = recv_exact(s, 32)
        if answer.split()[:2] != [b'taojie/2', b'psk']:
            raise SystemExit('the client asked for %r' % answer)
        noise = NoiseConnection.from_name(PATTERN_PSK)
        noise.set_as_responder()
        noise.set_psks(psk=hmac.new(key, PSK_LABEL, hashlib.sha256).digest())
        noise.set_prologue(banner + answer)
        noise.start_handshake()
        ch = cls(s, noise)
        noise.read_message(ch.recv_msg())
        ch.send_msg(noise.write_message())
        ch.send_msg(noise.encrypt(b'ok'))
        return ch

    def send_msg(self, msg):
        self.s.sendall(struct.pack('>H', len(msg)) + msg)

    def recv_msg(self):
        (n,) = struct.unpack('>H', recv_exact(self.s, 2))
        return recv_exact(self.s, n)

    def send(self, data):
        for i in range(0, len(data), MAX_PLAIN):
            self.send_msg(self.noise.encrypt(data[i:i + MAX_PLAIN]))

    def end(self):
        """The end-of-stream record, then the socket's write half."""
        self.send_msg(self.noise.encrypt(b''))
        self.s.shutdown(socket.SHUT_WR)

    def record(self):
        """The next record's plaintext; b'' once the stream has ended. A connection cut
        without the end record raises EOFError."""
        if self.ended:
            return b''
        plain = self.noise.decrypt(self.recv_msg())
        if not plain:
            self.ended = True
        return plain

    def read(self, n):
        """Exactly `n` bytes (or what came before the end, if it came first)."""
        while len(self.buf) < n:
            more = self.record()
            if not more:
                break
            self.buf += more
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_some(self):
        """What is buffered, or the next record; b'' at the end."""
        if self.buf:
            data, self.buf = self.buf, b''
            return data
        return self.record()

    def read_line(self):
        while b'\n' not in self.buf:
            more = self.record()
            if not more:
                data, self.buf = self.buf, b''
                return data
            self.buf += more
        i = self.buf.index(b'\n') + 1
        data, self.buf = self.buf[:i], self.buf[i:]
        return data

    # Native frames inside the channel.

    def send_frame(self, kind, payload):
        self.send(struct.pack('>BI', kind, len(payload)) + payload)

    def send_control(self, obj):
        self.send_frame(0, json.dumps(obj).encode())

    def recv_frame(self):
        head = self.read(5)
        if len(head) < 5:
            raise EOFError('the stream ended where a frame was expected')
        kind, n = struct.unpack('>BI', head)
        limit = 64 * 1024 if kind == 0 else 1024 * 1024
        if kind > 15 or n > limit:
            raise SystemExit('bad frame header: kind %d, %d bytes' % (kind, n))
        payload = self.read(n)
        if len(payload) < n:
            raise EOFError('the stream ended in the middle of a frame')
        return kind, payload

    def recv_control(self):
        kind, payload = self.recv_frame()
        if kind != 0:
            raise SystemExit('a data frame (channel %d) where a control message belongs' % kind)
        return json.loads(payload)

    def hello(self, service):
        """Both sides' hello for `service` (ours first, as either side may)."""
        self.send_control({'type': 'hello', 'protocol': 'taojie', 'version': 2,
                           'service': service})
        got = self.recv_control()
        want = {'type': 'hello', 'protocol': 'taojie', 'version': 2, 'service': service}
        if got != want:
            raise SystemExit('hello: %r' % got)


def connect(addr, key, timeout=60):
    host, port = addr.rsplit(':', 1)
    s = socket.create_connection((host.strip('[]'), int(port)), timeout=timeout)
    return Channel.connect(s, key)


__all__ = ["Channel", "connect", "read_key", "recv_exact"]
