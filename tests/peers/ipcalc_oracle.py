#!/usr/bin/env python3
"""The oracle for `taojie ipcalc - --json`: reads the same cases, one per line, and prints what
Python's ipaddress module says, in the same JSON shape (one object per result per line).

Numbers, masks, networks, hosts and "same subnet?" come from ipaddress itself (hosts() for
small networks; for big ones its rule, checked on the small ones: IPv4 drops the network and
broadcast, IPv6 drops the first address, /31, /32, /127 and /128 drop nothing). The kind comes
from the IANA special-purpose registries written out below, each answer cross-checked against
ipaddress's own is_* flags where those flags mean the same thing in every Python version.
The rules of the command line itself (masks must agree, two addresses need a mask, the split
limit) are taojie's contract, restated here.
"""
import ipaddress as ip
import json
import sys

LIMIT = 65536

V4_KINDS = [
    ("0.0.0.0/32", "unspecified"), ("0.0.0.0/8", "reserved"), ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"), ("192.0.0.0/24", "reserved"), ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"), ("255.255.255.255/32", "broadcast"),
]
V6_KINDS = [
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("::ffff:0:0/96", "ipv4-mapped"),
    ("2001:db8::/32", "documentation"), ("3fff::/20", "documentation"),
    ("2001:2::/48", "benchmarking"), ("2001::/23", "reserved"), ("fc00::/7", "private"),
    ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
    ("2000::/3", "global"),
]
TABLE = {4: [(ip.ip_network(n), k) for n, k in V4_KINDS],
         6: [(ip.ip_network(n), k) for n, k in V6_KINDS]}
IETF_V6 = ip.ip_network("2001::/23")
DOC_3FFF = ip.ip_network("3fff::/20")
SIX_TO_FOUR = ip.ip_network("2002::/16")


class CaseError(Exception):
    pass


def kind(a):
    found = [(n.prefixlen, k) for n, k in TABLE[a.version] if a in n]
    k = max(found)[1] if found else ("global" if a.version == 4 else "reserved")
    if a.version == 6 and a.ipv4_mapped is not None:
        return k  # Python 3.13 answers is_* for mapped addresses by their IPv4 address
    # Cross-checks: flags whose meaning has not changed between Python versions.
    assert (k == "unspecified") == a.is_unspecified, a
    assert (k == "loopback") == a.is_loopback, a
    assert (k == "link-local") == a.is_link_local, a
    assert (k == "multicast") == a.is_multicast, a
    if k in ("private", "loopback", "link-local", "benchmarking", "unspecified") or (
            k == "documentation" and a not in DOC_3FFF):
        assert a.is_private, a
    if a.version == 4:
        assert a.is_reserved == (k == "reserved" and a.packed[0] >= 240 or k == "broadcast"), a
        if k == "global":
            assert a.is_global, a
    else:
        assert a.is_site_local == (k == "site-local"), a
        assert a.is_reserved == (k in ("reserved", "unspecified", "loopback") and a not in IETF_V6), a
        if k == "global" and a not in SIX_TO_FOUR:  # 6to4: not global for Python >= 3.12.4
            assert a.is_global, a
    return k


def fmt(a):
    """RFC 5952 text, IPv4-mapped addresses in mixed notation (as Rust and Python >= 3.13)."""
    if a is None:
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        return "::ffff:%s" % a.ipv4_mapped
    return str(a)


def describe(addr, net):
    v6 = net.version == 6
    hosts = net.hosts()
    first = next(iter(hosts))
    if net.num_addresses <= 1024:
        every = list(net.hosts())
        count, last = len(every), every[-1]
        if net.prefixlen < net.max_prefixlen - 1:  # the rule used for big networks, checked
            assert count == net.num_addresses - (1 if v6 else 2)
            assert last == (net[-1] if v6 else net[-2])
    else:
        count = net.num_addresses - (1 if v6 else 2)
        last = net[-1] if v6 else net[-2]
    o = addr.packed[0]
    return {
        "address": fmt(addr),
        "prefix": net.prefixlen,
        "netmask": fmt(net.netmask),
        "wildcard": fmt(net.hostmask),
        "network": fmt(net.network_address),
        "broadcast": None if v6 or net.prefixlen >= 31 else fmt(net.broadcast_address),
        "first": fmt(first),
        "last": fmt(last),
        "hosts": count,
        "kind": kind(addr),
        "class": None if v6 else "A" if o < 128 else "B" if o < 192 else "C" if o < 224 else "D" if o < 240 else "E",
        "version": net.version,
    }


def prefix_of(text, addr):
    """A prefix length or netmask for addr's family, as ipaddress reads it."""
    digits = text[1:] if text.startswith("/") else text
    if digits.isdigit():
        p = int(digits)
        if p > addr.max_prefixlen:
            raise CaseError("prefix out of range")
        return p
    if ":" not in text and "." not in text:
        raise CaseError("not a mask")
    if addr.version == 6:
        # ipaddress takes IPv6 prefixes as numbers only; a netmask's one-bits must be contiguous.
        bits = int(ip.IPv6Address(text))
        p = bin(bits).count("1")
        if bits != (1 << 128) - (1 << (128 - p)):
            raise CaseError("not a netmask")
        return p
    return ip.ip_network("%s/%s" % (addr, text), strict=False).prefixlen


def read(text):
    """ADDR[/P]: the address and the prefix if one was given."""
    addr_text, slash, mask = text.partition("/")
    addr = ip.ip_address(addr_text)
    if not slash:
        return addr, None
    if mask.isdigit():
        return ip.ip_interface(text).ip, ip.ip_interface(text).network.prefixlen
    return addr, prefix_of(mask, addr)


def agreed(given):
    given = [p for p in given if p is not None]
    if any(p != given[0] for p in given):
        raise CaseError("masks disagree")
    return given[0] if given else None


def case(tokens):
    addrs, mask, split, limit = [], None, None, LIMIT
    it = iter(tokens)
    for t in it:
        if t in ("--mask", "-m"):
            mask = next(it)
        elif t == "--split":
            split = next(it)
        elif t == "--limit":
            limit = int(next(it))
        else:
            addrs.append(t)
    is_prefix = lambda t: (t[1:] if t.startswith("/") else t).isdigit()
    if split is not None:
        if len(addrs) != 1:
            raise CaseError("one network")
        net_text, new_text = addrs[0], split
        if is_prefix(addrs[0]) and not is_prefix(split):
            net_text, new_text = split, addrs[0]
        addr, p = read(net_text)
        p = agreed([p, prefix_of(mask, addr) if mask else None])
        net = ip.ip_network((addr, addr.max_prefixlen if p is None else p), strict=False)
        new = prefix_of(new_text, addr)
        if new < net.prefixlen:
            raise CaseError("shorter")
        if 2 ** (new - net.prefixlen) > limit:
            raise CaseError("limit")
        return [describe(s.network_address, s) for s in net.subnets(new_prefix=new)]
    if len(addrs) == 1:
        addr, p = read(addrs[0])
        p = agreed([p, prefix_of(mask, addr) if mask else None])
        p = addr.max_prefixlen if p is None else p
        return [describe(addr, ip.ip_network((addr, p), strict=False))]
    a, pa = read(addrs[0])
    b, pb = read(addrs[1])
    if a.version != b.version:
        raise CaseError("families")
    p = agreed([pa, pb, prefix_of(mask, a) if mask else None])
    if p is None:
        raise CaseError("no mask")
    net_a = ip.ip_network((a, p), strict=False)
    net_b = ip.ip_network((b, p), strict=False)
    out = describe(a, net_a)
    out["same_subnet"] = net_a == net_b and b in net_a
    out["other"] = fmt(b)
    out["other_network"] = fmt(net_b.network_address)
    return [out]


def main():
    for line in sys.stdin:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            results = case(text.split())
        except (CaseError, ValueError, StopIteration) as e:
            results = [{"input": text, "error": str(e) or type(e).__name__}]
        for r in results:
            print(json.dumps(r, separators=(",", ":")))


if __name__ == "__main__":
    main()
