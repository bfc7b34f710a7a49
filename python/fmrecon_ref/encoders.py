"""PyTorch reference forward passes of the frozen ViT encoders fmrecon taps.

Written from the behaviour of the published modelling code (facts only; see docs/encoders.md and
the project's reference notes, section B):

  clip        Hugging Face CLIPVisionModel (openai/clip-vit-base-patch16), keys `vision_model.*`:
              conv patch embedding without bias, class_embedding [D], position_embedding.weight [T,D],
              pre_layrnorm on the embeddings, separate q/k/v/out_proj, layer_norm1/2, mlp.fc1/fc2,
              quick_gelu x*sigmoid(1.702x), LayerNorm eps 1e-5.
  dinov2      Hugging Face Dinov2Model (facebook/dinov2-small / -base), no key prefix: cls_token
              [1,1,D], position_embeddings [1,T,D] resampled (bicubic) to the input grid, patch conv
              with bias, norm1/2, attention.attention.{query,key,value}, attention.output.dense,
              layer_scale1.lambda1 and layer_scale2.lambda1, exact (erf) GELU, eps 1e-6.
  biomedclip  open_clip BiomedCLIP, timm VisionTransformer trunk `visual.trunk.*`: cls_token, pos_embed
              [1,T,D] (CLS slot included), patch_embed.proj with bias, blocks.i.norm1/2, fused
              attn.qkv [3D,D] (output row = s*D + head*64 + d, s = q,k,v), attn.proj, mlp.fc1/fc2,
              exact GELU, eps 1e-6.

Every block is pre-norm: h += attn(LN1(h)) (DINOv2: times lambda1), h += mlp(LN2(h)) (times
layer_scale2's lambda1); head_dim 64, heads = D/64, attention scale 1/8, softmax over keys.

Hidden states use Hugging Face `output_hidden_states` indexing: 0 = the embeddings as the first block
sees them (CLIP: after pre_layrnorm; DINOv2/BiomedCLIP: after the position add), i = output of block i
(1-based), before any final norm. forward() computes no block beyond max(layers).

DINOv2 position table (transformers' current Dinov2Embeddings.interpolate_pos_encoding): kept as is
when the number of patches equals the table's and the input is square (H == W in pixels); otherwise
the patch part, reshaped to [1,D,s,s] and cast to float32, goes through
F.interpolate(size=(H//p, W//p), mode="bicubic", align_corners=False) (no antialias, no scale_factor)
and is cast back. pos_interp="offset" gives the older transformers / original DINOv2 variant:
scale_factor=((H//p + 0.1)/s, (W//p + 0.1)/s), which makes PyTorch map output pixel d to source
coordinate (d + 0.5)*s/(g + 0.1) - 0.5 instead of (d + 0.5)*s/g - 0.5. pos_interp="antialias" is
what transformers' separate Dinov2WithRegisters model does (size= plus antialias=True, PIL-style
a = -0.5 kernel stretched over in/out input rows) -- NOT the facebook/dinov2-small/-base Dinov2Model.
"""
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FAMILIES = ("clip", "dinov2", "biomedclip")
# published model IDs: (family, width, patch)
MODEL_IDS = {"clip-vit-b16": ("clip", 768, 16), "dinov2-s14": ("dinov2", 384, 14),
             "dinov2-b14": ("dinov2", 768, 14), "biomedclip-b16": ("biomedclip", 768, 16)}
HEAD_DIM = 64
LN_EPS = {"clip": 1e-5, "dinov2": 1e-6, "biomedclip": 1e-6}
ACTIVATION = {"clip": "quick_gelu", "dinov2": "gelu_erf", "biomedclip": "gelu_erf"}

_EMB = {
    "clip": {"patch_w": "vision_model.embeddings.patch_embedding.weight", "patch_b": None,
             "cls": "vision_model.embeddings.class_embedding",
             "pos": "vision_model.embeddings.position_embedding.weight",
             "pre_w": "vision_model.pre_layrnorm.weight", "pre_b": "vision_model.pre_layrnorm.bias"},
    "dinov2": {"patch_w": "embeddings.patch_embeddings.projection.weight",
               "patch_b": "embeddings.patch_embeddings.projection.bias",
               "cls": "embeddings.cls_token", "pos": "embeddings.position_embeddings"},
    "biomedclip": {"patch_w": "visual.trunk.patch_embed.proj.weight", "patch_b": "visual.trunk.patch_embed.proj.bias",
                   "cls": "visual.trunk.cls_token", "pos": "visual.trunk.pos_embed"},
}
BLOCK_PREFIX = {"clip": "vision_model.encoder.layers.{}.", "dinov2": "encoder.layer.{}.",
                "biomedclip": "visual.trunk.blocks.{}."}


class EncoderError(ValueError):
    """A checkpoint or an input that the encoder cannot use; the message names the problem."""


def resolve(model):
    """(family, (width, patch) or None) of a family name or a published model ID."""
    if model in FAMILIES:
        return model, None
    if model in MODEL_IDS:
        fam, w, p = MODEL_IDS[model]
        return fam, (w, p)
    raise EncoderError(f"unknown encoder '{model}' (expected one of {', '.join(FAMILIES + tuple(MODEL_IDS))})")


def block_keys(family, i):
    """{role: key} of block i (0-based). Roles: ln1_w ln1_b q_w q_b k_w k_b v_w v_b (or qkv_w qkv_b)
    o_w o_b ln2_w ln2_b fc1_w fc1_b fc2_w fc2_b (ls1 ls2 for DINOv2)."""
    p = BLOCK_PREFIX[family].format(i)
    if family == "clip":
        k = {"ln1": "layer_norm1", "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
             "o": "self_attn.out_proj", "ln2": "layer_norm2", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    elif family == "dinov2":
        k = {"ln1": "norm1", "q": "attention.attention.query", "k": "attention.attention.key",
             "v": "attention.attention.value", "o": "attention.output.dense", "ln2": "norm2",
             "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    else:
        k = {"ln1": "norm1", "qkv": "attn.qkv", "o": "attn.proj", "ln2": "norm2", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    out = {}
    for role, name in k.items():
        out[role + "_w"] = p + name + ".weight"
        out[role + "_b"] = p + name + ".bias"
    if family == "dinov2":
        out["ls1"] = p + "layer_scale1.lambda1"
        out["ls2"] = p + "layer_scale2.lambda1"  # sic: both LayerScales name their parameter lambda1
    return out


def block_shapes(family, i, width, mlp):
    """{key: expected shape} of block i."""
    D, M = width, mlp
    k = block_keys(family, i)
    shapes = {}
    for role, key in k.items():
        if role in ("ln1_w", "ln1_b", "ln2_w", "ln2_b", "ls1", "ls2", "fc2_b", "o_b", "q_b", "k_b", "v_b"):
            shapes[key] = (D,)
        elif role in ("q_w", "k_w", "v_w", "o_w"):
            shapes[key] = (D, D)
        elif role == "qkv_w":
            shapes[key] = (3 * D, D)
        elif role == "qkv_b":
            shapes[key] = (3 * D,)
        elif role == "fc1_w":
            shapes[key] = (M, D)
        elif role == "fc1_b":
            shapes[key] = (M,)
        elif role == "fc2_w":
            shapes[key] = (D, M)
    return shapes


def embedding_shapes(family, width, patch, pos_rows):
    D, P, T = width, patch, pos_rows
    e = _EMB[family]
    s = {e["patch_w"]: (D, 3, P, P)}
    if family == "clip":
        s[e["cls"]] = (D,)
        s[e["pos"]] = (T, D)
        s[e["pre_w"]] = (D,)
        s[e["pre_b"]] = (D,)
    else:
        s[e["patch_b"]] = (D,)
        s[e["cls"]] = (1, 1, D)
        s[e["pos"]] = (1, T, D)
    return s


@dataclass
class Spec:
    family: str
    width: int
    heads: int
    mlp: int
    patch: int
    blocks: int
    pos_rows: int
    pos_grid: int
    eps: float
    activation: str


def _shape(sd, key):
    return tuple(int(s) for s in sd[key].shape)


def _fmt(shape):
    return "[" + ",".join(str(s) for s in shape) + "]"


def _check(sd, key, want, family):
    if key not in sd:
        raise EncoderError(f"missing tensor '{key}' ({family} encoder)")
    got = _shape(sd, key)
    if got != tuple(want):
        raise EncoderError(f"tensor '{key}' has shape {_fmt(got)}, expected {_fmt(want)}")


def infer_spec(model, sd):
    """The architecture read off the tensors: width from the patch embedding, patch size, MLP size from
    block 1's fc1, position-table rows, number of consecutive blocks present from block 1."""
    family, need = resolve(model)
    e = _EMB[family]
    if e["patch_w"] not in sd:
        raise EncoderError(f"missing tensor '{e['patch_w']}' (not a {family} checkpoint?)")
    w = _shape(sd, e["patch_w"])
    if len(w) != 4 or w[1] != 3 or w[2] != w[3] or w[2] < 1:
        raise EncoderError(f"tensor '{e['patch_w']}' has shape {_fmt(w)}, expected [D,3,P,P]")
    D, P = w[0], w[2]
    if D % HEAD_DIM:
        raise EncoderError(f"width {D} is not a multiple of the head size {HEAD_DIM}")
    if need is not None and (D, P) != need:
        raise EncoderError(f"checkpoint has width {D} and patch {P}, but {model} has width {need[0]} and patch {need[1]}")
    if e["pos"] not in sd:
        raise EncoderError(f"missing tensor '{e['pos']}' ({family} encoder)")
    ps = _shape(sd, e["pos"])
    T = ps[0] if family == "clip" else (ps[1] if len(ps) == 3 else -1)
    g = math.isqrt(T - 1) if T > 1 else 0
    if T < 2 or g * g != T - 1:
        raise EncoderError(f"tensor '{e['pos']}' has shape {_fmt(ps)}: not 1 + a square number of positions")
    for key, want in embedding_shapes(family, D, P, T).items():
        _check(sd, key, want, family)
    before, after = BLOCK_PREFIX[family].split("{}")
    pat = re.compile("^" + re.escape(before) + r"(\d+)" + re.escape(after))
    present = set()
    for key in sd:
        m = pat.match(key)
        if m:
            present.add(int(m.group(1)))
    blocks = 0
    while blocks in present:
        blocks += 1
    fc1 = block_keys(family, 0)["fc1_w"]
    M = _shape(sd, fc1)[0] if blocks and fc1 in sd else 4 * D
    return Spec(family, D, D // HEAD_DIM, M, P, blocks, T, g, LN_EPS[family], ACTIVATION[family])


def cubic_weights(t, A=-0.75):
    """PyTorch's bicubic convolution weights for the taps at offsets -1, 0, 1, 2 of fraction t."""
    def c1(x):
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    return np.stack([c2(t + 1), c1(t), c1(1 - t), c2(2 - t)], axis=-1)


def bicubic_matrix(n_in, n_out, scale=None):
    """[n_out, n_in] matrix of PyTorch's bicubic resize along one axis (align_corners=False, no
    antialias): source coordinate x = (d + 0.5)*scale - 0.5 with scale = n_in/n_out (size=) or
    1/scale_factor (scale_factor=); x is NOT clamped for cubic; taps floor(x)-1..floor(x)+2 are clamped
    to [0, n_in-1] (border replication)."""
    scale = n_in / n_out if scale is None else scale
    m = np.zeros((n_out, n_in))
    for d in range(n_out):
        x = (d + 0.5) * scale - 0.5
        i0 = math.floor(x)
        w = cubic_weights(x - i0)
        for j, wj in zip(range(i0 - 1, i0 + 3), w):
            m[d, min(max(j, 0), n_in - 1)] += wj
    return m


def numpy_bicubic_resize(a, out_h, out_w, scale_h=None, scale_w=None):
    """Bicubic resize of a [..., H, W] array with PyTorch's align_corners=False formula, in float64."""
    mh = bicubic_matrix(a.shape[-2], out_h, scale_h)
    mw = bicubic_matrix(a.shape[-1], out_w, scale_w)
    return np.einsum("oh,...hw,pw->...op", mh, np.asarray(a, np.float64), mw)


def dinov2_position_table(table, gh, gw, height, width, variant="size", interp_float32=True):
    """The [1, 1+gh*gw, D] position embeddings Hugging Face's Dinov2Embeddings adds for an input of
    height x width pixels with a gh x gw patch grid. table: [1, T, D] tensor."""
    T, D = table.shape[1], table.shape[2]
    N = T - 1
    s = math.isqrt(N)
    if gh * gw == N and height == width:
        return table
    cls_pos = table[:, :1]
    patch = table[:, 1:].reshape(1, s, s, D).permute(0, 3, 1, 2)
    src_dtype = patch.dtype
    if interp_float32:
        patch = patch.to(torch.float32)
    if variant == "size":
        out = F.interpolate(patch, size=(gh, gw), mode="bicubic", align_corners=False)
    elif variant == "antialias":  # transformers' Dinov2WithRegisters (not Dinov2) passes antialias=True
        out = F.interpolate(patch, size=(gh, gw), mode="bicubic", align_corners=False, antialias=True)
    elif variant == "offset":
        out = F.interpolate(patch, scale_factor=((gh + 0.1) / s, (gw + 0.1) / s), mode="bicubic",
                            align_corners=False)
        if tuple(out.shape[-2:]) != (gh, gw):
            raise EncoderError(f"position-table resampling gave {tuple(out.shape[-2:])}, expected {(gh, gw)}")
    else:
        raise EncoderError(f"unknown pos_interp variant '{variant}' (size, offset or antialias)")
    out = out.to(src_dtype).permute(0, 2, 3, 1).reshape(1, gh * gw, D)
    return torch.cat((cls_pos, out), dim=1)


class Encoder:
    """A frozen encoder over a state dict (numpy arrays or torch tensors), computing in `dtype`."""

    def __init__(self, model, state_dict, dtype=torch.float32, pos_interp="size"):
        self.spec = infer_spec(model, state_dict)
        self.family = self.spec.family
        self.sd = state_dict
        self.dtype = dtype
        self.pos_interp = pos_interp
        self._cache = {}
        self._checked = set()

    def t(self, key):
        v = self._cache.get(key)
        if v is None:
            a = self.sd[key]
            v = (a.detach().cpu() if hasattr(a, "detach") else torch.from_numpy(np.ascontiguousarray(a)))
            v = v.to(self.dtype)
            self._cache[key] = v
        return v

    def check_block(self, i):
        if i in self._checked:
            return
        if i >= self.spec.blocks:
            raise EncoderError(f"block {i + 1} is not in the checkpoint ({self.spec.blocks} blocks present)")
        for key, want in block_shapes(self.family, i, self.spec.width, self.spec.mlp).items():
            if key not in self.sd:
                raise EncoderError(f"missing tensor '{key}' ({self.family} encoder, block {i + 1})")
            _check(self.sd, key, want, self.family)
        self._checked.add(i)

    def _ln(self, x, w, b):
        return F.layer_norm(x, (x.shape[-1],), self.t(w), self.t(b), self.spec.eps)

    def embed(self, x):
        s, e = self.spec, _EMB[self.family]
        B, _, H, W = x.shape
        gh, gw = H // s.patch, W // s.patch
        p = F.conv2d(x, self.t(e["patch_w"]), self.t(e["patch_b"]) if e["patch_b"] else None, stride=s.patch)
        p = p.flatten(2).transpose(1, 2)  # [B, gh*gw, D], token = row*gw + col
        cls = self.t(e["cls"]).reshape(1, 1, s.width).expand(B, 1, s.width)
        h = torch.cat((cls, p), dim=1)
        table = self.t(e["pos"])
        if self.family == "dinov2":
            pos = dinov2_position_table(table, gh, gw, H, W, self.pos_interp)
        else:
            if (gh, gw) != (s.pos_grid, s.pos_grid):
                raise EncoderError(f"input {H}x{W} gives a {gh}x{gw} patch grid, but the {self.family} position "
                                   f"table is for {s.pos_grid}x{s.pos_grid} ({s.pos_grid * s.patch}x"
                                   f"{s.pos_grid * s.patch} pixels)")
            pos = table.reshape(1, s.pos_rows, s.width)
        h = h + pos
        if self.family == "clip":
            h = self._ln(h, e["pre_w"], e["pre_b"])
        return h

    def attention(self, u, k):
        B, N, D = u.shape
        if self.family == "biomedclip":
            qkv = F.linear(u, self.t(k["qkv_w"]), self.t(k["qkv_b"]))  # [B,N,3D]; column = s*D + head*64 + d
            qkv = qkv.reshape(B, N, 3, self.spec.heads, HEAD_DIM).permute(2, 0, 3, 1, 4)
            q, kk, v = qkv[0], qkv[1], qkv[2]
        else:
            def heads(y):
                return y.reshape(B, N, self.spec.heads, HEAD_DIM).transpose(1, 2)

            q = heads(F.linear(u, self.t(k["q_w"]), self.t(k["q_b"])))
            kk = heads(F.linear(u, self.t(k["k_w"]), self.t(k["k_b"])))
            v = heads(F.linear(u, self.t(k["v_w"]), self.t(k["v_b"])))
        a = torch.softmax(torch.matmul(q, kk.transpose(-1, -2)) * (HEAD_DIM ** -0.5), dim=-1)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, N, D)
        return F.linear(o, self.t(k["o_w"]), self.t(k["o_b"]))

    def mlp(self, u, k):
        y = F.linear(u, self.t(k["fc1_w"]), self.t(k["fc1_b"]))
        y = y * torch.sigmoid(1.702 * y) if self.family == "clip" else F.gelu(y)
        return F.linear(y, self.t(k["fc2_w"]), self.t(k["fc2_b"]))

    def block(self, i, h):
        self.check_block(i)
        k = block_keys(self.family, i)
        a = self.attention(self._ln(h, k["ln1_w"], k["ln1_b"]), k)
        if self.family == "dinov2":
            a = a * self.t(k["ls1"])
        h = h + a
        m = self.mlp(self._ln(h, k["ln2_w"], k["ln2_b"]), k)
        if self.family == "dinov2":
            m = m * self.t(k["ls2"])
        return h + m

    def check_layers(self, layers):
        layers = sorted(set(int(l) for l in layers))
        if not layers:
            raise EncoderError("no layers requested")
        if layers[0] < 0:
            raise EncoderError(f"layer {layers[0]} is negative")
        if layers[-1] > self.spec.blocks:
            raise EncoderError(f"layer {layers[-1]} needs {layers[-1]} blocks, the checkpoint has {self.spec.blocks}")
        return layers

    def check_input(self, pixel_values):
        x = pixel_values
        if x.dim() != 4 or x.shape[1] != 3:
            raise EncoderError(f"pixel_values has shape {list(x.shape)}, expected [B,3,H,W]")
        if x.shape[2] < self.spec.patch or x.shape[3] < self.spec.patch:
            raise EncoderError(f"pixel_values {x.shape[2]}x{x.shape[3]} is smaller than one {self.spec.patch}-pixel patch")
        if not torch.isfinite(x).all():
            raise EncoderError("pixel_values contains NaN or Inf")

    @torch.no_grad()
    def forward(self, pixel_values, layers):
        """{i: hidden state i [B, 1+tokens, D]} for each requested i (HF hidden_states indexing)."""
        layers = self.check_layers(layers)
        x = torch.as_tensor(pixel_values)
        self.check_input(x)
        for i in range(layers[-1]):  # validate first: a bad block fails before any compute
            self.check_block(i)
        h = self.embed(x.to(self.dtype))
        out = {0: h} if layers[0] == 0 else {}
        for i in range(layers[-1]):
            h = self.block(i, h)
            if i + 1 in layers:
                out[i + 1] = h
        return out

    __call__ = forward


def build(model, state_dict, dtype=torch.float32, pos_interp="size"):
    """An Encoder for a family name (clip | dinov2 | biomedclip) or a published model ID, its
    architecture read off the state dict's tensor shapes."""
    return Encoder(model, state_dict, dtype=dtype, pos_interp=pos_interp)
