"""fft2c/ifft2c, the SENSE operator and RSS against numpy on random data (even and odd sizes)."""
import h5py
import numpy as np

import common
from common import crandn, fft2c, ifft2c, relerr, rss, tool


class FftSense(common.TmpCase):
    sizes = [(32, 24), (33, 27), (17, 16), (192, 160)]

    def test_fft2c_matches_numpy(self):
        rng = np.random.default_rng(1)
        for h, w in self.sizes:
            x = crandn(rng, 3, h, w)
            with h5py.File(self.path("in.h5"), "w") as f:
                f["x"] = x
            y = tool("fft2c", self.path("in.h5"), self.path("out.h5"))
            self.assertLess(relerr(y, fft2c(x.astype(np.complex128))), 1e-6, (h, w))
            y = tool("ifft2c", self.path("in.h5"), self.path("out.h5"))
            self.assertLess(relerr(y, ifft2c(x.astype(np.complex128))), 1e-6, (h, w))

    def _sense_case(self, h, w, nc, mask_nd, seed):
        rng = np.random.default_rng(seed)
        x = crandn(rng, h, w)
        maps = crandn(rng, nc, h, w)
        mask = (rng.random(w if mask_nd == 1 else (h, w)) < 0.4).astype(np.float32)
        y = crandn(rng, nc, h, w)
        with h5py.File(self.path("in.h5"), "w") as f:
            f["x"], f["maps"], f["mask"], f["y"] = x, maps, mask, y
        m = mask[None, None, :] if mask_nd == 1 else mask[None]
        X, S, Y = x.astype(np.complex128), maps.astype(np.complex128), y.astype(np.complex128)
        fwd = m * fft2c(S * X[None])
        adj = np.sum(np.conj(S) * ifft2c(m * Y), axis=0)
        nrm = np.sum(np.conj(S) * ifft2c(m * fft2c(S * X[None])), axis=0)
        self.assertLess(relerr(tool("sense_forward", self.path("in.h5"), self.path("o.h5")), fwd), 1e-5)
        self.assertLess(relerr(tool("sense_adjoint", self.path("in.h5"), self.path("o.h5")), adj), 1e-5)
        self.assertLess(relerr(tool("sense_normal", self.path("in.h5"), self.path("o.h5")), nrm), 1e-5)

    def test_sense_matches_numpy(self):
        for i, (h, w) in enumerate(self.sizes[:3]):
            self._sense_case(h, w, 4, 1, 10 + i)
            self._sense_case(h, w, 3, 2, 20 + i)

    def test_rss_matches_numpy(self):
        rng = np.random.default_rng(3)
        x = crandn(rng, 6, 40, 30)
        with h5py.File(self.path("in.h5"), "w") as f:
            f["x"] = x
        y = tool("rss", self.path("in.h5"), self.path("o.h5"))
        self.assertLess(relerr(y, rss(x.astype(np.complex128), 0)), 1e-6)


if __name__ == "__main__":
    common.main()
