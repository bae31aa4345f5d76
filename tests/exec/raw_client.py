"""Raw clients for the exec tests: the seed's classic client (with the seed's conn_auth,
SHA-256) and hand-made native handshakes for the hostile cases."""
import hashlib, hmac, json, os, socket, struct, sys

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
    """Native handshake; returns the 64 bytes we sent (answer + our challenge)."""
    challenge = recv_exact(s, 32)
    if answer is None:
        answer = hmac.new(key, challenge, hashlib.sha256).digest() + os.urandom(32)
    s.sendall(answer)
    return answer


def hello():
    return frame(0, json.dumps({'type': 'hello', 'protocol': 'taojie', 'version': 1,
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
    s = connect()
    sent = native_auth(s)
    recv_exact(s, 32)  # the server's proof: the handshake passed
    s.close()
    s = connect()
    native_auth(s, answer=sent)
    s.sendall(hello() + request(args))
    data, how = recv_until_close(s)
    report(got=len(data), how=how)
elif mode == 'native-silent':
    s = connect()
    recv_exact(s, 32)
    data, how = recv_until_close(s)
    report(got=len(data), how=how)
elif mode == 'native-after-auth':
    # Authenticate properly, then send the hex bytes given instead of a hello (an oversized
    # header, garbage, a truncated frame followed by a half-close).
    s = connect()
    native_auth(s)
    recv_exact(s, 32)
    s.sendall(bytes.fromhex(args[0]))
    if len(args) > 1 and args[1] == 'half-close':
        s.shutdown(socket.SHUT_WR)
    data, how = recv_until_close(s)
    report(got=data.decode('latin-1'), how=how)
else:
    sys.exit('unknown mode ' + mode)
