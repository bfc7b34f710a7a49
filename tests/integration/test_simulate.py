"""Simulator files: layout, reference = RSS of the fully sampled noisy k-space (numpy), noise level
as documented, Uniform mask stored and applied, reproducible per seed; the demo runs."""
import os

import h5py
import numpy as np

import common
from common import ifft2c, relerr, rss, run


class Simulate(common.TmpCase):
    def test_full_and_undersampled(self):
        d = self.path("sim")
        run("simulate", "-o", d, "--subjects", "2", "--frames", "3", "--slices", "2", "--coils", "4",
            "--matrix", "64x48", "--snr", "20", "--seed", "7", "-q")
        self.assertEqual(sorted(os.listdir(d)), ["subject_000.h5", "subject_001.h5"])
        with h5py.File(os.path.join(d, "subject_000.h5"), "r") as f:
            k = f["kspace"][()]
            ref = f["reconstruction_rss"][()]
            self.assertEqual(k.shape, (3, 2, 4, 64, 48))
            self.assertEqual(k.dtype, np.complex64)
            self.assertNotIn("mask", f)
            self.assertAlmostEqual(float(f.attrs["max"]), float(ref.max()), places=5)
            self.assertAlmostEqual(float(f.attrs["norm"]), float(np.linalg.norm(ref)), delta=1e-4 * float(f.attrs["norm"]))
            sigma = float(f.attrs["sim_noise_std"])
        self.assertLess(relerr(ref, rss(ifft2c(k.astype(np.complex128)), axis=2)), 1e-5)
        # corner of the FOV is outside the body: only noise, complex std sigma per coil
        corner = ifft2c(k.astype(np.complex128))[..., :6, :6]
        est = np.sqrt(np.mean(np.abs(corner) ** 2))
        self.assertLess(abs(est - sigma) / sigma, 0.1)
        with h5py.File(os.path.join(d, "subject_001.h5"), "r") as f:
            self.assertGreater(relerr(f["reconstruction_rss"][()], ref), 0.01)  # another subject

        u = self.path("us")
        run("simulate", "-o", u, "--frames", "3", "--slices", "2", "--coils", "4", "--matrix", "64x48",
            "--snr", "20", "--seed", "7", "--accel", "4", "--acs", "8", "-q")
        with h5py.File(os.path.join(u, "subject_000.h5"), "r") as f:
            ku, mask, refu = f["kspace"][()], f["mask"][()], f["reconstruction_rss"][()]
        want = np.zeros(48, np.uint8)
        want[::4] = 1
        want[24 - 4: 24 + 4] = 1
        np.testing.assert_array_equal(mask, want)
        np.testing.assert_array_equal(ku, k * mask)  # same seed: same data, masked
        np.testing.assert_array_equal(refu, ref)

    def test_demo(self):
        r = run("demo", "-o", self.path("demo"), "--subjects", "1", "--methods", "zf,sense", "-q")
        rows = {l.split()[1]: l.split() for l in r.stdout.splitlines() if l.startswith("0 ")}
        self.assertEqual(sorted(rows), ["sense", "zf"], r.stdout)
        # recompute the printed figures from the files with fastMRI's definitions (volume max)
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
        with h5py.File(self.path("demo/subject_000_R8.h5"), "r") as f:
            ref = f["reconstruction_rss"][()]
        for m, row in rows.items():
            with h5py.File(self.path(f"demo/subject_000_R8_{m}.h5"), "r") as f:
                rec = f["reconstruction"][()]
            self.assertAlmostEqual(float(row[3]), peak_signal_noise_ratio(ref, rec, data_range=ref.max()), places=1)
            ssim = np.mean([structural_similarity(ref[t, z], rec[t, z], data_range=ref.max())
                            for t in range(ref.shape[0]) for z in range(ref.shape[1])])
            self.assertAlmostEqual(float(row[4]), ssim, places=3)
        self.assertGreater(float(rows["sense"][3]), float(rows["zf"][3]))
        from skimage.io import imread
        png = imread(self.path("demo/preview_000.png"))
        self.assertEqual(png.shape, (3 * 192, 3 * 160))  # reference + 2 methods, 3 frames
        self.assertGreater(png.max(), 200)


if __name__ == "__main__":
    common.main()
