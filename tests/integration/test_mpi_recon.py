"""The same reconstruction on 1, 2 and 3 ranks (oversubscribed): one shared output, every item
exactly once, identical to the serial result; the simulator gives the same file on any rank count."""
import os

import h5py
import numpy as np

import common
from common import run


class MpiRecon(common.TmpCase):
    def test_ranks_agree(self):
        sim = self.path("sim")
        run("simulate", "-o", sim, "--frames", "5", "--slices", "1", "--coils", "4", "--matrix", "48x40",
            "--accel", "3", "--acs", "8", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        run("recon", inp, "-o", self.path("r1.h5"), "-q")
        with h5py.File(self.path("r1.h5"), "r") as f:
            serial = f["reconstruction"][()]
        self.assertTrue(np.all(serial.reshape(5, -1).max(axis=1) > 0))  # every item written
        for p in (2, 3):
            out = self.path(f"r{p}.h5")
            run("recon", inp, "-o", out, "-q", "--batch", "1", mpi=p)
            with h5py.File(out, "r") as f:
                par = f["reconstruction"][()]
                self.assertIn(f'"ranks":{p}', f.attrs["parameters"])
            np.testing.assert_allclose(par, serial, rtol=1e-6, atol=0)
        sim2 = self.path("sim2")
        run("simulate", "-o", sim2, "--frames", "5", "--slices", "1", "--coils", "4", "--matrix", "48x40",
            "--accel", "3", "--acs", "8", "-q", mpi=2)
        with h5py.File(inp, "r") as a, h5py.File(os.path.join(sim2, "subject_000.h5"), "r") as b:
            np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["r1.h5", "r2.h5", "r3.h5", "sim", "sim2"])


if __name__ == "__main__":
    common.main()
