"""fastMRI reader (both layouts, masks, ismrmrd_header padding) and the recon output file, all
checked against files written by h5py and a numpy zero-filled reconstruction."""
import json
import os

import h5py
import numpy as np

import common
from common import crandn, ifft2c, relerr, rss, run

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
 <encoding>
  <encodedSpace><matrixSize><x>{h}</x><y>{ency}</y><z>1</z></matrixSize></encodedSpace>
  <reconSpace><matrixSize><x>{h}</x><y>{ency}</y><z>1</z></matrixSize></reconSpace>
  <encodingLimits>
   <kspace_encoding_step_1><minimum>0</minimum><maximum>{maximum}</maximum><center>{center}</center></kspace_encoding_step_1>
  </encodingLimits>
 </encoding>
</ismrmrdHeader>"""


def zf_numpy(k, mask):
    """k: (..., coils, h, w); mask broadcastable onto the last axis."""
    return rss(ifft2c(k.astype(np.complex128) * mask), axis=-3)


class FastMRI(common.TmpCase):
    def test_4d_multicoil_with_bool_mask_and_header(self):
        rng = np.random.default_rng(5)
        Z, C, H, W = 3, 4, 40, 36
        k = crandn(rng, Z, C, H, W)
        mask = np.zeros(W, bool)
        mask[::3] = True
        mask[W // 2 - 4: W // 2 + 4] = True
        # acquired columns [2, 34): padding_left = ency//2 - center = 18 - 16 = 2, right = 2 + 31 + 1
        hdr = HEADER.format(h=H, ency=W, maximum=31, center=16)
        p = self.path("knee.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = k
            f["mask"] = mask
            f["ismrmrd_header"] = np.bytes_(hdr)
            f["reconstruction_rss"] = np.ones((Z, 20, 20), np.float32)
            f.attrs["acquisition"] = "CORPD_FBK"
            f.attrs["max"] = 0.5
            f.attrs["norm"] = 2.5
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["kspace_shape"], [1, Z, C, H, W])
        self.assertEqual(info["format"], "fastMRI")
        self.assertEqual(info["dtype"], "complex64")
        self.assertEqual((info["pad_left"], info["pad_right"]), (2, 34))
        eff = mask.copy()
        eff[:2] = eff[34:] = False
        self.assertEqual(info["sampled_lines"], int(eff.sum()))
        self.assertAlmostEqual(info["acceleration"], 32 / eff.sum(), places=9)
        self.assertEqual(info["acs_lines"], 8)
        self.assertEqual(info["acquisition"], "CORPD_FBK")
        self.assertEqual(info["max"], 0.5)
        out = self.path("out.h5")
        run("recon", p, "-o", out, "--method", "zf", "--quiet")
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][()]
            self.assertEqual(rec.shape, (1, Z, H, W))  # frame axis kept when it is 1
            self.assertEqual(rec.dtype, np.float32)
            np.testing.assert_array_equal(f["mask"][()], eff.astype(np.uint8))
            self.assertEqual(f.attrs["method"], "zf")
            self.assertEqual(f.attrs["input_file"], p)
            self.assertEqual(int(f.attrs["input_size"]), os.path.getsize(p))
            self.assertTrue(f.attrs["fmrecon_version"])
            par = json.loads(f.attrs["parameters"])
            self.assertEqual(par["method"], "zf")
            self.assertEqual((par["pad_left"], par["pad_right"]), (2, 34))
        ref = zf_numpy(k, eff.astype(np.float32))[None]
        self.assertLess(relerr(rec, ref), 1e-5)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["knee.h5", "out.h5"])

    def test_5d_cine_complex128_per_frame_mask(self):
        rng = np.random.default_rng(6)
        T, Z, C, H, W = 4, 2, 3, 24, 20
        k = crandn(rng, T, Z, C, H, W, dtype=np.complex128)
        mask = (rng.random((T, W)) < 0.5).astype(np.float32)
        p = self.path("cine.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = k
            f["mask"] = mask
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["kspace_shape"], [T, Z, C, H, W])
        self.assertEqual(info["dtype"], "complex128")
        self.assertEqual(info["mask"], "per_frame")
        self.assertTrue(info["frame_axis_in_file"])
        out = self.path("cine_zf.h5")
        run("recon", p, "-o", out, "-q", "--batch", "3")
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][()]
            np.testing.assert_array_equal(f["mask"][()], (mask != 0).astype(np.uint8))
        ref = zf_numpy(k, (mask != 0)[:, None, None, None, :])
        self.assertEqual(rec.shape, (T, Z, H, W))
        self.assertLess(relerr(rec, ref), 1e-5)
        # item order: frame 2, slice 1 is where numpy says it is
        self.assertLess(relerr(rec[2, 1], ref[2, 1]), 1e-5)

    def test_single_coil_and_no_mask(self):
        rng = np.random.default_rng(7)
        k = crandn(rng, 2, 16, 18)
        k[:, :, 1::2] = 0  # every other column empty: info infers R = 2
        p = self.path("sc.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = k
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["kspace_shape"], [1, 2, 1, 16, 18])
        self.assertTrue(info["sampling_inferred"])
        self.assertAlmostEqual(info["acceleration"], 2.0)
        out = self.path("sc_zf.h5")
        run("recon", p, "-o", out, "-q")
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][()]
            self.assertNotIn("mask", f)
        self.assertLess(relerr(rec[0], np.abs(ifft2c(k.astype(np.complex128)))), 1e-5)


if __name__ == "__main__":
    common.main()
