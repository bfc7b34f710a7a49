"""Shared helpers for the integration tests: tool paths, numpy references, h5py file builders."""
import argparse
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

ARGS = None


def parse_args():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--fmrecon", required=True)
    p.add_argument("--testtool", required=True)
    p.add_argument("--mpiexec", default="mpiexec")
    p.add_argument("--shared", default="")
    ARGS, rest = p.parse_known_args()
    return [sys.argv[0]] + rest


def main():
    argv = parse_args()
    unittest.main(argv=argv, verbosity=2)


def shared(*parts):
    """A file of the shared real samples; a missing one fails the test loudly."""
    p = os.path.join(ARGS.shared, *parts)
    if not os.path.exists(p):
        raise AssertionError(f"shared sample {p} not found (FMR_SHARED_DATA / ../shared/data beside the checkout)")
    return p


def run(*args, check=True, mpi=0):
    cmd = ([ARGS.mpiexec, "-n", str(mpi)] if mpi else []) + [ARGS.fmrecon] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def tool(op, inp, out):
    r = subprocess.run([ARGS.testtool, op, str(inp), str(out)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"testtool {op} failed: {r.stderr}")
    with h5py.File(out, "r") as f:
        return f["out"][()]


# fastMRI's convention (fastmri.fft2c / ifft2c), written with numpy
def fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def rss(x, axis):
    return np.sqrt(np.sum(np.abs(x) ** 2, axis=axis))


def crandn(rng, *shape, dtype=np.complex64):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def relerr(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


class TmpCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fmr-test-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def expect_fail(self, args, *needles, any_of=()):
        """`fmrecon ARGS` fails with one stderr line (containing needles, or one of any_of), no
        crash, and leaves self.outdir empty. Returns the line."""
        r = run(*args, check=False)
        self.assertNotEqual(r.returncode, 0, f"{args} succeeded")
        self.assertLess(r.returncode, 128, f"{args} crashed: {r.stderr}")
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"{args}: expected one line, got:\n{r.stderr}")
        for n in needles:
            self.assertIn(n, lines[0])
        if any_of:
            self.assertTrue(any(n in lines[0].lower() for n in any_of), f"none of {any_of} in '{lines[0]}'")
        self.assertNotIn("AddressSanitizer", r.stderr)
        self.assertEqual(os.listdir(self.outdir), [], f"{args} left output behind")
        return lines[0]

    def convert(self, src, *extra):
        """Any input in fmrecon's layout, via `fmrecon undersample --mask keep`: (datasets, attrs)."""
        out = self.path("conv.h5")
        if os.path.exists(out):
            os.remove(out)
        run("undersample", src, "-o", out, "--mask", "keep", "-q", *extra)
        with h5py.File(out, "r") as f:
            return {k: f[k][()] for k in f}, dict(f.attrs)
