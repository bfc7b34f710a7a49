#!/usr/bin/python3
"""Train the unrolled foundation-model network of docs/model.md and export an fmrecon bundle.

    train_unrolled.py --encoder biomedclip --encoder-weights ENC.safetensors
        (--cohort DIR | --simulate DIR [--subjects N --sim-seed S ...] | --data IN.h5 ... --maps MAPS.h5 ...)
        [--taps 2,4,6 --grid 14 --feature-size 16 --cascades 4 --shared --dc cg|soft --cg-iters 8]
    train_unrolled.py --denoiser unet --chans 8 --pools 3 (data as above) [--cascades 4 --shared --dc soft|cg]
        [--lr 1e-3 --batch 2 --steps N --minutes M --threads 2 --seed 0 --l1 1.0]
        [--checkpoint CKPT.pt --checkpoint-every 50 --resume] [-o BUNDLE.safetensors]

Data. Each training file is an fmrecon/fastMRI-style cine file with undersampled `kspace` (frames,
slices, coils, h, w), its `mask` (w,) or (frames, w) and `reconstruction_rss` (frames, slices, h', w')
-- what `fmrecon undersample` writes -- paired with a maps file from `fmrecon maps` (`maps` (slices,
coils, h, w)), the ESPIRiT maps the C inference uses. Items are single frames of single slices;
each step draws --batch of them at random (seeded) from all files.

--simulate DIR builds a cohort with the fmrecon CLI (--fmrecon PATH): `fmrecon simulate` (--subjects,
first seed --sim-seed, --matrix/--frames/--slices/--coils), then for every subject and every mask in
--masks (default ktgaussian,uniform) `fmrecon undersample --accel 8 --acs 24 --seed <per subject and
mask>` and `fmrecon maps`; DIR/cohort.json lists the pairs and the commands (an existing cohort with
the same parameters is reused). --cohort DIR trains on such a folder.

Target and loss. The target is the magnitude `reconstruction_rss`: the root-sum-of-squares image of
the fully sampled (noisy) k-space. The network's output x_T is complex; its magnitude |x_T| (centre-
cropped to the target's size if they differ) is compared with it:
    loss = (1 - SSIM(|x_T|, rss)) + l1 * mean|(|x_T| - rss)| / data_range
per image, averaged over the batch; SSIM as fastMRI's SSIMLoss (7x7 uniform window, k1 = 0.01,
k2 = 0.03, sample covariance 49/48, valid region), data_range = the target image's maximum.
Gradients flow through every CG iteration and through the frozen encoder to its input; only the
decoders and the DC weights (log lambda_t / log eta_t) are trained, with Adam.

The U-Net baseline (--denoiser unet, docs/model.md): fastMRI's U-Net (--chans, --pools) on the
zero-padded native-size image replaces encoder + UNETR decoder; no encoder (--encoder-weights and
the encoder options are not used); --dc defaults to soft (E2E-VarNet style), cg is allowed.

Checkpoints (--checkpoint, every --checkpoint-every steps and at the end) hold the model, the
optimizer, the step, the loss history ([step, loss, SSIM, L1, lr]), the RNG states (torch, numpy
sampler, python) and the configuration. --resume continues from one: the configuration, data and
training options come from the checkpoint; --lr, --dc-lr, --schedule, --clip, --threads,
--checkpoint-every and --log-every override them when given. --steps is the total step target,
--minutes this run's time budget (whichever ends first). At the end the bundle is exported (-o;
F32 safetensors with the metadata of docs/model.md, via export_bundle.export()).
Progress lines (every --log-every steps): step, mean loss, SSIM and L1 since the previous line,
seconds per step, the current lambda_t / eta_t.
"""
import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import encoders, safetensors_io, unrolled  # noqa: E402

CKPT_FORMAT = "fmrecon-train-unrolled-1"


# ----------------------------------------------------------------------------------------------
# loss
# ----------------------------------------------------------------------------------------------

def ssim_map_mean(x, y, data_range, win=7, k1=0.01, k2=0.03):
    """Per-image mean SSIM of (B, h, w) tensors, fastMRI SSIMLoss style (uniform win x win window,
    sample covariance, valid region); data_range (B,)."""
    x, y = x.unsqueeze(1), y.unsqueeze(1)
    w = torch.ones(1, 1, win, win, dtype=x.dtype) / (win * win)
    n = win * win
    cov_norm = n / (n - 1)
    ux, uy = F.conv2d(x, w), F.conv2d(y, w)
    uxx, uyy, uxy = F.conv2d(x * x, w), F.conv2d(y * y, w), F.conv2d(x * y, w)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    dr = data_range.view(-1, 1, 1, 1)
    c1, c2 = (k1 * dr) ** 2, (k2 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def center_crop(x, shape):
    h, w = x.shape[-2:]
    ch, cw = shape
    if (h, w) == (ch, cw):
        return x
    if ch > h or cw > w:
        raise ValueError(f"target {ch}x{cw} is larger than the image {h}x{w}")
    a, b = (h - ch) // 2, (w - cw) // 2
    return x[..., a:a + ch, b:b + cw]


def loss_fn(x, target, l1_weight):
    """(loss, mean SSIM, mean normalised L1) of complex x (B, h, w) against magnitude targets."""
    mag = center_crop(torch.abs(x), target.shape[-2:])
    dr = torch.amax(target.reshape(target.shape[0], -1), dim=1)
    dr = torch.where(dr > 0, dr, torch.ones_like(dr))
    ssim = ssim_map_mean(mag, target, dr)
    l1 = (mag - target).abs().flatten(1).mean(dim=1) / dr
    loss = (1 - ssim).mean() + l1_weight * l1.mean()
    return loss, float(ssim.mean()), float(l1.mean())


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

class CineSet:
    """All items (file, frame, slice) of a list of (data, maps) file pairs. By default every file is
    read into memory; lazy=True keeps only the masks and reads each item's k-space, maps slice and
    target from the files when a batch needs it (for cohorts larger than the memory)."""

    def __init__(self, pairs, lazy=False):
        import unrolled_reference as ur

        self.lazy = lazy
        self.files = []
        self.items = []
        for fi, (data, maps_path) in enumerate(pairs):
            with h5py.File(data, "r") as f:
                if "kspace" not in f:
                    raise ValueError(f"{data}: no 'kspace' dataset")
                if "reconstruction_rss" not in f:
                    raise ValueError(f"{data}: no 'reconstruction_rss' (the training target)")
                kshape, tshape = f["kspace"].shape, f["reconstruction_rss"].shape
                has_mask = "mask" in f
            if len(kshape) not in (4, 5):
                raise ValueError(f"{data}: kspace has shape {kshape}, expected ([frames,] slices, coils, h, w)")
            with h5py.File(maps_path, "r") as f:
                name = "maps" if "maps" in f else "sens"
                if name not in f:
                    raise ValueError(f"{maps_path}: no 'maps' or 'sens' dataset")
                mshape = f[name].shape
            T, (Z, C, h, w) = (kshape[0] if len(kshape) == 5 else 1), kshape[-4:]
            if not ((len(tshape) == 4 and tuple(tshape[:2]) == (T, Z)) or (len(tshape) == 3 and T == 1 and tshape[0] == Z)):
                raise ValueError(f"{data}: reconstruction_rss {tshape} does not match k-space {kshape}")
            if tuple(mshape[-3:]) != (C, h, w) or (len(mshape) == 4 and mshape[0] not in (1, Z)):
                raise ValueError(f"{maps_path}: maps {mshape} do not match {data}'s k-space (slices, coils, h, w) "
                                 f"= {(Z, C, h, w)}")
            rec = {"data": data, "maps_path": maps_path, "maps_name": name, "T": T, "Z": Z,
                   "kdim": len(kshape), "tdim": len(tshape), "mdim": len(mshape),
                   "kshape": (C, h, w), "tshape": tuple(tshape[-2:])}
            if lazy and has_mask:
                with h5py.File(data, "r") as f:
                    mask = np.asarray(f["mask"][()], dtype=np.float32)
                rec["mask"] = np.ascontiguousarray(np.broadcast_to(mask.reshape(-1, w), (T, w)))
            else:
                k, mask = ur.read_cine(data)
                rec["mask"] = mask
                if not lazy:
                    with h5py.File(data, "r") as f:
                        tgt = f["reconstruction_rss"][()].astype(np.float32)
                    rec["k"] = k
                    rec["tgt"] = tgt.reshape((T, Z) + tgt.shape[-2:])
                    rec["maps"] = ur.read_maps(maps_path, slices=Z)
            self.files.append(rec)
            self.items += [(fi, t, z) for t in range(T) for z in range(Z)]
        if not self.items:
            raise ValueError("no training items")

    def shape(self, item):
        f = self.files[item[0]]
        return f["kshape"], f["tshape"]

    def sample(self, rng, n):
        """n items drawn without replacement (with, if fewer exist), all of the first one's shape."""
        first = self.items[int(rng.integers(len(self.items)))]
        pool = [it for it in self.items if self.shape(it) == self.shape(first)]
        idx = rng.choice(len(pool), size=n, replace=len(pool) < n)
        return [pool[int(i)] for i in idx]

    def _item(self, f, t, z):
        import unrolled_reference as ur

        r = self.files[f]
        if not self.lazy:
            return r["k"][t, z], r["maps"][z], r["tgt"][t, z]
        with h5py.File(r["data"], "r") as h:
            k = h["kspace"][t, z] if r["kdim"] == 5 else h["kspace"][z]
            g = h["reconstruction_rss"][t, z] if r["tdim"] == 4 else h["reconstruction_rss"][z]
        with h5py.File(r["maps_path"], "r") as h:
            d = h[r["maps_name"]]
            s = d[z if d.shape[0] > 1 else 0] if r["mdim"] == 4 else d[()]
        return ur.as_complex64(k), ur.as_complex64(s), np.asarray(g, np.float32)

    def batch(self, items):
        parts = [self._item(f, t, z) for f, t, z in items]
        y = np.stack([p[0] for p in parts])
        s = np.stack([p[1] for p in parts])
        g = np.stack([p[2] for p in parts])
        m = np.stack([self.files[f]["mask"][t] for f, t, z in items])
        return torch.from_numpy(y), torch.from_numpy(m), torch.from_numpy(s), torch.from_numpy(g)


def _run(cmd, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} failed ({r.returncode}): {r.stderr.strip()}")


def build_cohort(outdir, fmrecon, subjects, sim_seed, masks, accel, acs, mask_seed, matrix=None, frames=None,
                 slices=None, coils=None, keep_full=False, threads=None, log=print):
    """Simulate, undersample and calibrate a cohort with the fmrecon CLI; returns the cohort dict
    (also written to outdir/cohort.json). Reuses an existing cohort with the same parameters."""
    params = {"subjects": subjects, "sim_seed": sim_seed, "masks": list(masks), "accel": accel, "acs": acs,
              "mask_seed": mask_seed, "matrix": matrix, "frames": frames, "slices": slices, "coils": coils}
    cj = os.path.join(outdir, "cohort.json")
    if os.path.exists(cj):
        with open(cj) as f:
            old = json.load(f)
        if old.get("params") == params and all(os.path.exists(p) for pair in old["files"] for p in pair):
            log(f"cohort: reusing {cj} ({len(old['files'])} files)")
            return old
    os.makedirs(outdir, exist_ok=True)
    outdir = os.path.abspath(outdir)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    full = os.path.join(outdir, "full")
    sim = [fmrecon, "simulate", "-o", full, "--subjects", subjects, "--seed", sim_seed, "-q"]
    for opt, v in (("--matrix", matrix), ("--frames", frames), ("--slices", slices), ("--coils", coils)):
        if v is not None:
            sim += [opt, v]
    commands = [" ".join(str(c) for c in sim)]
    t0 = time.time()
    _run(sim, env)
    files = []
    for i in range(subjects):
        src = os.path.join(full, f"subject_{i:03d}.h5")
        for j, mtype in enumerate(masks):
            base = os.path.join(outdir, f"subject_{i:03d}_{mtype}_R{accel:g}")
            data, maps = base + ".h5", base + "_maps.h5"
            us = [fmrecon, "undersample", src, "-o", data, "--mask", mtype, "--accel", f"{accel:g}", "--acs", acs,
                  "--seed", mask_seed + 100 * i + j, "-q"]
            mp = [fmrecon, "maps", data, "-o", maps, "-q"]
            _run(us, env)
            _run(mp, env)
            commands += [" ".join(str(c) for c in us), " ".join(str(c) for c in mp)]
            files.append([data, maps])
        if not keep_full:
            os.remove(src)
    desc = (f"fmrecon simulate cohort: {subjects} subjects (seeds {sim_seed}..{sim_seed + subjects - 1}"
            f"{', matrix ' + matrix if matrix else ''}{', ' + str(frames) + ' frames' if frames else ''}"
            f"{', ' + str(slices) + ' slices' if slices else ''}{', ' + str(coils) + ' coils' if coils else ''}), "
            f"masks {'+'.join(masks)} R={accel:g} ACS {acs} (mask seeds {mask_seed} + 100*subject + mask index), "
            f"ESPIRiT maps from fmrecon maps")
    cohort = {"params": params, "files": files, "description": desc, "commands": commands}
    with open(cj, "w") as f:
        json.dump(cohort, f, indent=1)
    log(f"cohort: {len(files)} files in {outdir} ({time.time() - t0:.1f} s)")
    return cohort


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

def torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # a torch without the weights_only argument
        return torch.load(path, map_location="cpu")


def save_checkpoint(path, state):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=d)
    os.close(fd)
    try:
        torch.save(state, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> the mode a plain open() would give
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def config_dict(cfg):
    return {"encoder": cfg.encoder, "width": cfg.width, "taps": list(cfg.taps), "grid": cfg.grid,
            "feature_size": cfg.feature_size, "cascades": cfg.cascades, "shared": bool(cfg.shared), "dc": cfg.dc,
            "cg_iters": cfg.cg_iters, "denoiser": cfg.denoiser, "chans": cfg.chans, "pools": cfg.pools}


def training_text(ck):
    a = ck["train"]
    d = ck.get("data_description") or f"{len(ck['data'])} files"
    net = ""
    if ck["config"].get("denoiser") == "unet":
        net = f"U-Net baseline (chans {ck['config']['chans']}, pools {ck['config']['pools']}); "
    return (f"python/train_unrolled.py: {net}{d}; items = single frames, {a['batch']} per step, {ck['step']} steps "
            f"(Adam lr {a['lr']}{', cosine decay' if a.get('schedule') == 'cosine' else ''}"
            f"{', grad-norm clip ' + str(a['clip']) if a.get('clip') else ''}, seed {a['seed']}); "
            f"loss (1 - SSIM) + {a['l1']} * L1/data_range on |x_T| vs reconstruction_rss "
            f"(SSIM 7x7 uniform, k1 0.01, k2 0.03, data_range = target image max); "
            f"{ck['elapsed']:.0f} s on {a['threads']} CPU threads (torch {torch.__version__}); "
            f"exported {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

def evaluate(model, pairs, batch=8):
    """[(file, PSNR dB, mean SSIM)] with fastMRI's rules (data range = reference volume max) of |x_T|."""
    import unrolled_reference as ur
    from skimage.metrics import structural_similarity

    out = []
    for data, maps_path in pairs:
        k, mask = ur.read_cine(data)
        maps = ur.read_maps(maps_path, slices=k.shape[1])
        with h5py.File(data, "r") as f:
            ref = f["reconstruction_rss"][()].astype(np.float64)
        ref = ref.reshape((-1,) + ref.shape[-3:]) if ref.ndim == 3 else ref
        was = model.training
        model.eval()
        rec = np.abs(ur.run_reference(model, k, mask, maps, batch=batch)[-1]).astype(np.float64)
        model.train(was)
        rec = center_crop(torch.from_numpy(rec), ref.shape[-2:]).numpy()
        dr = ref.max()
        psnr = 10 * np.log10(dr ** 2 / np.mean((ref - rec) ** 2))
        ssim = np.mean([structural_similarity(ref[t, z], rec[t, z], data_range=dr)
                        for t in range(ref.shape[0]) for z in range(ref.shape[1])])
        out.append((data, float(psnr), float(ssim)))
    return out


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def parse_pairs(args, ap):
    if args.data:
        if not args.maps or len(args.maps) != len(args.data):
            ap.error("--data needs one --maps file per data file, in the same order")
        return [list(p) for p in zip(args.data, args.maps)], f"{len(args.data)} files given with --data"
    return None, None


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    g = ap.add_argument_group("data")
    g.add_argument("--data", nargs="+", help="undersampled training files (kspace, mask, reconstruction_rss)")
    g.add_argument("--maps", nargs="+", help="their maps files (fmrecon maps), same order")
    g.add_argument("--cohort", help="a folder with cohort.json (made by --simulate)")
    g.add_argument("--simulate", metavar="DIR", help="build a simulated cohort in DIR with the fmrecon CLI")
    g.add_argument("--fmrecon", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                     "fmrecon"), help="fmrecon binary (default ../build/fmrecon)")
    g.add_argument("--subjects", type=int, default=8)
    g.add_argument("--sim-seed", type=int, default=1001,
                   help="first subject's simulation seed (1001: disjoint from fmrecon demo's seeds 1..)")
    g.add_argument("--matrix", help="HxW (fmrecon simulate default 192x160)")
    g.add_argument("--frames", type=int)
    g.add_argument("--slices", type=int)
    g.add_argument("--coils", type=int)
    g.add_argument("--masks", default="ktgaussian,uniform")
    g.add_argument("--accel", type=float, default=8)
    g.add_argument("--acs", type=int, default=24)
    g.add_argument("--mask-seed", type=int, default=7001)
    g.add_argument("--keep-full", action="store_true", help="keep the fully sampled simulated files")
    g.add_argument("--lazy", action="store_true",
                   help="read items from the files when needed instead of holding every file in memory")
    g.add_argument("--val", nargs="+", metavar="DATA.h5:MAPS.h5", help="files scored (PSNR, SSIM) at the end")
    m = ap.add_argument_group("model")
    m.add_argument("--denoiser", choices=unrolled.DENOISERS, default="unetr",
                   help="unetr: frozen encoder + UNETR decoder; unet: the U-Net baseline (no encoder)")
    m.add_argument("--chans", type=int, default=8, help="unet: channels of the first U-Net level")
    m.add_argument("--pools", type=int, default=3, help="unet: pooling levels (images padded to multiples of 2**pools)")
    m.add_argument("--encoder", default="biomedclip", help="encoder id or family (as fmrecon encode --encoder)")
    m.add_argument("--encoder-weights", help="frozen encoder checkpoint (safetensors)")
    m.add_argument("--taps", default="2,4,6")
    m.add_argument("--grid", type=int, default=14)
    m.add_argument("--feature-size", type=int, default=16)
    m.add_argument("--cascades", type=int, default=4)
    m.add_argument("--shared", action="store_true", help="one decoder for every cascade")
    m.add_argument("--dc", choices=("cg", "soft"), default=None, help="default: cg (unetr), soft (unet)")
    m.add_argument("--cg-iters", type=int, default=8)
    m.add_argument("--lambda-init", type=float, default=0.05)
    m.add_argument("--eta-init", type=float, default=0.5)
    m.add_argument("--out-scale", type=float, default=0.01, help="initial scale of the decoder output (~|D(u)|)")
    t = ap.add_argument_group("training")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--dc-lr", type=float, default=None, help="learning rate of log lambda / log eta (default 10 x --lr)")
    t.add_argument("--schedule", choices=("const", "cosine"), default="const", help="cosine: decay to lr/20 at --steps")
    t.add_argument("--batch", type=int, default=2, help="frames per step")
    t.add_argument("--steps", type=int, default=1000, help="total steps (including resumed ones)")
    t.add_argument("--minutes", type=float, default=0, help="time budget of this run (0: none)")
    t.add_argument("--l1", type=float, default=1.0, help="weight of the normalised L1 term")
    t.add_argument("--clip", type=float, default=0, help="gradient-norm clipping (0: off)")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint", default="unrolled_checkpoint.pt")
    t.add_argument("--checkpoint-every", type=int, default=50)
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.add_argument("--log-every", type=int, default=1)
    t.add_argument("-o", "--out", default="unrolled.safetensors", help="exported bundle")
    t.add_argument("--no-export", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    return ap


def explicit_options(argv):
    """The dest names of the options given on the command line (not defaulted)."""
    ap = build_parser()
    for act in ap._actions:
        act.default = argparse.SUPPRESS
    return set(vars(ap.parse_args(argv)))


def main(argv=None):
    ap = build_parser()
    a = ap.parse_args(argv)
    a.explicit = explicit_options(argv)

    def log(msg):
        if not a.quiet:
            print(msg, flush=True)

    torch.set_num_threads(max(1, a.threads))
    try:
        return train(a, ap, log)
    except (unrolled.BundleError, encoders.EncoderError, safetensors_io.SafetensorsError, ValueError, OSError,
            RuntimeError) as e:
        print(f"train_unrolled: {e}", file=sys.stderr)
        return 1


def train(a, ap, log):
    import export_bundle

    ck = None
    if a.resume:
        if not os.path.exists(a.checkpoint):
            raise ValueError(f"--resume: no checkpoint {a.checkpoint}")
        ck = torch_load(a.checkpoint)
        if ck.get("format") != CKPT_FORMAT:
            raise ValueError(f"{a.checkpoint}: not a train_unrolled checkpoint")
        pairs, desc = [list(p) for p in ck["data"]], ck.get("data_description")
        cfg = unrolled.UnrolledConfig(**ck["config"])
        enc_path = None if cfg.denoiser == "unet" else (a.encoder_weights or ck["encoder_path"])
        tr = dict(ck["train"])
        # the run's own knobs may change on resume (those given on the command line); the model and
        # data may not; --steps and --minutes always apply to this run
        for k in ("lr", "dc_lr", "steps", "minutes", "threads", "checkpoint_every", "log_every", "clip", "schedule"):
            if k in a.explicit or k in ("steps", "minutes"):
                tr[k] = getattr(a, k)
    else:
        pairs, desc = parse_pairs(a, ap)
        if pairs is None:
            if a.cohort or a.simulate:
                if a.simulate:
                    if not os.path.exists(a.fmrecon):
                        raise ValueError(f"--fmrecon {a.fmrecon} does not exist (build fmrecon or pass its path)")
                    cohort = build_cohort(a.simulate, os.path.abspath(a.fmrecon), a.subjects, a.sim_seed,
                                          [m for m in a.masks.split(",") if m], a.accel, a.acs, a.mask_seed,
                                          a.matrix, a.frames, a.slices, a.coils, a.keep_full, a.threads, log)
                else:
                    with open(os.path.join(a.cohort, "cohort.json")) as f:
                        cohort = json.load(f)
                pairs, desc = [list(p) for p in cohort["files"]], cohort["description"]
            else:
                ap.error("no training data: --data/--maps, --cohort or --simulate")
        dc = a.dc or ("soft" if a.denoiser == "unet" else "cg")
        if a.denoiser == "unet":
            enc_path = None
            cfg = unrolled.UnrolledConfig(encoder="", width=0, denoiser="unet", chans=a.chans, pools=a.pools,
                                          cascades=a.cascades, shared=a.shared, dc=dc, cg_iters=a.cg_iters)
        else:
            if not a.encoder_weights:
                ap.error("--encoder-weights is required (unless --denoiser unet)")
            enc_path = a.encoder_weights
            try:
                taps = [int(x) for x in a.taps.split(",")]
            except ValueError:
                ap.error(f"--taps '{a.taps}': expected comma-separated integers")
            cfg = unrolled.UnrolledConfig(encoder=a.encoder, width=0, taps=taps, grid=a.grid,
                                          feature_size=a.feature_size, cascades=a.cascades, shared=a.shared, dc=dc,
                                          cg_iters=a.cg_iters)
        tr = {k: getattr(a, k) for k in ("lr", "dc_lr", "schedule", "batch", "steps", "minutes", "l1", "clip", "threads", "seed",
                                         "checkpoint_every", "log_every", "lambda_init", "eta_init", "out_scale")}

    sha, encoder = None, None
    if cfg.denoiser != "unet":
        sha = unrolled.sha256_file(enc_path)
        if ck is not None and sha != ck["encoder_sha256"]:
            raise ValueError(f"encoder checkpoint {enc_path} has sha256 {sha}, the run was started with "
                             f"{ck['encoder_sha256']}")
        sd = safetensors_io.load(enc_path)
        spec = encoders.infer_spec(cfg.encoder, sd)
        cfg.width = spec.width
        encoder = unrolled.FrozenEncoder(cfg.encoder, sd, cfg.taps, cfg.grid)
    cfg.validate()

    torch.manual_seed(tr["seed"])
    random.seed(tr["seed"])
    model = unrolled.UnrolledNet(cfg, lam=tr["lambda_init"], eta=tr["eta_init"])
    unrolled.init_decoder_(model, out_scale=tr["out_scale"])
    if encoder is not None:
        model.set_encoder(encoder)
    tr.setdefault("dc_lr", None)
    dc_params = [model.log_lambda if cfg.dc == "cg" else model.log_eta]
    dec_params = [p for n, p in model.named_parameters() if n.startswith("cascades.")]

    def group_lrs(base):
        return [base, (tr["dc_lr"] * base / tr["lr"]) if tr["dc_lr"] is not None else 10 * base]

    opt = torch.optim.Adam([{"params": dec_params}, {"params": dc_params}], lr=tr["lr"])
    for grp, lr in zip(opt.param_groups, group_lrs(tr["lr"])):
        grp["lr"] = lr
    rng = np.random.default_rng(tr["seed"])
    step, elapsed, history = 0, 0.0, []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        for grp, lr in zip(opt.param_groups, group_lrs(tr["lr"])):
            grp["lr"] = lr
        step, elapsed, history = ck["step"], ck["elapsed"], list(ck["history"])
        torch.set_rng_state(ck["rng"]["torch"])
        rng.bit_generator.state = ck["rng"]["numpy"]
        random.setstate(ck["rng"]["python"])
        log(f"resumed {a.checkpoint} at step {step}")

    data = CineSet(pairs, lazy=a.lazy)
    nparam = sum(p.numel() for p in model.parameters())
    if cfg.denoiser == "unet":
        net = f"U-Net baseline chans {cfg.chans}, pools {cfg.pools} (no encoder)"
    else:
        net = (f"encoder {cfg.encoder} (width {cfg.width}, input {encoder.size}x{encoder.size}), taps {cfg.taps}, "
               f"grid {cfg.grid} (decoder {cfg.resolution}), F {cfg.feature_size}")
    log(f"train_unrolled: {len(data.items)} items from {len(pairs)} files; {net}, {cfg.cascades} cascades"
        f"{' (shared)' if cfg.shared else ''}, dc {cfg.dc}"
        f"{' ' + str(cfg.cg_iters) + ' CG iterations' if cfg.dc == 'cg' else ''}; {nparam} trained parameters; "
        f"{torch.get_num_threads()} threads")

    def state():
        return {"format": CKPT_FORMAT, "config": config_dict(cfg), "model": model.state_dict(),
                "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed, "history": history,
                "rng": {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state, "python": random.getstate()},
                "data": pairs, "data_description": desc, "encoder_path": os.path.abspath(enc_path) if enc_path else None,
                "encoder_sha256": sha, "train": tr, "torch_version": torch.__version__}

    t_start = time.time()
    budget = tr["minutes"] * 60 if tr["minutes"] else float("inf")
    model.train()
    win = []
    while step < tr["steps"] and time.time() - t_start < budget:
        t0 = time.time()
        if tr["schedule"] == "cosine":  # by steps, or by this run's time budget if that ends first
            frac = min(1.0, max(step / max(1, tr["steps"]), (time.time() - t_start) / budget))
            scale = 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac))
            for grp, lr in zip(opt.param_groups, group_lrs(tr["lr"] * scale)):
                grp["lr"] = lr
        y, m, s, g = data.batch(data.sample(rng, tr["batch"]))
        x = model(y, m, s, return_cascades=False)
        loss, ssim, l1 = loss_fn(x, g.to(model.real_dtype), tr["l1"])
        if not torch.isfinite(loss):
            raise RuntimeError(f"step {step + 1}: the loss is not finite ({float(loss)})")
        opt.zero_grad()
        loss.backward()
        if tr["clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tr["clip"])
        opt.step()
        step += 1
        dt = time.time() - t0
        elapsed += dt
        history.append([step, float(loss), ssim, l1, opt.param_groups[0]["lr"]])
        win.append(dt)
        if step % max(1, tr["log_every"]) == 0 or step == tr["steps"]:
            dcw = ", ".join(f"{v:.3g}" for v in model.dc_weights.detach().tolist())
            h = np.asarray([r[1:4] for r in history[-len(win):]])  # means over the steps since the last line
            log(f"step {step}/{tr['steps']}  loss {h[:, 0].mean():.4f}  ssim {h[:, 1].mean():.4f}  l1 {h[:, 2].mean():.4f}  "
                f"{np.mean(win):.2f} s/step  {'lambda' if cfg.dc == 'cg' else 'eta'} [{dcw}]")
            win = []
        if tr["checkpoint_every"] and step % tr["checkpoint_every"] == 0:
            save_checkpoint(a.checkpoint, state())
    save_checkpoint(a.checkpoint, state())
    log(f"checkpoint {a.checkpoint}: step {step}, {elapsed:.0f} s of training in total")
    if a.val:
        vp = [v.split(":", 1) for v in a.val]
        for f, psnr, ssim in evaluate(model, vp):
            log(f"val {f}: PSNR {psnr:.2f} dB  SSIM {ssim:.4f}")
    if not a.no_export:
        meta = export_bundle.export(a.checkpoint, a.out)
        if cfg.denoiser == "unet":
            log(f"bundle {a.out}: U-Net chans {meta['chans']}, pools {meta['pools']}, {meta['cascades']} cascades, "
                f"dc {meta['dc']}")
        else:
            log(f"bundle {a.out}: {meta['cascades']} cascades, dc {meta['dc']}, "
                f"encoder_sha256 {meta['encoder_sha256'][:12]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
