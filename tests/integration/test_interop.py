"""BART cfl and MATLAB v5 interop (docs/formats.md), against independent readers: numpy reading the
cfl bytes in Fortran order, BART itself (bart slice/show/nrmse/ecalib), h5py files built from the same
arrays, and scipy.io.loadmat for MATLAB v5.

Real data: the ESPIRiT brain k-space (BART cfl, 8 coils) and the CMRxRecon 2024 / PINCAT v5 files in
../shared/data."""
import hashlib
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import scipy.io

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import TmpCase, crandn, run, shared  # noqa: E402

BART_DIMS = 16
TIME, SLICE, COIL, MAPS = 10, 13, 3, 4


def read_cfl(base):
    """numpy's reading of a BART pair: the header's dims, the samples in Fortran order."""
    with open(base + ".hdr") as f:
        lines = f.read().splitlines()
    dims = [int(x) for x in lines[lines.index("# Dimensions") + 1].split()]
    dims += [1] * (BART_DIMS - len(dims))
    return np.fromfile(base + ".cfl", np.complex64).reshape(dims, order="F")


def read5(base):
    """read_cfl of a pair whose dims beyond MAPS are all 1, as a 5-D array."""
    a = read_cfl(base)
    assert all(d == 1 for d in a.shape[5:]), a.shape
    return a.reshape(a.shape[:5])


def write_cfl(base, a):
    dims = list(a.shape) + [1] * (BART_DIMS - a.ndim)
    np.asarray(a, np.complex64).reshape(dims).ravel(order="F").tofile(base + ".cfl")
    with open(base + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(map(str, dims)) + "\n")


def bart(*args):
    r = subprocess.run(["bart"] + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"bart {' '.join(map(str, args))} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


def cine_to_bart(x):
    """fmrecon (frames, slices, coils, h, w) -> BART [h, w, 1, coils, 1.., TIME, .., SLICE]."""
    T, Z, C, h, w = x.shape
    a = np.zeros([h, w, 1, C] + [1] * 6 + [T, 1, 1, Z], np.complex64)
    a[:, :, 0, :, 0, 0, 0, 0, 0, 0, :, 0, 0, :] = x.transpose(3, 4, 2, 0, 1)
    return a


def write_fastmri(path, k, mask=None):
    with h5py.File(path, "w") as f:
        f["kspace"] = k
        if mask is not None:
            f["mask"] = mask


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def brain(name):
    """A BART pair of the shared ESPIRiT brain sample, by its base name (as bart names it)."""
    return shared("espirit_brain_8ch", name + ".cfl")[:-4]


def converter():
    return os.path.join(os.path.dirname(os.path.abspath(common.ARGS.fmrecon)), "fmrecon-mat2h5")


class Cfl(TmpCase):
    def setUp(self):
        super().setUp()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)

    def test_reader_matches_numpy_and_fastmri(self):
        """The real 8-coil brain: [1, 230, 180, 8] -> (1, 1, 8, 230, 180), the same k-space as numpy's
        reading of the bytes and as fmrecon's fastMRI reader on an h5py file of the same array."""
        base = brain("full")
        a = read5(base)
        self.assertEqual(a.shape, (1, 230, 180, 8, 1))
        ref = a[0, :, :, :, 0].transpose(2, 0, 1)  # (coils, PHS1 = h, PHS2 = w)
        for name in (base, base + ".cfl", base + ".hdr"):  # every way BART names a pair
            got, attrs = self.convert(name)
            self.assertEqual(attrs["source_format"], "BART cfl")
            np.testing.assert_array_equal(got["kspace"][0, 0], ref)
        h5 = self.path("full_fastmri.h5")
        write_fastmri(h5, ref[None])
        via_h5, _ = self.convert(h5)
        np.testing.assert_array_equal(via_h5["kspace"], got["kspace"])

    def test_mpi_ranks_read_the_same(self):
        """The cfl reader on 2 ranks (each reads its own items with pread): the same SENSE result as
        on one rank."""
        und = brain("und2x2")
        res = []
        for n in (0, 2):
            out = self.path(f"r{n}.h5")
            run("recon", und, "-o", out, "--method", "sense", "-q", mpi=n)
            with h5py.File(out, "r") as f:
                res.append(f["reconstruction"][()])
        np.testing.assert_allclose(res[1], res[0], rtol=0, atol=1e-6 * float(res[0].max()))

    def test_zero_columns_are_the_mask(self):
        """und2x2 (2x2 undersampled + calibration): a phase-encode column is sampled iff numpy finds a
        non-zero in it (any coil and row); the converted mask says exactly that."""
        a = read5(brain("und2x2"))[0, :, :, :, 0]  # (h, w, coils)
        expect = (np.abs(a) > 0).any(axis=(0, 2)).astype(np.uint8)
        self.assertTrue(0 < expect.sum() < expect.size)
        got, _ = self.convert(brain("und2x2"))
        np.testing.assert_array_equal(got["mask"], expect)

    def test_reverse_cine_dims(self):
        """A fastMRI cine (3 frames, 2 slices, 4 coils, per-frame masks) written as a cfl by numpy in
        BART order: BART itself agrees on what TIME, SLICE and COIL mean (bart slice), and fmrecon's cfl
        reader returns the same k-space and masks as its fastMRI reader on the original."""
        rng = np.random.default_rng(16)
        T, Z, C, h, w = 3, 2, 4, 24, 20
        k = crandn(rng, T, Z, C, h, w)
        mask = (rng.random((T, w)) < 0.5).astype(np.uint8)
        mask[:, 8:12] = 1
        k *= mask[:, None, None, None, :]
        h5 = self.path("cine.h5")
        write_fastmri(h5, k, mask)
        base = self.path("cine")
        write_cfl(base, cine_to_bart(k))
        bart("slice", 3, 2, 10, 1, 13, 1, base, self.path("one"))  # coil 2, frame 1, slice 1
        np.testing.assert_array_equal(read5(self.path("one"))[:, :, 0, 0, 0], k[1, 1, 2])
        via_h5, _ = self.convert(h5)
        via_cfl, _ = self.convert(base)
        np.testing.assert_array_equal(via_cfl["kspace"], k)
        np.testing.assert_array_equal(via_cfl["kspace"], via_h5["kspace"])
        np.testing.assert_array_equal(via_cfl["mask"], via_h5["mask"])

    def test_output_read_by_bart(self):
        """recon -> export --format cfl: bart reads the pair ([h, w, 1.., TIME, .., SLICE]) and bart
        nrmse against the HDF5 result (written as a cfl by numpy) is below 1e-6, for the magnitude
        and for the complex image."""
        rng = np.random.default_rng(3)
        T, Z, C, h, w = 2, 2, 3, 16, 12
        h5 = self.path("in.h5")
        write_fastmri(h5, crandn(rng, T, Z, C, h, w))
        maps = crandn(rng, Z, C, h, w)
        maps /= np.sqrt((np.abs(maps) ** 2).sum(axis=1, keepdims=True))
        with h5py.File(self.path("maps.h5"), "w") as f:
            f["maps"] = maps
        res = self.path("res.h5")
        run("recon", h5, "-o", res, "--method", "sense", "--sens", self.path("maps.h5"), "--complex", "-q")
        with h5py.File(res, "r") as f:
            mag = f["reconstruction"][()]
            img = f["image"][()]
            img = img["r"] + 1j * img["i"] if img.dtype.names else img
        run("export", res, "--format", "cfl", "-o", self.outdir, "-q")
        run("export", res, "--format", "cfl", "--complex", "--name", "res_complex", "-o", self.outdir, "-q")
        self.assertEqual(sorted(os.listdir(self.outdir)), ["res.cfl", "res.hdr", "res_complex.cfl", "res_complex.hdr"])
        dims = bart("show", "-d", TIME, os.path.join(self.outdir, "res")).split()
        self.assertEqual(dims, [str(T)])
        self.assertEqual(bart("show", "-d", SLICE, os.path.join(self.outdir, "res")).split(), [str(Z)])
        for name, x in (("res", mag), ("res_complex", img)):
            ref = self.path("ref_" + name)
            write_cfl(ref, cine_to_bart(x[:, :, None]))
            out = bart("nrmse", "-t", "0.000001", ref, os.path.join(self.outdir, name))
            self.assertLess(float(out), 1e-6)
        # and the check can fail: a 1% change is seen
        bart("scale", 1.01, self.path("ref_res"), self.path("ref_scaled"))
        r = subprocess.run(["bart", "nrmse", "-t", "0.000001", self.path("ref_scaled"),
                            os.path.join(self.outdir, "res")], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)

    def test_sens_maps_from_bart_ecalib(self):
        """bart ecalib's maps as --sens: the same SENSE reconstruction as the same maps written in
        fmrecon's HDF5 layout (slices, coils, h, w) by h5py."""
        und = brain("und2x2")
        maps = self.path("maps")
        bart("ecalib", "-m", 1, und, maps)
        m = read5(maps)[0, :, :, :, 0].transpose(2, 0, 1)  # (coils, h, w)
        with h5py.File(self.path("maps.h5"), "w") as f:
            f["maps"] = m[None].astype(np.complex64)
        res = {}
        for tag, sens in (("cfl", maps + ".cfl"), ("h5", self.path("maps.h5"))):
            out = self.path(f"r_{tag}.h5")
            run("recon", und, "-o", out, "--method", "sense", "--sens", sens, "-q")
            with h5py.File(out, "r") as f:
                res[tag] = f["reconstruction"][()]
        np.testing.assert_array_equal(res["cfl"], res["h5"])
        self.assertGreater(float(res["cfl"].max()), 0)

    def test_bad_pairs(self):
        """A header that does not match the data's size, a header without dimensions, a missing data
        file, a 3-D volume: one line naming the file and the problem, nothing written."""
        src = brain("full")
        cut = self.path("cut")
        shutil.copy(src + ".hdr", cut + ".hdr")
        with open(src + ".cfl", "rb") as f, open(cut + ".cfl", "wb") as g:
            g.write(f.read(1000000))
        out = os.path.join(self.outdir, "r.h5")
        line = self.expect_fail(["recon", cut, "-o", out], cut + ".cfl", "1000000 bytes", "2649600")
        self.assertIn("header", line)
        with open(self.path("nodims.hdr"), "w") as f:
            f.write("# Command\nbart something\n")
        open(self.path("nodims.cfl"), "wb").close()
        self.expect_fail(["recon", self.path("nodims.cfl"), "-o", out], "nodims.hdr", "Dimensions")
        with open(self.path("lonely.hdr"), "w") as f:
            f.write("# Dimensions\n4 4 1 1\n")
        self.expect_fail(["recon", self.path("lonely.hdr"), "-o", out], "lonely.cfl")
        write_cfl(self.path("vol"), np.ones((4, 4, 4, 2), np.complex64))
        self.expect_fail(["recon", self.path("vol.cfl"), "-o", out], "vol.cfl", "3-D")
        write_cfl(self.path("echo"), np.ones((4, 4, 1, 2, 1, 3), np.complex64))
        self.expect_fail(["recon", self.path("echo.cfl"), "-o", out], "echo.cfl", "TE")


class MatV5(TmpCase):
    def setUp(self):
        super().setUp()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)

    def convert_mat(self, src, dst):
        r = subprocess.run([converter(), src, dst, "-q"], capture_output=True, text=True, timeout=120)
        return r

    def test_v5_names_the_conversion(self):
        """fmrecon given the real CMRxRecon 2024 v5 file: one line saying how to convert it."""
        src = shared("cmrxrecon2024_cine_sax", "cine_sax.mat")
        line = self.expect_fail(["recon", src, "-o", os.path.join(self.outdir, "r.h5")], src, "MATLAB v5",
                                "fmrecon-mat2h5")
        self.assertNotIn("not an HDF5 file", line)
        self.expect_fail(["info", src], "fmrecon-mat2h5")

    def test_converted_kspace_equals_loadmat(self):
        """fmrecon-mat2h5 then fmrecon: the same k-space as scipy.io.loadmat of the v5 file
        (kspace_full (512, 246) complex64: 512 readout x 246 phase-encode)."""
        src = shared("cmrxrecon2024_cine_sax", "cine_sax.mat")
        ref = scipy.io.loadmat(src)["kspace_full"]
        self.assertEqual(ref.shape, (512, 246))
        dst = self.path("cine_sax_v73.mat")
        r = self.convert_mat(src, dst)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(dst, "rb") as f:
            self.assertTrue(f.read(19).startswith(b"MATLAB 7.3 MAT-file"))
        got, attrs = self.convert(dst)
        self.assertEqual(attrs["source_format"], "CMRxRecon")
        self.assertEqual(got["kspace"].shape, (1, 1, 1, 512, 246))
        np.testing.assert_array_equal(got["kspace"][0, 0, 0], ref)

    def test_converted_real_array_equals_loadmat(self):
        """PINCAT (X (128, 128, 50) float64, v5): the v7.3 output holds X with MATLAB's column-major
        layout (h5py sees the transpose) and the same values; the source is unchanged."""
        src = shared("pincat", "Pincat.mat")
        before = sha256(src)
        dst = self.path("pincat_v73.mat")
        r = self.convert_mat(src, dst)
        self.assertEqual(r.returncode, 0, r.stderr)
        ref = scipy.io.loadmat(src)["X"]
        with h5py.File(dst, "r") as f:
            self.assertEqual(f["X"].attrs["MATLAB_class"], b"double")
            np.testing.assert_array_equal(f["X"][()].T, ref)
        self.assertEqual(sha256(src), before)

    def test_truncated_v5(self):
        """A v5 file cut short (inside the compressed variable, inside its tag, inside the header):
        one clear line naming the file, non-zero exit, nothing left in the output folder."""
        src = shared("cmrxrecon2024_cine_sax", "cine_sax.mat")
        with open(src, "rb") as f:
            data = f.read()
        for n in (len(data) // 2, 140, 100):
            cut = self.path(f"cut{n}.mat")
            with open(cut, "wb") as f:
                f.write(data[:n])
            r = self.convert_mat(cut, os.path.join(self.outdir, "x.mat"))
            self.assertEqual(r.returncode, 1, r.stderr)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(cut, lines[0])
            self.assertTrue(any(w in lines[0] for w in ("truncated", "valid MAT", "corrupt")), lines[0])
            self.assertEqual(os.listdir(self.outdir), [])

    def test_already_v73(self):
        src = shared("cmrxrecon2024_cine_sax", "cine_sax_mask_Uniform8.mat")
        r = self.convert_mat(src, os.path.join(self.outdir, "x.mat"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already MATLAB v7.3", r.stderr)
        self.assertEqual(os.listdir(self.outdir), [])


if __name__ == "__main__":
    common.main()
