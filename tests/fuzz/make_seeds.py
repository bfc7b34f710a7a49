"""Seed inputs for the fuzz targets, made from real samples.
maskfile: the input encoding of tests/fuzz/fuzz_maskfile.c for the CMRxRecon sample mask
(cmrxrecon2024_cine_sax/cine_sax_mask_Uniform8.mat: MATLAB v7.3, (246, 512) float64 in h5py order)
and the same sampling pattern in the fastMRI (w,), per-frame (frames, w) and k-t (nt, ny, nx) layouts.
manifest: the example cohort manifests of jobs/ and variants of them.
usage: make_seeds.py maskfile|manifest SHARED_DATA REPO OUT_DIR"""
import json
import os
import struct
import sys

import h5py
import numpy as np

kind, shared, repo, out = sys.argv[1:5]


def put(name, blob):
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)


def dim(v):  # fuzz_maskfile.c dim_of, case 2: the 16-bit value itself
    return struct.pack("<H", v) + bytes([2])


def mask_seed(flags, frames_byte, h_byte, w_byte, dims, pattern):
    dims = list(dims) + [0] * (4 - len(dims))
    head = bytes([flags, frames_byte, h_byte, w_byte, len([d for d in dims if d]) if all(dims[:1]) else 0])
    return head + b"".join(dim(d) for d in dims[:4])[:12] + bytes(pattern)


if kind == "maskfile":
    path = os.path.join(shared, "cmrxrecon2024_cine_sax", "cine_sax_mask_Uniform8.mat")
    with h5py.File(path, "r") as f:
        m = np.asarray(f["mask"])  # (246, 512): phase-encode x readout, constant along readout
    assert m.shape == (246, 512) and (m == m[:, :1]).all(), m.shape
    cols = [1 if v else 0 for v in m[:, 0]]
    # flags: bit 0 MATLAB, bits 1-3 variable, bits 4-5 type (0 f64), bit 7 repeat along the last axis
    # the real file: MATLAB, 'mask', f64, (w=246, h=512) -> h byte 0xff = 512, w byte 0xff = 246
    put("real_matlab_uniform8", mask_seed(0x81, 0, 0xFF, 0xFF, [246, 512], cols))
    # fastMRI style (w,), f32, on the same pattern; named variable mask08 (explicit, 5 + 2 -> 7)
    put("fastmri_w", mask_seed(0x10, 0, 0xFF, 0xFF, [246], cols))
    put("fastmri_w_named", mask_seed(0x10 | (7 << 1), 0, 0xFF, 0xFF, [246], cols))
    # per frame (frames=12, w): frames byte 11 -> 12 frames
    put("perframe", mask_seed(0x00, 11, 0xFF, 0xFF, [12, 246], cols * 12))
    # k-t (nt, ny, nx) = (12, 246, 512), chunked, repeat along readout
    put("kt_matlab", mask_seed(0x81 | 0x40, 11, 0xFF, 0xFF, [12, 246, 512], cols))
    # a 2-D pattern that varies along the readout (must be refused)
    put("varies", mask_seed(0x01, 0, 0xFF, 0xFF, [246, 512], [0, 1, 1, 0, 1]))
elif kind == "manifest":
    jobs = os.path.join(repo, "jobs")
    for name in sorted(os.listdir(jobs)):
        if name.endswith(".json"):
            with open(os.path.join(jobs, name), "rb") as f:
                put("jobs_" + name, f.read())
    base = {"name": "fuzz", "output": "out", "subjects": ["subject_*.h5"], "recon": ["--method", "sense"],
            "undersample": ["--mask", "uniform", "--accel", "8"], "evaluate": False}
    put("glob", json.dumps(base).encode())
    put("explicit", json.dumps(dict(base, subjects=[{"id": "a/b c", "input": "subject_000.h5"},
                                                   {"input": "sub/dir/x.y.h5"}])).encode())
    put("duplicate", json.dumps(dict(base, subjects=["subject_000.h5", {"input": "subject_000.h5"}])).encode())
    put("broken", b'{"name": "x", "output": "o", "subjects": [')
else:
    sys.exit("make_seeds.py: unknown kind " + kind)
