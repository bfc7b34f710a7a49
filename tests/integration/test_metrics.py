"""fmrecon eval against scikit-image and numpy: fastMRI rules (volume max as data range, SSIM with
skimage's defaults averaged over images) and CMRxRecon's ranking crop and per-image normalisation
(re-implemented here from run4ranking.py / Evaluation.py)."""
import csv
import json
import math

import h5py
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import common
from common import run


def matlab_round(x):
    return int(math.floor(x + 0.5))


def crop_cmrx(img, ch, cw):
    h, w = img.shape
    sh, sw = h // 2, w // 2
    return img[sh + math.ceil(-ch / 2): sh + math.ceil(ch / 2), sw + math.ceil(-cw / 2): sw + math.ceil(cw / 2)]


class Metrics(common.TmpCase):
    def write(self, name, arr, dset="reconstruction"):
        p = self.path(name)
        with h5py.File(p, "w") as f:
            f[dset] = arr.astype(np.float32)
        return p

    def volumes(self, seed, shape):
        rng = np.random.default_rng(seed)
        T, Z, H, W = shape
        yy, xx = np.mgrid[:H, :W]
        ref = np.zeros(shape)
        for t in range(T):
            for z in range(Z):
                r = 0.3 * min(H, W) * (1 + 0.1 * t - 0.05 * z)
                ref[t, z] = (np.hypot(yy - H / 2, xx - W / 2) < r) * 1.0 + 0.2 * np.sin(xx / 5.0)
        ref += 0.05 * rng.random(shape)
        rec = ref + 0.08 * rng.standard_normal(shape)
        return ref.astype(np.float32), np.abs(rec).astype(np.float32)

    def test_fastmri_rules(self):
        ref, rec = self.volumes(1, (3, 2, 40, 36))
        pr, pc = self.write("ref.h5", ref, "reconstruction_rss"), self.write("rec.h5", rec)
        out = json.loads(run("eval", "--ref", pr, "--rec", pc, "--json", "--csv", self.path("m.csv")).stdout)
        v = out["volumes"][0]
        dr = float(ref.max())
        self.assertAlmostEqual(v["psnr"], peak_signal_noise_ratio(ref, rec, data_range=dr), delta=1e-4)
        self.assertAlmostEqual(v["nmse"], float(np.sum((ref.astype(np.float64) - rec) ** 2) / np.sum(ref.astype(np.float64) ** 2)), delta=1e-6)
        ssims = [structural_similarity(ref[t, z], rec[t, z], data_range=dr) for t in range(3) for z in range(2)]
        self.assertAlmostEqual(v["ssim"], float(np.mean(ssims)), delta=1e-4)
        self.assertEqual(len(v["images"]), 6)
        for im in v["images"]:
            t, z = int(im["frame"]), int(im["slice"])
            self.assertAlmostEqual(im["ssim"], structural_similarity(ref[t, z], rec[t, z], data_range=dr), delta=1e-4)
            self.assertAlmostEqual(im["psnr"], peak_signal_noise_ratio(ref[t, z], rec[t, z], data_range=dr), delta=1e-4)
        with open(self.path("m.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 6)
        self.assertAlmostEqual(float(rows[3]["ssim"]), v["images"][3]["ssim"], places=5)

    def test_random_images_and_cohort(self):
        rng = np.random.default_rng(2)
        pairs, vals = [], []
        for i in range(3):
            ref = rng.random((1, 1, 33, 29)).astype(np.float32)
            rec = (ref + 0.2 * rng.random(ref.shape)).astype(np.float32)
            pairs += ["--ref", self.write(f"r{i}.h5", ref[0], "reconstruction_rss"), "--rec", self.write(f"c{i}.h5", rec)]
            vals.append(structural_similarity(ref[0, 0], rec[0, 0], data_range=float(ref.max())))
        out = json.loads(run("eval", *pairs, "--json").stdout)
        for v, want in zip(out["volumes"], vals):
            self.assertAlmostEqual(v["ssim"], want, delta=1e-4)
        self.assertAlmostEqual(out["cohort"]["ssim"], float(np.mean(vals)), delta=1e-4)
        self.assertEqual(out["cohort"]["volumes"], 3)

    def test_size_mismatch_is_centre_cropped(self):
        ref, rec = self.volumes(3, (1, 1, 40, 40))
        big = np.zeros((1, 1, 48, 44), np.float32)
        big[:, :, 4:44, 2:42] = rec  # fastMRI centre crop: start (48 - 40)//2 = 4, (44 - 40)//2 = 2
        out = json.loads(run("eval", "--ref", self.write("ref.h5", ref), "--rec", self.write("big.h5", big), "--json").stdout)
        self.assertAlmostEqual(out["volumes"][0]["ssim"], structural_similarity(ref[0, 0], rec[0, 0], data_range=float(ref.max())), delta=1e-4)

    def test_cmrxrecon_rules(self):
        for shape in ((5, 4, 60, 50), (2, 2, 45, 31)):
            ref, rec = self.volumes(4, shape)
            out = json.loads(run("eval", "--ref", self.write("ref.h5", ref), "--rec", self.write("rec.h5", rec),
                                 "--crop", "cmrxrecon", "--json").stdout)
            T, Z, H, W = shape
            zs = range(Z) if Z < 3 else range(matlab_round(Z / 2) - 2, matlab_round(Z / 2))
            ch, cw = matlab_round(H / 3), matlab_round(W / 2)
            ps, ss, ns = [], [], []
            for t in range(min(T, 3)):
                for z in zs:
                    a, b = crop_cmrx(ref[t, z], ch, cw), crop_cmrx(rec[t, z], ch, cw)
                    a, b = a / a.max(), b / b.max()
                    ps.append(peak_signal_noise_ratio(a, b, data_range=a.max()))
                    ss.append(structural_similarity(a, b, data_range=a.max()))
                    ns.append(np.sum((a.astype(np.float64) - b) ** 2) / np.sum(a.astype(np.float64) ** 2))
            v = out["volumes"][0]
            self.assertEqual((v["height"], v["width"]), (ch, cw))
            self.assertEqual(len(v["images"]), len(ps))
            self.assertAlmostEqual(v["psnr"], float(np.mean(ps)), delta=1e-4)
            self.assertAlmostEqual(v["ssim"], float(np.mean(ss)), delta=1e-4)
            self.assertAlmostEqual(v["nmse"], float(np.mean(ns)), delta=1e-6)

    def test_bad_input(self):
        ref, rec = self.volumes(5, (2, 1, 20, 20))
        pr = self.write("ref.h5", ref)
        for args, needle in (
            (["--ref", pr, "--rec", self.write("b.h5", rec[:1])], "has 1 frames x 1 slices"),
            (["--ref", pr], "as many --rec as --ref"),
            (["--ref", pr, "--rec", self.write("n.h5", np.full((2, 1, 20, 20), np.nan))], "NaN"),
            (["--ref", pr, "--rec", self.write("k.h5", rec, "kspace")], "no 'reconstruction'"),
            (["--ref", pr, "--rec", self.write("s.h5", rec[:, :, :5, :5])], "smaller than SSIM's 7x7"),
        ):
            r = run("eval", *args, check=False)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(needle, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    common.main()
