#!/usr/bin/python3
"""Plots and a Markdown summary of SLURM results.

usage: slurm/report.py [--scaling DIR] [--cohort OUT] -o REPORT_DIR
  --scaling DIR  the JSON files slurm/scaling.sbatch collected (fmrecon bench scaling --json)
  --cohort OUT   a cohort output folder (OUT/summary.json of fmrecon cohort)
  --model [--cores C --latency-us A --bandwidth-gbs B]  strong-scaling efficiency next to the
                 cost model's prediction, with communication bytes and time per node
Writes REPORT_DIR/report.md and PNGs: scaling_speedup.png, scaling_efficiency.png,
scaling_phases.png, cohort_metrics.png, cohort_times.png (Debian's python3-matplotlib).
"""
import argparse
import glob
import math
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PHASES = ["read", "maps", "dc", "comm", "encoder", "decoder", "write"]


def load_scaling(d):
    pts = []
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(f) as fh:
            j = json.load(fh)
        if "ranks" not in j or "wall_s" not in j:
            continue
        s = j.get("slurm", {})
        j["nodes"] = s.get("nodes", 1)
        pts.append(j)
    return pts


def scaling_report(pts, out, md):
    groups = {}
    for p in pts:
        groups.setdefault((p["mode"], p["K"]), []).append(p)
    md.append("## Scaling\n")
    md.append("| mode | K | nodes | ranks | wall s | speed-up | efficiency | peak RSS MB/rank |")
    md.append("|---|---|---|---|---|---|---|---|")
    fig1, ax1 = plt.subplots(figsize=(5, 4))
    fig2, ax2 = plt.subplots(figsize=(5, 4))
    for (mode, K), g in sorted(groups.items()):
        g.sort(key=lambda p: (p["P"], p["nodes"]))
        base = g[0]
        P = [p["P"] for p in g]
        # strong: speed-up = T(P0) / T(P); weak: work grows with P, so scale by it
        sp = [base["wall_s"] / p["wall_s"] * (p["P"] / base["P"] if mode == "weak" else 1) for p in g]
        eff = [s / (p / base["P"]) for s, p in zip(sp, P)]
        for p, s, e in zip(g, sp, eff):
            rss = max(r["peak_rss_mb"] for r in p["ranks"])
            md.append(f"| {mode} | {K} | {p['nodes']} | {p['P']} | {p['wall_s']:.3f} | {s:.2f} | {e:.0%} | {rss:.0f} |")
        ax1.plot(P, sp, "o-", label=f"{mode} K={K}")
        ax2.plot(P, eff, "o-", label=f"{mode} K={K}")
    top = max(p["P"] for p in pts)
    ax1.plot([1, top], [1, top], "k:", label="ideal")
    for ax, fig, name, yl in ((ax1, fig1, "scaling_speedup.png", "speed-up"),
                              (ax2, fig2, "scaling_efficiency.png", "parallel efficiency")):
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel(yl)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=120)
        plt.close(fig)
    # per-phase time (mean over ranks), one bar per point
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(pts) + 2), 4))
    pts = sorted(pts, key=lambda p: (p["mode"], p["K"], p["P"]))
    labels = [f"{p['mode'][0]} K{p['K']} P{p['P']}" for p in pts]
    bottom = [0.0] * len(pts)
    for ph in PHASES:
        v = [sum(r.get(ph, 0) for r in p["ranks"]) / len(p["ranks"]) for p in pts]
        if any(v):
            ax.bar(labels, v, bottom=bottom, label=ph)
            bottom = [b + x for b, x in zip(bottom, v)]
    ax.set_ylabel("seconds (mean over ranks)")
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "scaling_phases.png"), dpi=120)
    plt.close(fig)
    md.append("\n![speed-up](scaling_speedup.png) ![efficiency](scaling_efficiency.png) "
              "![phases](scaling_phases.png)\n")


def model_table(pts, cores, alpha, beta, md):
    """Strong scaling per (K) series against the cost model of docs/scaling.md, printed and added to
    the report: T(P, K) = ceil(items / (P/K)) * (t_item / K * max(1, P / cores) + n_ar * (2 log2(K)
    alpha + 2 (K-1)/K * 8hw / beta)), t_item from the P = 1 point (compute / items), n_ar the
    measured allreduce calls per item; `cores` = physical cores shared by all nodes (ranks beyond
    it time-share). Communication bytes and time are summed per host (bench scaling's "host")."""
    base = next((p for p in pts if p["mode"] == "strong" and p["P"] == 1 and p["K"] == 1), None)
    if base is None:
        sys.exit("report: --model needs the strong P = 1, K = 1 point")
    t_item = base["ranks"][0]["compute"] / base["items"]
    lines = [f"strong scaling vs cost model: t_item {1e3 * t_item:.1f} ms, alpha {alpha * 1e6:.0f} us, "
             f"beta {beta / 1e9:.2f} GB/s, {cores} cores shared by all nodes",
             f"{'nodes':>5} {'P':>3} {'K':>3} {'wall s':>8} {'efficiency':>10} {'predicted':>9}  "
             "comm per node (MB, s)"]
    rows = []
    for p in sorted(pts, key=lambda p: (p["K"], p["P"], p["nodes"])):
        if p["mode"] != "strong":
            continue
        P, K = p["P"], p["K"]
        hw = p["h"] * p["w"]
        items_per_group = math.ceil(p["items"] / (P // K))
        n_ar = (p["ranks"][0]["comm_calls"] / items_per_group) if K > 1 else 0
        comm = n_ar * (2 * math.log2(K) * alpha + 2 * (K - 1) / K * 8 * hw / beta) if K > 1 else 0.0
        pred = items_per_group * (t_item / K * max(1.0, P / cores) + comm)
        eff = base["wall_s"] / (P * p["wall_s"])
        eff_pred = base["wall_s"] / (P * pred)
        per = {}
        for r in p["ranks"]:
            h = r.get("host", "?")
            b, t = per.get(h, (0.0, 0.0))
            per[h] = (b + r["comm_bytes"], max(t, r["comm"]))
        pn = " ".join(f"{h}:{b / 1e6:.2f}/{t:.3f}" for h, (b, t) in sorted(per.items()))
        lines.append(f"{p['nodes']:>5} {P:>3} {K:>3} {p['wall_s']:>8.3f} {100 * eff:>9.0f}% {100 * eff_pred:>8.0f}%  {pn}")
        rows.append(f"| {p['nodes']} | {P} | {K} | {p['wall_s']:.3f} | {eff:.0%} | {eff_pred:.0%} | {pn} |")
    print("\n".join(lines))
    md.append("## Strong scaling against the cost model\n")
    md.append(lines[0] + "\n")
    md.append("| nodes | P | K | wall s | efficiency | predicted | comm per node (MB/s) |")
    md.append("|---|---|---|---|---|---|---|")
    md.extend(rows)
    md.append("")


def cohort_report(d, out, md):
    with open(os.path.join(d, "summary.json")) as f:
        s = json.load(f)
    subs = s.get("subjects", [])
    md.append("## Cohort\n")
    md.append(f"{s.get('name', '')}: {s['total']} subjects, {s['done']} done, {s['failed']} failed, "
              f"{s['pending']} pending.\n")
    done = [x for x in subs if x.get("status") == "done"]
    metrics = [k for k in ("psnr", "ssim", "nmse") if any(k in x for x in done)]
    if metrics:
        md.append("| metric | mean | min | max |")
        md.append("|---|---|---|---|")
        fig, axs = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
        for ax, k in zip(axs[0], metrics):
            v = [x[k] for x in done if k in x]
            md.append(f"| {k} | {sum(v) / len(v):.4g} | {min(v):.4g} | {max(v):.4g} |")
            ax.hist(v, bins=min(20, max(3, len(v))))
            ax.set_xlabel(k.upper())
            ax.set_ylabel("subjects")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "cohort_metrics.png"), dpi=120)
        plt.close(fig)
        md.append("\n![metrics](cohort_metrics.png)\n")
    times = [(x["id"], x.get("recon_s", 0), x.get("total_s", 0)) for x in done if "total_s" in x]
    if times:
        fig, ax = plt.subplots(figsize=(max(5, 0.3 * len(times) + 2), 3.5))
        ax.bar([t[0] for t in times], [t[2] for t in times], label="total")
        ax.bar([t[0] for t in times], [t[1] for t in times], label="recon")
        ax.set_ylabel("seconds")
        ax.legend()
        plt.setp(ax.get_xticklabels(), rotation=90, fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "cohort_times.png"), dpi=120)
        plt.close(fig)
        md.append(f"Total time {sum(t[2] for t in times):.1f} s over {len(times)} subjects "
                  f"(recon {sum(t[1] for t in times):.1f} s).\n\n![times](cohort_times.png)\n")
    bad = [x["id"] for x in subs if x.get("status") != "done"]
    if bad:
        md.append("Not done: " + ", ".join(bad) + "\n")


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--scaling")
    ap.add_argument("--cohort")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--model", action="store_true",
                    help="print strong-scaling efficiency next to the cost model's prediction")
    ap.add_argument("--cores", type=int, default=0, help="physical cores the ranks share (default: one per rank)")
    ap.add_argument("--latency-us", type=float, default=2.0, help="network latency (cost model)")
    ap.add_argument("--bandwidth-gbs", type=float, default=10.0, help="network bandwidth GB/s (cost model)")
    a = ap.parse_args()
    if not a.scaling and not a.cohort:
        sys.exit("report: give --scaling and/or --cohort")
    os.makedirs(a.out, exist_ok=True)
    md = ["# fmrecon SLURM report\n"]
    if a.scaling:
        pts = load_scaling(a.scaling)
        if not pts:
            sys.exit(f"report: no bench scaling JSON in {a.scaling}")
        scaling_report(pts, a.out, md)
        if a.model:
            model_table(pts, a.cores or max(p["P"] for p in pts), a.latency_us * 1e-6, a.bandwidth_gbs * 1e9, md)
    if a.cohort:
        cohort_report(a.cohort, a.out, md)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(os.path.join(a.out, "report.md"))


if __name__ == "__main__":
    main()
