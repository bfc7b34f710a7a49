"""The safetensors reader against files written here from the format's specification (8-byte
little-endian header length, JSON header, raw little-endian tensor bytes): values of every float
dtype, the listing, and rejection of broken files with one clear line."""
import json
import os
import struct

import h5py
import numpy as np

import common
from common import run


def st_bytes(tensors, metadata=None, header_override=None):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header_override if header_override is not None else header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def bf16(x):
    """bfloat16 bytes of float32 values (the upper half of each float32, truncated)."""
    return (np.asarray(x, "<f4").view("<u4") >> 16).astype("<u2").tobytes()


class SafeTensors(common.TmpCase):
    def write(self, name, blob):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(blob)
        return p

    def test_values_of_every_float_dtype(self):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((3, 4)).astype("<f4")
        b = rng.standard_normal(5).astype("<f2")
        c = rng.standard_normal((2, 3)).astype("<f4")
        d = rng.standard_normal(4).astype("<f8")
        ids = np.arange(7, dtype="<i8")
        p = self.write("w.safetensors", st_bytes({
            "vision_model.embeddings.position_ids": ("I64", (1, 7), ids.tobytes()),
            "a.weight": ("F32", a.shape, a.tobytes()), "b.bias": ("F16", b.shape, b.tobytes()),
            "c": ("BF16", c.shape, bf16(c)), "d": ("F64", d.shape, d.tobytes())}, {"format": "pt"}))
        out = self.path("o.h5")
        common.subprocess.run([common.ARGS.testtool, "st", p, out], check=True)
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(f["a.weight"][()], a)
            np.testing.assert_array_equal(f["b.bias"][()], b.astype(np.float32))  # f16 widens exactly
            want_c = (c.view("<u4") & 0xFFFF0000).view("<f4")
            np.testing.assert_array_equal(f["c"][()], want_c)
            np.testing.assert_array_equal(f["d"][()], d.astype(np.float32))
            self.assertNotIn("vision_model.embeddings.position_ids", f)  # integer tensors are not weights
        listing = json.loads(run("checkpoint", p, "--json").stdout)
        names = {t["name"]: t for t in listing["tensors"]}
        self.assertEqual(names["a.weight"]["shape"], [3, 4])
        self.assertEqual(names["c"]["dtype"], "BF16")
        self.assertEqual(listing["parameters"], 12 + 5 + 6 + 4 + 7)
        self.assertEqual(listing["format"], "pt")

    def test_f16_special_values(self):
        v = np.array([0.0, -0.0, 1.0, 65504.0, 6.1e-5, 5.96e-8, np.inf, -np.inf], "<f2")
        p = self.write("h.safetensors", st_bytes({"h": ("F16", v.shape, v.tobytes())}))
        out = self.path("o.h5")
        common.subprocess.run([common.ARGS.testtool, "st", p, out], check=True)
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(f["h"][()], v.astype(np.float32))  # subnormals included

    def test_broken_files(self):
        good = st_bytes({"a": ("F32", (2, 2), bytes(16)), "b": ("F32", (2,), bytes(8))})
        hl = struct.unpack("<Q", good[:8])[0]
        cases = {
            "truncated": (good[:-5], "data_offsets outside"),
            "header past end": (struct.pack("<Q", 10_000) + good[8:], "runs past the end"),
            "huge header": (struct.pack("<Q", 1 << 40) + good[8:], "exceeds the"),
            "tiny": (b"\x01\x02", "too short"),
            "not json": (struct.pack("<Q", 4) + b"{abc", "not valid JSON"),
            "overlap": (st_bytes({}, header_override={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + bytes(12),
                        "overlap"),
            "out of range": (st_bytes({}, header_override={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}) + bytes(8),
                             "data_offsets outside"),
            "size mismatch": (st_bytes({}, header_override={"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}) + bytes(8),
                              "need 12"),
            "bad dtype": (st_bytes({}, header_override={"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}) + bytes(8),
                          "unsupported dtype"),
            "negative shape": (st_bytes({}, header_override={"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}) + bytes(8),
                               "invalid shape"),
            "duplicate": (struct.pack("<Q", 123) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}' + bytes(12),
                          "appears twice"),
            "no offsets": (st_bytes({}, header_override={"a": {"dtype": "F32", "shape": [2]}}) + bytes(8), "lacks dtype"),
        }
        self.assertGreater(hl, 0)
        for label, (blob, needle) in cases.items():
            p = self.write(label.replace(" ", "_") + ".safetensors", blob)
            r = run("checkpoint", p, check=False)
            self.assertEqual(r.returncode, 1, (label, r.stderr))
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, (label, r.stderr))
            self.assertIn(needle, lines[0], label)
            self.assertIn(p, lines[0], label)


if __name__ == "__main__":
    common.main()
