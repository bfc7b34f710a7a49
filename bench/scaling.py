#!/usr/bin/env python3
"""Scaling study driver (docs/scaling.md): runs `mpirun -np P fmrecon bench scaling` for strong
scaling (fixed dataset, P = 1, 2, 4) and weak scaling (items per group fixed), with one rank per
item (K = 1) and coil groups (K = 2); prints speed-up, efficiency, per-phase times and peak
memory per rank; fits the cost model and predicts 1-64 nodes. Writes everything as JSON.

usage: /usr/bin/python3 bench/scaling.py [--fmrecon build/fmrecon] [--method sense] [--ranks 1,2,4]
          [--frames 12 --slices 2 --matrix 192x160 --coils 8 --cg-iters 50] [--json scaling.json]
          [--cores-per-node 32 --latency-us 2 --bandwidth-gbs 10]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--fmrecon", default=os.path.join(HERE, "..", "build", "fmrecon"))
ap.add_argument("--mpiexec", default="mpiexec")
ap.add_argument("--method", default="sense")
ap.add_argument("--ranks", default="1,2,4")
ap.add_argument("--frames", type=int, default=12)
ap.add_argument("--slices", type=int, default=2)
ap.add_argument("--matrix", default="192x160")
ap.add_argument("--coils", type=int, default=8)
ap.add_argument("--cg-iters", type=int, default=50)
ap.add_argument("--extra", default="", help="extra bench options, e.g. '--model M --weights W'")
ap.add_argument("--json", default=None)
ap.add_argument("--cores-per-node", type=int, default=32)
ap.add_argument("--latency-us", type=float, default=2.0, help="network latency per message (cost model)")
ap.add_argument("--bandwidth-gbs", type=float, default=10.0, help="network bandwidth per node (cost model)")
args = ap.parse_args()
FMR = os.path.abspath(args.fmrecon)
tmp = tempfile.mkdtemp(prefix="fmr-scaling-")
env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def point(P, K, mode):
    out = os.path.join(tmp, f"{mode}_P{P}_K{K}.json")
    cmd = [args.mpiexec, "-n", str(P), FMR, "bench", "scaling", "--method", args.method, "--coil-ranks", str(K),
           "--mode", mode, "--frames", str(args.frames), "--slices", str(args.slices), "--matrix", args.matrix,
           "--coils", str(args.coils), "--cg-iters", str(args.cg_iters), "--dir", tmp, "--json", out] + args.extra.split()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    with open(out) as f:
        return json.load(f)


ranks = [int(x) for x in args.ranks.split(",")]
runs = []
for mode in ("strong", "weak"):
    for K in (1, 2):
        for P in ranks:
            if P % K or P < K:
                continue
            runs.append(point(P, K, mode))

phases = ("read", "maps", "dc", "fft", "comm", "encoder", "decoder", "write")


def base_of(mode):
    return next(r for r in runs if r["mode"] == mode and r["P"] == 1 and r["K"] == 1)


print(f"method {args.method}, {args.frames} frames x {args.slices} slices x {args.coils} coils x {args.matrix}, "
      f"CG {args.cg_iters}, 1 thread per rank")
for mode in ("strong", "weak"):
    b = base_of(mode)
    print(f"\n== {mode} scaling ({'fixed dataset' if mode == 'strong' else 'items per group fixed'})")
    print(f"{'P':>3} {'K':>3} {'items':>6} {'wall s':>8} {'speed-up':>9} {'effic.':>7} {'peak MB/rank':>13}  "
          + " ".join(f"{p:>8}" for p in phases))
    for r in runs:
        if r["mode"] != mode:
            continue
        if mode == "strong":
            su = b["wall_s"] / r["wall_s"]
            eff = su / r["P"]
        else:  # work grows with the groups: efficiency = T1 / TP at constant work per group
            groups = r["P"] // r["K"]
            su = b["wall_s"] * groups / r["wall_s"]
            eff = b["wall_s"] / r["wall_s"] / r["K"]
        r["speedup"], r["efficiency"] = su, eff
        mean = {p: sum(x[p] for x in r["ranks"]) / len(r["ranks"]) for p in phases}
        peak = max(x["peak_rss_mb"] for x in r["ranks"])
        print(f"{r['P']:>3} {r['K']:>3} {r['items']:>6} {r['wall_s']:>8.2f} {su:>9.2f} {100 * eff:>6.0f}% {peak:>13.0f}  "
              + " ".join(f"{mean[p]:>8.3f}" for p in phases))

# ---- cost model ----------------------------------------------------------------------------
# Per item on one rank: t_item = compute time / items of the P = 1 strong run (maps are per slice,
# amortised over the slice's frames). With K ranks per item the compute divides by K, and every
# CG iteration adds one allreduce of the h*w complex image over the K ranks (ring: 2 (K-1)/K
# bytes/beta + 2 log2(K) alpha). Items are dealt to P/K groups in blocks: T = ceil(items/(P/K)) *
# t_item(K) + read/write. Measured traffic per item from the K = 2 run checks the message sizes.
b = base_of("strong")
items = b["items"]
t_item = b["ranks"][0]["compute"] / items
h, w = (int(x) for x in args.matrix.split("x"))
img_bytes = h * w * 8
k2 = next((r for r in runs if r["mode"] == "strong" and r["K"] == 2), None)
calls_per_item = (k2["ranks"][0]["comm_calls"] / (items / (k2["P"] // 2))) if k2 else 2 * (args.cg_iters + 1)
alpha, beta = args.latency_us * 1e-6, args.bandwidth_gbs * 1e9


def predict(nodes, K, cohort_items):
    P = nodes * args.cores_per_node
    groups = P // K
    comm = 0.0 if K == 1 else calls_per_item * (2 * math.log2(K) * alpha + 2 * (K - 1) / K * img_bytes / beta)
    per_item = t_item / K + comm
    T = math.ceil(cohort_items / groups) * per_item
    T1 = cohort_items * t_item
    return T, T1 / (T * P)


model = {"t_item_s": t_item, "image_bytes": img_bytes, "allreduce_calls_per_item": calls_per_item,
         "latency_s": alpha, "bandwidth_Bps": beta, "cores_per_node": args.cores_per_node, "predictions": []}
cohort = 200 * args.frames * args.slices  # e.g. 200 subjects of this size
print(f"\n== cost model: t_item = {1e3 * t_item:.1f} ms on one core, {calls_per_item:.0f} allreduces of "
      f"{img_bytes / 1024:.0f} KiB per item with coil groups; {args.cores_per_node} cores/node, "
      f"alpha {args.latency_us} us, beta {args.bandwidth_gbs} GB/s")
print(f"predicted for a cohort of {cohort} items (200 subjects):")
print(f"{'nodes':>6} {'K=1 time s':>11} {'eff':>5} {'K=4 time s':>11} {'eff':>5}")
for nodes in (1, 2, 4, 8, 16, 32, 64):
    t1, e1 = predict(nodes, 1, cohort)
    t4, e4 = predict(nodes, 4, cohort)
    print(f"{nodes:>6} {t1:>11.1f} {100 * e1:>4.0f}% {t4:>11.1f} {100 * e4:>4.0f}%")
    model["predictions"].append(dict(nodes=nodes, K1_s=t1, K1_eff=e1, K4_s=t4, K4_eff=e4))
if args.json:
    with open(args.json, "w") as f:
        json.dump({"runs": runs, "model": model}, f, indent=1)
