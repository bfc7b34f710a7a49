"""Encoder checkpoints with the published key names and shapes (HF CLIPModel vision tower, HF
Dinov2Model, open_clip BiomedCLIP; reference/conventions.md section B), written here at small widths
with random weights: `fmrecon checkpoint --model` reads the architecture off the tensors and names
any missing or mis-shaped tensor."""
import json

import numpy as np

import common
from common import run
from test_safetensors import st_bytes

D, M, P, T, BLOCKS = 64, 256, 4, 17, 6


def clip_keys():
    k = {"vision_model.embeddings.class_embedding": (D,), "vision_model.embeddings.patch_embedding.weight": (D, 3, P, P),
         "vision_model.embeddings.position_embedding.weight": (T, D), "vision_model.pre_layrnorm.weight": (D,),
         "vision_model.pre_layrnorm.bias": (D,), "vision_model.post_layernorm.weight": (D,),
         "visual_projection.weight": (32, D), "text_projection.weight": (32, 32), "logit_scale": ()}
    for i in range(BLOCKS):
        b = f"vision_model.encoder.layers.{i}."
        for p in ("q", "k", "v", "out"):
            k[b + f"self_attn.{p}_proj.weight"], k[b + f"self_attn.{p}_proj.bias"] = (D, D), (D,)
        for n in ("layer_norm1", "layer_norm2"):
            k[b + n + ".weight"], k[b + n + ".bias"] = (D,), (D,)
        k[b + "mlp.fc1.weight"], k[b + "mlp.fc1.bias"] = (M, D), (M,)
        k[b + "mlp.fc2.weight"], k[b + "mlp.fc2.bias"] = (D, M), (D,)
    return k


def dino_keys():
    k = {"embeddings.cls_token": (1, 1, D), "embeddings.mask_token": (1, D), "embeddings.position_embeddings": (1, T, D),
         "embeddings.patch_embeddings.projection.weight": (D, 3, P, P), "embeddings.patch_embeddings.projection.bias": (D,),
         "layernorm.weight": (D,), "layernorm.bias": (D,)}
    for i in range(BLOCKS):
        b = f"encoder.layer.{i}."
        for n in ("norm1", "norm2"):
            k[b + n + ".weight"], k[b + n + ".bias"] = (D,), (D,)
        for p in ("query", "key", "value"):
            k[b + f"attention.attention.{p}.weight"], k[b + f"attention.attention.{p}.bias"] = (D, D), (D,)
        k[b + "attention.output.dense.weight"], k[b + "attention.output.dense.bias"] = (D, D), (D,)
        k[b + "layer_scale1.lambda1"], k[b + "layer_scale2.lambda1"] = (D,), (D,)
        k[b + "mlp.fc1.weight"], k[b + "mlp.fc1.bias"] = (M, D), (M,)
        k[b + "mlp.fc2.weight"], k[b + "mlp.fc2.bias"] = (D, M), (D,)
    return k


def biomed_keys():
    t = "visual.trunk."
    k = {t + "cls_token": (1, 1, D), t + "pos_embed": (1, T, D), t + "patch_embed.proj.weight": (D, 3, P, P),
         t + "patch_embed.proj.bias": (D,), t + "norm.weight": (D,), t + "norm.bias": (D,), "visual.head.proj.weight": (32, D)}
    for i in range(BLOCKS):
        b = f"{t}blocks.{i}."
        for n in ("norm1", "norm2"):
            k[b + n + ".weight"], k[b + n + ".bias"] = (D,), (D,)
        k[b + "attn.qkv.weight"], k[b + "attn.qkv.bias"] = (3 * D, D), (3 * D,)
        k[b + "attn.proj.weight"], k[b + "attn.proj.bias"] = (D, D), (D,)
        k[b + "mlp.fc1.weight"], k[b + "mlp.fc1.bias"] = (M, D), (M,)
        k[b + "mlp.fc2.weight"], k[b + "mlp.fc2.bias"] = (D, M), (D,)
    return k


class EncoderKeys(common.TmpCase):
    def write(self, name, keys, drop=None, reshape=None, dtype="<f4"):
        rng = np.random.default_rng(1)
        tensors = {}
        for key, shape in keys.items():
            if key == drop:
                continue
            if reshape and key in reshape:
                shape = reshape[key]
            a = rng.standard_normal(shape).astype(dtype)
            tensors[key] = ({"<f4": "F32", "<f2": "F16"}[dtype], shape, a.tobytes())
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(st_bytes(tensors))
        return p

    def test_families_read_and_check(self):
        for fam, keys, eps, act in (("clip", clip_keys(), 1e-5, "quick_gelu"), ("dinov2", dino_keys(), 1e-6, "gelu_erf"),
                                    ("biomedclip", biomed_keys(), 1e-6, "gelu_erf")):
            p = self.write(fam + ".safetensors", keys, dtype="<f2" if fam == "dinov2" else "<f4")
            enc = json.loads(run("checkpoint", p, "--model", fam, "--blocks", 6, "--json").stdout)["encoder"]
            self.assertEqual((enc["width"], enc["heads"], enc["mlp"], enc["patch"], enc["blocks"], enc["position_rows"]),
                             (D, D // 64, M, P, BLOCKS, T), fam)
            self.assertAlmostEqual(enc["layer_norm_eps"], eps)
            self.assertEqual(enc["activation"], act)

    def expect(self, p, needle, *args):
        r = run("checkpoint", p, *args, check=False)
        self.assertNotEqual(r.returncode, 0, needle)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(needle, lines[0])

    def test_missing_and_misshaped_tensors_are_named(self):
        key = "vision_model.encoder.layers.3.mlp.fc1.bias"
        self.expect(self.write("m.safetensors", clip_keys(), drop=key), f"missing tensor '{key}' (clip encoder, block 4)",
                    "--model", "clip")
        key = "encoder.layer.2.layer_scale2.lambda1"
        self.expect(self.write("d.safetensors", dino_keys(), drop=key), f"missing tensor '{key}'", "--model", "dinov2")
        key = "visual.trunk.blocks.1.attn.qkv.weight"
        self.expect(self.write("b.safetensors", biomed_keys(), reshape={key: (2 * D, D)}),
                    f"tensor '{key}' has shape [128,64], expected [192,64]", "--model", "biomedclip")
        p = self.write("c.safetensors", clip_keys())
        self.expect(p, "width 64 and patch 4, but clip-vit-b16 has width 768 and patch 16", "--model", "clip-vit-b16")
        self.expect(p, "needs 8 blocks, the checkpoint has 6", "--model", "clip", "--blocks", "8")
        self.expect(p, "not a dinov2 checkpoint?", "--model", "dinov2")
        self.expect(p, "unknown encoder 'vit-huge'", "--model", "vit-huge")


if __name__ == "__main__":
    common.main()
