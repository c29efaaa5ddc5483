"""Update a CRC-32 for a few changed byte runs without re-reading the whole data.

CRC-32 is affine over GF(2): for equal-length messages, crc(A ^ D) = crc(A) ^ L(D) with L
linear. A change D that is non-zero only in a run d at offset o, followed by r bytes,
contributes L(d) "shifted" by r zero bytes, where L(d) = crc(d) ^ crc(zeros(len(d))) and
the shift is multiplication by x^(8r) modulo the CRC polynomial (what zlib's
crc32_combine does). So an edit of a few kilobytes in a 350 MB zip member costs a few
kilobytes of CRC work instead of a 350 MB read.
"""
import zlib

POLY = 0xEDB88320  # CRC-32, reflected


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, reflected bit order."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ POLY if b & 1 else b >> 1


_X2N = [1 << 30]  # x^(2^k) mod p
for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))


def _x8nmodp(nbytes: int) -> int:
    """x^(8 * nbytes) modulo the CRC polynomial."""
    p, k = 1 << 31, 3
    while nbytes:
        if nbytes & 1:
            p = _multmodp(_X2N[k & 31], p)
        nbytes >>= 1
        k += 1
    return p


def updated(crc: int, total: int, changes) -> int:
    """The CRC of `total` bytes after `changes` = [(offset, old bytes, new bytes)]."""
    for offset, old, new in changes:
        delta = (int.from_bytes(old, "little") ^ int.from_bytes(new, "little")).to_bytes(len(old), "little")
        linear = zlib.crc32(delta) ^ zlib.crc32(bytes(len(delta)))
        crc ^= _multmodp(_x8nmodp(total - offset - len(delta)), linear)
    return crc & 0xFFFFFFFF


def combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    return (_multmodp(_x8nmodp(len2), crc1) ^ crc2) & 0xFFFFFFFF
