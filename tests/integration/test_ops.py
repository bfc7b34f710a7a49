"""The operator and algorithm layer (include/fmrecon/linop.h, iter.h) against independent references:
the generic adjoint/normal check of every operator (also with coils split over 2 MPI ranks), every
operator against numpy / PyWavelets, every prox against numpy, and ADMM / FISTA against the minimiser of
small problems found by a dense double-precision ADMM in numpy; L+S against a numpy transcription of
Otazo's iteration; the cs regulariser list's bad input and parameter recording."""
import json
import os
import subprocess
import warnings

import h5py
import numpy as np
import pywt

import common
from common import crandn, fft2c, relerr, run


def optool(cmd, inp, out, mpi=0):
    exe = os.path.join(os.path.dirname(common.ARGS.testtool), "fmr_optool")
    pre = [common.ARGS.mpiexec, "-n", str(mpi)] if mpi else []
    r = subprocess.run(pre + [exe, cmd, str(inp), str(out)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"fmr_optool {cmd} failed: {r.stderr}")
    with h5py.File(out, "r") as f:
        return f["out"][()], r.stdout


# ---- numpy references -------------------------------------------------------------------------
def soft(v, t):
    a = np.abs(v)
    return np.where(a > t, v * (1 - t / np.maximum(a, 1e-300)), 0)


def tfft(x):
    return np.fft.fft(x, axis=0, norm="ortho")


def tdiff(x):
    return np.roll(x, -1, axis=0) - x


def grad2d(x):
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    return np.concatenate([gx, gy], axis=0)


def wavelet_ref(x, taps):
    """GSL's non-standard 2-D Daubechies transform of each zero-padded frame, level by level with
    PyWavelets: one level of a length-n signal is pywt.dwt (periodization) of the signal rolled by
    -(L/2 - 1) (GSL's index origin), approximation first, detail second; rows, then columns of the
    top-left n x n block, down to 1 x 1."""
    wav = pywt.Wavelet(f"db{taps // 2}")
    shift = -(taps // 2 - 1)
    T, h, w = x.shape
    P = 2
    while P < max(h, w):
        P *= 2
    out = np.zeros((T, P, P), np.complex128)
    out[:, :h, :w] = x

    def step(a, axis):
        r = []
        for part in (a.real, a.imag):
            cA, cD = pywt.dwt(np.roll(part, shift, axis=axis), wav, mode="periodization", axis=axis)
            r.append(np.concatenate([cA, cD], axis=axis))
        return r[0] + 1j * r[1]

    n = P
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pywt warns when a level is shorter than the filter
        while n >= 2:
            blk = out[:, :n, :n]
            out[:, :n, :n] = step(step(blk, -1), -2)
            n //= 2
    return out


def dense(f, n):
    """The matrix of a linear map of n complex unknowns (column by column)."""
    cols = []
    for i in range(n):
        e = np.zeros(n, np.complex128)
        e[i] = 1
        cols.append(np.asarray(f(e)).ravel())
    return np.array(cols).T


def block_svt(x, b, t):
    T, h, w = x.shape
    z = x.copy()
    for by in range(0, h, b):
        for bx in range(0, w, b):
            blk = z[:, by:by + b, bx:bx + b]
            M = blk.reshape(T, -1).T
            U, s, Vh = np.linalg.svd(M, full_matrices=False)
            z[:, by:by + b, bx:bx + b] = ((U * np.maximum(s - t, 0)) @ Vh).T.reshape(blk.shape)
    return z


def dense_admm(Ad, yv, Kd, prox, lam, rho=1.0, iters=20000):
    """min 1/2||A x - y||^2 + lam g(K x) in double precision by ADMM with exact dense solves."""
    n = Ad.shape[1]
    M = Ad.conj().T @ Ad + rho * Kd.conj().T @ Kd
    Minv = np.linalg.inv(M)
    aty = Ad.conj().T @ yv
    x = aty.copy()
    z = Kd @ x
    u = np.zeros_like(z)
    for _ in range(iters):
        x_old = x
        x = Minv @ (aty + rho * Kd.conj().T @ (z - u))
        Kx = Kd @ x
        z = prox(Kx + u, lam / rho)
        u = u + Kx - z
        if np.linalg.norm(x - x_old) < 1e-13 * np.linalg.norm(x) and np.linalg.norm(Kx - z) < 1e-12 * np.linalg.norm(z):
            break
    return x.reshape(n)


class Ops(common.TmpCase):
    def problem(self, T=3, C=3, h=8, w=6, seed=5):
        rng = np.random.default_rng(seed)
        maps = crandn(rng, C, h, w) * 0.5
        masks = (rng.random((T, w)) < 0.6).astype(np.float32)
        masks[:, w // 2] = 1
        x = crandn(rng, T, h, w)
        y = np.stack([masks[t][None, None, :] * fft2c(maps * x[t][None]) for t in range(T)]).astype(np.complex64)
        y = y + 0.05 * crandn(rng, *y.shape)
        return maps, masks, y.astype(np.complex64)

    def sense_dense(self, maps, masks):
        T, (C, h, w) = masks.shape[0], maps.shape

        def A(v):
            v = v.reshape(T, h, w)
            return np.stack([masks[t][None, None, :] * fft2c(maps * v[t][None]) for t in range(T)])

        return dense(A, T * h * w)

    # ---- operators ----
    def test_every_operator_passes_the_adjoint_check(self):
        rng = np.random.default_rng(0)
        C, h, w, T = 4, 12, 10, 3
        with h5py.File(self.path("lt.h5"), "w") as f:
            f["maps"] = crandn(rng, C, h, w)
            f["masks"] = (rng.random((T, w)) < 0.5).astype(np.float32)
        for mpi in (0, 2):
            errs, out = optool("lintest", self.path("lt.h5"), self.path(f"lto{mpi}.h5"), mpi=mpi)
            names = [l.split()[0] for l in out.splitlines()]
            # the basic operators, the compositions, and ADMM's stacked x-update operator
            for want in ("sense", "tfft", "tdiff", "grad2d", "wavelet", "identity", "stack", "grad2d.tfft"):
                self.assertIn(want, names)
            self.assertEqual(errs.shape[0], len(names))
            self.assertGreaterEqual(len(names), 14)
            self.assertLess(errs.max(), 1e-5, out)

    def test_operators_match_numpy_and_pywt(self):
        rng = np.random.default_rng(1)
        for T, h, w in ((3, 8, 6), (2, 7, 5)):
            x = crandn(rng, T, h, w)
            for name, ref in (("tfft", tfft), ("tdiff", tdiff), ("grad2d", grad2d)):
                with h5py.File(self.path("a.h5"), "w") as f:
                    f["x"], f["par"] = x, np.array([T, h, w, 0], np.float32)
                got, _ = optool(f"apply:{name}:fwd", self.path("a.h5"), self.path("b.h5"))
                self.assertLess(relerr(got, ref(x.astype(np.complex128)).ravel()), 1e-5, name)
        # wavelets on odd and even, square and non-square sizes, short and long filters
        for (T, h, w), taps in (((1, 13, 11), 4), ((2, 16, 12), 8), ((1, 16, 16), 8), ((1, 9, 14), 20)):
            x = crandn(rng, T, h, w)
            with h5py.File(self.path("a.h5"), "w") as f:
                f["x"], f["par"] = x, np.array([T, h, w, taps], np.float32)
            got, _ = optool("apply:wavelet:fwd", self.path("a.h5"), self.path("b.h5"))
            want = wavelet_ref(x.astype(np.complex128), taps)
            self.assertLess(relerr(got, want.ravel()), 1e-5, (h, w, taps))
            # adjoint = inverse (orthonormal): A^H A x = x
            with h5py.File(self.path("c.h5"), "w") as f:
                f["x"], f["par"] = got.astype(np.complex64), np.array([T, h, w, taps], np.float32)
            back, _ = optool("apply:wavelet:adj", self.path("c.h5"), self.path("d.h5"))
            self.assertLess(relerr(back, x.ravel()), 1e-5)

    # ---- proximal maps ----
    def prox(self, kind, v, alpha, iters=100, block=4, seed=0):
        with h5py.File(self.path("p.h5"), "w") as f:
            f["v"], f["par"] = v, np.array([alpha, iters, block, seed], np.float32)
        got, _ = optool(f"prox:{kind}", self.path("p.h5"), self.path("q.h5"))
        return got.reshape(v.shape)

    def test_prox_match_numpy(self):
        rng = np.random.default_rng(2)
        v = crandn(rng, 4, 8, 6)
        vd = v.astype(np.complex128)
        a = 0.7
        self.assertLess(relerr(self.prox("l1", v, a), soft(vd, a)), 1e-5)
        g = crandn(rng, 2, 30)
        nrm = np.sqrt((np.abs(g.astype(np.complex128)) ** 2).sum(0))
        want = g * np.maximum(0, 1 - a / nrm)
        self.assertLess(relerr(self.prox("l12", g, a), want), 1e-5)
        self.assertLess(relerr(self.prox("ft", v, a), np.fft.ifft(soft(tfft(vd), a), axis=0, norm="ortho")), 1e-5)
        # wavelet l1 of a square power-of-two image: W^H soft(W v), W the dense reference transform
        for shape in ((2, 8, 8), (1, 7, 5)):
            vw = crandn(rng, *shape)
            n = vw.size
            W = dense(lambda e: wavelet_ref(e.reshape(shape), 8), n)  # (P*P*T) x n, an isometry
            c = W @ vw.astype(np.complex128).ravel()
            want = vw.ravel() + W.conj().T @ (soft(c, 0.3) - c)
            self.assertLess(relerr(self.prox("wavelet", vw, 0.3).ravel(), want), 1e-5, shape)
        # LLR on a fixed grid with partial edge blocks (8 x 6 in blocks of 4: 4x4, 4x2), block SVD by numpy
        self.assertLess(relerr(self.prox("llr", v, 0.9, block=4), block_svt(vd, 4, 0.9)), 1e-5)
        # one block over the image: global low rank (L+S's L step)
        self.assertLess(relerr(self.prox("llr", v, 0.9, block=8), block_svt(vd, 8, 0.9)), 1e-5)
        # random shifts: reproducible for a seed, and not the fixed grid
        s1, s2 = self.prox("llr", v, 0.9, seed=7), self.prox("llr", v, 0.9, seed=7)
        np.testing.assert_array_equal(s1, s2)
        self.assertGreater(relerr(s1, block_svt(vd, 4, 0.9)), 1e-3)
        # TV-type prox by the dual FGP against a dense double ADMM of the same problem (A = I)
        for kind, K, groups in (("tv-s", grad2d, 2), ("tv-t", tdiff, 1)):
            vs = crandn(rng, 3, 6, 5)
            n = vs.size
            Kd = dense(lambda e: K(e.reshape(vs.shape)), n)

            def pr(z, t):
                if groups == 1:
                    return soft(z, t)
                zz = z.reshape(2, -1)
                nr = np.sqrt((np.abs(zz) ** 2).sum(0))
                return (zz * np.maximum(0, 1 - t / np.maximum(nr, 1e-300))).ravel()

            want = dense_admm(np.eye(n), vs.astype(np.complex128).ravel(), Kd, pr, 0.4)
            got = self.prox(kind, vs, 0.4, iters=4000)
            self.assertLess(relerr(got.ravel(), want), 1e-5, kind)

    # ---- algorithms ----
    def solve(self, algo, kind, maps, masks, y, lam, iters, rho=0.5, extra=4):
        with h5py.File(self.path("s.h5"), "w") as f:
            f["maps"], f["masks"], f["y"] = maps, masks, y
            f["par"] = np.array([lam, iters, rho, extra], np.float32)
        got, _ = optool(f"solve:{algo}:{kind}", self.path("s.h5"), self.path("t.h5"))
        return got

    def test_admm_and_fista_reach_the_dense_minimiser(self):
        maps, masks, y = self.problem(h=8, w=8)
        T, (C, h, w) = masks.shape[0], maps.shape
        n = T * h * w
        Ad = self.sense_dense(maps.astype(np.complex128), masks)
        yv = y.astype(np.complex128).ravel()
        shape = (T, h, w)

        def l12(z, t):
            zz = z.reshape(2, -1)
            nr = np.sqrt((np.abs(zz) ** 2).sum(0))
            return (zz * np.maximum(0, 1 - t / np.maximum(nr, 1e-300))).ravel()

        terms = {
            "ft": (lambda e: tfft(e.reshape(shape)), soft, 0.05),
            "tv-t": (lambda e: tdiff(e.reshape(shape)), soft, 0.05),
            "tv-s": (lambda e: grad2d(e.reshape(shape)), l12, 0.05),
            "wavelet": (lambda e: wavelet_ref(e.reshape(shape), 8), soft, 0.05),
            "llr": (lambda e: e, lambda z, t: block_svt(z.reshape(shape), 4, t).ravel(), 0.1),
        }
        refs = {}
        for kind, (K, pr, lam) in terms.items():
            Kd = dense(K, n)
            want = dense_admm(Ad, yv, Kd, pr, lam)
            refs[kind] = want
            got = self.solve("admm", kind, maps, masks, y, lam, 600, rho=0.5)
            self.assertLess(relerr(got.ravel(), want), 1e-4, kind)
        # FISTA with an exact x-domain prox: temporal Fourier l1, LLR, wavelets of a square image
        for kind in ("ft", "llr", "wavelet"):
            got = self.solve("fista", kind, maps, masks, y, terms[kind][2], 3000)
            self.assertLess(relerr(got.ravel(), refs[kind]), 1e-4, kind)

    def test_lps_matches_otazos_iteration(self):
        maps, masks, y = self.problem(T=6, h=8, w=6)
        T, (C, h, w) = masks.shape[0], maps.shape
        lam_l, lam_s, iters = 0.2, 0.05, 25
        m = masks[:, None, None, :]
        md = maps.astype(np.complex128)

        def A(x):
            return np.stack([m[t] * fft2c(md * x[t][None]) for t in range(T)])

        def AH(k):
            from common import ifft2c
            return np.stack([(np.conj(md) * ifft2c(m[t] * k[t])).sum(0) for t in range(T)])

        yd = y.astype(np.complex128)
        M = AH(yd)
        S = np.zeros_like(M)
        Lp = M.copy()
        for _ in range(iters):
            L = block_svt(M - S, max(h, w), lam_l)
            S = np.fft.ifft(soft(tfft(M - Lp), lam_s), axis=0, norm="ortho")
            M = L + S - AH(A(L + S) - yd)
            Lp = L
        got = self.solve("lps", "", maps, masks, y, lam_l, iters, extra=lam_s)
        self.assertLess(relerr(got, L + S), 1e-4)

    # ---- cs wiring ----
    def test_cs_petsc_options_prefixed_and_inherited(self):
        d = self.path("simp")
        run("simulate", "-o", d, "--frames", 3, "--slices", 1, "--coils", 4, "--matrix", "32x24", "--accel", 4,
            "--acs", 10, "-q")
        src = os.path.join(d, "subject_000.h5")
        imgs = {}
        for name, extra in (("plain", ()), ("ksp", ("--", "-ksp_max_it", "1")), ("cs", ("--", "-cs_ksp_max_it", "1"))):
            out = self.path(f"{name}.h5")
            run("recon", src, "-o", out, "-m", "cs", "--admm-iters", 3, "--complex", "-q", *extra)
            with h5py.File(out, "r") as f:
                imgs[name] = f["image"][()]
        self.assertGreater(relerr(imgs["ksp"], imgs["plain"]), 1e-4)  # unprefixed options still reach cs
        np.testing.assert_array_equal(imgs["ksp"], imgs["cs"])

    def test_cs_coil_groups_equal_serial(self):
        """ADMM over the layer with the SENSE operator's coils on 2 ranks (stacked x-update operator,
        LLR shifts drawn identically on every rank) gives the serial result."""
        d = self.path("simg")
        run("simulate", "-o", d, "--frames", 4, "--slices", 1, "--coils", 4, "--matrix", "32x24", "--accel", 4,
            "--acs", 10, "-q")
        src = os.path.join(d, "subject_000.h5")
        imgs = []
        for mpi, extra in ((0, ()), (2, ("--coil-ranks", 2))):
            out = self.path(f"g{mpi}.h5")
            run("recon", src, "-o", out, "-m", "cs", "--reg", "tv-t:0.01,tv-s:0.002,llr:0.01:8", "--admm-iters", 4,
                "--complex", "-q", *extra, mpi=mpi)
            with h5py.File(out, "r") as f:
                imgs.append(f["image"][()])
        self.assertLess(relerr(imgs[1], imgs[0]), 1e-5)

    def test_cs_terms_recorded_and_bad_input(self):
        d = self.path("sim")
        run("simulate", "-o", d, "--frames", 4, "--slices", 1, "--coils", 4, "--matrix", "32x24", "--accel", 4,
            "--acs", 10, "-q")
        src = os.path.join(d, "subject_000.h5")
        out = self.path("cs.h5")
        run("recon", src, "-o", out, "-m", "cs", "--reg", "tv-t:0.02,wavelet:0.003,llr:0.01:4", "--admm-iters", 3, "-q")
        with h5py.File(out, "r") as f:
            par = json.loads(f.attrs["parameters"])["method_parameters"]
        self.assertEqual([t["term"] for t in par["reg"]], ["tv-t", "wavelet", "llr"])
        self.assertEqual([t["lambda"] for t in par["reg"]], [0.02, 0.003, 0.01])
        self.assertEqual(par["reg"][2]["block"], 4)
        self.assertEqual(par["reg_source"], "--reg")
        # the aliases of the original terms
        run("recon", src, "-o", out, "-m", "cs", "--lambda-t", 0.03, "--lambda-s", 0.004, "--admm-iters", 2, "-q")
        with h5py.File(out, "r") as f:
            par = json.loads(f.attrs["parameters"])["method_parameters"]
        self.assertEqual(par["reg"], [{"term": "ft", "lambda": 0.03}, {"term": "tv-s", "lambda": 0.004}])
        help_text = run("recon", "--help").stdout
        for name in ("ft:L", "tv-t:L", "tv-s:L", "wavelet:L", "llr:L[:B]", "lps"):
            self.assertIn(name, help_text)
        bad = self.path("bad.h5")
        cases = [
            (["--reg", "tv-x:0.01"], ["unknown regulariser 'tv-x'", "did you mean 'tv-t'"]),
            (["--reg", "wavlet:0.01"], ["did you mean 'wavelet'"]),
            (["--reg", "tv-s:-0.1"], ["negative"]),
            (["--reg", "llr:0.01:64"], ["llr", "larger than the image", "32x24"]),
            (["--reg", "lps,tv-s:0.1"], ["lps"]),
        ]
        for extra, needles in cases:
            r = run("recon", src, "-o", bad, "-m", "cs", *extra, check=False)
            self.assertNotEqual(r.returncode, 0, extra)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            for nd in needles:
                self.assertIn(nd, lines[0])
            self.assertFalse(os.path.exists(bad))
        # a temporal term on a single frame: one warning line, spatial terms only, exit 0
        d1 = self.path("sim1")
        run("simulate", "-o", d1, "--frames", 1, "--slices", 1, "--coils", 4, "--matrix", "32x24", "--accel", 4,
            "--acs", 10, "-q")
        one = os.path.join(d1, "subject_000.h5")
        r = run("recon", one, "-o", out, "-m", "cs", "--reg", "tv-t:0.01,tv-s:0.002", "--admm-iters", 2, "-q")
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("tv-t dropped", lines[0])
        with h5py.File(out, "r") as f:
            par = json.loads(f.attrs["parameters"])["method_parameters"]
        self.assertEqual([t["term"] for t in par["reg"]], ["tv-s"])


if __name__ == "__main__":
    common.main()
