"""Raw clients for the exec tests: the seed's classic client (with the seed's conn_auth,
SHA-256), a client of the old protocol 1 (HMAC, then plaintext), and protocol 2 done by hand
with a Noise library (noiseprotocol) for the hostile cases: the banner, the Noise handshake with
the PSK derived as HMAC-SHA256(key, label), then records of 2-byte length + ciphertext."""
import hashlib, hmac, json, os, socket, struct, sys

from noise.connection import NoiseConnection

addr, keyfile, mode = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
host, port = addr.rsplit(':', 1)
key = open(keyfile, 'rb').read()
if key.endswith(b'\n'):
    key = key[:-1]


def connect():
    s = socket.create_connection((host, int(port)))
    s.settimeout(20)
    return s


def recv_exact(s, n):
    data = b''
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError('closed after %d of %d bytes' % (len(data), n))
        data += chunk
    return data


def recv_until_close(s):
    parts = []
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b''.join(parts), 'closed'
            parts.append(chunk)
    except ConnectionResetError:
        return b''.join(parts), 'reset'
    except socket.timeout:
        return b''.join(parts), 'timeout'


def conn_auth(conn):
    # The seed's client step, with SHA-256.
    msg = recv_exact(conn, 32)
    h = hmac.new(key, msg, hashlib.sha256)
    conn.sendall(h.digest())


def frame(kind, payload):
    return struct.pack('>BI', kind, len(payload)) + payload


def native_auth(s, answer=None):
    """Protocol 1's handshake; returns the 64 bytes we sent (answer + our challenge)."""
    challenge = recv_exact(s, 32)
    if answer is None:
        answer = hmac.new(key, challenge, hashlib.sha256).digest() + os.urandom(32)
    s.sendall(answer)
    return answer


PSK_LABEL = b'taojie 2026-11 noise pre-shared key'


class Channel:
    """Protocol 2 over socket `s`: the handshake, then encrypted records both ways. Every byte
    sent on the socket is kept in `sent`, so a session can be replayed."""

    def __init__(self, s):
        self.s, self.sent = s, b''
        banner = recv_exact(s, 32)
        if not banner.startswith(b'taojie/2 '):
            raise SystemExit('not a protocol-2 server: %r' % banner)
        line = b'taojie/2 psk'.ljust(31) + b'\n'
        self.send_raw(line)
        self.noise = NoiseConnection.from_name(b'Noise_NNpsk0_25519_AESGCM_SHA256')
        self.noise.set_as_initiator()
        self.noise.set_psks(psk=hmac.new(key, PSK_LABEL, hashlib.sha256).digest())
        self.noise.set_prologue(banner + line)
        self.noise.start_handshake()
        self.send_msg(self.noise.write_message())
        self.noise.read_message(self.recv_msg())
        verdict = self.noise.decrypt(self.recv_msg())
        if verdict != b'ok':
            raise SystemExit('refused: %r' % verdict)

    def send_raw(self, data):
        self.sent += data
        self.s.sendall(data)

    def send_msg(self, msg):
        self.send_raw(struct.pack('>H', len(msg)) + msg)

    def recv_msg(self):
        (n,) = struct.unpack('>H', recv_exact(self.s, 2))
        return recv_exact(self.s, n)

    def send(self, data):
        for i in range(0, len(data), 65519):
            self.send_msg(self.noise.encrypt(data[i:i + 65519]))

    def end(self):
        """The end-of-stream record (an empty one), then the socket's write half; a server
        that has already closed (it refused what came before) is fine."""
        try:
            self.send_msg(self.noise.encrypt(b''))
            self.s.shutdown(socket.SHUT_WR)
        except OSError:  # broken pipe, reset, or already not connected
            pass

    def recv_until_close(self):
        parts = []
        try:
            while True:
                head = self.s.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return b''.join(parts), 'closed'
                (n,) = struct.unpack('>H', head)
                plain = self.noise.decrypt(recv_exact(self.s, n))
                if not plain:
                    return b''.join(parts), 'closed'
                parts.append(plain)
        except (ConnectionResetError, EOFError):
            return b''.join(parts), 'reset'
        except socket.timeout:
            return b''.join(parts), 'timeout'


def hello():
    return frame(0, json.dumps({'type': 'hello', 'protocol': 'taojie', 'version': 2,
                                'service': 'exec'}).encode())


def request(argv):
    return frame(0, json.dumps({'type': 'request', 'argv': argv, 'shell': False}).encode())


def report(**kw):
    print(json.dumps(kw))


if mode == 'classic':
    # The seed's client loop: send a command, read the 4-byte length, read that many bytes.
    s = connect()
    conn_auth(s)
    answers = []
    for cmd in args:
        s.send(cmd.encode('utf-8'))
        x = struct.unpack('i', recv_exact(s, 4))[0]
        data = recv_exact(s, x)
        answers.append({'len': x, 'sha256': hashlib.sha256(data).hexdigest(),
                        'head': data[:300].decode('utf-8', 'replace')})
    s.settimeout(0.3)
    try:
        extra = s.recv(1)
    except socket.timeout:
        extra = b''
    report(answers=answers, extra=len(extra))
elif mode == 'classic-noauth':
    # A seed client without conn_auth: its command lands where the answer belongs.
    s = connect()
    recv_exact(s, 32)
    s.sendall(args[0].encode().ljust(32, b' '))
    data, how = recv_until_close(s)
    report(got=len(data), how=how)
elif mode == 'classic-replay':
    s = connect()
    conn_auth_msg = recv_exact(s, 32)
    recorded = hmac.new(key, conn_auth_msg, hashlib.sha256).digest()
    s.sendall(recorded)
    s.send(b'true')
    first = struct.unpack('i', recv_exact(s, 4))[0]
    s.close()
    s = connect()
    recv_exact(s, 32)
    s.sendall(recorded)
    s.send(args[0].encode())
    data, how = recv_until_close(s)
    report(first=first, got=len(data), how=how)
elif mode == 'classic-raw':
    # Arbitrary bytes as a command (e.g. a would-be length prefix), then a normal command.
    s = connect()
    conn_auth(s)
    s.send(bytes.fromhex(args[0]))
    x = struct.unpack('i', recv_exact(s, 4))[0]
    recv_exact(s, x)
    s.send(b'echo still here')
    y = struct.unpack('i', recv_exact(s, 4))[0]
    report(first=x, second=recv_exact(s, y).decode())
elif mode == 'classic-leave':
    # Start a long command, wait (bounded) until it runs, then hang up mid-command.
    import subprocess, time
    s = connect()
    conn_auth(s)
    s.send(args[0].encode())
    for _ in range(200):
        if subprocess.call(['pgrep', '-f', args[1]], stdout=subprocess.DEVNULL) == 0:
            break
        time.sleep(0.05)
    else:
        sys.exit('the command never started')
    s.close()
    report(left=True)
elif mode == 'native-replay':
    # A whole session recorded off the wire (it creates the file args[0]), the file removed,
    # then the same bytes sent again on a new connection: the file must not come back.
    marker = args[0]
    s = connect()
    ch = Channel(s)
    ch.send(hello() + request(['touch', marker]))
    # Read to the server's end (after the exit status); our write half stays open, as a
    # client's does while its command runs.
    first, how = ch.recv_until_close()
    s.close()
    ran_first = os.path.exists(marker)
    if ran_first:
        os.remove(marker)
    s = connect()
    recv_exact(s, 32)
    s.sendall(ch.sent)
    data, how = recv_until_close(s)
    report(ran_first=ran_first, ran_again=os.path.exists(marker), how=how)
elif mode == 'native-silent':
    s = connect()
    recv_exact(s, 32)
    data, how = recv_until_close(s)
    report(got=len(data), how=how)
elif mode == 'native-after-auth':
    # A proper handshake, then the hex bytes given inside the encrypted channel instead of a
    # hello (an oversized header, garbage, a truncated frame followed by the end of stream).
    s = connect()
    ch = Channel(s)
    ch.send(bytes.fromhex(args[0]))
    if len(args) > 1 and args[1] == 'half-close':
        ch.end()
    data, how = ch.recv_until_close()
    report(got=data.decode('latin-1'), how=how)
elif mode == 'native-old':
    # A client of protocol 1 with the right key: HMAC answer, then a plaintext hello. It must
    # be told, in its own framing, that the server wants protocol 2.
    s = connect()
    native_auth(s)
    recv_exact(s, 32)
    s.sendall(hello() + request(args))
    data, how = recv_until_close(s)
    report(got=data[5:].decode('latin-1'), how=how)
else:
    sys.exit('unknown mode ' + mode)
