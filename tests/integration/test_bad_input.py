"""Bad input: one clear line naming the file and the problem, a non-zero exit, no crash, and no
output (complete-looking or partial) left behind."""
import os
import shutil

import h5py
import numpy as np

import common
from common import crandn, run


class BadInput(common.TmpCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.good = self.path("good.h5")
        with h5py.File(self.good, "w") as f:
            f["kspace"] = crandn(rng, 2, 3, 32, 24)
        self.outdir = self.path("out")
        os.mkdir(self.outdir)
        self.out = os.path.join(self.outdir, "r.h5")

    def expect_fail(self, args, *needles, code=None):
        r = run(*args, check=False)
        self.assertNotEqual(r.returncode, 0, f"{args} succeeded")
        self.assertLess(r.returncode, 128, f"{args} crashed: {r.stderr}")  # not killed by a signal
        if code is not None:
            self.assertEqual(r.returncode, code, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"{args}: expected one line, got:\n{r.stderr}")
        for n in needles:
            self.assertIn(n, lines[0], f"{args}: '{n}' not in '{lines[0]}'")
        self.assertNotIn("AddressSanitizer", r.stderr)
        self.assertEqual(os.listdir(self.outdir), [], f"{args} left output behind")
        return lines[0]

    def recon_fails(self, inp, *needles):
        return self.expect_fail(["recon", inp, "-o", self.out, "-q"], inp, *needles)

    def write(self, name, **dsets):
        p = self.path(name)
        with h5py.File(p, "w") as f:
            for k, v in dsets.items():
                f[k] = v
        return p

    def test_missing_file(self):
        self.recon_fails(self.path("nope.h5"), "no such file")
        self.expect_fail(["info", self.path("nope.h5")], "nope.h5", "no such file")

    def test_not_hdf5(self):
        p = self.path("text.h5")
        with open(p, "w") as f:
            f.write("this is not HDF5\n" * 100)
        self.recon_fails(p, "not an HDF5 file")

    def test_truncated(self):
        big = self.path("big.h5")
        rng = np.random.default_rng(1)
        with h5py.File(big, "w") as f:
            f["kspace"] = crandn(rng, 4, 4, 64, 64)
        p = self.path("trunc.h5")
        with open(big, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(data[: len(data) // 2])
        line = self.recon_fails(p)
        self.assertTrue("truncated" in line or "corrupt" in line, line)

    def test_missing_kspace(self):
        p = self.write("nok.h5", image=np.zeros((2, 8, 8), np.float32))
        self.recon_fails(p, "kspace")

    def test_wrong_rank(self):
        p = self.write("rank.h5", kspace=np.zeros((8, 8), np.complex64))
        self.recon_fails(p, "'kspace' has rank 2")
        p = self.write("rank6.h5", kspace=np.zeros((1, 1, 1, 1, 8, 8), np.complex64))
        self.recon_fails(p, "'kspace' has rank 6")

    def test_wrong_dtype(self):
        p = self.write("dtype.h5", kspace=np.zeros((2, 3, 8, 8), np.float32))
        self.recon_fails(p, "'kspace' has dtype float32")

    def test_nan_in_kspace(self):
        rng = np.random.default_rng(2)
        k = crandn(rng, 2, 3, 16, 16)
        k[1, 2, 5, 7] = np.nan
        p = self.write("nan.h5", kspace=k)
        self.recon_fails(p, "NaN/Inf", "slice 1", "coil 2", "row 5", "column 7")
        k[1, 2, 5, 7] = np.inf
        p = self.write("inf.h5", kspace=k)
        self.recon_fails(p, "NaN/Inf")

    def test_mask_shape_mismatch(self):
        rng = np.random.default_rng(3)
        p = self.write("mask.h5", kspace=crandn(rng, 2, 3, 16, 16), mask=np.ones(15, np.float32))
        self.recon_fails(p, "'mask' has shape (15,)")

    def test_unwritable_output(self):
        self.expect_fail(["recon", self.good, "-o", "/nonexistent-dir/x/r.h5", "-q"],
                         "/nonexistent-dir/x/r.h5", "cannot create output")
        self.expect_fail(["recon", self.good, "-o", self.outdir, "-q"], "is a directory")

    def test_bad_options(self):
        self.expect_fail(["recon", self.good, "-o", self.out, "--method", "magic"], "unknown method 'magic'", code=2)
        self.expect_fail(["recon", self.good, "-o", self.out, "--complex"], "magnitude image only", code=2)
        self.expect_fail(["recon", self.good, "-o", self.out, "--batch", "0"], "--batch", code=2)
        self.expect_fail(["recon", self.good, "-o", self.out, "--frobnicate"], "unknown option '--frobnicate'", code=2)
        self.expect_fail(["recon", self.good], "-o OUT", code=2)
        self.expect_fail(["simulate", "-o", self.outdir, "--matrix", "12x7"], "--matrix", code=2)
        self.expect_fail(["simulate", "-o", self.outdir, "--accel", "4", "--acs", "999"], "--acs", code=2)
        self.expect_fail(["nosuchcommand"], "unknown command", code=2)

    def test_good_file_still_works(self):
        run("recon", self.good, "-o", self.out, "-q")
        self.assertEqual(os.listdir(self.outdir), ["r.h5"])


if __name__ == "__main__":
    common.main()
