#!/usr/bin/python3
"""Convert a PyTorch pickle checkpoint to safetensors, keeping the key names.

    convert_checkpoint.py IN.bin OUT.safetensors [--keep-dtype] [--trust-pickle] [-q]

For BiomedCLIP's open_clip_pytorch_model.bin and CLIP's pytorch_model.bin (and any state dict,
also one nested under "state_dict" or "model"). Tensors are read with torch.load(map_location="cpu");
floating tensors are written as F32 (--keep-dtype keeps F16/BF16/F64), integer tensors as I64,
bool tensors as BOOL; non-tensor entries (and complex tensors) are skipped and counted. The output is
written under a temporary name in the target directory and renamed when complete.

By default the pickle is loaded with torch.load(weights_only=True) (tensors and plain containers
only); --trust-pickle allows arbitrary pickled objects -- use it only on files you trust.
Errors are reported as one line on stderr with exit status 1.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import safetensors_io  # noqa: E402


def _first_line(e):
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def load_state_dict(path, trust_pickle=False):
    import torch

    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    kw = {"map_location": "cpu"}
    if not trust_pickle:
        kw["weights_only"] = True  # torch >= 1.13
    try:
        obj = torch.load(path, **kw)
    except Exception as e:  # torch raises many types for a bad file
        hint = "" if trust_pickle else " (if it holds trusted non-tensor objects, try --trust-pickle)"
        raise ValueError(f"{path}: cannot read as a PyTorch checkpoint: {type(e).__name__}: {_first_line(e)}{hint}") from None
    for _ in range(2):  # {"state_dict": {...}} / {"model": {...}} (possibly one level more)
        if isinstance(obj, dict):
            for key in ("state_dict", "model"):
                inner = obj.get(key)
                if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                    obj = inner
                    break
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def convert(src, dst, keep_dtype=False, trust_pickle=False):
    """Convert; returns (number of tensors written, list of skipped keys)."""
    import torch

    sd = load_state_dict(src, trust_pickle)
    out, dtypes, skipped = {}, {}, []
    kept = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
    for key, v in sd.items():
        if not isinstance(key, str) or not isinstance(v, torch.Tensor) or v.is_complex():
            skipped.append(str(key))
            continue
        v = v.detach().cpu().contiguous()
        if v.is_floating_point():
            dtypes[key] = kept.get(v.dtype, "F32") if keep_dtype else "F32"
            # float32 holds F16/BF16 values exactly, so writing them back as F16/BF16 is lossless
            out[key] = (v.numpy() if v.dtype == torch.float64 else v.to(torch.float32).numpy())
        elif v.dtype == torch.bool:
            out[key] = v.numpy()
        else:
            out[key] = v.to(torch.int64).numpy()
    if not out:
        raise ValueError(f"{src}: no tensors found")
    safetensors_io.save(dst, out, metadata={"format": "pt"}, dtypes=dtypes)
    return len(out), skipped


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="PyTorch checkpoint (.bin / .pt / .pth)")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--keep-dtype", action="store_true", help="keep F16/BF16/F64 instead of writing F32")
    ap.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects (trusted files only)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        n, skipped = convert(a.src, a.dst, a.keep_dtype, a.trust_pickle)
    except (ValueError, OSError) as e:
        print(f"convert_checkpoint: {_first_line(e)}", file=sys.stderr)
        return 1
    if not a.quiet:
        extra = f", skipped {len(skipped)} non-tensor entries" if skipped else ""
        print(f"{a.dst}: {n} tensors{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
