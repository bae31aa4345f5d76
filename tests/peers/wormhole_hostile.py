#!/usr/bin/python3
"""A hostile wormhole sender, built on the real client's library (Debian's python3-magic-wormhole):
it opens the wormhole properly, then offers and sends what MODE says is hostile.

    wormhole_hostile.py MODE CODE RELAY_URL TRANSIT_HELPER [ABS_PATH]

Modes: dotdot, absolute (a file name that is a path), zip-dotdot, zip-absolute, zip-symlink,
zip-bomb (a zip far larger unpacked than offered), size-more, size-less (a size that lies),
garbage (random bytes for records), out-of-order (record 1 first), entries-dotdot and
entries-unoffered (taojie's entry stream with a path escaping, or a name not offered).
Prints what happened on stdout and exits 0 unless the protocol itself failed before the offer.
"""
import io
import json
import os
import sys
import zipfile

from twisted.internet import defer, task
from twisted.internet.defer import inlineCallbacks

import wormhole
from wormhole.transit import TransitSender
from wormhole.util import bytes_to_dict, dict_to_bytes

APPID = "lothar.com/wormhole/text-or-file-xfer"
ABILITY = "taojie-entries-v1"


def make_zip(entries):
    """entries: (name, data, unix mode or None)"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


def dir_offer(zipped, numbytes):
    return {"directory": {"mode": "zipfile/deflated", "dirname": "d", "zipsize": len(zipped),
                          "numbytes": numbytes, "numfiles": 1}}


def send_bytes(data):
    def go(rp):
        for i in range(0, len(data), 16384):
            rp.send_record(data[i:i + 16384])
    return go


def chacha_sender(rp):
    """taojie's records between taojie peers: the same frames, sealed with ChaCha20-Poly1305
    under a key derived from the sender's record key; the nonce's last 12 bytes are used."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from wormhole.util import HKDF
    key = HKDF(rp.owner._sender_record_key(), 32, CTXinfo=b"taojie transit chacha20-poly1305")
    aead = ChaCha20Poly1305(key)
    counter = [0]

    def send(data):
        nonce = counter[0].to_bytes(24, "big")
        counter[0] += 1
        sealed = aead.encrypt(nonce[12:], data, b"")
        body = nonce + sealed[-16:] + sealed[:-16]
        rp.transport.write(len(body).to_bytes(4, "big") + body)
    return send


def plan(mode, abs_path):
    """(offer, what to do on the transit connection or None)"""
    if mode == "dotdot":
        return {"file": {"filename": "../../x", "filesize": 5}}, None
    if mode == "absolute":
        return {"file": {"filename": abs_path, "filesize": 5}}, None
    if mode in ("zip-dotdot", "zip-absolute", "zip-symlink"):
        name = {"zip-dotdot": "../../evil", "zip-absolute": abs_path, "zip-symlink": "link"}[mode]
        z = make_zip([("ok.txt", b"fine\n", 0o644),
                      (name, abs_path.encode(), 0o120777 if mode == "zip-symlink" else 0o644)])
        return dir_offer(z, 100), send_bytes(z)
    if mode == "zip-bomb":
        z = make_zip([("zeros", b"\0" * (64 << 20), 0o644)])
        return dir_offer(z, 1000), send_bytes(z)
    if mode == "size-more":
        return {"file": {"filename": "f", "filesize": 1000}}, send_bytes(b"m" * 3000)
    if mode == "size-less":
        return {"file": {"filename": "f", "filesize": 100000}}, send_bytes(b"l" * 1000)
    if mode == "garbage":
        return {"file": {"filename": "f", "filesize": 1000}}, lambda rp: rp.transport.write(os.urandom(5000))

    if mode == "out-of-order":
        def go(rp):
            rp.send_nonce = 1
            rp.send_record(b"o" * 500)
        return {"file": {"filename": "f", "filesize": 1000}}, go
    if mode in ("entries-dotdot", "entries-unoffered"):
        path = "a/../../x" if mode == "entries-dotdot" else "b/x"
        def go(rp):
            send = chacha_sender(rp)
            send(json.dumps({"entry": {"path": "a", "kind": "dir", "mode": 0o755}}).encode())
            send(json.dumps({"entry": {"path": path, "kind": "file", "size": 5,
                                       "mode": 0o644}}).encode())
        return {ABILITY: {"names": ["a"], "files": 1, "bytes": 5}}, go
    raise SystemExit(f"unknown mode {mode}")


@inlineCallbacks
def main(reactor, mode, code, relay, helper, abs_path="/nonexistent/abs-evil"):
    versions = {"taojie": {"abilities": [ABILITY]}} if mode.startswith("entries") else {}
    w = wormhole.create(APPID, relay, reactor, versions=versions)
    w.set_code(code)
    yield w.get_verifier()
    ts = TransitSender(helper, reactor=reactor)
    hints = yield ts.get_connection_hints()
    w.send_message(dict_to_bytes({"transit": {"abilities-v1": ts.get_connection_abilities(),
                                              "hints-v1": hints}}))
    ts.set_transit_key(w.derive_key(APPID + "/transit-key", ts.TRANSIT_KEY_LENGTH))
    offer, payload = plan(mode, abs_path)
    w.send_message(dict_to_bytes({"offer": offer}))
    while True:
        msg = bytes_to_dict((yield w.get_message()))
        if "transit" in msg:
            ts.add_connection_hints(msg["transit"].get("hints-v1", []))
        if "error" in msg:
            print("refused:", msg["error"])
            break
        if "answer" in msg:
            break
    try:
        yield w.close()
    except Exception:
        pass
    if "answer" not in msg:
        return
    rp = yield ts.connect()
    payload(rp)
    # Wait (bounded) for the receiver to hang up or answer.
    d = rp.receive_record()
    d.addTimeout(30, reactor)
    try:
        got = yield d
        print("receiver answered:", got)
    except Exception as e:
        print("receiver hung up:", type(e).__name__)
    rp.close()


if __name__ == "__main__":
    task.react(lambda reactor: main(reactor, *sys.argv[1:]))
