"""Classical reconstruction against independent references: the PETSc data-consistency solve
against numpy's dense solve, ESPIRiT against `bart ecalib`, CG-SENSE against `bart pics -l2`,
PETSc options passed through the command line, and bad input."""
import json
import os

import h5py
import numpy as np

import bart
import common
from common import crandn, fft2c, ifft2c, relerr, run, tool


class Classical(common.TmpCase):
    def simulate(self, matrix="96x96", frames=1, accel=4, acs=24, coils=6, **kw):
        d = self.path("sim")
        run("simulate", "-o", d, "--frames", frames, "--slices", 1, "--coils", coils, "--matrix", matrix,
            "--accel", accel, "--acs", acs, "-q")
        return os.path.join(d, "subject_000.h5")

    def test_dc_solve_matches_dense_numpy(self):
        rng = np.random.default_rng(3)
        C, h, w, lam = 3, 12, 10, 0.05
        maps = crandn(rng, C, h, w)
        mask = (rng.random(w) < 0.5).astype(np.float32)
        rhs = crandn(rng, h, w)
        with h5py.File(self.path("in.h5"), "w") as f:
            f["maps"], f["mask"], f["rhs"], f["lam"] = maps, mask, rhs, np.array([lam], np.float32)
        x = tool("dc", self.path("in.h5"), self.path("out.h5"))
        # dense normal matrix column by column from the operator's definition
        n = h * w
        E = np.eye(n, dtype=np.complex128).reshape(n, h, w)
        cols = [np.sum(np.conj(maps) * ifft2c(mask * fft2c(maps * e[None])), axis=0).ravel() for e in E]
        M = np.array(cols).T + lam * np.eye(n)
        want = np.linalg.solve(M, rhs.astype(np.complex128).ravel()).reshape(h, w)
        self.assertLess(relerr(x, want), 1e-5)

    def test_espirit_matches_bart(self):
        src = self.simulate()
        with h5py.File(src, "r") as f:
            k, mask = f["kspace"][0, 0], f["mask"][()].astype(np.float32)
        C, h, w = k.shape
        with h5py.File(self.path("e.h5"), "w") as f:
            f["k"], f["sampled"] = k, mask
        ours = tool("espirit", self.path("e.h5"), self.path("maps.h5"))
        bart.write(self.path("k"), k)
        bart.run("ecalib", "-m1", self.path("k"), self.path("s"))
        theirs = bart.read(self.path("s")).reshape(C, h, w)
        n1, n2 = np.linalg.norm(ours, axis=0), np.linalg.norm(theirs, axis=0)
        both = (n1 > 0) & (n2 > 0)
        self.assertGreater(both.sum(), 0.99 * max((n1 > 0).sum(), (n2 > 0).sum()))  # same support
        corr = np.abs(np.sum(ours * np.conj(theirs), axis=0))[both] / (n1[both] * n2[both])
        self.assertGreaterEqual(corr.min(), 0.99)

    def test_cg_sense_matches_bart_pics(self):
        src = self.simulate()
        with h5py.File(src, "r") as f:
            k = f["kspace"][0, 0]
        C, h, w = k.shape
        bart.write(self.path("k"), k)
        bart.run("ecalib", "-m1", self.path("k"), self.path("s"))
        maps = bart.read(self.path("s")).reshape(C, h, w)
        with h5py.File(self.path("maps.h5"), "w") as f:
            f["maps"] = maps[None]
        lam, iters = 0.01, 100
        bart.run("pics", "-l2", "-r", lam, "-w", 1, "-i", iters, self.path("k"), self.path("s"), self.path("x"))
        theirs = bart.read(self.path("x")).reshape(h, w)
        out = self.path("sense.h5")
        run("recon", src, "-o", out, "--method", "sense", "--sens", self.path("maps.h5"), "--lambda", lam,
            "--cg-iters", iters, "--cg-rtol", "1e-9", "--complex", "-q")
        with h5py.File(out, "r") as f:
            ours = f["image"][0, 0]
            self.assertEqual(f.attrs["method"], "sense")
        self.assertLess(relerr(ours, theirs), 1e-3)

    def test_petsc_options_pass_through(self):
        src = self.simulate(matrix="48x40", accel=2, acs=12)
        r = run("recon", src, "-o", self.path("a.h5"), "-m", "sense", "-q", "--", "-ksp_max_it", "3",
                "-ksp_converged_reason")
        self.assertIn("iterations 3", r.stdout)
        self.assertIn("DIVERGED_ITS", r.stdout)
        opts = self.path("petsc.opts")
        with open(opts, "w") as f:
            f.write("-ksp_rtol 1e-2\n-ksp_converged_reason\n")
        r = run("recon", src, "-o", self.path("b.h5"), "-m", "sense", "-q", "--", "-options_file", opts)
        self.assertIn("CONVERGED_RTOL", r.stdout)

    def test_cs_beats_sense_and_zf(self):
        # k-t undersampling at R = 8: aliasing differs from frame to frame, which is what temporal
        # sparsity exploits
        full = self.simulate(matrix="96x80", frames=12, accel=1, acs=0, coils=8)
        src = self.path("kt.h5")
        run("undersample", full, "-o", src, "--mask", "ktgaussian", "--accel", 8, "--acs", 16, "-q")
        res = {}
        for m in ("zf", "sense", "cs"):
            out = self.path(f"{m}.h5")
            run("recon", src, "-o", out, "-m", m, "-q")
            res[m] = json.loads(run("eval", "--ref", src, "--rec", out, "--json").stdout)["volumes"][0]["psnr"]
        self.assertGreater(res["sense"], res["zf"])
        self.assertGreater(res["cs"], res["sense"] + 1.0, res)
        self.assertGreater(res["cs"], res["zf"] + 1.0, res)

    def test_bad_input(self):
        src = self.simulate(matrix="48x40", accel=2, acs=12)
        noacs = self.path("noacs")
        run("simulate", "-o", noacs, "--frames", 1, "--slices", 1, "--coils", 4, "--matrix", "48x40", "--accel", 4,
            "--acs", 0, "-q")
        with h5py.File(self.path("bad_maps.h5"), "w") as f:
            f["maps"] = np.ones((4, 48, 41), np.complex64)
        cases = [
            (["recon", os.path.join(noacs, "subject_000.h5"), "-o", self.path("o.h5"), "-m", "sense"],
             ["no ACS region", "slice 0"]),
            (["recon", src, "-o", self.path("o.h5"), "-m", "sense", "--sens", self.path("bad_maps.h5")],
             ["coil maps must be", "bad_maps.h5"]),
            (["recon", src, "-o", self.path("o.h5"), "-m", "sense", "--lambda", "-1"], ["--lambda"]),
            (["recon", src, "-o", self.path("o.h5"), "-m", "cs", "--rho", "0"], ["--rho"]),
        ]
        for args, needles in cases:
            r = run(*args, check=False)
            self.assertNotEqual(r.returncode, 0, args)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            for n in needles:
                self.assertIn(n, lines[0])
            self.assertFalse(os.path.exists(self.path("o.h5")))
        # a solve that meets NaN fails with a clear message instead of writing NaN images
        rng = np.random.default_rng(4)
        with h5py.File(self.path("nan.h5"), "w") as f:
            f["maps"] = crandn(rng, 2, 8, 8)
            f["mask"] = np.ones(8, np.float32)
            rhs = crandn(rng, 8, 8)
            rhs[2, 2] = np.nan
            f["rhs"], f["lam"] = rhs, np.array([0.1], np.float32)
        r = common.subprocess.run([common.ARGS.testtool, "dc", self.path("nan.h5"), self.path("n.h5")],
                                  capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("NaN", r.stderr)


if __name__ == "__main__":
    common.main()
