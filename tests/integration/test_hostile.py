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


if __name__ == "__main__":
    common.main()
