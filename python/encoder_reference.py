#!/usr/bin/python3
"""PyTorch reference of `fmrecon encode`: hidden states of a frozen encoder, same file layout.

    encoder_reference.py --family clip|dinov2|biomedclip|<model id> --weights CKPT --input IN.h5
        --layers 2,4,6 -o OUT.h5 [--dtype float32|float64] [--pos-interp size|offset]
        [--batch N] [--threads N]

IN.h5 holds `pixel_values` (B,3,H,W) float32; OUT.h5 gets one dataset per requested layer,
`hidden_state_<i>` (B, tokens incl. CLS, D) float32, in Hugging Face hidden_states indexing
(0 = embeddings, i = output of block i). CKPT is a .safetensors file or a PyTorch pickle
(.bin/.pt/.pth, read with torch.load(weights_only=True)). --dtype float64 computes in double precision
(the tests' reference); results are stored as float32 either way. The output is written under a
temporary name and renamed when complete.

Importable: load_weights(path), reference_hidden_states(model, weights, pixel_values, layers, dtype),
time_forward(model, ckpt, batch, layers, threads, repeats) -> seconds per image.
"""
import argparse
import os
import sys
import tempfile
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import encoders, safetensors_io  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def load_weights(path):
    """{name: array} of a .safetensors checkpoint, or of a PyTorch pickle (tensors kept as torch)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if path.endswith(".safetensors") or magic[:2] not in (b"PK", b"\x80\x02"):
        return safetensors_io.load(path)
    import convert_checkpoint

    return {k: v for k, v in convert_checkpoint.load_state_dict(path).items() if isinstance(v, torch.Tensor)}


def parse_layers(text):
    try:
        layers = [int(t) for t in str(text).split(",") if t.strip() != ""]
    except ValueError:
        raise encoders.EncoderError(f"--layers '{text}': expected comma-separated integers") from None
    if not layers:
        raise encoders.EncoderError("--layers is empty")
    return layers


def reference_hidden_states(model, weights, pixel_values, layers, dtype=torch.float64, batch=None,
                            pos_interp="size"):
    """{i: float32 array (B, T, D)} for each requested layer. `weights` is a path or a state dict."""
    sd = load_weights(weights) if isinstance(weights, str) else weights
    enc = encoders.build(model, sd, dtype=dtype, pos_interp=pos_interp)
    x = torch.from_numpy(np.ascontiguousarray(pixel_values, dtype=np.float32))
    B = x.shape[0]
    step = batch or B
    parts = {}
    for s in range(0, B, step):
        for i, h in enc.forward(x[s:s + step], layers).items():
            parts.setdefault(i, []).append(h.to(torch.float32).numpy())
    return {i: np.concatenate(p, axis=0) for i, p in parts.items()}


def write_features(path, feats, attrs=None):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=d)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for i in sorted(feats):
                f.create_dataset(f"hidden_state_{i}", data=np.asarray(feats[i], np.float32))
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def default_input_size(spec):
    """The published input size: the position grid for CLIP/BiomedCLIP, 224 for DINOv2 (16x16 grid)."""
    if spec.family == "dinov2":
        return 224 // spec.patch * spec.patch
    return spec.pos_grid * spec.patch


def time_forward(model, ckpt, batch=1, layers=(2, 4, 6), threads=None, repeats=3, dtype=torch.float32,
                 image_size=None, seed=0):
    """Seconds per image of the reference forward (median of `repeats` timed runs after one warm-up)."""
    if threads:
        torch.set_num_threads(int(threads))
    sd = load_weights(ckpt) if isinstance(ckpt, str) else ckpt
    enc = encoders.build(model, sd, dtype=dtype)
    size = image_size or default_input_size(enc.spec)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32))
    with torch.inference_mode():
        enc.forward(x, layers)
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            enc.forward(x, layers)
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) / batch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", "--encoder", dest="family", required=True,
                    help="clip | dinov2 | biomedclip or a model ID (clip-vit-b16, dinov2-s14, dinov2-b14, biomedclip-b16)")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--layers", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--pos-interp", choices=("size", "offset", "antialias"), default="size",
                    help="DINOv2 position-table resampling: current transformers Dinov2 (size), the older +0.1 "
                         "scale_factor (offset), or Dinov2WithRegisters' antialias=True")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        layers = parse_layers(a.layers)
        with h5py.File(a.input, "r") as f:
            if "pixel_values" not in f:
                raise encoders.EncoderError(f"{a.input}: no dataset 'pixel_values'")
            px = f["pixel_values"][()]
        if px.ndim != 4 or px.shape[1] != 3:
            raise encoders.EncoderError(f"{a.input}: pixel_values has shape {list(px.shape)}, expected (B,3,H,W)")
        feats = reference_hidden_states(a.family, a.weights, px, layers, DTYPES[a.dtype], a.batch, a.pos_interp)
        write_features(a.output, feats, {"encoder": a.family, "reference_dtype": a.dtype})
    except (encoders.EncoderError, ValueError, OSError, KeyError) as e:
        msg = str(e).strip().splitlines()
        print(f"encoder_reference: {msg[0] if msg else type(e).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
