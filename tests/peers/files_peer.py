#!/usr/bin/env python3
"""A client of taojie's files service written without taojie: protocol 2 from tj2.py, the
control messages of src/files/protocol.rs as JSON, file bytes on data channel 1 in frames of
at most 1 MiB, and each 4 MiB segment's BLAKE3 chaining value (b3.py; a file of one segment
sends its root hash as segment 0). Prints one JSON report on stdout.

    files_peer.py put ADDR KEYFILE PATH NAME [--stop-after N]
    files_peer.py get ADDR KEYFILE NAME OUTDIR [--stop-after N]
    files_peer.py ls ADDR KEYFILE [DIR]

--stop-after N: hang up (no end record, as a killed process would) once N bytes of the file
have crossed this time. `get` keeps what it verified in OUTDIR/.NAME.py-part (the bytes of
whole segments) and offers to resume from there next time.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import b3  # noqa: E402
import tj2  # noqa: E402

SEGMENT = 4 << 20
MAX_DATA = 1 << 20
BUSY = 'is being received by someone else'


def segments(size):
    return max(1, -(-size // SEGMENT))


def segment_hash(data, size, index):
    """What goes on the wire after segment `index` of a file of `size` bytes: its chaining
    value, or the root hash when the file is one segment. `data` is the segment's bytes."""
    if size <= SEGMENT:
        return b3.digest(data).hex()
    return b3.to_bytes(b3.subtree(data, index * SEGMENT // b3.CHUNK_LEN)).hex()


def open_channel(addr, keyfile):
    ch = tj2.connect(addr, tj2.read_key(keyfile))
    ch.hello('files')
    return ch


def hang_up(ch):
    """A hard close: the socket goes without the end-of-stream record."""
    ch.s.close()


def put(addr, keyfile, path, name, stop_after):
    data = open(path, 'rb').read()
    st = os.stat(path)
    header = {'name': name, 'size': len(data), 'mode': st.st_mode & 0o777,
              'mtime_ns': st.st_mtime_ns}
    # A server still holding the file from a connection that broke says so: ask again.
    for _ in range(60):
        ch = open_channel(addr, keyfile)
        ch.send_control({'type': 'put_file', 'header': header, 'overwrite': False})
        answer = ch.recv_control()
        if answer.get('type') == 'refuse' and answer['message'].endswith(BUSY):
            ch.end()
            time.sleep(0.5)
            continue
        break
    if answer.get('type') != 'accept':
        ch.end()
        return {'answer': answer}
    offset = answer['offset']
    size = len(data)
    if offset and (size <= SEGMENT or offset % SEGMENT and offset != size):
        raise SystemExit('the server asked to resume at %d' % offset)
    pos, sent = offset, 0
    while pos < size:
        n = min(MAX_DATA, size - pos)
        if stop_after is not None and sent + n > stop_after:
            n = stop_after - sent
            ch.send_frame(1, data[pos:pos + n])
            hang_up(ch)
            return {'offset': offset, 'sent': sent + n, 'stopped': True}
        ch.send_frame(1, data[pos:pos + n])
        pos += n
        sent += n
        if size > SEGMENT and (pos % SEGMENT == 0 or pos == size):
            i = (pos - 1) // SEGMENT
            seg = data[i * SEGMENT:min((i + 1) * SEGMENT, size)]
            ch.send_control({'type': 'segment', 'index': i,
                             'hash': segment_hash(seg, size, i)})
    if size <= SEGMENT:
        ch.send_control({'type': 'segment', 'index': 0, 'hash': segment_hash(data, size, 0)})
    verdict = ch.recv_control()
    ch.end()
    ours = b3.digest(data).hex() if size <= SEGMENT else b3.merge(
        size, [b3.subtree(data[i * SEGMENT:(i + 1) * SEGMENT], i * SEGMENT // b3.CHUNK_LEN)
               for i in range(segments(size))], SEGMENT).hex()
    return {'offset': offset, 'sent': sent, 'verdict': verdict, 'blake3': ours}


def get(addr, keyfile, name, outdir, stop_after):
    part = os.path.join(outdir, '.%s.py-part' % name)
    held = open(part, 'rb').read() if os.path.exists(part) else b''
    ch = open_channel(addr, keyfile)
    ch.send_control({'type': 'get', 'names': [name]})
    reports = []
    while True:
        msg = ch.recv_control()
        if msg['type'] == 'end':
            break
        if msg['type'] == 'error':
            reports.append({'error': msg['message']})
            continue
        if msg['type'] != 'file':
            raise SystemExit('unexpected %r' % msg)
        h = msg['header']
        if h['name'] != name:
            raise SystemExit('offered %r, asked for %r' % (h['name'], name))
        size = h['size']
        offset = len(held) if size > SEGMENT and len(held) % SEGMENT == 0 else 0
        have = held[:offset]
        ch.send_control({'type': 'accept', 'offset': offset})
        cvs = [b3.subtree(have[i * SEGMENT:(i + 1) * SEGMENT], i * SEGMENT // b3.CHUNK_LEN)
               for i in range(offset // SEGMENT)]
        body = bytearray(have)
        got, want_segs, segs, bad = 0, segments(size) - offset // SEGMENT, 0, None
        while got < size - offset or segs < want_segs:
            kind, payload = ch.recv_frame()
            if kind == 1:
                body += payload
                got += len(payload)
                if stop_after is not None and got >= stop_after:
                    whole = (len(body) // SEGMENT) * SEGMENT
                    verified = min(whole, len(cvs) * SEGMENT)
                    open(part, 'wb').write(bytes(body[:verified]))
                    hang_up(ch)
                    return {'offset': offset, 'received': got, 'stopped': True,
                            'kept': verified}
                if got > size - offset:
                    raise SystemExit('more bytes than declared')
                continue
            seg = json.loads(payload)
            if seg.get('type') != 'segment':
                raise SystemExit('unexpected %r in a file' % seg)
            i = seg['index']
            piece = bytes(body[i * SEGMENT:min((i + 1) * SEGMENT, size)])
            mine = segment_hash(piece, size, i)
            if mine != seg['hash']:
                bad = 'segment %d: %s, server said %s' % (i, mine, seg['hash'])
            elif size > SEGMENT:
                cvs.append(b3.from_hex(mine))
            segs += 1
        if bad:
            ch.send_control({'type': 'failed', 'message': bad})
            reports.append({'failed': bad})
            continue
        root = (b3.digest(bytes(body)) if size <= SEGMENT
                else b3.merge(size, cvs, SEGMENT)).hex()
        with open(os.path.join(outdir, name), 'wb') as f:
            f.write(body)
        if os.path.exists(part):
            os.remove(part)
        ch.send_control({'type': 'verified', 'blake3': root, 'received': got})
        reports.append({'name': name, 'size': size, 'offset': offset, 'received': got,
                        'blake3': root})
    ch.end()
    return {'files': reports}


def ls(addr, keyfile, d):
    ch = open_channel(addr, keyfile)
    ch.send_control({'type': 'ls', 'dir': d})
    entries = []
    while True:
        msg = ch.recv_control()
        if msg['type'] == 'entries':
            entries += msg['entries']
        elif msg['type'] == 'end':
            break
        else:
            ch.end()
            return {'answer': msg}
    ch.end()
    return {'entries': entries}


def main():
    args = sys.argv[1:]
    stop_after = None
    if '--stop-after' in args:
        i = args.index('--stop-after')
        stop_after = int(args[i + 1])
        del args[i:i + 2]
    mode = args[0]
    if mode == 'put':
        report = put(args[1], args[2], args[3], args[4], stop_after)
    elif mode == 'get':
        report = get(args[1], args[2], args[3], args[4], stop_after)
    else:
        report = ls(args[1], args[2], args[3] if len(args) > 3 else '')
    print(json.dumps(report))


main()
