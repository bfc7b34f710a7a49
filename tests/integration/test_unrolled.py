"""`fmrecon recon --method unrolled` against the PyTorch reference of docs/model.md
(python/fmrecon_ref/unrolled.py, computed in float64), cascade by cascade: a tiny random BiomedCLIP-
layout encoder (width 64, patch 8, 4x4 position grid, 6 blocks) and random bundles (T = 2, F = 4,
grid 4 -> decoder at 64, taps 2,4,6) on a simulated 64x48 cine (2 frames, 4 coils, R = 4, ACS 8) with
the maps of `fmrecon maps`; ||C - ref|| / ||ref|| <= 1e-3 for every cascade_t and the image.
Per-cascade decoders with CG data consistency, a shared decoder with soft DC; an encoder checkpoint
whose SHA-256 differs from the bundle's and a bundle missing a tensor fail with one line and no
output. The trainer (python/train_unrolled.py): a 2-subject cohort built with the fmrecon CLI, 3
steps, checkpoint, --resume for 2 more (bit-identical to 5 steps in one go), the exported bundle
read by the reference and by fmrecon. The U-Net baseline (denoiser = "unet", no encoder, no
--weights): random bundles (C 4, T = 2) with soft and CG data consistency on the 64x48 cine
(pools 2: no padding) and on a 61x45 cine (pads to 64x48 with pools 2 and 3, offsets 1, 1: the
floor on top/left), a missing tensor, and a 2-step trainer run whose bundle fmrecon runs.
Self-checks of the reference (no C): SENSE adjointness, CG against a dense solve, bundle keys
against the table of docs/model.md (both denoisers), decoder shapes, padding offsets, frozen
encoder with gradients to its input."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch

import common
from common import run

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.normpath(os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, PYDIR)
import make_random_encoder as mre  # noqa: E402
import train_unrolled  # noqa: E402
import unrolled_reference as ur  # noqa: E402
from fmrecon_ref import mri, safetensors_io, unrolled  # noqa: E402
from fmrecon_ref import unet as unet_mod  # noqa: E402

TOL = 1e-3
ENC = dict(width=64, mlp=128, patch=8, blocks=6, pos_grid=4)
BUNDLE = dict(taps=(2, 4, 6), grid=4, feature_size=4, cascades=2)
SIM = ("--matrix", "64x48", "--frames", 2, "--slices", 1, "--coils", 4)


def contract_keys(T, shared, dc, D, Fs):
    """The bundle table of docs/model.md, written out by hand: {key: shape}."""
    keys = {("lambda" if dc == "cg" else "eta"): (T,)}
    for t in range(1 if shared else T):
        p = f"cascades.{t}.decoder."
        rows = [("enc1.conv1.weight", (Fs, 2, 3, 3)), ("enc1.conv2.weight", (Fs, Fs, 3, 3)),
                ("enc1.conv3.weight", (Fs, 2, 1, 1)),
                ("enc2.transp_conv_init.weight", (D, 2 * Fs, 2, 2)),
                ("enc2.up.0.weight", (2 * Fs, 2 * Fs, 2, 2)), ("enc2.up.1.weight", (2 * Fs, 2 * Fs, 2, 2)),
                ("enc2.res.0.conv1.weight", (2 * Fs, 2 * Fs, 3, 3)), ("enc2.res.0.conv2.weight", (2 * Fs, 2 * Fs, 3, 3)),
                ("enc2.res.1.conv1.weight", (2 * Fs, 2 * Fs, 3, 3)), ("enc2.res.1.conv2.weight", (2 * Fs, 2 * Fs, 3, 3)),
                ("enc3.transp_conv_init.weight", (D, 4 * Fs, 2, 2)), ("enc3.up.0.weight", (4 * Fs, 4 * Fs, 2, 2)),
                ("enc3.res.0.conv1.weight", (4 * Fs, 4 * Fs, 3, 3)), ("enc3.res.0.conv2.weight", (4 * Fs, 4 * Fs, 3, 3)),
                ("enc4.transp_conv_init.weight", (D, 8 * Fs, 2, 2)),
                ("dec3.transp_conv.weight", (D, 8 * Fs, 2, 2)), ("dec3.res.conv1.weight", (8 * Fs, 16 * Fs, 3, 3)),
                ("dec3.res.conv2.weight", (8 * Fs, 8 * Fs, 3, 3)), ("dec3.res.conv3.weight", (8 * Fs, 16 * Fs, 1, 1)),
                ("dec2.transp_conv.weight", (8 * Fs, 4 * Fs, 2, 2)), ("dec2.res.conv1.weight", (4 * Fs, 8 * Fs, 3, 3)),
                ("dec2.res.conv2.weight", (4 * Fs, 4 * Fs, 3, 3)), ("dec2.res.conv3.weight", (4 * Fs, 8 * Fs, 1, 1)),
                ("dec1.transp_conv.weight", (4 * Fs, 2 * Fs, 2, 2)), ("dec1.res.conv1.weight", (2 * Fs, 4 * Fs, 3, 3)),
                ("dec1.res.conv2.weight", (2 * Fs, 2 * Fs, 3, 3)), ("dec1.res.conv3.weight", (2 * Fs, 4 * Fs, 1, 1)),
                ("dec0.transp_conv.weight", (2 * Fs, Fs, 2, 2)), ("dec0.res.conv1.weight", (Fs, 2 * Fs, 3, 3)),
                ("dec0.res.conv2.weight", (Fs, Fs, 3, 3)), ("dec0.res.conv3.weight", (Fs, 2 * Fs, 1, 1)),
                ("out.weight", (2, Fs, 1, 1)), ("out.bias", (2,))]
        keys.update({p + k: v for k, v in rows})
    return keys


def contract_unet_keys(T, shared, dc, C, L):
    """The U-Net baseline's keys of docs/model.md (fastMRI's module names), written out: {key: shape}."""
    keys = {("lambda" if dc == "cg" else "eta"): (T,)}
    for t in range(1 if shared else T):
        p = f"cascades.{t}.unet."
        cin = 2
        for i in range(L):
            keys[p + f"down_sample_layers.{i}.layers.0.weight"] = (C << i, cin, 3, 3)
            keys[p + f"down_sample_layers.{i}.layers.4.weight"] = (C << i, C << i, 3, 3)
            cin = C << i
        keys[p + "conv.layers.0.weight"] = (C << L, C << (L - 1), 3, 3)
        keys[p + "conv.layers.4.weight"] = (C << L, C << L, 3, 3)
        for i in range(L):
            c = C << (L - 1 - i)
            keys[p + f"up_transpose_conv.{i}.layers.0.weight"] = (2 * c, c, 2, 2)
            q = p + f"up_conv.{i}." + ("0." if i == L - 1 else "")
            keys[q + "layers.0.weight"] = (c, 2 * c, 3, 3)
            keys[q + "layers.4.weight"] = (c, c, 3, 3)
        keys[p + f"up_conv.{L - 1}.1.weight"] = (2, C, 1, 1)
        keys[p + f"up_conv.{L - 1}.1.bias"] = (2,)
    return keys


class Fixture:
    """One tiny encoder and one simulated, undersampled, calibrated cine shared by the tests."""
    dir = None

    @classmethod
    def get(cls):
        if cls.dir is None:
            cls.dir = tempfile.mkdtemp(prefix="fmr-unrolled-")
            d = cls.dir
            cls.enc = os.path.join(d, "enc.safetensors")
            mre.write_random_encoder(cls.enc, "biomedclip", seed=11, **ENC)
            run("simulate", "-o", os.path.join(d, "sim"), "--subjects", 1, "--seed", 5, *SIM, "-q")
            full = os.path.join(d, "sim", "subject_000.h5")
            cls.data, cls.maps = {}, {}
            for mask in ("ktgaussian", "uniform"):
                cls.data[mask] = os.path.join(d, f"us_{mask}.h5")
                cls.maps[mask] = os.path.join(d, f"maps_{mask}.h5")
                run("undersample", full, "-o", cls.data[mask], "--mask", mask, "--accel", 4, "--acs", 8, "--seed", 9, "-q")
                run("maps", cls.data[mask], "-o", cls.maps[mask], "-q")
        return cls

    @classmethod
    def padded(cls):
        """A 61x45 cine (Uniform R = 4, ACS 8) and its maps: the U-Net pads it to 64x48."""
        cls.get()
        if not hasattr(cls, "pdata"):
            d = cls.dir
            run("simulate", "-o", os.path.join(d, "sim61"), "--subjects", 1, "--seed", 6, "--matrix", "61x45",
                "--frames", 2, "--slices", 1, "--coils", 4, "-q")
            cls.pdata, cls.pmaps = os.path.join(d, "us61.h5"), os.path.join(d, "maps61.h5")
            run("undersample", os.path.join(d, "sim61", "subject_000.h5"), "-o", cls.pdata, "--mask", "uniform",
                "--accel", 4, "--acs", 8, "--seed", 9, "-q")
            run("maps", cls.pdata, "-o", cls.pmaps, "-q")
        return cls.pdata, cls.pmaps

    @classmethod
    def cleanup(cls):
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)
            cls.dir = None


def tearDownModule():
    Fixture.cleanup()


class Base(common.TmpCase):
    def setUp(self):
        super().setUp()
        self.fx = Fixture.get()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)

    def recon(self, inp, bundle, maps, *extra, weights=None, check=True, unet=False):
        """fmrecon's unrolled recon; unet=True: without --weights (U-Net bundles need no encoder)."""
        out = os.path.join(self.outdir, "rec.h5")
        w = () if unet else ("--weights", weights or self.fx.enc)
        r = run("recon", inp, "-o", out, "--method", "unrolled", "--model", bundle, *w, "--sens", maps, "--complex",
                "--save-cascades", "-q", *extra, check=check)
        return out, r

    def reference(self, bundle, inp, maps, dtype=torch.float64, unet=False):
        model = unrolled.load_bundle(bundle, None if unet else self.fx.enc, dtype=dtype)
        k, mask = ur.read_cine(inp)
        return ur.run_reference(model, k, mask, ur.read_maps(maps, slices=k.shape[1]))

    def compare(self, out, ref):
        T = len(ref) - 1
        with h5py.File(out, "r") as f:
            names = sorted(k for k in f if k.startswith("cascade_"))
            self.assertEqual(names, sorted(f"cascade_{t}" for t in range(T + 1)))
            for t, want in enumerate(ref):
                got = f[f"cascade_{t}"]
                self.assertEqual(got.dtype, np.complex64, f"cascade_{t}")
                self.assertEqual(got.shape, want.shape, f"cascade_{t}")
                err = common.relerr(got[()].astype(np.complex128), want.astype(np.complex128))
                self.assertLessEqual(err, TOL, f"cascade_{t}: ||C - ref|| / ||ref|| = {err:.2e}")
            img = f["image"][()]
            self.assertEqual(img.dtype, np.complex64)
            err = common.relerr(img.astype(np.complex128), ref[-1].astype(np.complex128))
            self.assertLessEqual(err, TOL, f"image: ||C - ref|| / ||ref|| = {err:.2e}")
            rec = f["reconstruction"][()]
            np.testing.assert_allclose(rec, np.abs(img), rtol=1e-5, atol=1e-6 * np.abs(img).max())


class UnrolledMatchesReference(Base):
    def test_cg_per_cascade_decoders(self):
        """(a) per-cascade decoders, dc = cg (5 CG iterations), a k-t mask (a mask row per frame)."""
        b = self.path("cg.safetensors")
        ur.make_random_bundle(b, self.fx.enc, "biomedclip", shared=False, dc="cg", cg_iters=5, seed=3, **BUNDLE)
        inp, maps = self.fx.data["ktgaussian"], self.fx.maps["ktgaussian"]
        out, _ = self.recon(inp, b, maps)
        ref = self.reference(b, inp, maps)
        # the cascades really change the image (a no-op network would pass trivially otherwise)
        self.assertGreater(common.relerr(ref[1], ref[0]), 0.02)
        self.assertGreater(common.relerr(ref[2], ref[1]), 0.01)
        self.compare(out, ref)
        # the reference's own CLI gives the same file (float64 computation stored as complex64)
        refp = self.path("ref.h5")
        subprocess.run([sys.executable, os.path.join(PYDIR, "unrolled_reference.py"), "--bundle", b, "--weights",
                        self.fx.enc, "--input", inp, "--maps", maps, "-o", refp, "--dtype", "float64"], check=True)
        with h5py.File(refp, "r") as f:
            for t in range(len(ref)):
                self.assertLessEqual(common.relerr(f[f"cascade_{t}"][()], ref[t]), 1e-6)

    def test_petsc_prefix_keeps_the_bundles_cg_iters(self):
        """Unprefixed -ksp_max_it (meant for sense/cs) leaves the bundle's fixed cg_iters alone;
        -unrolled_ksp_max_it changes them and the output records the deviation."""
        b = self.path("cgp.safetensors")
        ur.make_random_bundle(b, self.fx.enc, "biomedclip", shared=True, dc="cg", cg_iters=5, seed=4, **BUNDLE)
        inp, maps = self.fx.data["ktgaussian"], self.fx.maps["ktgaussian"]
        imgs, pars = {}, {}
        for name, extra in (("plain", ()), ("ksp", ("--", "-ksp_max_it", "3")),
                            ("prefixed", ("--", "-unrolled_ksp_max_it", "3"))):
            out, _ = self.recon(inp, b, maps, *extra)
            with h5py.File(out, "r") as f:
                imgs[name] = f["image"][()]
                pars[name] = json.loads(f.attrs["parameters"])["method_parameters"]
        np.testing.assert_array_equal(imgs["ksp"], imgs["plain"])
        self.assertGreater(common.relerr(imgs["prefixed"], imgs["plain"]), 1e-4)
        self.assertEqual((pars["plain"]["cg_iters"], pars["plain"]["deviates_from_bundle"]), (5, False))
        self.assertEqual((pars["ksp"]["cg_iters"], pars["ksp"]["deviates_from_bundle"]), (5, False))
        self.assertEqual((pars["prefixed"]["cg_iters"], pars["prefixed"]["bundle_cg_iters"],
                          pars["prefixed"]["deviates_from_bundle"]), (3, 5, True))

    def test_soft_shared_decoder(self):
        """(b) one decoder for both cascades, dc = soft, a Uniform mask (one row for every frame)."""
        b = self.path("soft.safetensors")
        ur.make_random_bundle(b, self.fx.enc, "biomedclip", shared=True, dc="soft", seed=4, **BUNDLE)
        header, meta = unrolled.read_bundle_metadata(b)
        self.assertEqual(meta["shared"], "1")
        self.assertNotIn("cascades.1.decoder.out.weight", header)
        inp, maps = self.fx.data["uniform"], self.fx.maps["uniform"]
        out, _ = self.recon(inp, b, maps)
        ref = self.reference(b, inp, maps)
        self.assertGreater(common.relerr(ref[1], ref[0]), 0.02)
        self.compare(out, ref)


class UnetMatchesReference(Base):
    """The U-Net baseline (denoiser = "unet"): fmrecon without --weights against the float64 reference."""

    def check_unet(self, inp, maps, name, **kw):
        b = self.path(name)
        meta = ur.make_random_bundle(b, denoiser="unet", chans=4, cascades=2, **kw)
        self.assertNotIn("encoder_sha256", meta)
        out, _ = self.recon(inp, b, maps, unet=True)
        ref = self.reference(b, inp, maps, unet=True)
        self.assertGreater(common.relerr(ref[1], ref[0]), 0.02)  # the cascades really change the image
        self.assertGreater(common.relerr(ref[2], ref[1]), 0.01)
        self.compare(out, ref)
        os.unlink(out)
        return b, ref

    def test_unet_soft_and_cg_64x48(self):
        """(f) per-cascade U-Nets (C 4, pools 2: 64x48 needs no padding), dc = soft on a Uniform mask;
        a shared U-Net with dc = cg (5 iterations) on a k-t mask; the reference CLI without --weights."""
        inp, maps = self.fx.data["uniform"], self.fx.maps["uniform"]
        b, ref = self.check_unet(inp, maps, "unet_soft.safetensors", pools=2, dc="soft", seed=21)
        refp = self.path("ref.h5")
        subprocess.run([sys.executable, os.path.join(PYDIR, "unrolled_reference.py"), "--bundle", b, "--input", inp,
                        "--maps", maps, "-o", refp, "--dtype", "float64"], check=True)
        with h5py.File(refp, "r") as f:
            for t in range(len(ref)):
                self.assertLessEqual(common.relerr(f[f"cascade_{t}"][()], ref[t]), 1e-6)
        b, _ = self.check_unet(self.fx.data["ktgaussian"], self.fx.maps["ktgaussian"], "unet_cg.safetensors",
                               pools=2, dc="cg", cg_iters=5, shared=True, seed=22)
        header, meta = unrolled.read_bundle_metadata(b)
        self.assertEqual((meta["denoiser"], meta["chans"], meta["pools"], meta["shared"], meta["dc"], meta["cg_iters"]),
                         ("unet", "4", "2", "1", "cg", "5"))
        self.assertEqual({k: tuple(v["shape"]) for k, v in header.items()}, contract_unet_keys(2, True, "cg", 4, 2))

    def test_unet_padded_61x45(self):
        """(g) a 61x45 cine: zero-padded to 64x48 (3 rows and 3 columns: offsets 1, 1, the floor on
        top/left) with pools 2 (dc = cg) and pools 3 (dc = soft), cropped back."""
        inp, maps = self.fx.padded()
        self.check_unet(inp, maps, "unet_p2.safetensors", pools=2, dc="cg", cg_iters=4, seed=23)
        _, ref = self.check_unet(inp, maps, "unet_p3.safetensors", pools=3, dc="soft", seed=24)
        self.assertEqual(ref[0].shape[-2:], (61, 45))


class BundleErrors(Base):
    def test_encoder_checkpoint_sha256_mismatch(self):
        """(c) the bundle names another encoder checkpoint: one line about the SHA-256, no output."""
        b = self.path("other.safetensors")
        ur.make_random_bundle(b, self.fx.enc, "biomedclip", seed=5, encoder_sha256="ab" * 32, **BUNDLE)
        inp, maps = self.fx.data["uniform"], self.fx.maps["uniform"]
        line = self.expect_fail(["recon", inp, "-o", os.path.join(self.outdir, "rec.h5"), "--method", "unrolled",
                                 "--model", b, "--weights", self.fx.enc, "--sens", maps, "--complex",
                                 "--save-cascades", "-q"], any_of=("sha256", "sha-256"))
        self.assertTrue("checkpoint" in line.lower() or os.path.basename(self.fx.enc) in line, line)
        with self.assertRaisesRegex(unrolled.BundleError, "sha256"):
            unrolled.load_bundle(b, self.fx.enc)
        # a different checkpoint file (same architecture, other weights) is refused too
        other = self.path("enc2.safetensors")
        mre.write_random_encoder(other, "biomedclip", seed=12, **ENC)
        good = self.path("good.safetensors")
        ur.make_random_bundle(good, self.fx.enc, "biomedclip", seed=5, **BUNDLE)
        self.expect_fail(["recon", inp, "-o", os.path.join(self.outdir, "rec.h5"), "--method", "unrolled",
                          "--model", good, "--weights", other, "--sens", maps, "-q"], any_of=("sha256", "sha-256"))

    def test_bundle_missing_tensor(self):
        """(d) a bundle without one of its tensors: the error names it, no output."""
        key = "cascades.1.decoder.dec2.res.conv3.weight"
        b = self.path("missing.safetensors")
        ur.make_random_bundle(b, self.fx.enc, "biomedclip", seed=6, drop_keys=(key,), **BUNDLE)
        inp, maps = self.fx.data["uniform"], self.fx.maps["uniform"]
        self.expect_fail(["recon", inp, "-o", os.path.join(self.outdir, "rec.h5"), "--method", "unrolled",
                          "--model", b, "--weights", self.fx.enc, "--sens", maps, "--complex", "--save-cascades",
                          "-q"], key)
        with self.assertRaisesRegex(unrolled.BundleError, key.replace(".", r"\.")):
            unrolled.load_bundle(b, self.fx.enc)


    def test_unet_bundle_missing_tensor(self):
        """(h) a U-Net bundle without one of its tensors: the error names it, no output."""
        key = "cascades.1.unet.up_transpose_conv.0.layers.0.weight"
        b = self.path("unet_missing.safetensors")
        ur.make_random_bundle(b, denoiser="unet", chans=4, pools=2, cascades=2, dc="soft", seed=25, drop_keys=(key,))
        inp, maps = self.fx.data["uniform"], self.fx.maps["uniform"]
        self.expect_fail(["recon", inp, "-o", os.path.join(self.outdir, "rec.h5"), "--method", "unrolled",
                          "--model", b, "--sens", maps, "--complex", "--save-cascades", "-q"], key)
        with self.assertRaisesRegex(unrolled.BundleError, key.replace(".", r"\.")):
            unrolled.load_bundle(b)


class Trainer(Base):
    def trainer(self, *args):
        cmd = [sys.executable, os.path.join(PYDIR, "train_unrolled.py"), *[str(a) for a in args]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def test_train_checkpoint_resume_export(self):
        """(e) 3 steps on a 2-subject cohort, --resume for 2 more (continues at step 3; identical to 5
        steps in one run), the exported bundle has the metadata of docs/model.md and loads in the
        reference and in fmrecon, which agree."""
        cohort = self.path("cohort")
        ck, bundle = self.path("ck.pt"), self.path("trained.safetensors")
        model = ("--encoder", "biomedclip", "--encoder-weights", self.fx.enc, "--grid", 4, "--feature-size", 4,
                 "--cascades", 2, "--dc", "cg", "--cg-iters", 3, "--batch", 2, "--threads", 1, "--seed", 1)
        out = self.trainer("--simulate", cohort, "--fmrecon", common.ARGS.fmrecon, "--subjects", 2, *SIM,
                           "--accel", 4, "--acs", 8, *model, "--steps", 3, "--checkpoint", ck,
                           "--checkpoint-every", 3, "-o", bundle)
        self.assertIn("step 3/3", out)
        c = train_unrolled.torch_load(ck)
        self.assertEqual(c["step"], 3)
        self.assertEqual(len(c["data"]), 4)  # 2 subjects x (ktgaussian, uniform)
        out = self.trainer("--resume", "--checkpoint", ck, "--steps", 5, "-o", bundle, "--threads", 1)
        self.assertIn("at step 3", out)
        steps = [l.split()[1] for l in out.splitlines() if l.startswith("step ")]
        self.assertEqual(steps, ["4/5", "5/5"])
        c = train_unrolled.torch_load(ck)
        self.assertEqual(c["step"], 5)
        losses = [h[1] for h in c["history"]]
        self.assertEqual(len(losses), 5)
        self.assertTrue(np.all(np.isfinite(losses)), losses)
        # the same 5 steps in one run give the same weights (seeded sampling, RNG state in the checkpoint)
        ck5 = self.path("ck5.pt")
        self.trainer("--cohort", cohort, *model, "--steps", 5, "--checkpoint", ck5, "--no-export", "-q")
        c5 = train_unrolled.torch_load(ck5)
        for k, v in c5["model"].items():
            self.assertTrue(torch.equal(v, c["model"][k]), k)
        # the bundle
        header, meta = unrolled.read_bundle_metadata(bundle)
        for k in unrolled.REQUIRED_METADATA + ("cg_iters",):
            self.assertIn(k, meta)
        self.assertEqual(meta["encoder_sha256"], unrolled.sha256_file(self.fx.enc))
        self.assertEqual((meta["cascades"], meta["grid"], meta["feature_size"], meta["dc"], meta["cg_iters"]),
                         ("2", "4", "4", "cg", "3"))
        want = contract_keys(2, False, "cg", 64, 4)
        self.assertEqual({k: tuple(v["shape"]) for k, v in header.items()}, want)
        self.assertTrue(all(v["dtype"] == "F32" for v in header.values()))
        lam = safetensors_io.load(bundle)["lambda"]
        np.testing.assert_allclose(lam, np.exp(c["model"]["log_lambda"].numpy()), rtol=1e-6)
        inp, maps = self.fx.data["ktgaussian"], self.fx.maps["ktgaussian"]
        ref = self.reference(bundle, inp, maps)
        self.assertTrue(all(np.all(np.isfinite(x)) for x in ref))
        rec, _ = self.recon(inp, bundle, maps)
        self.compare(rec, ref)


    def test_train_unet_export(self):
        """(i) --denoiser unet (default dc soft) for 2 steps on the fixture files, exported; fmrecon runs the
        bundle without --weights and agrees with the reference."""
        ck, bundle = self.path("unet.pt"), self.path("unet.safetensors")
        data = [self.fx.data["uniform"], self.fx.data["ktgaussian"]]
        maps = [self.fx.maps["uniform"], self.fx.maps["ktgaussian"]]
        out = self.trainer("--data", *data, "--maps", *maps, "--denoiser", "unet", "--chans", 4, "--pools", 2,
                           "--cascades", 2, "--batch", 2, "--threads", 1, "--steps", 2, "--checkpoint", ck, "-o", bundle)
        self.assertIn("step 2/2", out)
        header, meta = unrolled.read_bundle_metadata(bundle)
        self.assertEqual((meta["denoiser"], meta["chans"], meta["pools"], meta["cascades"], meta["dc"]),
                         ("unet", "4", "2", "2", "soft"))
        for k in ("encoder", "encoder_sha256", "taps", "grid", "feature_size"):
            self.assertNotIn(k, meta)
        self.assertEqual({k: tuple(v["shape"]) for k, v in header.items()}, contract_unet_keys(2, False, "soft", 4, 2))
        c = train_unrolled.torch_load(ck)
        np.testing.assert_allclose(safetensors_io.load(bundle)["eta"], np.exp(c["model"]["log_eta"].numpy()), rtol=1e-6)
        inp, mp = self.fx.data["ktgaussian"], self.fx.maps["ktgaussian"]
        ref = self.reference(bundle, inp, mp, unet=True)
        rec, _ = self.recon(inp, bundle, mp, unet=True)
        self.compare(rec, ref)


class ReferenceSelfChecks(unittest.TestCase):
    """The PyTorch reference on its own (no C)."""

    def test_sense_adjoint_and_cg_against_dense_solve(self):
        rng = np.random.default_rng(1)
        B, C, h, w, lam = 2, 3, 10, 8, 0.2

        def crand(*s):
            return torch.from_numpy(rng.standard_normal(s) + 1j * rng.standard_normal(s))

        x, y, S = crand(B, h, w), crand(B, C, h, w), crand(B, C, h, w) * 0.4
        mask = torch.from_numpy((rng.random((B, w)) < 0.5).astype(np.uint8))
        ym = y * mri.mask_for(mask, y)
        lhs = torch.sum(torch.conj(mri.sense_forward(x, S, mask)) * ym)
        rhs = torch.sum(torch.conj(x) * mri.sense_adjoint(ym, S, mask))
        self.assertLess(float(abs(lhs - rhs) / abs(lhs)), 1e-12)
        # the (-1)^(i+j) modulation used for even sizes (global sign (-1)^(h/2+w/2)) and the rolls for odd ones
        for shape in ((h, w), (8, 8), (6, 6), (4, 6), (5, 4), (7, 9), (64, 48)):
            z = crand(2, *shape)
            np.testing.assert_allclose(mri.fft2c(z).numpy(), common.fft2c(z.numpy()), atol=1e-12, err_msg=str(shape))
            np.testing.assert_allclose(mri.ifft2c(z).numpy(), common.ifft2c(z.numpy()), atol=1e-12, err_msg=str(shape))
        b = mri.sense_adjoint(ym, S, mask) + lam * x
        for i in range(B):  # dense A and numpy: the solve, and CG's K-th iterate from x
            n = h * w
            E = np.zeros((C * n, n), complex)
            for j in range(n):
                e = torch.zeros(1, h, w, dtype=torch.complex128)
                e.view(-1)[j] = 1
                E[:, j] = mri.sense_forward(e, S[i:i + 1], mask[i:i + 1]).numpy().ravel()
            M = E.conj().T @ E + lam * np.eye(n)
            bi, xi = b[i].numpy().ravel(), x[i].numpy().ravel()
            xk, r = xi.copy(), bi - M @ xi
            p, rr = r.copy(), np.vdot(r, r).real
            for _ in range(4):
                ap = M @ p
                a = rr / np.vdot(p, ap).real
                xk, r = xk + a * p, r - a * ap
                rn = np.vdot(r, r).real
                p, rr = r + rn / rr * p, rn
            got = mri.cg(lambda v: mri.normal(v, S, mask) + lam * v, b, x, 4)[i].numpy().ravel()
            self.assertLess(np.linalg.norm(got - xk) / np.linalg.norm(xk), 1e-12)
            full = mri.cg(lambda v: mri.normal(v, S, mask) + lam * v, b, x, 200)[i].numpy().ravel()
            xs = np.linalg.solve(M, bi)
            self.assertLess(np.linalg.norm(full - xs) / np.linalg.norm(xs), 1e-10)

    def test_bundle_keys_are_the_contract(self):
        for shared in (False, True):
            for dc in ("cg", "soft"):
                cfg = unrolled.UnrolledConfig(encoder="biomedclip", width=128, taps=[2, 4, 6], grid=4, feature_size=8,
                                              cascades=3, shared=shared, dc=dc)
                net = unrolled.UnrolledNet(cfg)
                got = {k: tuple(v.shape) for k, v in unrolled.bundle_tensors(net).items()}
                self.assertEqual(got, contract_keys(3, shared, dc, 128, 8))
                sd = {k for k in net.state_dict() if k.startswith("cascades.")}
                self.assertEqual(sd, {k for k in got if k.startswith("cascades.")})

    def test_unet_bundle_keys_and_padding(self):
        for shared in (False, True):
            for dc in ("cg", "soft"):
                for L in (1, 2, 3, 4):
                    cfg = unrolled.UnrolledConfig(denoiser="unet", chans=3, pools=L, cascades=2, shared=shared, dc=dc)
                    net = unrolled.UnrolledNet(cfg)
                    got = {k: tuple(v.shape) for k, v in unrolled.bundle_tensors(net).items()}
                    self.assertEqual(got, contract_unet_keys(2, shared, dc, 3, L))
                    self.assertEqual(unrolled.bundle_metadata(cfg, None, "x")["denoiser"], "unet")
        # centred zero padding, floor on top/left; the U-Net path returns the native size
        x = torch.ones(1, 2, 61, 45)
        p, off = unet_mod.pad_to(x, 8)
        self.assertEqual((tuple(p.shape[-2:]), off), ((64, 48), (1, 1)))
        self.assertEqual(float(p[0, 0, 1:62, 1:46].sum()), 61 * 45)
        self.assertEqual(float(p.sum()), 2 * 61 * 45)
        net = unrolled.UnrolledNet(unrolled.UnrolledConfig(denoiser="unet", chans=2, pools=3, cascades=1, dc="soft"))
        z = net.denoise(0, torch.randn(2, 61, 45, dtype=torch.complex64))
        self.assertEqual(tuple(z.shape), (2, 61, 45))

    def test_decoder_shapes_for_several_grids(self):
        for G in (2, 3, 4, 14):
            dec = unrolled.UNETRDecoder(64, 4)
            taps = [torch.randn(2, 64, G, G) for _ in range(4)]
            img = torch.randn(2, 2, 16 * G, 16 * G)
            self.assertEqual(tuple(dec(img, taps[:3]).shape), (2, 2, 16 * G, 16 * G))
            self.assertEqual(tuple(dec(img, taps).shape), (2, 2, 16 * G, 16 * G))

    def test_frozen_encoder_passes_gradients(self):
        sd = mre.encoder_state_dict("biomedclip", seed=2, **ENC)
        enc = unrolled.FrozenEncoder("biomedclip", sd, [2, 4, 6], 4)
        self.assertEqual(list(enc.parameters()), [])
        cfg = unrolled.UnrolledConfig(encoder="biomedclip", width=64, grid=4, feature_size=4, cascades=2, cg_iters=2)
        net = unrolled.UnrolledNet(cfg, encoder=enc).double()
        self.assertEqual({n.split(".")[0] for n, _ in net.named_parameters()}, {"cascades", "log_lambda"})
        u = (torch.randn(2, 24, 20, dtype=torch.float64) + 1j * torch.randn(2, 24, 20, dtype=torch.float64))
        u.requires_grad_(True)
        feats = enc(u)
        self.assertEqual([tuple(f.shape) for f in feats], [(2, 64, 4, 4)] * 3)
        sum(f.square().sum() for f in feats).backward()
        self.assertGreater(float(u.grad.abs().max()), 0)
        # the whole network: gradients reach the decoders and the DC weights through CG
        rng = np.random.default_rng(3)
        S = torch.from_numpy(rng.standard_normal((2, 3, 24, 20)) + 1j * rng.standard_normal((2, 3, 24, 20))) * 0.3
        mask = torch.from_numpy((rng.random((2, 20)) < 0.5).astype(np.float64))
        y = mri.sense_forward(torch.from_numpy(rng.standard_normal((2, 24, 20)) + 0j), S, mask)
        x, xs = net(y, mask, S)
        self.assertEqual(len(xs), 3)
        x.abs().sum().backward()
        self.assertTrue(torch.all(net.log_lambda.grad != 0))
        self.assertGreater(float(net.cascades[0].decoder.enc1.conv1.weight.grad.abs().max()), 0)


if __name__ == "__main__":
    common.main()
