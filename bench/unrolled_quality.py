#!/usr/bin/env python3
"""Quality of the unrolled network against the classical methods on held-out simulated subjects
(issue: the unrolled foundation-model reconstruction). Prints a table; not a test.

Held-out subjects are `fmrecon simulate --seed 1 ..` (the demo model was trained on seeds >= 1001,
see models/README.md); each is undersampled at R = 8 with 24 ACS lines by the CMRxRecon ktGaussian
and Uniform masks, reconstructed by zf, CG-SENSE, compressed sensing and every given bundle, and
scored against the fully sampled root-sum-of-squares reference (fastMRI rules, `fmrecon eval`).

usage: /usr/bin/python3 bench/unrolled_quality.py [--fmrecon build/fmrecon] [--subjects 3]
         [--model models/demo_unrolled.safetensors --weights models/demo_vit_random.safetensors]
         [--extra-model NAME=BUNDLE[:WEIGHTS] ...] [--out DIR] [--json FILE]
         [--bf16] [--skip-classical]

--bf16 also runs every network in bf16 (`--precision bf16`, where the CPU has AVX512-BF16/AMX) and
prints, per mask, the mean and the largest per-subject change of PSNR and SSIM against f32 (the
accuracy the bf16 path must keep: |dPSNR| < 0.05 dB, |dSSIM| < 0.001).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
ap = argparse.ArgumentParser()
ap.add_argument("--fmrecon", default=os.path.join(ROOT, "build", "fmrecon"))
ap.add_argument("--subjects", type=int, default=3)
ap.add_argument("--model", default=os.path.join(ROOT, "models", "demo_unrolled.safetensors"))
ap.add_argument("--weights", default=os.path.join(ROOT, "models", "demo_vit_random.safetensors"))
ap.add_argument("--extra-model", action="append", default=[],
                help="NAME=BUNDLE[:WEIGHTS], e.g. unet=models/demo_unet.safetensors")
ap.add_argument("--accel", type=int, default=8)
ap.add_argument("--acs", type=int, default=24)
ap.add_argument("--out", default=None)
ap.add_argument("--json", default=None)
ap.add_argument("--threads", default="2")
ap.add_argument("--bf16", action="store_true", help="also run the networks in bf16 and compare with f32")
ap.add_argument("--skip-classical", action="store_true", help="only the networks (zf and sense still run)")
args = ap.parse_args()
out = args.out or tempfile.mkdtemp(prefix="fmr-quality-")
os.makedirs(out, exist_ok=True)
env = dict(os.environ, OMP_NUM_THREADS=args.threads)
FMR = os.path.abspath(args.fmrecon)


def fmr(*a):
    r = subprocess.run([FMR] + [str(x) for x in a], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"fmrecon {' '.join(map(str, a))} failed: {r.stderr.strip()}")
    return r


methods = [("zf", []), ("sense", [])] + ([] if args.skip_classical else [("cs", [])])
methods.append(("unrolled", ["-m", "unrolled", "--model", args.model, "--weights", args.weights]))
for spec in args.extra_model:
    name, rest = spec.split("=", 1)
    bundle, _, weights = rest.partition(":")
    methods.append((name, ["-m", "unrolled", "--model", bundle] + (["--weights", weights] if weights else [])))

nets = [name for name, opts in methods if "unrolled" in opts]
if args.bf16:
    methods += [(f"{name}-bf16", opts + ["--precision", "bf16"]) for name, opts in methods if name in nets]

fmr("simulate", "-o", f"{out}/sim", "--subjects", args.subjects, "--seed", 1, "-q")
results = {}
for mask in ("ktgaussian", "uniform"):
    for s in range(args.subjects):
        full = f"{out}/sim/subject_{s:03d}.h5"
        us = f"{out}/{mask}_{s:03d}.h5"
        fmr("undersample", full, "-o", us, "--mask", mask, "--accel", args.accel, "--acs", args.acs, "--seed", 100 + s, "-q")
        for name, opts in methods:
            rec = f"{out}/{mask}_{s:03d}_{name}.h5"
            t0 = time.time()
            fmr("recon", us, "-o", rec, "-q", *(opts if opts else ["-m", name]))
            secs = time.time() - t0
            v = json.loads(fmr("eval", "--ref", full, "--rec", rec, "--json").stdout)["volumes"][0]
            results.setdefault((mask, name), []).append((v["psnr"], v["ssim"], secs))

print(f"held-out simulated subjects (seeds 1..{args.subjects}), 12 frames x 2 slices x 8 coils x 192x160, "
      f"R = {args.accel}, {args.acs} ACS, {args.threads} threads; mean over subjects")
print(f"{'mask':<11} {'method':<10} {'PSNR (dB)':>9} {'SSIM':>7} {'time (s)':>9} {'vs sense':>9}")
table = []
for mask in ("ktgaussian", "uniform"):
    base = sum(p for p, _, _ in results[(mask, "sense")]) / args.subjects
    for name, _ in methods:
        rows = results[(mask, name)]
        psnr = sum(r[0] for r in rows) / len(rows)
        ssim = sum(r[1] for r in rows) / len(rows)
        secs = sum(r[2] for r in rows) / len(rows)
        print(f"{mask:<11} {name:<10} {psnr:9.2f} {ssim:7.4f} {secs:9.1f} {psnr - base:+9.2f}")
        table.append(dict(mask=mask, method=name, psnr=psnr, ssim=ssim, seconds=secs, psnr_vs_sense=psnr - base))
if args.bf16:
    print("bf16 against f32, same subjects: mean and largest |change| over subjects "
          "(target |dPSNR| < 0.05 dB, |dSSIM| < 0.001)")
    for mask in ("ktgaussian", "uniform"):
        for name in nets:
            a, b = results[(mask, name)], results[(mask, name + "-bf16")]
            dp = [y[0] - x[0] for x, y in zip(a, b)]
            ds = [y[1] - x[1] for x, y in zip(a, b)]
            mp, ms = max(abs(v) for v in dp), max(abs(v) for v in ds)
            ok = "meets" if mp < 0.05 and ms < 0.001 else "MISSES"
            print(f"{mask:<11} {name:<10} dPSNR mean {sum(dp) / len(dp):+.4f} dB, max |{mp:.4f}| dB; "
                  f"dSSIM mean {sum(ds) / len(ds):+.5f}, max |{ms:.5f}|: {ok} the target")
            table.append(dict(mask=mask, method=name, bf16_dpsnr_max=mp, bf16_dssim_max=ms,
                              bf16_dpsnr_mean=sum(dp) / len(dp), bf16_dssim_mean=sum(ds) / len(ds)))
if args.json:
    with open(args.json, "w") as f:
        json.dump(table, f, indent=1)
