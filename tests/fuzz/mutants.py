"""Mutated model files, deterministic by seed: byte-level damage, HDF5-structure damage
(through h5py) and zip-level damage to .keras archives.

Each mutator takes (source path, destination path, rng) and writes one mutant; a
mutator that finds nothing to damage in a file writes an unmodified copy (still a case).
"""
import io
import json
import os
import shutil
import struct
import zipfile

import h5py
import numpy as np

# --- byte level --------------------------------------------------------------------------


def flip_bytes(src, dst, rng):
    data = bytearray(open(src, "rb").read())
    for _ in range(int(rng.integers(1, 16))):
        data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
    open(dst, "wb").write(bytes(data))


def truncate(src, dst, rng):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: int(rng.integers(0, len(data)))])


def zero_run(src, dst, rng):
    data = bytearray(open(src, "rb").read())
    start = int(rng.integers(0, len(data)))
    n = int(rng.integers(1, 4096))
    data[start: start + n] = bytes(len(data[start: start + n]))
    open(dst, "wb").write(bytes(data))


def metadata_bytes(src, dst, rng):
    """Damage the first 4 KB (superblock and root group metadata live there)."""
    data = bytearray(open(src, "rb").read())
    head = 0
    if data[:4] == b"PK\x03\x04":  # in a .keras: the start of the weights member
        with zipfile.ZipFile(src) as zf:
            info = zf.getinfo("model.weights.h5")
        head = info.header_offset + 30 + len(info.filename) + struct.unpack(
            "<H", data[info.header_offset + 28: info.header_offset + 30])[0]
    for _ in range(int(rng.integers(1, 8))):
        pos = head + int(rng.integers(0, min(4096, len(data) - head)))
        data[pos] ^= int(rng.integers(1, 256))
    open(dst, "wb").write(bytes(data))


# --- HDF5 structure (on the weights file; for .keras, on its weights member) ------------------


def _datasets(f):
    out = []
    f.visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) else None)
    return out


def _weights(f):
    return [n for n in _datasets(f) if n.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "recurrent_kernel", "bias")
            or n.rsplit("/", 1)[-1] in ("0", "1", "2")]


def _replace(f, name, maker):
    attrs = dict(f[name].attrs)
    del f[name]
    maker(f, name)
    for k, v in attrs.items():
        f[name].attrs[k] = v


STRUCT = {
    "group_for_dataset": lambda f, n: f.create_group(n),
    "scalar": lambda f, n: f.create_dataset(n, data=np.float32(1.5)),
    "empty": lambda f, n: f.create_dataset(n, shape=(0,), dtype="f4"),
    "strings": lambda f, n: f.create_dataset(n, data=np.array([b"abc", b"def"])),
    "vlen": lambda f, n: f.create_dataset(n, data=np.array(["x", "yy"], dtype=object),
                                          dtype=h5py.string_dtype()),
    "complex": lambda f, n: f.create_dataset(n, data=np.ones((3, 4), np.complex64)),
    "compound": lambda f, n: f.create_dataset(n, data=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])),
    "ints": lambda f, n: f.create_dataset(n, data=np.ones((3, 8), np.int64)),
    "huge_chunked": lambda f, n: f.create_dataset(n, shape=(1 << 20, 1 << 20), dtype="f4", chunks=(64, 64)),
    "wrong_shape": lambda f, n: f.create_dataset(n, data=np.ones((7, 5, 3), np.float32)),
    "soft_link_loop": lambda f, n: f.__setitem__(n, h5py.SoftLink("/" + n)),
}


def _on_weights_file(src, dst, edit):
    """Apply `edit(h5file)` to a copy: the file itself, or a .keras archive's weights member."""
    with open(src, "rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if not is_zip:
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            edit(f)
        return
    with zipfile.ZipFile(src) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(dst, "w") as out:
        for info, data in members:
            if info.filename == "model.weights.h5":
                buf = io.BytesIO(data)
                with h5py.File(buf, "r+") as f:
                    edit(f)
                data = buf.getvalue()
            out.writestr(info, data)


def structural(kind):
    def mutate(src, dst, rng):
        def edit(f):
            names = _weights(f) or _datasets(f)
            if names:
                _replace(f, names[int(rng.integers(0, len(names)))], STRUCT[kind])
        _on_weights_file(src, dst, edit)
    mutate.__name__ = f"h5_{kind}"
    return mutate


def hard_link_cycle(src, dst, rng):
    def edit(f):
        groups = []
        f.visititems(lambda n, o: groups.append(n) if isinstance(o, h5py.Group) else None)
        if groups:
            g = f[groups[int(rng.integers(0, len(groups)))]]
            g["cycle"] = g  # a hard link to itself
    _on_weights_file(src, dst, edit)


def _config_attr_edit(make):
    """Replace the legacy model_config attribute (full .h5 files only)."""
    def mutate(src, dst, rng):
        def edit(f):
            if "model_config" in f.attrs:
                f.attrs["model_config"] = make(rng)
        with open(src, "rb") as fh:
            if fh.read(4) == b"PK\x03\x04":
                return _zip_member(src, dst, "config.json", lambda data: make(rng))
        _on_weights_file(src, dst, edit)
    return mutate


def _deep_json(rng):
    depth = int(rng.integers(2000, 200000))
    return '{"class_name": "Sequential", "config": ' + '{"layer": ' * depth + "1" + "}" * depth + "}"


deep_config = _config_attr_edit(_deep_json)
deep_config.__name__ = "deep_config"
bad_utf8_config = _config_attr_edit(lambda rng: b"\xff\xfe{\x80not json")
bad_utf8_config.__name__ = "bad_utf8_config"
garbage_config = _config_attr_edit(lambda rng: json.dumps({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "LSTM", "config": {"name": 5, "units": "many", "use_bias": [1]}}, 7, None]}}))
garbage_config.__name__ = "garbage_config"


def config_types(src, dst, rng):
    """Every scalar in the config replaced by a value of another type, at random places."""
    def scramble(obj):
        if isinstance(obj, dict):
            return {k: scramble(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [scramble(v) for v in obj]
        if rng.random() < 0.3:
            return [None, 7, -1, "x", [], {}, 1e308, True][int(rng.integers(0, 8))]
        return obj

    def make(_):
        return json.dumps(scramble(_config_of(src)))
    _config_attr_edit(make)(src, dst, rng)


def _config_of(src):
    with open(src, "rb") as fh:
        if fh.read(4) == b"PK\x03\x04":
            with zipfile.ZipFile(src) as zf:
                return json.loads(zf.read("config.json"))
    with h5py.File(src, "r") as f:
        raw = f.attrs.get("model_config")
        return json.loads(raw) if raw is not None else {}


# --- zip level ------------------------------------------------------------------------------


def _zip_member(src, dst, name, change, write=None):
    """Copy archive `src` to `dst` with member `name` changed (`change(data)`: new bytes, or
    None to drop it) or written by `write(archive, data)`."""
    with open(src, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            shutil.copy(src, dst)
            return
    with zipfile.ZipFile(src) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(dst, "w") as out:
        for info, data in members:
            if info.filename == name and write is not None:
                write(out, data)
                continue
            if info.filename == name:
                data = change(data)
                if isinstance(data, str):
                    data = data.encode()
                if data is None:
                    continue
            out.writestr(info, data)


def zip_bomb_config(src, dst, rng):
    """config.json or metadata.json padded with 400 MB of spaces, deflated to ~400 KB;
    streamed into the archive, never held in memory."""
    def bomb(out, data):
        zinfo = zipfile.ZipInfo(member)
        zinfo.compress_type = zipfile.ZIP_DEFLATED
        with out.open(zinfo, "w") as w:
            block = b" " * (1 << 20)
            for _ in range(400):
                w.write(block)
            w.write(data)
    member = rng.choice(["config.json", "metadata.json"])
    _zip_member(src, dst, member, None, write=bomb)


def drop_member(src, dst, rng):
    name = rng.choice(["config.json", "metadata.json", "model.weights.h5"])
    _zip_member(src, dst, name, lambda data: None)


def non_utf8_member(src, dst, rng):
    name = rng.choice(["config.json", "metadata.json"])
    _zip_member(src, dst, name, lambda data: b"\xff\xfe" + data[::-1])


def zip_header_bytes(src, dst, rng):
    """Damage zip headers: local headers, central directory, end record."""
    data = bytearray(open(src, "rb").read())
    if data[:4] != b"PK\x03\x04":
        open(dst, "wb").write(bytes(data))
        return
    spots = [i for sig in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")
             for i in range(len(data)) if data.startswith(sig, i)][:64]
    for _ in range(int(rng.integers(1, 4))):
        pos = spots[int(rng.integers(0, len(spots)))] + int(rng.integers(4, 46))
        if pos < len(data):
            data[pos] ^= int(rng.integers(1, 256))
    open(dst, "wb").write(bytes(data))


BYTE = [flip_bytes, truncate, zero_run, metadata_bytes]
STRUCTURE = [structural(k) for k in STRUCT] + [hard_link_cycle, deep_config, bad_utf8_config, garbage_config,
                                                config_types]
ZIP = [zip_bomb_config, drop_member, non_utf8_member, zip_header_bytes]
ALL = BYTE + STRUCTURE + ZIP


def make(sources, count, out_dir, seed=0):
    """`count` mutants of `sources` in `out_dir`: [(path, mutator name, source)]."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for k in range(count):
        src = sources[k % len(sources)]
        mutator = ALL[int(rng.integers(0, len(ALL)))]
        ext = ".keras" if src.endswith(".keras") else ".h5"
        dst = os.path.join(out_dir, f"m{k:05d}_{mutator.__name__}{ext}")
        try:
            mutator(src, dst, np.random.default_rng([seed, k]))
        except Exception as e:  # the mutator could not apply itself: plain copy, still a case
            shutil.copy(src, dst)
            mutator_name = f"{mutator.__name__} (not applied: {type(e).__name__})"
        else:
            mutator_name = mutator.__name__
        cases.append((dst, mutator_name, src))
    return cases
