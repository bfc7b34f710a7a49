#!/usr/bin/env python3
"""fmrecon's classical methods against BART on simulated cine (issue: classical reconstruction).

Prints (1) quality at R = 4, 8, 10 (CMRxRecon Uniform mask, 24 ACS lines): zero-filled, CG-SENSE
and compressed sensing from fmrecon, and `bart pics` with total variation over x, y and time, each
regularised method at the best weight of one shared sweep; (2) speed: the whole `fmrecon recon
--method sense` process (ESPIRiT maps included) against the whole `bart avg` + `bart ecalib` +
`bart pics -l2` processes on the same data with the same iterations and OMP_NUM_THREADS, and the
share of the data-consistency time spent in FFTW.

usage: /usr/bin/python3 bench/classical_vs_bart.py [--fmrecon build/fmrecon] [--out DIR] [--quick]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import bart  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--fmrecon", default=os.path.join(os.path.dirname(__file__), "..", "build", "fmrecon"))
ap.add_argument("--out", default=None)
ap.add_argument("--quick", action="store_true", help="smaller data, fewer weights (a smoke run)")
ap.add_argument("--threads", default="2")
args = ap.parse_args()
out = args.out or tempfile.mkdtemp(prefix="fmr-bench-")
os.makedirs(out, exist_ok=True)
env = dict(os.environ, OMP_NUM_THREADS=args.threads)
FMR = os.path.abspath(args.fmrecon)


def fmr(*a, capture=False):
    r = subprocess.run([FMR] + [str(x) for x in a], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"fmrecon {' '.join(map(str, a))} failed: {r.stderr}")
    return r


def psnr_of(ref, rec):
    return json.loads(fmr("eval", "--ref", ref, "--rec", rec, "--json").stdout)["volumes"][0]["psnr"]


matrix, frames, slices = ("96x80", 12, 1) if args.quick else ("192x160", 12, 1)
weights = [0.003, 0.03] if args.quick else [0.003, 0.01, 0.03, 0.1]
fmr("simulate", "-o", f"{out}/sim", "--frames", frames, "--slices", slices, "--coils", 8, "--matrix", matrix, "-q")
full = f"{out}/sim/subject_000.h5"
print(f"data: {frames} frames x {slices} slice(s) x 8 coils x {matrix}, simulated; threads {args.threads}")
print("\n== quality (PSNR dB, fastMRI rules; regularised methods at their best weight of the sweep "
      + ", ".join(map(str, weights)) + ")")
print(f"{'R':>3} {'zf':>7} {'sense':>7} {'cs':>7} {'bart':>7}  cs weight  bart weight")
rows = []
for R in (4, 8, 10):
    us = f"{out}/r{R}.h5"
    fmr("undersample", full, "-o", us, "--mask", "uniform", "--accel", R, "--acs", 24, "-q")
    res = {}
    for m in ("zf", "sense"):
        fmr("recon", us, "-o", f"{out}/r{R}_{m}.h5", "-m", m, "-q")
        res[m] = psnr_of(us, f"{out}/r{R}_{m}.h5")
    sweep_cs = []
    for a in weights:
        fmr("recon", us, "-o", f"{out}/r{R}_cs_{a}.h5", "-m", "cs", "-q", "--lambda-t", a, "--lambda-s", a / 2)
        sweep_cs.append((psnr_of(us, f"{out}/r{R}_cs_{a}.h5"), a))
    best_cs = max(sweep_cs)
    # BART: same undersampled k-space, maps from the time average, TV over x, y and time; -w 1
    # keeps the data unscaled (fmrecon scales to max A^H y = 1; both are near 1 here)
    with h5py.File(us, "r") as f:
        k = f["kspace"][()]  # T, Z, C, H, W
    T, Z, C, H, W = k.shape
    sweep_b = []
    for a in weights:
        recs = np.zeros((T, Z, H, W), np.float32)
        for z in range(Z):
            base = f"{out}/b{R}_{z}"
            k[:, z].astype(np.complex64).tofile(base + "k.cfl")
            with open(base + "k.hdr", "w") as fh:
                fh.write("# Dimensions\n" + " ".join(map(str, [W, H, 1, C, 1, 1, 1, 1, 1, 1, T])) + "\n")
            bart.run("avg", 1024, base + "k", base + "a")
            bart.run("ecalib", "-m1", base + "a", base + "s")
            bart.run("pics", "-w", 1, "-R", f"T:1027:0:{a}", "-i", 50, base + "k", base + "s", base + "x")
            x = bart.read(base + "x").reshape(T, H, W)
            recs[:, z] = np.abs(x)
        p = f"{out}/r{R}_bart_{a}.h5"
        with h5py.File(p, "w") as fh:
            fh["reconstruction"] = recs
        sweep_b.append((psnr_of(us, p), a))
    best_b = max(sweep_b)
    print(f"    R={R} sweep  cs: " + "  ".join(f"{a}:{q:.2f}" for q, a in sweep_cs)
          + "   bart: " + "  ".join(f"{a}:{q:.2f}" for q, a in sweep_b))
    rows.append(dict(R=R, zf=res["zf"], sense=res["sense"], cs=best_cs[0], cs_weight=best_cs[1],
                     bart=best_b[0], bart_weight=best_b[1]))
    print(f"{R:>3} {res['zf']:7.2f} {res['sense']:7.2f} {best_cs[0]:7.2f} {best_b[0]:7.2f}  "
          f"{best_cs[1]:<9} {best_b[1]}")

print("\n== speed: whole processes, CG-SENSE with maps, same iterations (median of 3)")
us = f"{out}/r8.h5"
iters = 30
with h5py.File(us, "r") as f:
    k = f["kspace"][()]
T, Z, C, H, W = k.shape
for z in range(Z):
    base = f"{out}/s{z}"
    k[:, z].astype(np.complex64).tofile(base + "k.cfl")
    with open(base + "k.hdr", "w") as fh:
        fh.write("# Dimensions\n" + " ".join(map(str, [W, H, 1, C, 1, 1, 1, 1, 1, 1, T])) + "\n")


def time_bart():
    t0 = time.perf_counter()
    for z in range(Z):
        base = f"{out}/s{z}"
        for cmd in (["avg", "1024", base + "k", base + "a"], ["ecalib", "-m1", base + "a", base + "s"],
                    ["pics", "-l2", "-r", "0.01", "-w", "1", "-i", str(iters), base + "k", base + "s", base + "x"]):
            subprocess.run(["bart"] + cmd, env=env, capture_output=True, check=True)
    return time.perf_counter() - t0


def time_fmr():
    t0 = time.perf_counter()
    r = fmr("recon", us, "-o", f"{out}/speed.h5", "-m", "sense", "--lambda", 0.01, "--cg-iters", iters,
            "--cg-rtol", 0, "-v")
    dt = time.perf_counter() - t0
    m = re.search(r"data consistency ([\d.]+) s, of which FFTW ([\d.]+) s", r.stderr)
    return dt, (float(m.group(2)) / float(m.group(1)) if m else float("nan"))


tb = statistics.median(time_bart() for _ in range(3))
tf_runs = [time_fmr() for _ in range(3)]
tf = statistics.median(t for t, _ in tf_runs)
share = statistics.median(s for _, s in tf_runs)
print(f"bart ecalib + pics: {tb:.2f} s   fmrecon sense: {tf:.2f} s   ratio {tb / tf:.2f}x"
      f"   FFTW share of CG time {100 * share:.0f}%")
print(f"(outputs in {out})")
