"""`fmrecon encode` against the PyTorch reference (python/fmrecon_ref/encoders.py, computed in
float64): random-weight checkpoints with the published key names (CLIP, DINOv2, BiomedCLIP; small
widths and a full-size ViT-B/16), max|C - ref| / max|ref| <= 1e-4 for every requested hidden state,
dataset names and shapes; blocks beyond the last requested layer are never read; bad layers, grids,
NaN pixels and bad tensors fail with one line and leave no output. Also python/convert_checkpoint.py,
and self-checks of the reference itself (no C involved)."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

import common
from common import run

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.normpath(os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, PYDIR)
import convert_checkpoint  # noqa: E402
import encoder_reference  # noqa: E402
import make_random_encoder as mre  # noqa: E402
from fmrecon_ref import encoders, safetensors_io  # noqa: E402

TOL = 1e-4
# (family, generator arguments, input side, layers) of the numerics-sensitive checkpoints
SENSITIVE = (("clip", dict(width=128, mlp=512, patch=16, blocks=4, pos_grid=4), 64, [0, 2, 4]),
             ("dinov2", dict(width=128, mlp=512, patch=14, blocks=3, pos_grid=37), 224, [1, 3]),
             ("biomedclip", dict(width=128, mlp=512, patch=16, blocks=4, pos_grid=4), 64, [2, 4]))


class Base(common.TmpCase):
    def setUp(self):
        super().setUp()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)

    def checkpoint(self, name, family, dtype="f32", state_dict=None, **kw):
        p = self.path(name)
        mre.write_random_encoder(p, family, dtype=dtype, state_dict=state_dict, **kw)
        return p

    def pixels(self, name, shape, seed=0):
        px = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        p = self.path(name)
        with h5py.File(p, "w") as f:
            f["pixel_values"] = px
        return p, px

    def encode(self, inp, ckpt, model, layers, *extra, check=True):
        out = os.path.join(self.outdir, "feats.h5")
        r = run("encode", inp, "-o", out, "--encoder", model, "--weights", ckpt,
                "--layers", ",".join(str(l) for l in layers), "-q", *extra, check=check)
        return out, r

    def compare(self, feats, ref, B, T, D):
        with h5py.File(feats, "r") as f:
            names = sorted(k for k in f if k.startswith("hidden_state_"))
            self.assertEqual(names, sorted(f"hidden_state_{i}" for i in ref))
            for i, want in ref.items():
                got = f[f"hidden_state_{i}"]
                self.assertEqual(got.dtype, np.float32)
                self.assertEqual(got.shape, (B, T, D), f"hidden_state_{i}")
                self.assertEqual(want.shape, (B, T, D))
                err = float(np.max(np.abs(got[()].astype(np.float64) - want)) / np.max(np.abs(want)))
                self.assertLessEqual(err, TOL, f"hidden_state_{i}: max|C-ref|/max|ref| = {err:.2e}")

    def reference(self, model, ckpt, px, layers, pos_interp="size"):
        return encoder_reference.reference_hidden_states(model, ckpt, px, layers, dtype=torch.float64,
                                                         pos_interp=pos_interp)

    def compare_dinov2(self, feats, ckpt, px, layers, B, T, D):
        """compare(), naming the position-resampling variant the output matches instead, if any."""
        try:
            self.compare(feats, self.reference("dinov2", ckpt, px, layers), B, T, D)
        except AssertionError as e:
            with h5py.File(feats, "r") as f:
                got = {i: f[f"hidden_state_{i}"][()].astype(np.float64) for i in layers}
            for variant in ("antialias", "offset"):
                alt = self.reference("dinov2", ckpt, px, layers, pos_interp=variant)
                err = max(float(np.max(np.abs(got[i] - alt[i])) / np.max(np.abs(alt[i]))) for i in layers)
                if err <= TOL:
                    raise AssertionError(f"{e}\n(the output matches the '{variant}' position resampling instead of "
                                         "transformers Dinov2's plain bicubic: F.interpolate(size=, "
                                         "align_corners=False), no antialias)") from None
            raise


class EncodeMatchesReference(Base):
    def test_small_clip(self):
        ck = self.checkpoint("clip.safetensors", "clip", width=128, mlp=512, patch=16, blocks=6, pos_grid=4,
                             extra_keys=True, seed=1)
        inp, px = self.pixels("px.h5", (3, 3, 64, 64), seed=2)
        layers = [0, 2, 4, 6]
        feats, _ = self.encode(inp, ck, "clip", layers, "--batch", 2)  # a partial last batch
        # the reference through its CLI, as benchmarks use it
        refp = self.path("ref.h5")
        subprocess.run([sys.executable, os.path.join(PYDIR, "encoder_reference.py"), "--family", "clip",
                        "--weights", ck, "--input", inp, "--layers", "0,2,4,6", "-o", refp, "--dtype", "float64"],
                       check=True)
        with h5py.File(refp, "r") as f:
            ref = {i: f[f"hidden_state_{i}"][()].astype(np.float64) for i in layers}
        # float32 file of a float64 computation: as good as the in-process float64 reference
        direct = self.reference("clip", ck, px, layers)
        for i in layers:
            np.testing.assert_allclose(ref[i], direct[i], rtol=0, atol=1e-6 * np.abs(direct[i]).max())
        self.compare(feats, direct, 3, 17, 128)

    def test_complex_images_mapped_to_encoder_input(self):
        """fmrecon's documented input mapping (docs/encoders.md): scale by max|x|, [Re, Im, |x|] or
        |x| on three channels, bilinear resize with half-pixel centres (torch F.interpolate,
        align_corners=False), then the encoder's mean/std; here computed with torch and fed to the
        reference. Up- and down-sizing, CLIP and DINOv2 statistics, an fmrecon `image` file."""
        rng = np.random.default_rng(11)
        cases = (("clip", dict(width=128, mlp=512, patch=16, blocks=2, pos_grid=4), 64, (2, 1, 48, 40), "complex"),
                 ("dinov2", dict(width=128, mlp=512, patch=14, blocks=2, pos_grid=5), 70, (1, 2, 90, 80), "magnitude"))
        for family, kw, size, shape, mapping in cases:
            with self.subTest(family=family, mapping=mapping):
                ck = self.checkpoint(f"{family}.safetensors", family, seed=5, **kw)
                img = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64) * 3.0
                inp = self.path(f"img_{family}.h5")
                with h5py.File(inp, "w") as f:
                    f["image"] = img
                    f["reconstruction"] = np.abs(img)
                feats, _ = self.encode(inp, ck, family, [0, 2], "--size", size, "--input", mapping)
                x = img.reshape(-1, shape[-2], shape[-1]).astype(np.complex128)
                x = x / np.abs(x).max(axis=(1, 2), keepdims=True)
                a = np.abs(x)
                ch = np.stack([x.real, x.imag, a] if mapping == "complex" else [a, a, a], axis=1)
                t = torch.nn.functional.interpolate(torch.from_numpy(ch), size=(size, size), mode="bilinear",
                                                    align_corners=False)
                mean = (0.485, 0.456, 0.406) if family == "dinov2" else (0.48145466, 0.4578275, 0.40821073)
                std = (0.229, 0.224, 0.225) if family == "dinov2" else (0.26862954, 0.26130258, 0.27577711)
                px = ((t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).numpy()
                ref = self.reference(family, ck, px, [0, 2])
                g = size // kw["patch"]
                self.compare(feats, ref, x.shape[0], 1 + g * g, 128)

    def test_kspace_file_uses_zero_filled_rss(self):
        """A k-space file (fastMRI layout (slices, coils, h, w)) is encoded from its root-sum-of-
        squares images, mapped by magnitude."""
        rng = np.random.default_rng(12)
        ck = self.checkpoint("bmc.safetensors", "biomedclip", width=128, mlp=512, patch=16, blocks=2, pos_grid=4, seed=6)
        k = (rng.standard_normal((2, 3, 32, 48)) + 1j * rng.standard_normal((2, 3, 32, 48))).astype(np.complex64)
        inp = self.path("k.h5")
        with h5py.File(inp, "w") as f:
            f["kspace"] = k
        feats, _ = self.encode(inp, ck, "biomedclip", [1], "--size", 64)
        a = common.rss(common.ifft2c(k.astype(np.complex128)), axis=1)
        a = a / a.max(axis=(1, 2), keepdims=True)
        t = torch.nn.functional.interpolate(torch.from_numpy(np.stack([a, a, a], axis=1)), size=(64, 64),
                                            mode="bilinear", align_corners=False)
        mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
        px = ((t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).numpy()
        self.compare(feats, self.reference("biomedclip", ck, px, [1]), 2, 17, 128)

    def test_small_dinov2_resampled_positions(self):
        ck = self.checkpoint("dino.safetensors", "dinov2", width=128, mlp=512, patch=14, blocks=4, pos_grid=37,
                             extra_keys=True, seed=3)
        inp, px = self.pixels("px.h5", (2, 3, 224, 224), seed=4)  # 16x16 grid from a 37x37 table
        feats, _ = self.encode(inp, ck, "dinov2", [1, 3])
        self.compare_dinov2(feats, ck, px, [1, 3], 2, 257, 128)

    def test_small_dinov2_table_grid(self):
        ck = self.checkpoint("dino.safetensors", "dinov2", width=128, mlp=512, patch=14, blocks=4, pos_grid=6, seed=5)
        inp, px = self.pixels("px.h5", (2, 3, 84, 84), seed=6)  # grid 6x6 = table: no resampling
        feats, _ = self.encode(inp, ck, "dinov2", [0, 1, 3])
        self.compare(feats, self.reference("dinov2", ck, px, [0, 1, 3]), 2, 37, 128)

    def test_small_biomedclip_bf16_and_f16(self):
        inp, px = self.pixels("px.h5", (2, 3, 64, 64), seed=7)
        for dt in ("bf16", "f16"):
            ck = self.checkpoint(f"bm_{dt}.safetensors", "biomedclip", dtype=dt, width=128, mlp=512, patch=16,
                                 blocks=6, pos_grid=4, extra_keys=True, seed=8)
            header, _, _, _ = safetensors_io.read_header(ck)
            self.assertEqual(header["visual.trunk.blocks.0.attn.qkv.weight"]["dtype"], dt.upper())
            feats, _ = self.encode(inp, ck, "biomedclip", [2, 4, 6])
            self.compare(feats, self.reference("biomedclip", ck, px, [2, 4, 6]), 2, 17, 128)
            os.remove(feats)

    def test_full_size_biomedclip_b16(self):
        ck = self.checkpoint("bm.safetensors", "biomedclip", width=768, mlp=3072, patch=16, blocks=6, pos_grid=14,
                             seed=9)
        inp, px = self.pixels("px.h5", (2, 3, 224, 224), seed=10)
        feats, _ = self.encode(inp, ck, "biomedclip-b16", [2, 4, 6])
        self.compare(feats, self.reference("biomedclip-b16", ck, px, [2, 4, 6]), 2, 197, 768)

    def test_numerics_sensitive_checkpoints(self):
        """Weights under which LayerNorm eps (1e-5 vs 1e-6), the GELU variant (erf / tanh / quick) and
        DINOv2's LayerScale and resampling variant each move the hidden states by >= 10x the tolerance
        (ReferenceSelfChecks.test_sensitive_checkpoints_expose_numerics)."""
        for fam, kw, hw, layers in SENSITIVE:
            ck = self.checkpoint(f"{fam}.safetensors", fam, sensitive=True, seed=30, **kw)
            inp, px = self.pixels(f"{fam}.h5", (2, 3, hw, hw), seed=31)
            feats, _ = self.encode(inp, ck, fam, layers)
            T = 1 + (hw // kw["patch"]) ** 2
            if fam == "dinov2":
                self.compare_dinov2(feats, ck, px, layers, 2, T, 128)
            else:
                self.compare(feats, self.reference(fam, ck, px, layers), 2, T, 128)
            os.remove(feats)

    def test_blocks_beyond_the_last_layer_are_not_read(self):
        sd = mre.encoder_state_dict("clip", width=128, mlp=512, patch=16, blocks=8, pos_grid=4, seed=11)
        bad = []
        for i in (6, 7):  # blocks 7 and 8 (1-based)
            key = encoders.block_keys("clip", i)["fc1_w"]
            sd[key] = sd[key][:256]  # [256,128] instead of [512,128]
            bad.append(key)
        ck = self.checkpoint("bad.safetensors", "clip", state_dict=sd)
        inp, px = self.pixels("px.h5", (1, 3, 64, 64), seed=12)
        feats, _ = self.encode(inp, ck, "clip", [2, 4, 6])
        self.compare(feats, self.reference("clip", ck, px, [2, 4, 6]), 1, 17, 128)
        os.remove(feats)
        self.expect_fail(["encode", inp, "-o", feats, "--encoder", "clip", "--weights", ck, "--layers", "8", "-q"],
                         bad[0])
        with self.assertRaisesRegex(encoders.EncoderError, bad[0].replace(".", r"\.")):
            self.reference("clip", ck, px, [8])


class EncodeErrors(Base):
    def setUp(self):
        super().setUp()
        self.ck = self.checkpoint("clip.safetensors", "clip", width=128, mlp=512, patch=16, blocks=6, pos_grid=4, seed=13)
        self.out = os.path.join(self.outdir, "feats.h5")

    def args(self, inp, layers="2,4,6"):
        return ["encode", inp, "-o", self.out, "--encoder", "clip", "--weights", self.ck, "--layers", layers, "-q"]

    def test_layer_beyond_the_blocks_present(self):
        inp, _ = self.pixels("px.h5", (1, 3, 64, 64))
        self.expect_fail(self.args(inp, "2,7"), "7", "6")

    def test_grid_does_not_match_the_position_table(self):
        inp, px = self.pixels("px80.h5", (1, 3, 80, 80))  # 5x5 grid, table 4x4
        self.expect_fail(self.args(inp), any_of=("grid", "position", "80"))
        with self.assertRaises(encoders.EncoderError):
            self.reference("clip", self.ck, px, [2])

    def test_nan_pixels(self):
        px = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
        px[1, 2, 10, 11] = np.nan
        inp = self.path("nan.h5")
        with h5py.File(inp, "w") as f:
            f["pixel_values"] = px
        self.expect_fail(self.args(inp), any_of=("nan", "finite"))


class ConvertCheckpoint(Base):
    def test_nested_state_dict_round_trips(self):
        sd = mre.encoder_state_dict("biomedclip", width=64, mlp=128, patch=4, blocks=2, pos_grid=3, seed=14,
                                    extra_keys=True)
        tsd = {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}
        tsd["visual.head.proj.weight"] = tsd["visual.head.proj.weight"].half()  # written as F32
        src = self.path("open_clip_pytorch_model.bin")
        torch.save({"state_dict": tsd, "epoch": 3, "name": "random"}, src)
        dst = os.path.join(self.outdir, "model.safetensors")
        r = subprocess.run([sys.executable, os.path.join(PYDIR, "convert_checkpoint.py"), src, dst, "-q"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.outdir), ["model.safetensors"])  # no temporary left
        listing = json.loads(run("checkpoint", dst, "--json").stdout)
        self.assertEqual(sorted(t["name"] for t in listing["tensors"]), sorted(tsd))
        back = safetensors_io.load(dst)
        header, meta, _, _ = safetensors_io.read_header(dst)
        for k, v in tsd.items():
            want = v.numpy() if not v.is_floating_point() else v.float().numpy()
            np.testing.assert_array_equal(back[k], want, k)
            self.assertEqual(header[k]["dtype"], "F32" if v.is_floating_point() else "I64", k)
        self.assertEqual(meta, {"format": "pt"})
        # the converted file works as encoder weights for the C tool's family check
        run("checkpoint", dst, "--model", "biomedclip", "--json")

    def test_keep_dtype_and_model_key(self):
        t = {"a": torch.randn(3, 4).half(), "b": torch.randn(5).bfloat16(), "c": torch.randn(2).double(),
             "n": torch.arange(4, dtype=torch.int32), "flag": torch.tensor([True, False])}
        src = self.path("ck.pt")
        torch.save({"model": t}, src)
        dst = self.path("kept.safetensors")
        n, skipped = convert_checkpoint.convert(src, dst, keep_dtype=True)
        self.assertEqual((n, skipped), (5, []))
        header, _, _, _ = safetensors_io.read_header(dst)
        self.assertEqual({k: header[k]["dtype"] for k in t},
                         {"a": "F16", "b": "BF16", "c": "F64", "n": "I64", "flag": "BOOL"})
        back = safetensors_io.load(dst, float32=False)
        np.testing.assert_array_equal(back["a"], t["a"].numpy())
        np.testing.assert_array_equal(back["b"], t["b"].float().numpy())
        np.testing.assert_array_equal(back["c"], t["c"].numpy())
        np.testing.assert_array_equal(back["n"], np.arange(4))

    def test_unreadable_input_is_one_line(self):
        src = self.path("junk.bin")
        with open(src, "wb") as f:
            f.write(b"this is not a checkpoint\n" * 20)
        dst = os.path.join(self.outdir, "x.safetensors")
        r = subprocess.run([sys.executable, os.path.join(PYDIR, "convert_checkpoint.py"), src, dst],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("junk.bin", lines[0])
        self.assertEqual(os.listdir(self.outdir), [])


class ReferenceSelfChecks(common.TmpCase):
    """The reference on its own: precision, published layouts, and the DINOv2 resampling formula."""

    def test_float32_agrees_with_float64(self):
        rng = np.random.default_rng(20)
        for fam, kw, hw in (("clip", dict(pos_grid=4, patch=16), 64), ("dinov2", dict(pos_grid=37, patch=14), 224),
                            ("biomedclip", dict(pos_grid=4, patch=16), 64)):
            sd = mre.encoder_state_dict(fam, width=128, mlp=512, blocks=6, seed=21, **kw)
            px = torch.from_numpy(rng.standard_normal((2, 3, hw, hw)).astype(np.float32))
            a = encoders.build(fam, sd, torch.float32).forward(px, [0, 3, 6])
            b = encoders.build(fam, sd, torch.float64).forward(px, [0, 3, 6])
            for i in (0, 3, 6):
                err = ((a[i].double() - b[i]).abs().max() / b[i].abs().max()).item()
                self.assertLess(err, 1e-5, f"{fam} layer {i}")

    def test_fused_qkv_layout_and_layerscale(self):
        """DINOv2 with LayerScale 1 equals BiomedCLIP whose fused qkv rows are [q; k; v] (same eps and
        GELU, patch bias, no pre-norm, table grid = input grid); LayerScale 0 makes a block the identity."""
        sd = mre.encoder_state_dict("dinov2", width=128, mlp=256, patch=8, blocks=3, pos_grid=4, seed=22)
        for k in sd:
            if "layer_scale" in k:
                sd[k] = np.ones_like(sd[k])
        e = {"cls_token": "cls_token", "position_embeddings": "pos_embed"}
        bm = {f"visual.trunk.{e[k]}": sd[f"embeddings.{k}"] for k in e}
        for s in ("weight", "bias"):
            bm[f"visual.trunk.patch_embed.proj.{s}"] = sd[f"embeddings.patch_embeddings.projection.{s}"]
        for i in range(3):
            dk, bk = encoders.block_keys("dinov2", i), encoders.block_keys("biomedclip", i)
            for r in ("ln1_w", "ln1_b", "ln2_w", "ln2_b", "o_w", "o_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"):
                bm[bk[r]] = sd[dk[r]]
            for s in ("w", "b"):
                bm[bk["qkv_" + s]] = np.concatenate([sd[dk[p + "_" + s]] for p in ("q", "k", "v")])
        px = torch.from_numpy(np.random.default_rng(23).standard_normal((2, 3, 32, 32)).astype(np.float32))
        a = encoders.build("dinov2", sd, torch.float64).forward(px, [0, 1, 3])
        b = encoders.build("biomedclip", bm, torch.float64).forward(px, [0, 1, 3])
        for i in (0, 1, 3):
            self.assertLess((a[i] - b[i]).abs().max().item(), 1e-12)
        for k in encoders.block_keys("dinov2", 1).values():
            if "layer_scale" in k:
                sd[k] = np.zeros_like(sd[k])
        c = encoders.build("dinov2", sd, torch.float64).forward(px, [1, 2])
        self.assertTrue(torch.equal(c[1], c[2]))

    def test_dinov2_resampling_formula(self):
        """transformers' F.interpolate(size=(g,g), bicubic, align_corners=False) equals the explicit
        A=-0.75 cubic convolution at source x = (d+0.5)*37/g - 0.5 with clamped taps; the older
        (g+0.1)/37 scale_factor variant maps x = (d+0.5)*37/(g+0.1) - 0.5 and differs."""
        rng = np.random.default_rng(24)
        s, D = 37, 6
        table = torch.from_numpy(rng.standard_normal((1, s * s + 1, D)))  # float64 in, float32 inside (as HF)
        patch = table[0, 1:].numpy().reshape(s, s, D).transpose(2, 0, 1)
        for gh, gw in ((16, 16), (16, 12), (40, 40)):
            got = encoders.dinov2_position_table(table, gh, gw, gh * 14, gw * 14, "size")
            want = encoders.numpy_bicubic_resize(patch, gh, gw).transpose(1, 2, 0).reshape(gh * gw, D)
            self.assertLess(np.abs(got[0, 1:].numpy() - want).max(), 2e-5)
            self.assertTrue(torch.equal(got[0, 0], table[0, 0]))
            old = encoders.dinov2_position_table(table, gh, gw, gh * 14, gw * 14, "offset")
            want_old = encoders.numpy_bicubic_resize(patch, gh, gw, s / (gh + 0.1), s / (gw + 0.1))
            self.assertLess(np.abs(old[0, 1:].numpy() - want_old.transpose(1, 2, 0).reshape(gh * gw, D)).max(), 2e-5)
            self.assertGreater(np.abs(old - got).max().item(), 1e-2)
            aa = encoders.dinov2_position_table(table, gh, gw, gh * 14, gw * 14, "antialias")
            if gh < s:  # antialiasing changes only downsampling
                self.assertGreater(np.abs(aa - got).max().item(), 1e-2)
        # float64 weights of the formula equal PyTorch's own to rounding (one-hot probe along H)
        eye = torch.eye(s, dtype=torch.float64).reshape(s, 1, s, 1).expand(s, 1, s, s)
        m = torch.nn.functional.interpolate(eye, size=(16, 16), mode="bicubic", align_corners=False)[:, 0, :, 0]
        self.assertLess(np.abs(m.numpy().T - encoders.bicubic_matrix(s, 16)).max(), 1e-14)
        # square input with the table's grid: the table itself
        self.assertIs(encoders.dinov2_position_table(table, 37, 37, 518, 518), table)

    def test_sensitive_checkpoints_expose_numerics(self):
        def rel(a, b):
            return max(((a[i] - b[i]).abs().max() / b[i].abs().max()).item() for i in b)

        acts = {"gelu_erf": torch.nn.functional.gelu, "quick_gelu": lambda y: y * torch.sigmoid(1.702 * y),
                "gelu_tanh": lambda y: torch.nn.functional.gelu(y, approximate="tanh")}
        for fam, kw, hw, layers in SENSITIVE:
            sd = mre.encoder_state_dict(fam, sensitive=True, seed=30, **kw)
            px = torch.from_numpy(np.random.default_rng(31).standard_normal((2, 3, hw, hw)).astype(np.float32))
            ref = encoders.build(fam, sd, torch.float64).forward(px, layers)
            self.assertLess(rel(encoders.build(fam, sd, torch.float32).forward(px, layers), ref), TOL / 5, fam)
            wrong = encoders.build(fam, sd, torch.float64)
            wrong.spec.eps = 1e-6 if fam == "clip" else 1e-5
            self.assertGreater(rel(wrong.forward(px, layers), ref), 5 * TOL, f"{fam} eps")
            for name, act in acts.items():
                if name == encoders.ACTIVATION[fam]:
                    continue
                wrong = encoders.build(fam, sd, torch.float64)

                def mlp(u, k, e=wrong, act=act):
                    y = act(torch.nn.functional.linear(u, e.t(k["fc1_w"]), e.t(k["fc1_b"])))
                    return torch.nn.functional.linear(y, e.t(k["fc2_w"]), e.t(k["fc2_b"]))

                wrong.mlp = mlp
                self.assertGreater(rel(wrong.forward(px, layers), ref), 10 * TOL, f"{fam} {name}")
            if fam == "dinov2":
                old = encoders.build(fam, sd, torch.float64, pos_interp="offset").forward(px, layers)
                self.assertGreater(rel(old, ref), 10 * TOL)
                no_ls = encoders.build(fam, sd, torch.float64)
                for i in range(kw["blocks"]):
                    for r in ("ls1", "ls2"):
                        no_ls._cache[encoders.block_keys(fam, i)[r]] = torch.ones(128, dtype=torch.float64)
                self.assertGreater(rel(no_ls.forward(px, layers), ref), 10 * TOL)

    def test_only_requested_blocks_are_computed(self):
        sd = mre.encoder_state_dict("biomedclip", width=64, mlp=128, patch=8, blocks=4, pos_grid=2, seed=25)
        for i in (2, 3):
            del sd[encoders.block_keys("biomedclip", i)["fc2_w"]]
        px = torch.zeros(1, 3, 16, 16)
        enc = encoders.build("biomedclip", sd, torch.float64)
        self.assertEqual(sorted(enc.forward(px, [2, 1])), [1, 2])
        with self.assertRaisesRegex(encoders.EncoderError, r"missing tensor 'visual\.trunk\.blocks\.2\.mlp\.fc2\.weight'"):
            enc.forward(px, [3])
        with self.assertRaisesRegex(encoders.EncoderError, "needs 5 blocks, the checkpoint has 4"):
            enc.forward(px, [5])


if __name__ == "__main__":
    common.main()
