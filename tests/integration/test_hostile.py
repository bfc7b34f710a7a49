"""Hostile input and output safety (issue 17): each case fails with one line, a non-zero exit, no crash."""
import os
import stat

import h5py
import numpy as np

import common
from common import crandn, run


class Hostile(common.TmpCase):
    def setUp(self):
        super().setUp()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)
        self.out = os.path.join(self.outdir, "r.h5")

    def test_short_readout(self):
        p = self.path("short.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = crandn(np.random.default_rng(0), 1, 4, 4, 24)
        for m in ("sense", "cs"):
            self.expect_fail(["recon", p, "-m", m, "-o", self.out, "-q"], "smaller than")
        self.expect_fail(["maps", p, "-o", self.out, "-q"], "smaller than")

    def test_huge_declared(self):
        p = self.path("huge.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("kspace", shape=(1, 1, 31623, 31623), dtype=np.complex64, chunks=(1, 1, 64, 64),
                             compression="gzip")
            f["pad"] = np.random.default_rng(1).standard_normal(1 << 17)  # ~1 MB file
        self.expect_fail(["info", p], "declares")
        self.expect_fail(["recon", p, "-o", self.out, "-q"], "declares")

    def test_external_storage(self):
        secret = self.path("secret.bin")
        with open(secret, "wb") as f:
            f.write(b"S" * 8 * 2 * 8 * 8)
        p = self.path("ext.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("kspace", shape=(1, 2, 8, 8), dtype=np.complex64, external=[(secret, 0, 1024)])
        self.expect_fail(["undersample", p, "-o", self.out, "--mask", "keep", "-q"], "external")
        q = self.path("link.h5")
        with h5py.File(q, "w") as f:
            f["kspace"] = h5py.ExternalLink(p, "kspace")
        self.expect_fail(["undersample", q, "-o", self.out, "--mask", "keep", "-q"], "external link")

    def test_outputs(self):
        p = self.path("in.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = crandn(np.random.default_rng(2), 1, 2, 16, 16)
        before = open(p, "rb").read()
        os.symlink(p, os.path.join(self.outdir, "sl.h5"))
        for o in (p, os.path.join(self.outdir, "sl.h5")):
            r = run("recon", p, "-o", o, "-q", check=False)
            self.assertIn(r.returncode, (1, 2), r.stderr)
            self.assertIn("is the input file", r.stderr)
        os.remove(os.path.join(self.outdir, "sl.h5"))
        self.assertEqual(open(p, "rb").read(), before)
        if os.path.exists("/dev/null") and os.geteuid() == 0:
            self.expect_fail(["recon", p, "-o", "/dev/null", "-q"], "not a regular file")
            self.assertTrue(stat.S_ISCHR(os.stat("/dev/null").st_mode))
        else:
            print("skipped /dev/null case: not root")
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        self.expect_fail(["info", fifo], "named pipe")

    def test_full_disk(self):
        if os.geteuid() != 0:
            print("skipped full-disk case: mounting a tmpfs needs root")
            return
        p = self.path("cine.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = crandn(np.random.default_rng(3), 16, 2, 128, 128)
        mnt = self.path("mnt")
        os.mkdir(mnt)
        import subprocess
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt], check=True)
        try:
            for args in (["recon", p], ["undersample", p, "--mask", "keep"]):
                r = run(*args, "-o", os.path.join(mnt, "o.h5"), "-q", check=False)
                self.assertEqual(r.returncode, 1, r.stderr)  # not 139 (crash in HDF5 shutdown)
                self.assertIn("No space left on device", r.stderr)
                self.assertEqual(os.listdir(mnt), [])
        finally:
            subprocess.run(["umount", mnt], check=True)

    # --- non-finite or empty results (issue 17): refused, never written with exit 0 ---

    def cine(self, name, scale=1.0, coils=4, n=32):
        p = self.path(name)
        with h5py.File(p, "w") as f:
            f["kspace"] = (crandn(np.random.default_rng(5), 2, coils, n, n) * scale).astype(np.complex64)
        return p

    def maps_file(self, name, value, coils=4, n=32):
        p = self.path(name)
        m = np.full((coils, n, n), 0.5, np.complex64)  # one map for every slice
        m[1, 3, 4] = value
        if value == 0:
            m[:] = 0
        with h5py.File(p, "w") as f:
            f["maps"] = m
        return p

    def test_zf_overflow(self):
        """|k| ~ 1e30 is finite in float32 but its square is not: the result check names the overflow."""
        p = self.cine("big.h5", 1e30)
        with h5py.File(p, "r") as f:
            self.assertTrue(np.isfinite(f["kspace"][()]).all())
        line = self.expect_fail(["recon", p, "-m", "zf", "-o", self.out, "-q"], p, "non-finite",
                                "overflow float32", "'zf'")
        self.assertIn("slice 0", line)

    def test_zf_underflow(self):
        """|k| ~ 1e-40 (subnormal) is not zero, but |k|^2 underflows: an all-zero image is refused."""
        p = self.cine("tiny.h5", 1e-40)
        with h5py.File(p, "r") as f:
            self.assertGreater(np.abs(f["kspace"][()]).max(), 0)
        self.expect_fail(["recon", p, "-m", "zf", "-o", self.out, "-q"], p, "zero everywhere although its k-space",
                         "underflow float32", "'zf'")

    def test_inf_maps_cs(self):
        p = self.cine("in.h5")
        s = self.maps_file("infmaps.h5", np.inf)
        self.expect_fail(["recon", p, "-m", "cs", "--sens", s, "-o", self.out, "-q"], s,
                         "coil maps contain 1 non-finite values")

    def test_zero_maps_sense(self):
        p = self.cine("in.h5")
        s = self.maps_file("zeromaps.h5", 0)
        self.expect_fail(["recon", p, "-m", "sense", "--sens", s, "-o", self.out, "-q"], s,
                         "coil maps are zero everywhere for slice 0")

    def test_espirit_crop_one(self):
        """A smooth object in smooth coils: the top ESPIRiT eigenvalue is just below 1 inside, so
        --espirit-crop 1 crops every pixel (random k-space would keep some)."""
        n = 32
        y, x = np.mgrid[:n, :n] / n - 0.5
        img = ((x ** 2 + y ** 2) < 0.16) * (1 + x)
        maps = np.stack([np.exp(-((x - a) ** 2 + (y - b) ** 2) / 0.3 + 1j * a * x)
                         for a, b in [(-.5, -.5), (.5, -.5), (-.5, .5), (.5, .5)]])
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img * maps, axes=(-2, -1))), axes=(-2, -1))
        p = self.path("smooth.h5")
        with h5py.File(p, "w") as f:
            f["kspace"] = np.stack([k, k]).astype(np.complex64)
        run("recon", p, "-m", "sense", "-o", self.path("ok.h5"), "-q")  # the default crop works
        self.expect_fail(["recon", p, "-m", "sense", "--espirit-crop", "1", "-o", self.out, "-q"], p,
                         "zero everywhere for slice 0", "--espirit-crop")

    def test_nan_weights_bundle(self):
        """A U-Net bundle with one NaN weight is refused at load, naming the file and the tensor."""
        import json
        import struct
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import unrolled_reference as ur
        b = self.path("nan.safetensors")
        ur.make_random_bundle(b, denoiser="unet", chans=4, cascades=2, dc="soft")
        with open(b, "rb") as f:
            raw = bytearray(f.read())
        hl = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + hl])
        name = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")[0]
        off = 8 + hl + header[name]["data_offsets"][0]
        raw[off + 4:off + 8] = struct.pack("<f", float("nan"))
        with open(b, "wb") as f:
            f.write(bytes(raw))
        p = self.cine("in.h5")
        s = self.maps_file("maps.h5", 0.5)
        self.expect_fail(["recon", p, "-m", "unrolled", "--model", b, "--sens", s, "-o", self.out, "-q"], b,
                         f"tensor '{name}' has 1 non-finite values")
        # finite weights whose output overflows float32 (soft DC has no solver to notice): the
        # pipeline's result check refuses the NaN image
        big = self.path("big.safetensors")
        ur.make_random_bundle(big, denoiser="unet", chans=4, cascades=2, dc="soft", out_scale=1e36)
        self.expect_fail(["recon", p, "-m", "unrolled", "--model", big, "--sens", s, "-o", self.out, "-q"], p,
                         "method 'unrolled' gave", "non-finite values in the result", "nothing written")


if __name__ == "__main__":
    common.main()
