"""Writing and reading BART's .cfl/.hdr files. fmrecon's (coils, h, w) row-major arrays are BART's
[w, h, 1, coils] column-major arrays: the same bytes."""
import subprocess

import numpy as np


def write(base, arr):
    arr = np.ascontiguousarray(arr, dtype=np.complex64)
    dims = list(arr.shape[::-1])
    if arr.ndim == 3:  # (coils, h, w) -> [w, h, 1, coils]
        dims = [arr.shape[2], arr.shape[1], 1, arr.shape[0]]
    arr.tofile(base + ".cfl")
    with open(base + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(map(str, dims)) + "\n")


def read(base):
    with open(base + ".hdr") as f:
        dims = [int(x) for x in f.read().split("\n")[1].split()]
    return np.fromfile(base + ".cfl", np.complex64).reshape(dims[::-1])


def run(*args):
    r = subprocess.run(["bart"] + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise AssertionError(f"bart {' '.join(map(str, args))} failed: {r.stderr}")
    return r
