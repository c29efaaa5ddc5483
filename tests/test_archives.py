"""Damaged or ambiguous .keras archives: read as errors, never edited into corrupt ones."""
import os
import shutil
import struct
import zipfile

import pytest

from conftest import FIXTURES, run_cli

SRC = os.path.join(FIXTURES, "keras3", "lstm_gru.keras")


def central_entry(data: bytes, name: bytes) -> int:
    """Offset of `name`'s central-directory record."""
    i = data.find(b"PK\x01\x02")
    while data[i + 46:i + 46 + len(name)] != name:
        i = data.find(b"PK\x01\x02", i + 4)
    return i


def patched(tmp_path, fn):
    data = bytearray(open(SRC, "rb").read())
    fn(data)
    out = tmp_path / "m.keras"
    out.write_bytes(bytes(data))
    return out


def flip_weight_byte(data):
    with zipfile.ZipFile(SRC) as zf:
        info = zf.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + struct.unpack("<H", data[info.header_offset + 28:info.header_offset + 30])[0]
    data[start + info.file_size - 1] ^= 0xFF  # last byte: HDF5 still opens, the CRC does not match


def encrypted_flag(data):
    i = central_entry(data, b"model.weights.h5")
    data[i + 8] |= 1


def size_mismatch(data):
    i = central_entry(data, b"model.weights.h5")
    size = struct.unpack("<I", data[i + 24:i + 28])[0]
    data[i + 24:i + 28] = struct.pack("<I", size - 16)  # file_size != compress_size


MUTANTS = {"crc": (flip_weight_byte, "CRC-32"), "encrypted": (encrypted_flag, "encrypted"),
           "sizes": (size_mismatch, "declares")}


@pytest.mark.parametrize("kind", sorted(MUTANTS))
def test_damaged_archive_is_refused_for_reading_and_editing(tmp_path, kind):
    mutate, words = MUTANTS[kind]
    work = patched(tmp_path, mutate)
    before = work.read_bytes()
    for args in (["show", work, "lstm", "--gate", "f", "--part", "b"], ["export", work, "-o", tmp_path / "x"],
                 ["set-forget-bias", "1", work], ["set-forget-bias", "1", work, "-o", tmp_path / "o.keras"]):
        r = run_cli(*args)
        assert r.exit_code == 1, (args, r.stdout, r.stderr)
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert work.read_bytes() == before
    assert not (tmp_path / "o.keras").exists()


def test_duplicate_weights_member_is_refused(tmp_path):
    work = tmp_path / "dup.keras"
    with zipfile.ZipFile(SRC) as src, zipfile.ZipFile(work, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            out.writestr(src.getinfo("model.weights.h5"), src.read("model.weights.h5"))
    before = work.read_bytes()
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 1 and "two members named" in r.stderr
    assert work.read_bytes() == before


def test_valid_archive_still_edits_and_stays_valid(tmp_path):
    work = tmp_path / "m.keras"
    shutil.copy(SRC, work)
    assert run_cli("set-forget-bias", "1", work).exit_code == 0
    with zipfile.ZipFile(work) as zf:
        assert zf.testzip() is None
