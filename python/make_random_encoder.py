#!/usr/bin/python3
"""Write a random-weight encoder checkpoint (safetensors) with the published key names and shapes.

    make_random_encoder.py OUT.safetensors --family clip|dinov2|biomedclip [--width 768] [--mlp 3072]
        [--patch 16] [--blocks 12] [--pos-grid 14] [--seed 0] [--extra-keys] [--dtype f32|f16|bf16]

Key names: HF CLIPModel vision tower (`vision_model.*`), HF Dinov2Model (no prefix), open_clip
BiomedCLIP (`visual.trunk.*`). --extra-keys adds published tensors the encoder does not use (CLIP:
a small text-tower stub, text/visual projections, logit_scale, int64 position_ids, post_layernorm;
DINOv2: mask_token, layernorm; BiomedCLIP: trunk.norm, head.proj, a text.* stub, logit_scale), so
loaders are tested on full-checkpoint key sets.

Scales keep activations O(1) through many blocks: patch conv ~ N(0, 1/(3P^2)), q/k/v/fc1 ~
N(0, 1/D_in), out-proj/fc2 ~ N(0, 0.25/D_in), biases 0.02*N, LayerNorm gamma 1 + 0.1*N and beta
0.02*N, DINOv2 LayerScale U(0.1, 1), class token 0.1*N, position table 0.1*N.

--sensitive makes the checkpoint sensitive to the family's numerics (for tests): patch embedding 20x
and class/position embeddings 2x smaller (LayerNorm inputs of std ~0.05, so eps 1e-5 vs 1e-6 moves the
hidden states by ~1e-3 relative), and MLP pre-activations around -3 (fc1 bias -3 + 0.3*N, small fc1
weights) with coherent fc2 rows, where erf-GELU, tanh-GELU and quick-GELU differ by >= ~10%.

Importable: encoder_state_dict(...) -> {name: np.ndarray}, write_random_encoder(path, ...) -> the
tensors as stored (rounded to the chosen dtype, returned as float32).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import safetensors_io  # noqa: E402
from fmrecon_ref.encoders import FAMILIES, block_keys  # noqa: E402

DEFAULT_GRID = {"clip": 14, "dinov2": 37, "biomedclip": 14}
DEFAULT_PATCH = {"clip": 16, "dinov2": 14, "biomedclip": 16}


def encoder_state_dict(family, width=768, mlp=None, patch=None, blocks=12, pos_grid=None, seed=0,
                       extra_keys=False, sensitive=False):
    """{name: float32 array (int64 for position_ids)} of a random encoder."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family '{family}' (clip, dinov2, biomedclip)")
    if width % 64:
        raise ValueError(f"width {width} is not a multiple of 64")
    D = width
    M = mlp or 4 * D
    P = patch or DEFAULT_PATCH[family]
    g = pos_grid or DEFAULT_GRID[family]
    T = g * g + 1
    rng = np.random.default_rng(seed)

    def n(*shape, std=1.0):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def gamma(d):
        return (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    sd = {}
    if family == "clip":
        v = "vision_model."
        sd[v + "embeddings.class_embedding"] = n(D, std=0.1)
        sd[v + "embeddings.patch_embedding.weight"] = n(D, 3, P, P, std=(3 * P * P) ** -0.5)
        sd[v + "embeddings.position_embedding.weight"] = n(T, D, std=0.1)
        sd[v + "pre_layrnorm.weight"], sd[v + "pre_layrnorm.bias"] = gamma(D), n(D, std=0.02)
    else:
        e = "embeddings." if family == "dinov2" else "visual.trunk."
        cls_key = e + "cls_token"
        pos_key = e + ("position_embeddings" if family == "dinov2" else "pos_embed")
        pw = e + ("patch_embeddings.projection" if family == "dinov2" else "patch_embed.proj")
        sd[cls_key] = n(1, 1, D, std=0.1)
        sd[pos_key] = n(1, T, D, std=0.1)
        sd[pw + ".weight"] = n(D, 3, P, P, std=(3 * P * P) ** -0.5)
        sd[pw + ".bias"] = n(D, std=0.02)

    for i in range(blocks):
        k = block_keys(family, i)
        for ln in ("ln1", "ln2"):
            sd[k[ln + "_w"]], sd[k[ln + "_b"]] = gamma(D), n(D, std=0.02)
        if family == "biomedclip":
            sd[k["qkv_w"]], sd[k["qkv_b"]] = n(3 * D, D, std=D ** -0.5), n(3 * D, std=0.02)
        else:
            for p in ("q", "k", "v"):
                sd[k[p + "_w"]], sd[k[p + "_b"]] = n(D, D, std=D ** -0.5), n(D, std=0.02)
        sd[k["o_w"]], sd[k["o_b"]] = n(D, D, std=0.5 * D ** -0.5), n(D, std=0.02)
        sd[k["fc1_w"]], sd[k["fc1_b"]] = n(M, D, std=D ** -0.5), n(M, std=0.02)
        sd[k["fc2_w"]], sd[k["fc2_b"]] = n(D, M, std=0.5 * M ** -0.5), n(D, std=0.02)
        if family == "dinov2":
            sd[k["ls1"]] = rng.uniform(0.1, 1.0, D).astype(np.float32)
            sd[k["ls2"]] = rng.uniform(0.1, 1.0, D).astype(np.float32)

    if sensitive:
        _sharpen(sd, family, blocks, D, M, np.random.default_rng(seed + 7919))
    if extra_keys:
        sd.update(_extra(family, D, T, n, gamma))
    return sd


def _sharpen(sd, family, blocks, D, M, rng):
    """Small embeddings (LayerNorm eps visible) and MLPs working in GELU's negative tail."""
    for key in list(sd):
        if key.endswith(("class_embedding", "cls_token", "position_embedding.weight", "position_embeddings",
                         "pos_embed", "patch_embedding.weight", "projection.weight", "projection.bias",
                         "patch_embed.proj.weight", "patch_embed.proj.bias")):
            sd[key] = (sd[key] * (0.5 if "pos" in key or "cls" in key or "class" in key else 0.05)).astype(np.float32)
    for i in range(blocks):
        k = block_keys(family, i)
        sd[k["fc1_w"]] = (rng.standard_normal((M, D)) * 0.3 * D ** -0.5).astype(np.float32)
        sd[k["fc1_b"]] = (-3.0 + 0.3 * rng.standard_normal(M)).astype(np.float32)
        sign = np.sign(rng.standard_normal((D, 1)))
        sd[k["fc2_w"]] = (sign * (0.3 + 0.3 * rng.standard_normal((D, M))) * 12.5 / M).astype(np.float32)


def _extra(family, D, T, n, gamma):
    """Published tensors the vision encoder does not use (small stubs for the text towers)."""
    proj = 512 if D >= 512 else 64
    Dt, vocab, ctx = 64, 100, 16
    x = {}
    if family == "clip":
        x["vision_model.embeddings.position_ids"] = np.arange(T, dtype=np.int64).reshape(1, T)
        x["vision_model.post_layernorm.weight"], x["vision_model.post_layernorm.bias"] = gamma(D), n(D, std=0.02)
        x["visual_projection.weight"] = n(proj, D, std=D ** -0.5)
        x["text_projection.weight"] = n(proj, Dt, std=Dt ** -0.5)
        x["logit_scale"] = np.array(np.log(1 / 0.07), dtype=np.float32)
        t = "text_model."
        x[t + "embeddings.token_embedding.weight"] = n(vocab, Dt, std=0.02)
        x[t + "embeddings.position_embedding.weight"] = n(ctx, Dt, std=0.01)
        x[t + "embeddings.position_ids"] = np.arange(ctx, dtype=np.int64).reshape(1, ctx)
        for p in ("q", "k", "v", "out"):  # one text layer, same names as the vision layers'
            x[t + f"encoder.layers.0.self_attn.{p}_proj.weight"] = n(Dt, Dt, std=Dt ** -0.5)
            x[t + f"encoder.layers.0.self_attn.{p}_proj.bias"] = n(Dt, std=0.02)
        x[t + "encoder.layers.0.mlp.fc1.weight"] = n(4 * Dt, Dt, std=Dt ** -0.5)
        x[t + "final_layer_norm.weight"], x[t + "final_layer_norm.bias"] = gamma(Dt), n(Dt, std=0.02)
    elif family == "dinov2":
        x["embeddings.mask_token"] = np.zeros((1, D), np.float32)
        x["layernorm.weight"], x["layernorm.bias"] = gamma(D), n(D, std=0.02)
    else:
        x["visual.trunk.norm.weight"], x["visual.trunk.norm.bias"] = gamma(D), n(D, std=0.02)
        x["visual.head.proj.weight"] = n(proj, D, std=D ** -0.5)
        x["logit_scale"] = np.array(np.log(1 / 0.07), dtype=np.float32)
        t = "text.transformer."
        x[t + "embeddings.word_embeddings.weight"] = n(vocab, Dt, std=0.02)
        x[t + "embeddings.position_embeddings.weight"] = n(ctx, Dt, std=0.02)
        x[t + "embeddings.position_ids"] = np.arange(ctx, dtype=np.int64).reshape(1, ctx)
        x[t + "encoder.layer.0.attention.self.query.weight"] = n(Dt, Dt, std=Dt ** -0.5)
        x[t + "encoder.layer.0.attention.self.query.bias"] = n(Dt, std=0.02)
        x["text.proj.0.weight"] = n(proj, Dt, std=Dt ** -0.5)
        x["text.proj.2.weight"] = n(proj, proj, std=proj ** -0.5)
    return x


_DT = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def write_random_encoder(path, family, width=768, mlp=None, patch=None, blocks=12, pos_grid=None, seed=0,
                         extra_keys=False, dtype="f32", state_dict=None, sensitive=False):
    """Write a random encoder (or `state_dict`, e.g. a modified one) to `path`; returns the tensors as
    stored, floats widened back to float32."""
    sd = state_dict if state_dict is not None else encoder_state_dict(
        family, width, mlp, patch, blocks, pos_grid, seed, extra_keys, sensitive)
    meta = {"format": "pt", "generator": "fmrecon make_random_encoder", "family": family, "seed": str(seed)}
    safetensors_io.save(path, sd, metadata=meta, dtype=_DT[dtype])
    return safetensors_io.load(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--family", required=True, choices=FAMILIES)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--mlp", type=int, default=None, help="MLP hidden size (default 4*width)")
    ap.add_argument("--patch", type=int, default=None, help="patch size (default 16; DINOv2 14)")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--pos-grid", type=int, default=None,
                    help="side of the position table's patch grid (default 14; DINOv2 37)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra-keys", action="store_true", help="add published tensors the encoder does not use")
    ap.add_argument("--dtype", choices=sorted(_DT), default="f32", help="stored dtype of the float tensors")
    ap.add_argument("--sensitive", action="store_true",
                    help="weights that make LayerNorm eps and the GELU variant visible in the hidden states")
    a = ap.parse_args(argv)
    try:
        sd = write_random_encoder(a.out, a.family, a.width, a.mlp, a.patch, a.blocks, a.pos_grid, a.seed,
                                  a.extra_keys, a.dtype, sensitive=a.sensitive)
    except (ValueError, OSError) as e:
        print(f"make_random_encoder: {e}", file=sys.stderr)
        return 1
    n = sum(int(np.prod(v.shape)) for v in sd.values())
    print(f"{a.out}: {a.family}, {len(sd)} tensors, {n} values ({a.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
