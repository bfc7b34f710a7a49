#!/usr/bin/env python3
"""`fmrecon plan` against measurement: for zf, sense, cs and unrolled on simulated subjects of two
sizes and on a real sample (/work/shared/data ISMRMRD phantom), at 1, 2 and 4 ranks, prints the
predicted and measured peak RSS per rank (max over ranks, from each rank's getrusage via a
wrapper) and wall time (mpiexec, end to end), with their ratios. Targets: 25 % memory, 30 % wall.
The machine is shared (2 cores, other users): wall figures carry that noise; the load average is
printed with each row.

usage: /usr/bin/python3 bench/plan_accuracy.py [--fmrecon build/fmrecon] [--ranks 1,2,4]
          [--methods zf,sense,cs,unrolled] [--shared /work/shared/data] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--fmrecon", default=os.path.join(HERE, "..", "build", "fmrecon"))
ap.add_argument("--mpiexec", default="mpiexec")
ap.add_argument("--ranks", default="1,2,4")
ap.add_argument("--methods", default="zf,sense,cs,unrolled")
ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared", "data"))
ap.add_argument("--json")
a = ap.parse_args()
FMR = os.path.abspath(a.fmrecon)
MODELS = os.path.join(HERE, "..", "models")
env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", FMR_FFTW_PLANNER=os.environ.get("FMR_FFTW_PLANNER", "estimate"))
tmp = tempfile.mkdtemp(prefix="fmr-planacc-")
# each rank runs fmrecon as a child and reports the child's peak RSS (KiB) on stderr
WRAP = ("import resource, subprocess, sys; r = subprocess.call(sys.argv[1:]); "
        "print('FMR_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)")


def sh(cmd):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return r


inputs = []
for name, shape in (("small", ("64x64", 8, 2, 4)), ("large", ("160x128", 12, 2, 8))):
    m, fr, sl, co = shape
    d = os.path.join(tmp, name)
    sh([FMR, "simulate", "-o", d, "--matrix", m, "--frames", str(fr), "--slices", str(sl), "--coils", str(co),
        "--accel", "4", "--acs", "12", "-q"])
    inputs.append((f"sim {name} {fr}x{sl}x{co}x{m}", os.path.join(d, "subject_000.h5")))
real = os.path.join(a.shared, "ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5")
if os.path.exists(real):
    inputs.append(("real ISMRMRD phantom 1x1x14x192x144", real))
else:
    print(f"skipped real sample: {real} not found")

extra = {"zf": [], "sense": [], "cs": ["--admm-iters", "10"],
         "unrolled": ["--model", os.path.join(MODELS, "demo_unrolled.safetensors"), "--weights",
                      os.path.join(MODELS, "demo_vit_random.safetensors")]}
rows = []
print(f"{'input':<38} {'method':<9} {'P':>2} {'RSS pred MB':>11} {'meas MB':>8} {'ratio':>6} "
      f"{'wall pred s':>11} {'meas s':>7} {'ratio':>6} {'load':>5}")
for label, inp in inputs:
    for meth in a.methods.split(","):
        opts = ["-m", meth] + extra[meth]
        cal = os.path.join(tmp, f"cal_{meth}_{abs(hash(inp))}.json")
        first = True
        for P in (int(x) for x in a.ranks.split(",")):
            pj = os.path.join(tmp, "plan.json")
            sh([FMR, "plan", inp, *opts, "--ranks", str(P), "--json", pj, "-q"]
               + (["--save-calibration", cal] if first else ["--calibration", cal]))
            first = False
            with open(pj) as f:
                plan = json.load(f)
            out = os.path.join(tmp, "out.h5")
            t0 = time.time()
            r = sh([a.mpiexec, "-n", str(P), sys.executable, "-c", WRAP, FMR, "recon", inp, "-o", out, *opts, "-q"])
            wall = time.time() - t0
            rss = max(int(l.split()[1]) for l in r.stderr.splitlines() if l.startswith("FMR_RSS_KB")) * 1024
            load = os.getloadavg()[0]
            pr, pw = plan["peak_rss_per_rank_bytes"], plan["wall_seconds"]
            rows.append(dict(input=label, method=meth, P=P, rss_pred=pr, rss_meas=rss, wall_pred=pw, wall_meas=wall,
                             load=load))
            print(f"{label:<38} {meth:<9} {P:>2} {pr / 2**20:>11.1f} {rss / 2**20:>8.1f} {pr / rss:>6.2f} "
                  f"{pw:>11.2f} {wall:>7.2f} {pw / wall:>6.2f} {load:>5.1f}", flush=True)
ok_m = sum(abs(r["rss_pred"] / r["rss_meas"] - 1) <= 0.25 for r in rows)
ok_t = sum(abs(r["wall_pred"] / r["wall_meas"] - 1) <= 0.30 for r in rows)
print(f"\nwithin 25 % peak RSS: {ok_m}/{len(rows)}; within 30 % wall: {ok_t}/{len(rows)}")
if a.json:
    with open(a.json, "w") as f:
        json.dump(rows, f, indent=1)
