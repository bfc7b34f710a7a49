"""CMRxRecon MATLAB v7.3 reader: files written the way MATLAB writes them (512-byte user block,
compound real/imag, dims reversed), the real single-coil sample turned into v7.3, and the real
v7.3 mask; checked through `fmrecon undersample --mask keep`, which writes the k-space in
fmrecon's layout, against numpy."""
import json
import os

import h5py
import numpy as np
import scipy.io as sio

import common
from common import crandn, ifft2c, relerr, rss, run, shared

def write_mat(path, variables, precision="<f4"):
    """MATLAB -v7.3 layout: HDF5 with a 512-byte user block starting 'MATLAB 7.3 MAT-file';
    an array of MATLAB size (a, b, c, ...) is stored with HDF5 shape (..., c, b, a); complex
    arrays are compounds {real, imag}."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in variables.items():
            rev = np.asarray(arr).transpose(tuple(range(np.ndim(arr) - 1, -1, -1)))
            if np.iscomplexobj(rev):
                ct = np.dtype([("real", precision), ("imag", precision)])
                a = np.empty(rev.shape, ct)
                a["real"], a["imag"] = rev.real, rev.imag
                f[name] = a
            else:
                f[name] = rev.astype(np.float64)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: fmrecon test HDF5 schema 1.00 .".ljust(116))


def layout(k_matlab):
    """fmrecon layout (t, z, c, readout, pe) from MATLAB (nx, ny, nc, nz, nt)."""
    return np.transpose(k_matlab, (4, 3, 2, 0, 1))


class CMRxRecon(common.TmpCase):
    def test_multicoil_cine_double(self):
        rng = np.random.default_rng(11)
        nx, ny, nc, nz, nt = 24, 20, 4, 2, 3
        k = crandn(rng, nx, ny, nc, nz, nt, dtype=np.complex128)
        p = self.path("cine_lax.mat")
        write_mat(p, {"kspace_full": k}, precision="<f8")
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["format"], "CMRxRecon")
        self.assertEqual(info["variable"], "kspace_full")
        self.assertEqual(info["kspace_shape"], [nt, nz, nc, nx, ny])
        self.assertEqual(info["dtype"], "complex128")
        d, attrs = self.convert(p)
        want = layout(k)
        self.assertLess(relerr(d["kspace"], want), 1e-6)
        # fully sampled: reference = RSS of the coil images
        self.assertLess(relerr(d["reconstruction_rss"], rss(ifft2c(want), axis=2)), 1e-5)
        self.assertIn("fully sampled", attrs["reference_source"])
        np.testing.assert_array_equal(d["mask"], np.ones(ny, np.uint8))

    def test_variables_and_single_coil(self):
        rng = np.random.default_rng(12)
        nx, ny, nz, nt = 16, 12, 2, 2
        full = crandn(rng, nx, ny, 3, nz, nt)
        sub = full.copy()
        sub[:, 1::2] = 0
        single = crandn(rng, nx, ny, nz, nt)
        p = self.path("cine_sax.mat")
        write_mat(p, {"kspace_sub08": sub, "kspace_single_full": single})
        d, attrs = self.convert(p)  # default order: kspace_sub08 comes before the single-coil one
        self.assertEqual(attrs["source_variable"], "kspace_sub08")
        self.assertLess(relerr(d["kspace"], layout(sub)), 1e-6)
        self.assertNotIn("reconstruction_rss", d)  # undersampled source: no made-up reference
        d, _ = self.convert(p, "--variable", "kspace_single_full")
        self.assertEqual(d["kspace"].shape, (nt, nz, 1, nx, ny))
        self.assertLess(relerr(d["kspace"][:, :, 0], np.transpose(single, (3, 2, 0, 1))), 1e-6)
        r = run("info", p, "--variable", "kspace_sub04", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no variable 'kspace_sub04'", r.stderr)
        self.assertIn(p, r.stderr)

    def test_real_sample_with_real_mask(self):
        k = sio.loadmat(shared("cmrxrecon2024_cine_sax", "cine_sax.mat"))["kspace_full"]  # (nx 512, ny 246), MATLAB v5
        p = self.path("cine_sax_v73.mat")
        write_mat(p, {"kspace_full": k})
        maskfile = shared("cmrxrecon2024_cine_sax", "cine_sax_mask_Uniform8.mat")
        with h5py.File(maskfile, "r") as f:
            m = f["mask"][()]  # (ny, nx) as MATLAB (nx, ny) reads through HDF5
        line = (m[:, 0] != 0).astype(np.uint8)
        info = json.loads(run("info", p, "--mask-file", maskfile, "--json").stdout)
        self.assertEqual(info["kspace_shape"], [1, 1, 1, 512, 246])
        self.assertEqual(info["sampled_lines"], int(line.sum()))
        # the published Uniform rule: every 8th line from 0 plus 16 ACS lines from 246//2 - 8
        rule = np.zeros(246, np.uint8)
        rule[::8] = 1
        rule[115:131] = 1
        np.testing.assert_array_equal(line, rule)
        self.assertEqual(info["acs_start"], 115)
        d, _ = self.convert(p, "--mask-file", maskfile)
        np.testing.assert_array_equal(d["mask"], line)
        self.assertLess(relerr(d["kspace"][0, 0, 0], k * line[None, :]), 1e-6)
        # the reconstruction is the zero-filled image of the masked real data
        out = self.path("zf.h5")
        run("recon", p, "--mask-file", maskfile, "-o", out, "-q")
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][0, 0]
        self.assertLess(relerr(rec, np.abs(ifft2c(k * line[None, :]))), 1e-5)

    def test_kt_mask_file(self):
        rng = np.random.default_rng(13)
        nx, ny, nc, nz, nt = 16, 12, 2, 1, 4
        k = crandn(rng, nx, ny, nc, nz, nt)
        masks = np.zeros((nx, ny, nt))
        for t in range(nt):
            masks[:, t::4, t] = 1
        p, mp = self.path("kus.mat"), self.path("mask_kt.mat")
        write_mat(p, {"kus": k * masks[:, :, None, None, :]})
        write_mat(mp, {"mask": masks})
        d, _ = self.convert(p, "--mask-file", mp)
        self.assertEqual(d["mask"].shape, (nt, ny))
        np.testing.assert_array_equal(d["mask"], masks[0].T.astype(np.uint8))

    def test_bad_files(self):
        rng = np.random.default_rng(14)
        k = crandn(rng, 16, 12, 2, 1, 2)
        p = self.path("ok.mat")
        write_mat(p, {"kspace_full": k})
        cases = []
        bad = self.path("wrongname.mat")
        write_mat(bad, {"kspace": np.zeros((4, 4))})
        cases.append((["info", bad], "kspace"))
        bad = self.path("noksp.mat")
        write_mat(bad, {"img": np.zeros((4, 4))})
        cases.append((["info", bad], "no k-space found"))
        mp = self.path("m1.mat")
        write_mat(mp, {"mask": np.ones((16, 13))})
        cases.append((["info", p, "--mask-file", mp], "mask 'mask' has shape (13, 16)"))
        radial = np.zeros((16, 12))
        radial[np.arange(16), np.arange(16) % 12] = 1
        mp = self.path("m2.mat")
        write_mat(mp, {"mask": radial})
        cases.append((["info", p, "--mask-file", mp], "varies along the readout"))
        mp = self.path("m3.mat")
        write_mat(mp, {"other": np.ones((16, 12))})
        cases.append((["info", p, "--mask-file", mp], "no mask variable"))
        big = self.path("big.mat")
        write_mat(big, {"kspace_full": crandn(rng, 64, 64, 4, 2, 4)})
        with open(big, "rb") as f:
            data = f.read()
        trunc = self.path("trunc.mat")
        with open(trunc, "wb") as f:
            f.write(data[: len(data) // 2])
        cases.append((["recon", trunc, "-o", self.path("t.h5")], trunc))
        for args, needle in cases:
            r = run(*args, check=False)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertLess(r.returncode, 128, r.stderr)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(needle, lines[0])
        self.assertFalse(os.path.exists(self.path("t.h5")))


if __name__ == "__main__":
    common.main()
