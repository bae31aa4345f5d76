"""BLAKE3 (hash mode), written from its specification for the files peer: the root hash of a
byte string, the chaining value of a subtree that starts at any chunk (what taojie's files
protocol sends for each 4 MiB segment), and the merge of subtree values into the root.
Pure Python, with the compression function unrolled once at import: about 1-2 MB/s, enough
for test files of a few MiB."""
import struct

IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
      0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
CHUNK_START, CHUNK_END, PARENT, ROOT = 1, 2, 4, 8
BLOCK_LEN, CHUNK_LEN = 64, 1024


def _generate():
    """Source of compress(cv, m, counter, block_len, flags) -> 16 words, every round and G
    written out with the message schedule resolved, on local variables."""
    lines = ['def compress(cv, m, counter, block_len, flags):',
             '    v0, v1, v2, v3, v4, v5, v6, v7 = cv',
             '    v8, v9, v10, v11 = %d, %d, %d, %d' % IV[:4],
             '    v12 = counter & 0xFFFFFFFF',
             '    v13 = (counter >> 32) & 0xFFFFFFFF',
             '    v14 = block_len',
             '    v15 = flags',
             '    ' + ', '.join('m%d' % i for i in range(16)) + ' = m']
    order = list(range(16))

    def g(a, b, c, d, x, y):
        a, b, c, d = 'v%d' % a, 'v%d' % b, 'v%d' % c, 'v%d' % d
        return [
            f'    {a} = ({a} + {b} + m{x}) & 0xFFFFFFFF',
            f'    {d} ^= {a}; {d} = (({d} >> 16) | ({d} << 16)) & 0xFFFFFFFF',
            f'    {c} = ({c} + {d}) & 0xFFFFFFFF',
            f'    {b} ^= {c}; {b} = (({b} >> 12) | ({b} << 20)) & 0xFFFFFFFF',
            f'    {a} = ({a} + {b} + m{y}) & 0xFFFFFFFF',
            f'    {d} ^= {a}; {d} = (({d} >> 8) | ({d} << 24)) & 0xFFFFFFFF',
            f'    {c} = ({c} + {d}) & 0xFFFFFFFF',
            f'    {b} ^= {c}; {b} = (({b} >> 7) | ({b} << 25)) & 0xFFFFFFFF',
        ]

    for _ in range(7):
        s = order
        for (a, b, c, d), k in zip(((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                                    (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)),
                                   range(0, 16, 2)):
            lines += g(a, b, c, d, s[k], s[k + 1])
        order = [order[p] for p in PERMUTATION]
    lines.append('    return (' + ', '.join(f'v{i} ^ v{i + 8}' for i in range(8)) + ', '
                 + ', '.join(f'v{i + 8} ^ cv[{i}]' for i in range(8)) + ')')
    return '\n'.join(lines)


exec(_generate())  # defines compress


def _words(block):
    return struct.unpack('<16I', block.ljust(BLOCK_LEN, b'\0'))


def _chunk(data, counter, root):
    """The chaining value (or, with `root`, the first 8 output words) of one chunk."""
    cv = IV
    blocks = [data[i:i + BLOCK_LEN] for i in range(0, len(data), BLOCK_LEN)] or [b'']
    for i, block in enumerate(blocks):
        flags = (CHUNK_START if i == 0 else 0) | (CHUNK_END if i == len(blocks) - 1 else 0)
        if root and i == len(blocks) - 1:
            flags |= ROOT
        cv = compress(cv, _words(block), counter, len(block), flags)[:8]
    return cv


def parent(left, right, root=False):
    """The value of a parent node over two children's chaining values."""
    return compress(IV, tuple(left) + tuple(right), 0, BLOCK_LEN,
                    PARENT | (ROOT if root else 0))[:8]


def left_len(n):
    """Bytes in the left subtree of a node over `n` bytes (n > CHUNK_LEN): the largest power
    of two whole chunks that leaves something on the right."""
    full = (n - 1) // CHUNK_LEN
    return CHUNK_LEN * (1 << (full.bit_length() - 1))


def subtree(data, chunk=0, root=False):
    """The value of the subtree over `data`, whose first chunk is chunk number `chunk`."""
    if len(data) <= CHUNK_LEN:
        return _chunk(data, chunk, root)
    n = left_len(len(data))
    return parent(subtree(data[:n], chunk), subtree(data[n:], chunk + n // CHUNK_LEN), root)


def to_bytes(words):
    return struct.pack('<8I', *words)


def from_hex(text):
    return struct.unpack('<8I', bytes.fromhex(text))


def digest(data):
    """BLAKE3 of `data`, 32 bytes."""
    return to_bytes(subtree(data, 0, True))


def merge(size, cvs, segment):
    """The root hash of `size` bytes from the chaining values of its `segment`-byte pieces
    (each a complete subtree), as taojie's files protocol merges them."""
    def node(start, n, root=False):
        if n <= segment:
            return cvs[start // segment]
        k = left_len(n)
        return parent(node(start, k), node(start + k, n - k), root)
    return to_bytes(node(0, size, True))


if __name__ == '__main__':
    # The specification's test vectors: input byte i is i % 251.
    import sys
    vectors = {
        0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
        1: '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213',
        1023: '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11',
        1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
        2049: '5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030',
        8193: 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b',
        102400: 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085',
    }
    for n, want in vectors.items():
        got = digest(bytes(i % 251 for i in range(n))).hex()
        if got != want:
            sys.exit('length %d: %s, want %s' % (n, got, want))
    print('ok')
