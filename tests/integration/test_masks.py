"""Undersampling masks against the published generator rules, re-implemented here in numpy from
the rules (fastMRI subsample.py; CMRxRecon mask generators), not from fmrecon's code. Random draws
come from fmrecon's own generator, so random masks are checked by their rules (centre block,
density, counts) and by reproducibility, not bit for bit."""
import os

import h5py
import numpy as np

import common
from common import run

W, T = 160, 12


def fastmri_centre(w, n_low):
    m = np.zeros(w, bool)
    pad = (w - n_low + 1) // 2
    m[pad:pad + n_low] = True
    return m


def cmrx_acs(w, acs):
    m = np.zeros(w, bool)
    # MATLAB zpad: 1-based floor(w/2)+1+ceil(-m/2) .. floor(w/2)+ceil(m/2)
    lo = w // 2 + 1 + int(np.ceil(-acs / 2)) - 1
    m[lo:lo + acs] = True
    return m


class Masks(common.TmpCase):
    @classmethod
    def setUpClass(cls):
        cls._d = common.tempfile.TemporaryDirectory(prefix="fmr-mask-")
        cls.src = os.path.join(cls._d.name, "sim")
        run("simulate", "-o", cls.src, "--frames", str(T), "--slices", "1", "--coils", "1",
            "--matrix", f"32x{W}", "-q")
        cls.src = os.path.join(cls.src, "subject_000.h5")

    @classmethod
    def tearDownClass(cls):
        cls._d.cleanup()

    def mask(self, *args):
        out = self.path("m.h5")
        if os.path.exists(out):
            os.remove(out)
        run("undersample", self.src, "-o", out, "-q", *[str(a) for a in args])
        with h5py.File(out, "r") as f:
            m = f["mask"][()].astype(bool)
            k = f["kspace"][()]
        # the k-space really is zero exactly where the mask is
        mm = m if m.ndim == 2 else np.broadcast_to(m, (T, W))
        self.assertTrue(np.all(k[np.broadcast_to(~mm[:, None, None, None, :], k.shape)] == 0))
        return m

    def test_uniform(self):
        for R, acs in ((4, 24), (8, 24), (10, 16)):
            m = self.mask("--mask", "uniform", "--accel", R, "--acs", acs)
            want = np.zeros(W, bool)
            want[::R] = True
            np.testing.assert_array_equal(m, want | cmrx_acs(W, acs))

    def test_ktuniform(self):
        R, acs = 4, 16
        m = self.mask("--mask", "ktuniform", "--accel", R, "--acs", acs)
        self.assertEqual(m.shape, (T, W))
        for t in range(T):
            lattice = np.zeros(W, bool)
            lattice[t % R::R] = True
            np.testing.assert_array_equal(m[t], lattice | cmrx_acs(W, acs))
        # over R consecutive frames every line is sampled once: the k-t lattice tiles k-space
        outer = ~cmrx_acs(W, acs)
        np.testing.assert_array_equal(m[:R, outer].sum(axis=0), np.ones(outer.sum()))

    def test_ktgaussian(self):
        R, acs = 8, 24
        acsm = cmrx_acs(W, acs)
        freq = np.zeros(W)
        for seed in range(1, 9):
            m = self.mask("--mask", "ktgaussian", "--accel", R, "--acs", acs, "--seed", seed)
            self.assertEqual(m.shape, (T, W))
            self.assertTrue(np.all(m[:, acsm]))
            # round(W/R) lines per frame outside the ACS block (ACS not counted in R)
            np.testing.assert_array_equal(m[:, ~acsm].sum(axis=1), np.full(T, round(W / R)))
            self.assertGreater(len({m[t].tobytes() for t in range(T)}), T // 2)  # new lines each frame
            freq += m.sum(axis=0)
        # density: 0.1 + a/(1-a) exp(-(p)^2/s^2), s = W/5, a = 0.2 -> more lines near the centre
        p = np.arange(W) - W // 2
        profile = 0.1 + 0.2 / 0.8 * np.exp(-(p ** 2) / (W / 5) ** 2)
        self.assertGreater(np.corrcoef(freq[~acsm], profile[~acsm])[0, 1], 0.7)
        a = self.mask("--mask", "ktgaussian", "--accel", R, "--seed", 5)
        b = self.mask("--mask", "ktgaussian", "--accel", R, "--seed", 5)
        np.testing.assert_array_equal(a, b)

    def test_fastmri_random(self):
        R, cf = 4, 0.08
        n_low = round(W * cf)
        prob = (W / R - n_low) / (W - n_low)
        centre = fastmri_centre(W, n_low)
        outer_total, runs = 0, 0
        masks = []
        for seed in range(1, 21):
            m = self.mask("--mask", "random", "--accel", R, "--center-fraction", cf, "--seed", seed)
            self.assertEqual(m.shape, (W,))
            self.assertTrue(np.all(m[centre]))
            outer_total += m[~centre].sum()
            runs += 1
            masks.append(m.tobytes())
        # lines outside the centre are Bernoulli(prob): the mean count is within 4 sigma
        n = (W - n_low) * runs
        self.assertLess(abs(outer_total / n - prob), 4 * np.sqrt(prob * (1 - prob) / n))
        self.assertEqual(len(set(masks)), runs)
        # default centre fraction: 0.08 below R = 8, 0.04 from R = 8
        m = self.mask("--mask", "random", "--accel", 8)
        self.assertTrue(np.all(m[fastmri_centre(W, round(W * 0.04))]))

    def test_fastmri_equispaced(self):
        for R in (4, 8):
            n_low = round(W * (0.08 if R < 8 else 0.04))
            for seed in (1, 2, 3):
                m = self.mask("--mask", "equispaced", "--accel", R, "--seed", seed)
                fits = []
                for off in range(R):
                    want = np.zeros(W, bool)
                    want[off::R] = True
                    if np.array_equal(m, want | fastmri_centre(W, n_low)):
                        fits.append(off)
                self.assertEqual(len(fits), 1, (R, seed))

    def test_fastmri_equispaced_fraction(self):
        R, cf = 4, 0.08
        n_low = round(W * cf)
        adj = R * (n_low - W) / (n_low * R - W)
        for seed in (1, 2, 3):
            m = self.mask("--mask", "equispaced_fraction", "--accel", R, "--center-fraction", cf, "--seed", seed)
            fits = 0
            for off in range(round(adj)):
                want = np.zeros(W, bool)
                want[np.around(np.arange(off, W - 1, adj)).astype(np.uint)] = True
                fits += np.array_equal(m, want | fastmri_centre(W, n_low))
            self.assertEqual(fits, 1)
            # the point of the fraction variant: W/R lines in total, give or take rounding
            self.assertLessEqual(abs(m.sum() - W / R), 2)

    def test_bad_options(self):
        for args, needle in (
            (["--mask", "uniform", "--accel", "0.5"], "R must be >= 1"),
            (["--mask", "uniform", "--accel", "4", "--acs", "161"], "wider than the 160"),
            (["--mask", "spiral", "--accel", "4"], "unknown mask type 'spiral'"),
            (["--mask", "uniform"], "needs --accel"),
            (["--mask", "uniform", "--accel", "2.5"], "whole acceleration"),
        ):
            r = run("undersample", self.src, "-o", self.path("x.h5"), *args, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(needle, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(self.path("x.h5")))


if __name__ == "__main__":
    common.main()
