#!/usr/bin/python3
"""PyTorch reference of `fmrecon recon --method unrolled` (docs/model.md), same output layout.

    unrolled_reference.py --bundle B.safetensors [--weights ENC.safetensors] --input IN.h5 --maps MAPS.h5
        -o OUT.h5 [--dtype float32|float64] [--batch N] [--threads N]

IN.h5: an fmrecon/fastMRI-style cine file: `kspace` (frames, slices, coils, h, w) or (slices, coils,
h, w) complex, already undersampled, and `mask` uint8 (w,) or (frames, w) (without `mask`, the
sampled columns are read off the non-zero k-space of each frame). MAPS.h5: `maps` (or `sens`),
(slices, coils, h, w) or (coils, h, w) complex -- what `fmrecon maps` writes.

OUT.h5 gets `cascade_{t}` (frames, slices, h, w) complex64 for t = 0..T (x_0 = A^H y and each
cascade's output), `image` = x_T complex64 and `reconstruction` = |x_T| float32 (what `fmrecon eval`
scores). Items (frame, slice) are independent; --batch of them go through the network at once.
The file is written under a temporary name and renamed when complete.

For unetr bundles the bundle's `encoder_sha256` must be the SHA-256 of --weights (else: error, no
output); U-Net baseline bundles (`denoiser = "unet"`) need no --weights.

Importable:
    make_random_bundle(path, encoder_ckpt, family, taps=(2, 4, 6), grid=..., feature_size=4,
                       cascades=2, shared=False, dc="cg", cg_iters=5, seed=0, ...) -> metadata
    make_random_bundle(path, denoiser="unet", chans=4, pools=2, cascades=2, dc="soft", ...)
    read_cine(path), read_maps(path), run_reference(bundle, weights, kspace, mask, maps, dtype, batch)
"""
import argparse
import os
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import encoders, safetensors_io, unrolled  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def make_random_bundle(path, encoder_ckpt=None, family=None, taps=(2, 4, 6), grid=None, feature_size=4, cascades=2,
                       shared=False, dc="cg", cg_iters=5, seed=0, dc_values=None, out_scale=0.1,
                       encoder_sha256=None, training="random decoder weights (test bundle), not trained",
                       drop_keys=(), denoiser="unetr", chans=4, pools=2):
    """Write a bundle with random denoiser weights. unetr: a UNETR decoder for the encoder checkpoint
    `encoder_ckpt` of `family` (grid defaults to the checkpoint's position-table grid); unet: fastMRI's
    U-Net(chans, pools), no encoder (encoder_ckpt, family, taps, grid, feature_size unused).
    The denoiser output is scaled so that D(u) is ~out_scale (normalised units): well-conditioned
    O(1) cascades. dc_values: lambda_t (cg, default 0.05, 0.1, ...) or eta_t (soft, default 0.5,
    0.6, ...). encoder_sha256 overrides the checkpoint's hash (to test the mismatch error);
    drop_keys removes tensors (to test that error). Returns the metadata written."""
    if denoiser == "unet":
        cfg = unrolled.UnrolledConfig(encoder="", width=0, denoiser="unet", chans=chans, pools=pools,
                                      cascades=cascades, shared=shared, dc=dc, cg_iters=cg_iters)
    else:
        sd = safetensors_io.load(encoder_ckpt)
        spec = encoders.infer_spec(family, sd)
        cfg = unrolled.UnrolledConfig(encoder=family, width=spec.width, taps=list(taps),
                                      grid=int(grid or spec.pos_grid), feature_size=feature_size, cascades=cascades,
                                      shared=shared, dc=dc, cg_iters=cg_iters)
    torch.manual_seed(seed)
    model = unrolled.init_decoder_(unrolled.UnrolledNet(cfg), out_scale=out_scale, seed=seed)
    if dc_values is None:
        dc_values = [0.05 * (1 + t) if dc == "cg" else 0.5 + 0.1 * t for t in range(cascades)]
    model.set_dc_weights(dc_values)
    sha = None if denoiser == "unet" else (encoder_sha256 or unrolled.sha256_file(encoder_ckpt))
    meta = unrolled.bundle_metadata(cfg, sha, training)
    tensors = unrolled.bundle_tensors(model)
    for k in drop_keys:
        tensors.pop(k)
    safetensors_io.save(path, tensors, metadata=meta, dtype="F32")
    return meta


def as_complex64(a):
    """complex64 of a complex array or of an HDF5 compound with fields r/i or real/imag."""
    if a.dtype.names:
        re, im = ("r", "i") if "r" in a.dtype.names else ("real", "imag")
        a = a[re] + 1j * a[im]
    return np.asarray(a).astype(np.complex64)


def read_cine(path):
    """(kspace (frames, slices, coils, h, w) complex64, mask (frames, w) float32) of an fmrecon file."""
    with h5py.File(path, "r") as f:
        if "kspace" not in f:
            raise ValueError(f"{path}: no 'kspace' dataset")
        k = f["kspace"][()]
        mask = f["mask"][()] if "mask" in f else None
    k = as_complex64(k)
    if k.ndim == 4:
        k = k[None]
    if k.ndim != 5:
        raise ValueError(f"{path}: kspace has shape {k.shape}, expected (frames, slices, coils, h, w)")
    T, w = k.shape[0], k.shape[-1]
    if mask is None:
        mask = (np.abs(k).sum(axis=(1, 2, 3)) > 0).astype(np.float32)
    else:
        mask = np.asarray(mask, dtype=np.float32)
        if mask.ndim == 1:
            mask = np.broadcast_to(mask, (T, w))
        mask = mask.reshape(-1, w)
        if mask.shape[0] != T:
            raise ValueError(f"{path}: mask has {mask.shape[0]} rows for {T} frames")
    return k, np.ascontiguousarray(mask)


def read_maps(path, slices=None):
    """(slices, coils, h, w) complex64 coil maps from `maps` or `sens`."""
    with h5py.File(path, "r") as f:
        name = "maps" if "maps" in f else ("sens" if "sens" in f else None)
        if name is None:
            raise ValueError(f"{path}: no 'maps' or 'sens' dataset")
        m = f[name][()]
    m = as_complex64(m)
    if m.ndim == 3:
        m = m[None]
    if slices is not None and m.shape[0] == 1 and slices > 1:
        m = np.broadcast_to(m, (slices,) + m.shape[1:])
    return m


def run_reference(model, kspace, mask, maps, batch=8):
    """All cascades of the network on every (frame, slice) item: list of (frames, slices, h, w) complex64."""
    T, Z, C, h, w = kspace.shape
    if maps.shape != (Z, C, h, w):
        raise ValueError(f"maps have shape {maps.shape}, k-space needs {(Z, C, h, w)}")
    items = [(t, z) for t in range(T) for z in range(Z)]
    out = [np.zeros((T, Z, h, w), np.complex64) for _ in range(model.cfg.cascades + 1)]
    with torch.no_grad():
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            y = torch.from_numpy(np.stack([kspace[t, z] for t, z in chunk]))
            m = torch.from_numpy(np.stack([mask[t] for t, _ in chunk]))
            S = torch.from_numpy(np.stack([maps[z] for _, z in chunk]))
            _, xs = model(y, m, S, return_cascades=True)
            for c, x in enumerate(xs):
                xn = x.to(torch.complex64).numpy()
                for i, (t, z) in enumerate(chunk):
                    out[c][t, z] = xn[i]
    return out


def write_output(path, cascades, attrs=None):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=d)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for t, x in enumerate(cascades):
                f.create_dataset(f"cascade_{t}", data=x.astype(np.complex64))
            f.create_dataset("image", data=cascades[-1].astype(np.complex64))
            f.create_dataset("reconstruction", data=np.abs(cascades[-1]).astype(np.float32))
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--weights", help="encoder checkpoint (safetensors) the bundle was trained with "
                    "(unetr bundles; not needed for denoiser = unet)")
    ap.add_argument("--input", required=True)
    ap.add_argument("--maps", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--batch", type=int, default=8, help="items (frames x slices) per forward pass")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        model = unrolled.load_bundle(a.bundle, a.weights, dtype=DTYPES[a.dtype])
        k, mask = read_cine(a.input)
        maps = read_maps(a.maps, slices=k.shape[1])
        cascades = run_reference(model, k, mask, maps, batch=max(1, a.batch))
        write_output(a.output, cascades, {"method": "unrolled (PyTorch reference)", "dtype": a.dtype,
                                          "bundle": os.path.abspath(a.bundle), "input_file": os.path.abspath(a.input)})
    except (unrolled.BundleError, encoders.EncoderError, safetensors_io.SafetensorsError, ValueError, OSError) as e:
        print(f"unrolled_reference: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
