"""Writes the seed corpus of the fuzz targets: fuzz/corpus/<target>/*.

Files named valid-* are well-formed checkpoints that specnorm must read; every other file is
malformed (truncated, garbage, empty, flipped bytes, huge declared sizes, wrong dtype, shape
and byte count that disagree, ...) and must be refused with an error, never a panic. The
cargo test crates/specnorm/tests/fuzz_corpus.rs holds specnorm to exactly that.

Run once from the repository root with a Python that has torch (only the .pt seeds need it):
    python fuzz/make_corpus.py
or, for the hostile seeds only (no torch needed):
    python fuzz/make_corpus.py --hostile-only
The outputs are committed; tests and CI never run this.
"""

import io
import json
import os
import struct
import zipfile

ROOT = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(ROOT, "..", "crates", "spectral-norm", "tests", "fixtures")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def save(target, name, data):
    folder = os.path.join(ROOT, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def flip(data, *positions):
    out = bytearray(data)
    for p in positions:
        out[p] ^= 0xFF
    return bytes(out)


def common(target, valid):
    """Cases every format shares."""
    save(target, "empty", b"")
    save(target, "garbage", b"not a checkpoint at all")
    save(target, "zeros", bytes(4096))
    save(target, "truncated-half", valid[: len(valid) // 2])
    save(target, "truncated-last-byte", valid[:-1])
    save(target, "truncated-16", valid[:16])


# ---------------------------------------------------------------- safetensors


def safetensors(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_cases():
    valid = fixture("paddle.safetensors")
    save("safetensors", "valid-paddle", valid)
    save("safetensors", "valid-torch-param", fixture("torch_param.safetensors"))
    common("safetensors", valid)
    (n,) = struct.unpack("<Q", valid[:8])
    header, data = json.loads(valid[8 : 8 + n]), valid[8 + n :]
    key = next(k for k in header if k != "__metadata__")

    def edited(change):
        h = json.loads(json.dumps(header))
        change(h[key])
        return safetensors(h, data)

    save("safetensors", "header-length-huge", b"\xff" * 8 + valid[8:])
    save("safetensors", "header-length-past-end", struct.pack("<Q", len(valid)) + valid[8:])
    save("safetensors", "header-not-json", valid[:8] + b"{" * n + data)
    save("safetensors", "header-flipped", flip(valid, 8, 9, 20))
    save("safetensors", "dtype-i32", edited(lambda t: t.update(dtype="I32")))
    save("safetensors", "bf16-bytes-of-f32", edited(lambda t: t.update(dtype="BF16")))
    save("safetensors", "dtype-unknown", edited(lambda t: t.update(dtype="F33")))
    save("safetensors", "shape-byte-mismatch", edited(lambda t: t.update(shape=t["shape"] + [2])))
    save("safetensors", "shape-huge", edited(lambda t: t.update(shape=[2**62, 2**62])))
    save("safetensors", "shape-negative", edited(lambda t: t.update(shape=[-1])))
    save(
        "safetensors",
        "offsets-past-end",
        edited(lambda t: t.update(data_offsets=[0, 2**40])),
    )
    save(
        "safetensors",
        "offsets-reversed",
        edited(lambda t: t.update(data_offsets=t["data_offsets"][::-1])),
    )
    save("safetensors", "data-truncated", valid[:-10])


# ---------------------------------------------------------------- pdparams


def text(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pd_array(name, shape, dtype=b"f4", order=b"<", payload=None, count=None):
    """One dict entry as spectral_norm::pdparams::write encodes it (numpy's pickling)."""
    width = 8 if dtype == b"f8" else 4
    elements = 1
    for d in shape:
        elements *= d
    payload = bytes(width * elements) if payload is None else payload
    count = len(payload) if count is None else count
    out = text(name)
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01("
    for d in shape:
        out += b"J" + struct.pack("<i", d)
    out += b"tcnumpy\ndtype\n" + b"X" + struct.pack("<I", len(dtype)) + dtype
    out += b"\x89\x88\x87R(K\x03" + b"X" + struct.pack("<I", len(order)) + order
    out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89B" + struct.pack("<I", count)
    return out + payload + b"tb"


def pd_dict(*entries):
    return b"\x80\x02}(" + b"".join(entries) + b"u."


def pdparams_cases():
    valid = fixture("paddle.pdparams")
    save("pdparams", "valid-paddle", valid)
    save("pdparams", "valid-written", pd_dict(pd_array("fc.weight", [3, 2])))
    save("pdparams", "valid-f8", pd_dict(pd_array("w", [2], dtype=b"f8")))
    common("pdparams", valid)
    save("pdparams", "truncated-300", valid[:300])
    save("pdparams", "flipped-opcodes", flip(valid, 0, 1, 2, 3))
    save("pdparams", "dtype-i4", pd_dict(pd_array("w", [3], dtype=b"i4")))
    save("pdparams", "valid-f2", pd_dict(pd_array("w", [3], dtype=b"f2", payload=bytes(6))))
    save("pdparams", "big-endian", pd_dict(pd_array("w", [3], order=b">")))
    save("pdparams", "shape-byte-mismatch", pd_dict(pd_array("w", [3, 2], payload=bytes(20))))
    save("pdparams", "shape-huge", pd_dict(pd_array("w", [2**31 - 1] * 3, payload=b"")))
    save("pdparams", "shape-negative", pd_dict(pd_array("w", [-4], payload=b"")))
    save(
        "pdparams",
        "bytes-length-huge",
        pd_dict(pd_array("w", [3], payload=bytes(12), count=0xFFFFFFFF)),
    )
    save("pdparams", "string-length-huge", b"\x80\x02}(X\xff\xff\xff\xffw")
    save("pdparams", "root-not-dict", b"\x80\x02]q\x00.")
    save("pdparams", "memo-missing", b"\x80\x02h\x07.")
    save("pdparams", "unknown-opcode", b"\x80\x02\xfe.")
    save("pdparams", "no-stop", pd_dict(pd_array("w", [3]))[:-1])
    save("pdparams", "pop-empty-stack", b"\x80\x020.")
    save("pdparams", "setitems-no-mark", b"\x80\x02}u.")
    save("pdparams", "deep-marks", b"\x80\x02" + b"(" * 100_000 + b".")
    save("pdparams", "deep-tuples", b"\x80\x02K\x01" + b"\x85" * 100_000 + b".")
    # FRAME's length is only a buffering hint, so a wrong one is harmless (Paddle's own file,
    # whose first FRAME then claims 2^64 - 1 bytes).
    paddle = fixture("paddle.pdparams")
    assert paddle[:3] == b"\x80\x04\x95"
    save("pdparams", "valid-frame-length-wrong", paddle[:3] + b"\xff" * 8 + paddle[11:])
    # A dict with no arrays: nothing to read is an error.
    save("pdparams", "no-arrays", b"\x80\x02}.")
    # Each step a list of two memo copies of the previous one: 2^40 nodes unless copies are
    # budgeted.
    double = b"](h\x00h\x00eq\x00"
    save("pdparams", "memo-exponential", b"\x80\x02]q\x00" + double * 40 + b".")


# ---------------------------------------------------------------- pytorch


def torch_bytes(state):
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def rezip(data, change):
    """The zip `data` with each (name, bytes) passed through `change` (None drops it)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            content = change(info.filename, source.read(info.filename))
            if content is not None:
                target.writestr(info.filename, content)
    return out.getvalue()


def pytorch_cases():
    import torch

    valid = fixture("torch_hook.pt")
    save("pytorch", "valid-hook", valid)
    save("pytorch", "valid-param", fixture("torch_param.pt"))
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    plain = torch_bytes({"w": w})
    save("pytorch", "valid-f64", torch_bytes({"w": w.double()}))
    common("pytorch", valid)
    save("pytorch", "garbage-zip-magic", b"PK\x03\x04 definitely not a zip")
    save("pytorch", "dtype-int32", torch_bytes({"w": w.int()}))
    save("pytorch", "valid-f16", torch_bytes({"w": w.half()}))
    save("pytorch", "dtype-bool", torch_bytes({"w": w > 2}))
    data_entry = lambda name: "/data/" in name  # noqa: E731
    save(
        "pytorch",
        "storage-short",
        rezip(plain, lambda n, c: c[: len(c) // 2] if data_entry(n) else c),
    )
    save("pytorch", "storage-missing", rezip(plain, lambda n, c: None if data_entry(n) else c))
    pickle_entry = lambda name: name.endswith("data.pkl")  # noqa: E731
    save("pytorch", "pickle-missing", rezip(plain, lambda n, c: None if pickle_entry(n) else c))
    save(
        "pytorch",
        "pickle-garbage",
        rezip(plain, lambda n, c: b"\x80\x02garbage" if pickle_entry(n) else c),
    )
    save(
        "pytorch",
        "pickle-truncated",
        rezip(plain, lambda n, c: c[: len(c) // 2] if pickle_entry(n) else c),
    )
    # The size (2, 3) is pickled as K\x02 K\x03 TUPLE2; make it (2³¹ − 1, 2³¹ − 1).
    huge = b"J\xff\xff\xff\x7fJ\xff\xff\xff\x7f\x86"

    def huge_shape(name, content):
        if not pickle_entry(name):
            return content
        assert b"K\x02K\x03\x86" in content
        return content.replace(b"K\x02K\x03\x86", huge, 1)

    save("pytorch", "shape-huge", rezip(plain, huge_shape))
    # A bare pickle of a dict without tensors: nothing to inspect, but not an error.
    # A state dict with no tensor: nothing to read is an error.
    save("pytorch", "pickle-without-tensors", b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01K\x01s.")
    save("pytorch", "flipped-central-directory", flip(valid, len(valid) - 20, len(valid) - 10))


# ---------------------------------------------------------------- burnpack


def cbor(value):
    """The CBOR subset burnpack metadata uses: maps, arrays, text, non-negative ints."""

    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for size, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | code]) + n.to_bytes(size, "big")
        raise ValueError(n)

    if isinstance(value, int):
        return head(0, value)
    if isinstance(value, str):
        return head(3, len(value.encode())) + value.encode()
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())


def burnpack(tensors, metadata_override=None, version=1, magic=b"NRUB", size=None):
    """A burnpack container: header, CBOR metadata, 256-aligned data (burn-pack 0.22.1)."""
    descriptors, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        data += bytes(-len(data) % 256)
        descriptors[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(payload)],
        }
        data += payload
    metadata = metadata_override or cbor({"tensors": descriptors})
    size = len(metadata) if size is None else size
    header = magic + struct.pack("<H", version) + struct.pack("<I", size)
    start = 10 + len(metadata)
    return header + metadata + bytes(-start % 256) + data


def floats(*values):
    return struct.pack(f"<{len(values)}f", *values)


def burnpack_cases():
    # A spectrally normalized Linear(3 → 2) under Burn's names, u and v unit vectors.
    normalized = {
        "fc.weight": ("F32", [3, 2], floats(1, 0, 0, 2, 0, 0)),
        "fc.weight.spectral_norm.u": ("F32", [2], floats(0, 1)),
        "fc.weight.spectral_norm.v": ("F32", [3], floats(0, 1, 0)),
        "fc.bias": ("F32", [2], floats(0, 0)),
    }
    valid = burnpack(normalized)
    save("burnpack", "valid-normalized", valid)
    save("burnpack", "valid-f64", burnpack({"w": ("F64", [2], struct.pack("<2d", 1, 2))}))
    save("burnpack", "no-tensors", burnpack({}))
    common("burnpack", valid)
    save("burnpack", "bad-magic", burnpack(normalized, magic=b"BURN"))
    save("burnpack", "version-future", burnpack(normalized, version=0xFFFF))
    save("burnpack", "metadata-size-huge", burnpack(normalized, size=0xFFFFFFFF))
    save("burnpack", "metadata-size-past-end", burnpack(normalized, size=len(valid)))
    save("burnpack", "metadata-garbage", burnpack(normalized, metadata_override=b"\xff" * 40))
    deep = b"\x81" * 10_000 + b"\x00"
    save("burnpack", "metadata-deep", burnpack(normalized, metadata_override=deep))
    save("burnpack", "data-truncated", valid[:-4])
    save("burnpack", "dtype-i32", burnpack({"w": ("I32", [2], bytes(8))}))
    save("burnpack", "valid-bf16", burnpack({"w": ("BF16", [2], bytes(4))}))
    save("burnpack", "dtype-unknown", burnpack({"w": ("F33", [2], bytes(8))}))
    save("burnpack", "shape-byte-mismatch", burnpack({"w": ("F32", [3, 5], bytes(24))}))
    save("burnpack", "shape-huge", burnpack({"w": ("F32", [2**63, 2**63], bytes(8))}))
    offsets = cbor({"tensors": {"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}})
    save("burnpack", "offsets-reversed", burnpack({}, metadata_override=offsets))
    far = cbor({"tensors": {"w": {"dtype": "F32", "shape": [2], "data_offsets": [2**40, 2**40 + 8]}}})
    save("burnpack", "offsets-past-end", burnpack({}, metadata_override=far))


# ---------------------------------------------------------------- hostile (no torch needed)


def torch_zip(pickle, storages, compression=zipfile.ZIP_STORED):
    """A .pt zip as torch.save lays it out, from a hand-written pickle and raw storages."""
    buf = io.BytesIO()
    entries = [("archive/data.pkl", pickle), ("archive/byteorder", b"little"),
               ("archive/version", b"3\n")]
    entries += [(f"archive/data/{key}", data) for key, data in storages.items()]
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            # A fixed date, so that the seeds come out the same on every run.
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compression)
    return buf.getvalue()


def torch_view(name, numel, shape, stride):
    """The pickle of {name: a float tensor over storage '0' of numel elements}."""
    ints = lambda values: b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"
    return (
        b"\x80\x02}" + text(name)
        + b"ctorch._utils\n_rebuild_tensor_v2\n((" + text("storage")
        + b"ctorch\nFloatStorage\n" + text("0") + text("cpu") + b"J" + struct.pack("<i", numel)
        + b"tQK\x00" + ints(shape) + ints(stride)
        + b"\x89ccollections\nOrderedDict\n)RtRs."
    )


def hostile_cases():
    """Inputs that, read naively, abort the process or take memory far beyond their size."""
    # LONG_BINPUT of memo index 2^32 - 1: a dense memo table would be 137 GB.
    save("pdparams", "memo-index-huge", b"\x80\x02]r\xff\xff\xff\xff.")
    # A list and a stack of a million one-byte items: ~32 bytes of values per byte of file.
    save("pdparams", "list-millions", b"\x80\x02](" + b"N" * 1_000_000 + b"e.")
    save("pdparams", "stack-millions", b"\x80\x02" + b"N" * 1_000_000 + b".")
    # Globals that are not numpy's array rebuild; one with a newline and an ANSI escape.
    save("pdparams", "global-os-system",
         b"\x80\x02}" + text("a") + b"cos\nsystem\n" + text("ls") + b"\x85Rs.")
    save("pdparams", "global-escapes",
         b"\x80\x04}\x8c\x01a\x8c\x08builtins\x8c\x06e\nval\x1b\x93N\x85Rs.")
    # A state dict whose value is os.system("ls"), as a .pt zip: named and refused.
    save("pytorch", "global-os-system",
         torch_zip(b"\x80\x02}" + text("a") + b"cos\nsystem\n" + text("ls") + b"\x85Rs.", {}))
    # A view of one element as 2^29 x 4 (stride 0): 8 GiB if materialized.
    save("pytorch", "view-stride-zero-huge",
         torch_zip(torch_view("w", 1, [1 << 29, 4], [0, 0]), {"0": struct.pack("<f", 1.0)}))
    save("pytorch", "view-stride-zero",
         torch_zip(torch_view("w", 1, [1 << 20, 4], [0, 0]), {"0": struct.pack("<f", 1.0)}))
    # A deflated storage that inflates 1000-fold (64 MiB of zeros from ~64 KB).
    numel = 16 << 20
    save("pytorch", "storage-inflates",
         torch_zip(torch_view("w", numel, [numel], [1]), {"0": bytes(4 * numel)},
                   zipfile.ZIP_DEFLATED))
    # A readable file whose key holds a newline and an ANSI escape, and an unreadable one.
    header = {"fc.weight\n\x1b[2J": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}}
    save("safetensors", "valid-key-escapes", safetensors(header, struct.pack("<2f", 1.0, 2.0)))
    header = {"fc.weight\n\x1b[2J": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}
    save("safetensors", "dtype-i32-key-escapes", safetensors(header, bytes(8)))


if __name__ == "__main__":
    import sys

    hostile_cases()
    if "--hostile-only" in sys.argv:
        sys.exit(0)
    safetensors_cases()
    pdparams_cases()
    pytorch_cases()
    burnpack_cases()
