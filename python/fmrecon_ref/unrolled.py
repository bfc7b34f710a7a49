"""PyTorch reference of fmrecon's unrolled foundation-model reconstruction (`--method unrolled`).

Implements docs/model.md exactly (that page is the contract with the C inference):

    x_0 = A^H y
    for t = 0 .. T-1:
        s = max|x_t| (1 if zero);  u = x_t / s
        z_t = x_t + s * D_t(u)                       D_t: frozen encoder + UNETR decoder ("unetr"),
                                                     or fastMRI's U-Net on the padded image ("unet")
        x_{t+1} = DC_t(z_t, x_t)                     "cg": (A^H A + lambda_t I) x = A^H y + lambda_t z_t,
                                                     CG from z_t, exactly cg_iters iterations
                                                     "soft": z_t - eta_t A^H (A x_t - y)

Items are independent 2-D frames (batched along the first axis). The encoder is frozen (its weights
are constants, never parameters) but differentiable with respect to its input, so training
back-propagates through it and through every CG iteration.

lambda_t (> 0) and eta_t (>= 0) are trained as log-values (`log_lambda`, `log_eta` in state_dict());
bundles store the values themselves (`lambda`, `eta`), as the contract says.

Public API
    UnrolledConfig, UnrolledNet(config, encoder=None), FrozenEncoder(model_id, state_dict, taps, grid)
    UnrolledNet.forward(y, mask, maps, return_cascades=True) -> (x_T, [x_0 .. x_T]) or x_T
    load_bundle(path, encoder_ckpt=None, dtype=torch.float32) -> UnrolledNet (unetr: sha-256 of the
        checkpoint checked; unet: no encoder, encoder_ckpt is not needed)
    save_bundle(path, model, metadata) ; bundle_tensors(model) ; expected_bundle_shapes(config)
    bundle_metadata(cfg, encoder_sha256, training) ; unet_shapes(chans, pools) ; init_decoder_(model)
    sha256_file(path), read_bundle_metadata(path)

The U-Net baseline (`denoiser = "unet"`, UnrolledConfig(denoiser="unet", chans=C, pools=L)): each
cascade holds `unet` = fmrecon_ref.unet.Unet(C, L) (state_dict keys `cascades.{t}.unet.*`, fastMRI's
names) instead of `decoder`; the encoder fields of the configuration are unused.
"""
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import encoders, mri, safetensors_io
from .unet import Unet, pad_to

BUNDLE_VERSION = "1"
ENCODER_STATS = {  # docs/encoders.md, input mapping step 4
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "biomedclip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "dinov2": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
REQUIRED_METADATA = ("fmrecon_bundle", "denoiser", "encoder", "encoder_sha256", "taps", "grid", "feature_size",
                     "cascades", "shared", "dc", "input", "normalisation", "training")
# denoiser = "unet": no encoder keys (docs/model.md); `normalisation` and `training` are written too
REQUIRED_METADATA_UNET = ("fmrecon_bundle", "denoiser", "chans", "pools", "cascades", "shared", "dc")
DENOISERS = ("unetr", "unet")
IN_EPS = 1e-5
LRELU_SLOPE = 0.01


class BundleError(ValueError):
    """A bundle (or an encoder checkpoint paired with it) that cannot be used; the message says why."""


def sha256_file(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# UNETR decoder (MONAI's blocks in 2-D; reference notes section C), key names as in docs/model.md
# ----------------------------------------------------------------------------------------------

def _conv3(cin, cout):
    return nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False)


def _conv1(cin, cout):
    return nn.Conv2d(cin, cout, 1, stride=1, padding=0, bias=False)


def _convT(cin, cout):
    return nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False)


def _inorm(x):
    return F.instance_norm(x, eps=IN_EPS)


class ResBlock(nn.Module):
    """o = IN(conv3x3(x)); o = lrelu(o); o = IN(conv3x3(o)); r = IN(conv1x1(x)) if in != out else x;
    lrelu(o + r)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = _conv3(cin, cout)
        self.conv2 = _conv3(cout, cout)
        self.conv3 = _conv1(cin, cout) if cin != cout else None

    def forward(self, x):
        o = F.leaky_relu(_inorm(self.conv1(x)), LRELU_SLOPE)
        o = _inorm(self.conv2(o))
        r = _inorm(self.conv3(x)) if self.conv3 is not None else x
        return F.leaky_relu(o + r, LRELU_SLOPE)


class PrUpBlock(nn.Module):
    """ConvT2x2(D -> c), then n x [ConvT2x2(c -> c), ResBlock(c -> c)]."""

    def __init__(self, cin, cout, n):
        super().__init__()
        self.transp_conv_init = _convT(cin, cout)
        self.up = nn.ModuleList([_convT(cout, cout) for _ in range(n)])
        self.res = nn.ModuleList([ResBlock(cout, cout) for _ in range(n)])

    def forward(self, x):
        x = self.transp_conv_init(x)
        for up, res in zip(self.up, self.res):
            x = res(up(x))
        return x


class UpBlock(nn.Module):
    """u = ConvT2x2(in -> out); ResBlock(cat(u, skip) -> out) (upsampled tensor first)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.transp_conv = _convT(cin, cout)
        self.res = ResBlock(2 * cout, cout)

    def forward(self, x, skip):
        return self.res(torch.cat((self.transp_conv(x), skip), dim=1))


class UNETRDecoder(nn.Module):
    """The 2-D UNETR decoder of docs/model.md: image branch (2 channels @ R = 16 G) and 3 or 4
    token maps (D @ G) in, 2 channels @ R out."""

    def __init__(self, width, feature_size):
        super().__init__()
        D, Fs = int(width), int(feature_size)
        self.enc1 = ResBlock(2, Fs)
        self.enc2 = PrUpBlock(D, 2 * Fs, 2)
        self.enc3 = PrUpBlock(D, 4 * Fs, 1)
        self.enc4 = PrUpBlock(D, 8 * Fs, 0)
        self.dec3 = UpBlock(D, 8 * Fs)
        self.dec2 = UpBlock(8 * Fs, 4 * Fs)
        self.dec1 = UpBlock(4 * Fs, 2 * Fs)
        self.dec0 = UpBlock(2 * Fs, Fs)
        self.out = nn.Conv2d(Fs, 2, 1, bias=True)

    def forward(self, image, taps):
        """image (B, 2, R, R); taps: list of 3 or 4 (B, D, G, G) maps (a, b, c[, d])."""
        if len(taps) not in (3, 4):
            raise ValueError(f"UNETR decoder takes 3 or 4 taps, got {len(taps)}")
        bottleneck = taps[3] if len(taps) == 4 else taps[2]
        e1 = self.enc1(image)
        e2 = self.enc2(taps[0])
        e3 = self.enc3(taps[1])
        e4 = self.enc4(taps[2])
        d = self.dec3(bottleneck, e4)
        d = self.dec2(d, e3)
        d = self.dec1(d, e2)
        d = self.dec0(d, e1)
        return self.out(d)


def decoder_shapes(width, feature_size):
    """{key under `decoder.`: shape} of the bundle table in docs/model.md."""
    D, Fs = int(width), int(feature_size)
    s = {"enc1.conv1.weight": (Fs, 2, 3, 3), "enc1.conv2.weight": (Fs, Fs, 3, 3), "enc1.conv3.weight": (Fs, 2, 1, 1)}
    for name, c, n in (("enc2", 2 * Fs, 2), ("enc3", 4 * Fs, 1), ("enc4", 8 * Fs, 0)):
        s[f"{name}.transp_conv_init.weight"] = (D, c, 2, 2)
        for j in range(n):
            s[f"{name}.up.{j}.weight"] = (c, c, 2, 2)
            s[f"{name}.res.{j}.conv1.weight"] = (c, c, 3, 3)
            s[f"{name}.res.{j}.conv2.weight"] = (c, c, 3, 3)
    for name, cin, cout in (("dec3", D, 8 * Fs), ("dec2", 8 * Fs, 4 * Fs), ("dec1", 4 * Fs, 2 * Fs),
                            ("dec0", 2 * Fs, Fs)):
        s[f"{name}.transp_conv.weight"] = (cin, cout, 2, 2)
        s[f"{name}.res.conv1.weight"] = (cout, 2 * cout, 3, 3)
        s[f"{name}.res.conv2.weight"] = (cout, cout, 3, 3)
        s[f"{name}.res.conv3.weight"] = (cout, 2 * cout, 1, 1)
    s["out.weight"] = (2, Fs, 1, 1)
    s["out.bias"] = (2,)
    return s


# ----------------------------------------------------------------------------------------------
# Frozen encoder with the complex3 input mapping
# ----------------------------------------------------------------------------------------------

class FrozenEncoder(nn.Module):
    """The frozen ViT of fmrecon_ref.encoders behind fmrecon's `complex` input mapping at size G*P.
    Holds no parameters (the weights are constants), but is differentiable w.r.t. its input.
    forward(u) with u (B, h, w) complex -> list of (B, D, G, G) token maps, one per tap."""

    def __init__(self, model_id, state_dict, taps, grid, pos_interp="size"):
        super().__init__()
        self.model_id = model_id
        self._sd = state_dict
        self._pos_interp = pos_interp
        self._by_dtype = {}
        enc = self._encoder(torch.float32)
        spec = enc.spec
        self.family, self.width, self.patch = spec.family, spec.width, spec.patch
        self.taps = [int(t) for t in taps]
        self.grid = int(grid)
        if not self.taps or min(self.taps) < 0:
            raise BundleError(f"taps {self.taps}: expected non-negative layer indices")
        if max(self.taps) > spec.blocks:
            raise BundleError(f"tap {max(self.taps)} needs {max(self.taps)} encoder blocks, the checkpoint has "
                              f"{spec.blocks}")
        if self.family != "dinov2" and self.grid != spec.pos_grid:
            raise BundleError(f"grid {self.grid} does not match the {self.family} position table "
                              f"({spec.pos_grid}x{spec.pos_grid})")
        self.size = self.grid * self.patch
        self.mean, self.std = ENCODER_STATS[self.family]

    def _encoder(self, dtype):
        enc = self._by_dtype.get(dtype)
        if enc is None:
            enc = encoders.build(self.model_id, self._sd, dtype=dtype, pos_interp=self._pos_interp)
            self._by_dtype[dtype] = enc
        return enc

    def map_input(self, u):
        """fmr_encoder_map_input(u, complex) at size G*P: [Re, Im, |.|] / max|u|, bilinear resize,
        (v - mean) / std. u: (B, h, w) complex -> (B, 3, G*P, G*P) real."""
        a = torch.abs(u)
        m = torch.amax(a.reshape(a.shape[0], -1), dim=1)
        m = torch.where(m > 0, m, torch.ones_like(m)).view(-1, 1, 1)
        v = u / m
        ch = torch.stack((v.real, v.imag, a / m), dim=1)
        ch = mri.resize(ch, (self.size, self.size))
        mean = torch.tensor(self.mean, dtype=ch.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=ch.dtype).view(1, 3, 1, 1)
        return (ch - mean) / std

    def hidden_states(self, px):
        """{tap: (B, 1 + G*G, D)} without torch.no_grad (gradients flow to px)."""
        enc = self._encoder(px.dtype)
        last = max(self.taps)
        h = enc.embed(px)
        out = {0: h} if 0 in self.taps else {}
        for i in range(last):
            h = enc.block(i, h)
            if i + 1 in self.taps:
                out[i + 1] = h
        return out

    def forward(self, u):
        hs = self.hidden_states(self.map_input(u))
        B, G, D = u.shape[0], self.grid, self.width
        maps = []
        for t in self.taps:
            tok = hs[t][:, 1:, :]  # class token dropped; tokens row-major over the grid
            maps.append(tok.transpose(1, 2).reshape(B, D, G, G))
        return maps


# ----------------------------------------------------------------------------------------------
# The unrolled network
# ----------------------------------------------------------------------------------------------

@dataclass
class UnrolledConfig:
    encoder: str = "biomedclip"       # encoder id or family, as `fmrecon encode --encoder` takes it
    width: int = 768                  # encoder width D
    taps: list = field(default_factory=lambda: [2, 4, 6])
    grid: int = 14
    feature_size: int = 16
    cascades: int = 4
    shared: bool = False
    dc: str = "cg"
    cg_iters: int = 8
    denoiser: str = "unetr"           # "unetr" (frozen encoder + UNETR decoder) or "unet" (the baseline)
    chans: int = 8                    # unet: channels of the first level, C
    pools: int = 3                    # unet: pooling levels, L (inputs padded to multiples of 2**L)

    def validate(self):
        if self.denoiser not in DENOISERS:
            raise BundleError(f"denoiser '{self.denoiser}': expected unetr or unet")
        if self.dc not in ("cg", "soft"):
            raise BundleError(f"dc '{self.dc}': expected cg or soft")
        if self.cascades < 1:
            raise BundleError(f"cascades {self.cascades}: expected >= 1")
        if self.dc == "cg" and self.cg_iters < 0:
            raise BundleError(f"cg_iters {self.cg_iters}: expected >= 0")
        if self.denoiser == "unet":
            if self.chans < 1 or not 1 <= self.pools <= 8:
                raise BundleError(f"chans {self.chans}, pools {self.pools}: expected chans >= 1, 1 <= pools <= 8")
            return self
        if self.feature_size < 1 or self.width < 1 or self.grid < 1:
            raise BundleError("feature_size, width and grid must be positive")
        if len(self.taps) not in (3, 4):
            raise BundleError(f"taps {self.taps}: the UNETR decoder takes 3 or 4")
        if self.dc == "cg" and self.cg_iters < 0:
            raise BundleError(f"cg_iters {self.cg_iters}: expected >= 0")
        return self

    @property
    def resolution(self):
        return 16 * self.grid


class Cascade(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.denoiser == "unet":
            self.unet = Unet(cfg.chans, cfg.pools)
        else:
            self.decoder = UNETRDecoder(cfg.width, cfg.feature_size)

    @property
    def net(self):
        """The trained denoiser module of this cascade (UNETR decoder or U-Net)."""
        return self.unet if hasattr(self, "unet") else self.decoder

    @property
    def out_conv(self):
        """The final 1x1 convolution (with bias) of the denoiser."""
        return self.unet.up_conv[-1][1] if hasattr(self, "unet") else self.decoder.out


class UnrolledNet(nn.Module):
    """docs/model.md's network. Parameters: `log_lambda` [T] (dc = cg) or `log_eta` [T] (dc = soft),
    and `cascades.{t}.decoder.*` (unetr) or `cascades.{t}.unet.*` (unet), one cascade when shared.
    The frozen encoder (unetr only) is attached with set_encoder() (not needed to build,
    train-state-load or export the bundle tensors)."""

    def __init__(self, cfg, encoder=None, lam=0.1, eta=0.5):
        super().__init__()
        self.cfg = cfg.validate()
        T = cfg.cascades
        self.cascades = nn.ModuleList([Cascade(cfg) for _ in range(1 if cfg.shared else T)])
        if cfg.dc == "cg":
            self.log_lambda = nn.Parameter(torch.full((T,), math.log(lam)))
        else:
            self.log_eta = nn.Parameter(torch.full((T,), math.log(eta)))
        self.encoder = None
        if encoder is not None:
            self.set_encoder(encoder)

    # -- encoder -------------------------------------------------------------------------------
    def set_encoder(self, encoder):
        if self.cfg.denoiser == "unet":
            raise BundleError("the U-Net baseline (denoiser = unet) takes no encoder")
        if encoder.width != self.cfg.width:
            raise BundleError(f"encoder width {encoder.width} does not match the decoder's {self.cfg.width}")
        if encoder.grid != self.cfg.grid or list(encoder.taps) != list(self.cfg.taps):
            raise BundleError("encoder grid/taps differ from the network's configuration")
        # stored outside the module tree: the frozen encoder is not part of state_dict()
        object.__setattr__(self, "encoder", encoder)
        return self

    # -- DC weights ----------------------------------------------------------------------------
    @property
    def dc_weights(self):
        """The actual lambda_t (cg) or eta_t (soft) values, (T,)."""
        return torch.exp(self.log_lambda if self.cfg.dc == "cg" else self.log_eta)

    def set_dc_weights(self, values):
        v = torch.as_tensor(np.asarray(values, dtype=np.float64))
        p = self.log_lambda if self.cfg.dc == "cg" else self.log_eta
        with torch.no_grad():
            p.copy_(torch.log(v).to(p.dtype))  # eta = 0 -> -inf -> exp() gives exactly 0

    def decoder(self, t):
        """The denoiser network of cascade t: the UNETR decoder (unetr) or the U-Net (unet)."""
        return self.cascades[0 if self.cfg.shared else t].net

    @property
    def real_dtype(self):
        return self.cascades[0].out_conv.weight.dtype

    # -- network -------------------------------------------------------------------------------
    def denoise(self, t, x):
        """z_t = x + s * D_t(x / s), s = max|x| per image (1 if zero)."""
        B, h, w = x.shape
        s = torch.amax(torch.abs(x).reshape(B, -1), dim=1)
        s = torch.where(s > 0, s, torch.ones_like(s)).view(-1, 1, 1)
        u = x / s
        if self.cfg.denoiser == "unet":
            # [Re u, Im u] at the native size, zero-padded (centred) to multiples of 2**pools, cropped back
            img, (oy, ox) = pad_to(mri.complex_to_channels(u), 2 ** self.cfg.pools)
            out = self.decoder(t)(img)[..., oy:oy + h, ox:ox + w]
            return x + s * mri.channels_to_complex(out)
        if self.encoder is None:
            raise BundleError("no encoder attached (UnrolledNet.set_encoder)")
        feats = self.encoder(u)
        R = self.cfg.resolution
        img = mri.resize(mri.complex_to_channels(u), (R, R))
        out = self.decoder(t)(img, feats)
        d = mri.channels_to_complex(mri.resize(out, (h, w)))
        return x + s * d

    def dc(self, t, z, x, y, mask, maps, aty):
        wt = self.dc_weights[t]
        if self.cfg.dc == "cg":
            b = aty + wt * z
            return mri.cg(lambda v: mri.normal(v, maps, mask) + wt * v, b, z, self.cfg.cg_iters)
        return z - wt * mri.sense_adjoint(mri.sense_forward(x, maps, mask) - y, maps, mask)

    def forward(self, y, mask, maps, return_cascades=True):
        """y (B, C, h, w) masked k-space, mask (w,) / (B, w), maps (B, C, h, w). Complex inputs are
        cast to the complex type of the parameters. Returns (x_T, [x_0, ..., x_T]) or x_T."""
        cdt = torch.complex128 if self.real_dtype == torch.float64 else torch.complex64
        y = torch.as_tensor(y).to(cdt)
        maps = torch.as_tensor(maps).to(cdt)
        aty = mri.sense_adjoint(y, maps, mask)
        x = aty
        xs = [x]
        for t in range(self.cfg.cascades):
            z = self.denoise(t, x)
            x = self.dc(t, z, x, y, mask, maps, aty)
            xs.append(x)
        return (x, xs) if return_cascades else x


# ----------------------------------------------------------------------------------------------
# Bundles
# ----------------------------------------------------------------------------------------------

def unet_shapes(chans, pools):
    """{key: shape} of fastMRI's U-Net(in 2, out 2, chans, pools), keys relative to `cascades.{t}.unet.`
    (docs/model.md, the U-Net baseline)."""
    C, L = chans, pools
    s = {}

    def block(prefix, cin, cout):
        s[prefix + "layers.0.weight"] = (cout, cin, 3, 3)
        s[prefix + "layers.4.weight"] = (cout, cout, 3, 3)

    block("down_sample_layers.0.", 2, C)
    for i in range(1, L):
        block(f"down_sample_layers.{i}.", C * 2 ** (i - 1), C * 2 ** i)
    block("conv.", C * 2 ** (L - 1), C * 2 ** L)
    for i in range(L):
        ch = C * 2 ** (L - 1 - i)  # output channels of up level i
        s[f"up_transpose_conv.{i}.layers.0.weight"] = (2 * ch, ch, 2, 2)
        block(f"up_conv.{i}." + ("0." if i == L - 1 else ""), 2 * ch, ch)
    s[f"up_conv.{L - 1}.1.weight"] = (2, C, 1, 1)
    s[f"up_conv.{L - 1}.1.bias"] = (2,)
    return s


def expected_bundle_shapes(cfg):
    """{key: shape} of every tensor a bundle for cfg holds (docs/model.md table)."""
    s = {("lambda" if cfg.dc == "cg" else "eta"): (cfg.cascades,)}
    if cfg.denoiser == "unet":
        dec, name = unet_shapes(cfg.chans, cfg.pools), "unet"
    else:
        dec, name = decoder_shapes(cfg.width, cfg.feature_size), "decoder"
    for t in range(1 if cfg.shared else cfg.cascades):
        for k, v in dec.items():
            s[f"cascades.{t}.{name}.{k}"] = v
    return s


def bundle_tensors(model):
    """{key: float32 numpy array} as stored in a bundle: the DC weights as values, then the decoders."""
    cfg = model.cfg
    out = {("lambda" if cfg.dc == "cg" else "eta"): model.dc_weights.detach().to(torch.float32).numpy()}
    for k, v in model.state_dict().items():
        if k.startswith("cascades."):
            out[k] = v.detach().to(torch.float32).numpy()
    want = expected_bundle_shapes(cfg)
    if set(out) != set(want):  # a programming error, not a user error
        raise AssertionError(f"bundle keys differ from docs/model.md: {sorted(set(out) ^ set(want))}")
    return out


def bundle_metadata(cfg, encoder_sha256, training, extra=None):
    """The `__metadata__` of docs/model.md for cfg (encoder_sha256 is ignored for denoiser = unet)."""
    meta = {"fmrecon_bundle": BUNDLE_VERSION, "denoiser": cfg.denoiser, "cascades": str(int(cfg.cascades)),
            "shared": "1" if cfg.shared else "0", "dc": cfg.dc, "normalisation": "max", "training": training}
    if cfg.denoiser == "unet":
        meta.update(chans=str(int(cfg.chans)), pools=str(int(cfg.pools)))
    else:
        meta.update(encoder=cfg.encoder, encoder_sha256=encoder_sha256,
                    taps=",".join(str(int(t)) for t in cfg.taps), grid=str(int(cfg.grid)),
                    feature_size=str(int(cfg.feature_size)), input="complex3")
    if cfg.dc == "cg":
        meta["cg_iters"] = str(int(cfg.cg_iters))
    for k, v in (extra or {}).items():
        meta.setdefault(str(k), str(v))
    return meta

def save_bundle(path, model, metadata):
    """Write model as a bundle (safetensors, all F32). `metadata` must give at least training (free
    text: data, masks, loss, date) and, for unetr, encoder_sha256; the structural keys come from
    model.cfg and win over `metadata`."""
    md = dict(metadata or {})
    sha = md.pop("encoder_sha256", None)
    training = md.pop("training", None)
    unet = model.cfg.denoiser == "unet"
    if unet:
        sha = None
    elif not sha or len(sha) != 64:
        raise BundleError("save_bundle needs metadata['encoder_sha256'] (hex SHA-256 of the encoder checkpoint)")
    if training is None:
        raise BundleError("save_bundle needs metadata['training'] (free text: data, masks, loss, date)")
    structural = set(REQUIRED_METADATA) | set(REQUIRED_METADATA_UNET) | {"cg_iters"}
    extra = {k: v for k, v in md.items() if k not in structural}
    meta = bundle_metadata(model.cfg, sha.lower() if sha else None, str(training), extra)
    safetensors_io.save(path, bundle_tensors(model), metadata=meta, dtype="F32")
    return meta


def read_bundle_metadata(path):
    try:
        header, meta, _, _ = safetensors_io.read_header(path)
    except OSError as e:
        raise BundleError(f"{path}: cannot read the bundle ({e.strerror or e})") from None
    return header, meta or {}


def _int_meta(meta, key, path, minimum=None):
    try:
        v = int(meta[key])
    except ValueError:
        raise BundleError(f"{path}: metadata '{key}' = '{meta[key]}' is not an integer") from None
    if minimum is not None and v < minimum:
        raise BundleError(f"{path}: metadata '{key}' = {v} must be >= {minimum}")
    return v


def _common_meta(meta, path):
    """Checks shared by both denoisers: version, dc, cg_iters, shared, normalisation."""
    if meta["fmrecon_bundle"] != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle format '{meta['fmrecon_bundle']}' (this reader knows '{BUNDLE_VERSION}')")
    if meta.get("normalisation", "max") != "max":
        raise BundleError(f"{path}: metadata 'normalisation' = '{meta['normalisation']}' (only 'max' is implemented)")
    if meta["dc"] not in ("cg", "soft"):
        raise BundleError(f"{path}: metadata 'dc' = '{meta['dc']}' (expected cg or soft)")
    if meta["dc"] == "cg" and "cg_iters" not in meta:
        raise BundleError(f"{path}: bundle metadata lacks 'cg_iters' (needed with dc = cg)")
    if meta["shared"] not in ("0", "1"):
        raise BundleError(f"{path}: metadata 'shared' = '{meta['shared']}' (expected 0 or 1)")


def unet_config_from_metadata(meta, path):
    """UnrolledConfig of a `denoiser = "unet"` bundle (no encoder keys)."""
    for k in REQUIRED_METADATA_UNET:
        if k not in meta:
            raise BundleError(f"{path}: bundle metadata lacks '{k}'")
    if meta["denoiser"] != "unet":
        raise BundleError(f"{path}: metadata 'denoiser' = '{meta['denoiser']}' (expected 'unet')")
    _common_meta(meta, path)
    cfg = UnrolledConfig(encoder="", width=0, denoiser="unet", chans=_int_meta(meta, "chans", path, 1),
                         pools=_int_meta(meta, "pools", path, 1), cascades=_int_meta(meta, "cascades", path, 1),
                         shared=meta["shared"] == "1", dc=meta["dc"],
                         cg_iters=_int_meta(meta, "cg_iters", path, 0) if meta["dc"] == "cg" else 0)
    try:
        return cfg.validate()
    except BundleError as e:
        raise BundleError(f"{path}: {e}") from None


def config_from_metadata(meta, path, width):
    for k in REQUIRED_METADATA:
        if k not in meta:
            raise BundleError(f"{path}: bundle metadata lacks '{k}'")
    if meta["fmrecon_bundle"] != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle format '{meta['fmrecon_bundle']}' (this reader knows '{BUNDLE_VERSION}')")
    for k, want in (("denoiser", "unetr"), ("input", "complex3"), ("normalisation", "max")):
        if meta[k] != want:
            raise BundleError(f"{path}: metadata '{k}' = '{meta[k]}' (only '{want}' is implemented)")
    if meta["dc"] not in ("cg", "soft"):
        raise BundleError(f"{path}: metadata 'dc' = '{meta['dc']}' (expected cg or soft)")
    if meta["dc"] == "cg" and "cg_iters" not in meta:
        raise BundleError(f"{path}: bundle metadata lacks 'cg_iters' (needed with dc = cg)")
    if meta["shared"] not in ("0", "1"):
        raise BundleError(f"{path}: metadata 'shared' = '{meta['shared']}' (expected 0 or 1)")
    try:
        taps = [int(t) for t in meta["taps"].split(",")]
    except ValueError:
        raise BundleError(f"{path}: metadata 'taps' = '{meta['taps']}' is not a comma-separated list") from None
    cfg = UnrolledConfig(encoder=meta["encoder"], width=width, taps=taps,
                         grid=_int_meta(meta, "grid", path, 1), feature_size=_int_meta(meta, "feature_size", path, 1),
                         cascades=_int_meta(meta, "cascades", path, 1), shared=meta["shared"] == "1",
                         dc=meta["dc"], cg_iters=_int_meta(meta, "cg_iters", path, 0) if meta["dc"] == "cg" else 0)
    try:
        return cfg.validate()
    except BundleError as e:
        raise BundleError(f"{path}: {e}") from None


def load_bundle(path, encoder_ckpt=None, dtype=torch.float32, encoder_state_dict=None, check_sha=True):
    """The network of bundle `path` in `dtype` (float32 or float64). unetr bundles: with the frozen
    encoder read from `encoder_ckpt`, whose SHA-256 must equal the bundle's `encoder_sha256`.
    unet bundles (`denoiser = "unet"`): no encoder; encoder_ckpt is ignored and may be None."""
    header, meta = read_bundle_metadata(path)
    if meta.get("denoiser") == "unet":
        cfg = unet_config_from_metadata(meta, path)
        return _finish_load(path, header, meta, cfg, dtype)
    if encoder_ckpt is None and encoder_state_dict is None:
        raise BundleError(f"{path}: a '{meta.get('denoiser', 'unetr')}' bundle needs its encoder checkpoint (--weights)")
    if "encoder_sha256" not in meta:
        raise BundleError(f"{path}: bundle metadata lacks 'encoder_sha256'")
    if check_sha:
        got = sha256_file(encoder_ckpt)
        if got != meta["encoder_sha256"].lower():
            raise BundleError(f"encoder checkpoint {encoder_ckpt} has sha256 {got}, but bundle {path} was trained "
                              f"with the checkpoint of sha256 {meta['encoder_sha256']}")
    sd = encoder_state_dict if encoder_state_dict is not None else safetensors_io.load(encoder_ckpt)
    if "encoder" not in meta:
        raise BundleError(f"{path}: bundle metadata lacks 'encoder'")
    try:
        spec = encoders.infer_spec(meta["encoder"], sd)
    except encoders.EncoderError as e:
        raise BundleError(f"{encoder_ckpt}: {e}") from None
    cfg = config_from_metadata(meta, path, spec.width)
    try:
        enc = FrozenEncoder(cfg.encoder, sd, cfg.taps, cfg.grid)
    except encoders.EncoderError as e:
        raise BundleError(f"{encoder_ckpt}: {e}") from None
    return _finish_load(path, header, meta, cfg, dtype, enc)


def _finish_load(path, header, meta, cfg, dtype, enc=None):
    """Shape checks, tensors, DC weights; the frozen model in dtype (encoder attached if given)."""
    want = expected_bundle_shapes(cfg)
    for k, shape in want.items():
        if k not in header:
            raise BundleError(f"{path}: bundle lacks tensor '{k}' (shape {list(shape)})")
        got = tuple(int(s) for s in header[k]["shape"])
        if got != shape:
            raise BundleError(f"{path}: tensor '{k}' has shape {list(got)}, expected {list(shape)}")
    extra = sorted(set(header) - set(want))
    if extra:
        raise BundleError(f"{path}: unexpected tensor '{extra[0]}' in the bundle "
                          f"({'shared' if cfg.shared else 'per-cascade'} {'U-Net' if cfg.denoiser == 'unet' else 'decoder'}, "
                          f"{cfg.cascades} cascades, dc {cfg.dc})")
    tensors = safetensors_io.load(path)
    dcw = tensors["lambda" if cfg.dc == "cg" else "eta"].astype(np.float64)
    if not np.all(np.isfinite(dcw)) or (cfg.dc == "cg" and np.any(dcw <= 0)) or np.any(dcw < 0):
        raise BundleError(f"{path}: {'lambda must be > 0' if cfg.dc == 'cg' else 'eta must be >= 0'} "
                          f"and finite, got {dcw.tolist()}")
    model = UnrolledNet(cfg)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()
                           if k.startswith("cascades.")}, strict=False)
    missing = [k for k in model.state_dict() if k.startswith("cascades.") and k not in tensors]
    if missing:  # cannot happen after the shape check; kept as a guard
        raise BundleError(f"{path}: bundle lacks tensor '{missing[0]}'")
    model = model.to(dtype)
    model.set_dc_weights(dcw)
    if enc is not None:
        model.set_encoder(enc)
    model.metadata = dict(meta)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def init_decoder_(model, out_scale=0.1, seed=None):
    """Re-initialise every denoiser (UNETR decoder or U-Net): He-normal conv weights (zero biases),
    then the output conv scaled so that D(u) is ~out_scale in magnitude (normalised units) with a
    zero bias."""
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    with torch.no_grad():
        for casc in model.cascades:
            for m in casc.net.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
                    if isinstance(m, nn.ConvTranspose2d):  # [in, out, k, k]: fan-in of the scatter
                        fan_in = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3] // 4
                    std = math.sqrt(2.0 / fan_in)
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                    if m.bias is not None:
                        m.bias.zero_()
            o = casc.out_conv
            # its input is a LeakyReLU of an instance-normalised tensor: ~O(1) second moment per channel
            o.weight.copy_(torch.randn(o.weight.shape, generator=g) * (out_scale / math.sqrt(o.weight.shape[1])))
            o.bias.zero_()
    return model
