"""The incremental CRC-32 update equals zlib's CRC of the edited data."""
import random
import zlib

from lstmtool.containers import crc32


def test_updated_matches_full_crc():
    rng = random.Random(3)
    for trial in range(200):
        n = rng.randint(1, 5000)
        data = bytearray(rng.randbytes(n))
        crc = zlib.crc32(data)
        changes = []
        for _ in range(rng.randint(1, 4)):
            off = rng.randint(0, n - 1)
            length = rng.randint(1, min(64, n - off))
            old = bytes(data[off:off + length])
            new = rng.randbytes(length)
            data[off:off + length] = new
            changes.append((off, old, new))
        assert crc32.updated(crc, n, changes) == zlib.crc32(data), trial
