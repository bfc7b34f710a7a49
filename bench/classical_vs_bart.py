#!/usr/bin/env python3
"""fmrecon's classical methods against BART on simulated, real and semi-real data (issue 12).

Cases (each fully sampled, undersampled here at R = 4 and 8; cines with the CMRxRecon ktUniform mask,
single frames with Uniform):
  sim-cine     fmrecon simulate, 10 frames x 8 coils x 96x80                          (sweep)
  semi-A/B     semi-real cines: Sunnybrook preclinical SAX magnitude (DICOM, pydicom), 10 of 20 phases,
               112x96 x real 8-channel coil maps (bart caldir of espirit_brain_8ch full.cfl, resized)
               x smooth random phase + complex Gaussian noise -- semi-real, not real   (A: sweep, B: held out)
  sim-frame    fmrecon simulate, 1 frame x 8 coils x 96x80                              (sweep)
  brain        REAL espirit_brain_8ch full.cfl, 8 coils, 230x180 (single frame)        (sweep)
  cmrx24       REAL CMRxRecon2024 single-coil SAX frame, 512x246 (2x readout oversampling) (held out)
  cmrx25, ismrmrd  REAL undersampled data without a reference: run, timed, no PSNR
Every method: zf, sense, fmrecon cs with its defaults and each --reg configuration at its best weight
of the sweep, `bart pics` with -l1 (wavelets), -R T:3 (spatial TV), -R T:1024 (temporal TV) and
-R L (LLR, -b 8) at their best weight of the same sweep (data scaled to max|A^H y| = 1 for both; BART
with -w 1). Defaults are then chosen as the configuration with the best mean PSNR over the sweep cases
(cine and single frame separately); held-out cases are reported separately. Then whole-process times
at equal iteration counts, OMP_NUM_THREADS=2, interleaved runs (shared machine: noisy).

usage: /usr/bin/python3 bench/classical_vs_bart.py [--fmrecon build/fmrecon] [--out DIR] [--quick]
       [--no-bart] [--skip-timing]
Results are cached in OUT/results.json (delete to recompute; default runs are always redone).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import bart  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--fmrecon", default=os.path.join(os.path.dirname(__file__), "..", "build", "fmrecon"))
ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
ap.add_argument("--out", default="/tmp/fmr-bench-classical")
ap.add_argument("--quick", action="store_true", help="two cases, two weights (a smoke run)")
ap.add_argument("--threads", default="2")
ap.add_argument("--skip-timing", action="store_true")
ap.add_argument("--timing-only", action="store_true")
ap.add_argument("--noref-only", action="store_true", help="only the real samples without a reference")
args = ap.parse_args()
out = args.out
os.makedirs(out, exist_ok=True)
env = dict(os.environ, OMP_NUM_THREADS=args.threads)
FMR = os.path.abspath(args.fmrecon)
SH = os.path.abspath(args.shared)
WEIGHTS_OF = {"cine": [0.003, 0.01] if args.quick else [0.003, 0.01, 0.03],
              "single frame": [0.003, 0.01] if args.quick else [0.001, 0.003, 0.01]}
RES_PATH = os.path.join(out, "results.json")
results = json.load(open(RES_PATH)) if os.path.exists(RES_PATH) else {}


def save():
    with open(RES_PATH + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(RES_PATH + ".tmp", RES_PATH)


def fmr(*a):
    r = subprocess.run([FMR] + [str(x) for x in a], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"fmrecon {' '.join(map(str, a))} failed: {r.stderr}")
    return r


def fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def write_full(path, k):
    """A fastMRI-style cine file: kspace (T, 1, C, H, W); undersample computes the RSS reference."""
    with h5py.File(path, "w") as f:
        f["kspace"] = k[:, None].astype(np.complex64)
        f["reconstruction_rss"] = np.sqrt((np.abs(ifft2c(k)) ** 2).sum(1))[:, None].astype(np.float32)


def resize(a, H, W):
    from scipy.ndimage import zoom
    return zoom(a.real, (H / a.shape[0], W / a.shape[1]), order=1) + 1j * zoom(a.imag, (H / a.shape[0], W / a.shape[1]), order=1)


# ---- cases -------------------------------------------------------------------------------------
def coil_maps(H, W):
    p = os.path.join(out, f"caldir_{H}x{W}.npy")
    if os.path.exists(p):
        return np.load(p)
    k = bart.read(os.path.join(SH, "espirit_brain_8ch", "full"))  # (8, 180, 230, 1) reversed dims
    k = k.reshape(8, 180, 230)
    bart.write(os.path.join(out, "brain_k"), k)
    bart.run("caldir", 24, os.path.join(out, "brain_k"), os.path.join(out, "brain_caldir"))
    m = bart.read(os.path.join(out, "brain_caldir")).reshape(8, 180, 230)
    maps = np.stack([resize(c, H, W) for c in m])
    maps /= np.maximum(np.sqrt((np.abs(maps) ** 2).sum(0)), 1e-3).max()
    np.save(p, maps)
    return maps


def semi_real(name, slice_index, seed):
    path = os.path.join(out, f"{name}_full.h5")
    if os.path.exists(path):
        return path
    import pydicom
    files = sorted(glob.glob(os.path.join(SH, "sunnybrook_preclinical_cine_sax", "E774S5-shortAxis", "*.dcm")))
    by_loc = {}
    for fn in files:
        d = pydicom.dcmread(fn)
        by_loc.setdefault(round(float(d.SliceLocation), 3), []).append((float(d.TriggerTime), d.pixel_array.astype(np.float64)))
    locs = sorted(by_loc)
    phases = [im for _, im in sorted(by_loc[locs[slice_index]], key=lambda t: t[0])][::2]  # 10 of 20 phases
    H, W = 112, 96
    imgs = []
    for im in phases:
        im = im.reshape(128, 2, 128, 2).mean((1, 3))  # 256 -> 128
        imgs.append(im[8:8 + H, 16:16 + W])
    mag = np.array(imgs) / np.max(imgs)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1:1:H * 1j, -1:1:W * 1j]
    c = rng.normal(0, 1, 6)
    phase = np.exp(1j * (c[0] + c[1] * xx + c[2] * yy + 0.5 * c[3] * xx * yy + 0.5 * c[4] * xx ** 2 + 0.5 * c[5] * yy ** 2))
    maps = coil_maps(H, W)
    x = mag * phase[None]
    k = fft2c(maps[None] * x[:, None])
    k = k + 0.01 * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) / np.sqrt(2)
    write_full(path, k)
    return path


def real_brain():
    path = os.path.join(out, "brain_full.h5")
    if not os.path.exists(path):
        k = bart.read(os.path.join(SH, "espirit_brain_8ch", "full")).reshape(8, 180, 230)
        write_full(path, np.transpose(k, (0, 2, 1))[None])  # readout 230 x phase-encode 180
    return path


def real_cmrx24():
    path = os.path.join(out, "cmrx24_full.h5")
    if not os.path.exists(path):
        from scipy.io import loadmat
        k = loadmat(os.path.join(SH, "cmrxrecon2024_cine_sax", "cine_sax.mat"))["kspace_full"]  # (512, 246)
        write_full(path, k[None, None].astype(np.complex64))
    return path


def simulated(name, frames, seed):
    d = os.path.join(out, name)
    if not os.path.exists(os.path.join(d, "subject_000.h5")):
        fmr("simulate", "-o", d, "--frames", frames, "--slices", 1, "--coils", 8, "--matrix", "96x80", "--seed", seed, "-q")
    return os.path.join(d, "subject_000.h5")


CINE, FRAME = "cine", "single frame"
cases = [dict(name="semi-A", src=semi_real("semiA", 9, 1), kind=CINE, sweep=True, label="semi-real"),
         dict(name="brain", src=real_brain(), kind=FRAME, sweep=True, label="real"),
         dict(name="semi-B", src=semi_real("semiB", 12, 2), kind=CINE, sweep=False, label="semi-real"),
         dict(name="cmrx24", src=real_cmrx24(), kind=FRAME, sweep=False, label="real"),
         dict(name="sim-cine", src=simulated("sim_cine", 10, 3), kind=CINE, sweep=True, label="simulated"),
         dict(name="sim-frame", src=simulated("sim_frame", 1, 4), kind=FRAME, sweep=True, label="simulated")]
if args.quick:
    cases = cases[:2]

FMR_CONFIGS = {CINE: {"tv-t": "tv-t:{a}", "tv-t+tv-s": "tv-t:{a},tv-s:{b}", "ft": "ft:{a}", "llr": "llr:{a}:8", "lps": "lps:{a}:{b}"},
               FRAME: {"tv-s": "tv-s:{a}", "wavelet": "wavelet:{a}", "tv-s+wavelet": "tv-s:{a},wavelet:{b}"}}
BART_CONFIGS = {CINE: {"l1-wavelet": ["-l1", "-r", "{a}"], "tv-s": ["-R", "T:3:0:{a}"], "tv-t": ["-R", "T:1024:0:{a}"],
                       "llr": ["-R", "L:3:3:{a}", "-b", "8"]},
                FRAME: {"l1-wavelet": ["-l1", "-r", "{a}"], "tv-s": ["-R", "T:3:0:{a}"]}}
ITERS = 30  # ADMM iterations of both tools (BART: -i 30, its ADMM CG default -C 10 = fmrecon's)


def psnr(ref, rec):
    return json.loads(fmr("eval", "--ref", ref, "--rec", rec, "--json").stdout)["volumes"][0]["psnr"]


def bart_inputs(us, key):
    """k-space scaled to max|A^H y| = 1 with BART's own maps (as fmrecon scales its data)."""
    base = os.path.join(out, key)
    if not os.path.exists(base + "s.cfl"):
        with h5py.File(us, "r") as f:
            k = f["kspace"][:, 0]  # T, C, H, W
        T, C, H, W = k.shape
        k.astype(np.complex64).tofile(base + "k.cfl")
        with open(base + "k.hdr", "w") as fh:
            fh.write("# Dimensions\n" + " ".join(map(str, [W, H, 1, C, 1, 1, 1, 1, 1, 1, T])) + "\n")
        bart.run("avg", 1024, base + "k", base + "a")
        bart.run("ecalib", "-m1", base + "a", base + "s")
        s = bart.read(base + "s").reshape(C, H, W)
        aty = (np.conj(s)[None] * ifft2c(k)).sum(1)
        sc = float(np.abs(aty).max())
        (k / sc).astype(np.complex64).tofile(base + "k.cfl")
        with open(base + "scale.txt", "w") as fh:
            fh.write(str(sc))
    return base, float(open(base + "scale.txt").read())


def run_bart(us, key, flags, name):
    base, sc = bart_inputs(us, key)
    with h5py.File(us, "r") as f:
        T, _, C, H, W = f["kspace"].shape
    t0 = time.perf_counter()
    subprocess.run(["bart", "pics", "-w", "1", "-i", str(ITERS)] + flags + [base + "k", base + "s", base + "x"], env=env,
                   capture_output=True, check=True)
    dt = time.perf_counter() - t0
    x = bart.read(base + "x").reshape(T, H, W) * sc
    p = os.path.join(out, f"{name}.h5")
    with h5py.File(p, "w") as fh:
        fh["reconstruction"] = np.abs(x)[:, None].astype(np.float32)
    return p, dt


def cached(key, fn):
    if key not in results:
        results[key] = fn()
        save()
    return results[key]


# ---- quality -----------------------------------------------------------------------------------
table = {}
if not args.timing_only and not args.noref_only:
    for c in cases:
        for R in (4, 8):
            W = h5py.File(c["src"], "r")["kspace"].shape[-1]
            acs = 24 if W >= 160 else 12
            us = os.path.join(out, f"{c['name']}_r{R}.h5")
            if not os.path.exists(us):
                fmr("undersample", c["src"], "-o", us, "--mask", "ktuniform" if c["kind"] == CINE else "uniform",
                    "--accel", R, "--acs", acs, "-q")
            key = f"{c['name']}/R{R}"
            row = {}
            for m in ("zf", "sense"):
                row[m] = cached(f"{key}/{m}", lambda: (fmr("recon", us, "-o", f"{out}/o.h5", "-m", m, "-q"),
                                                        psnr(us, f"{out}/o.h5"))[1])
            fmr("recon", us, "-o", f"{out}/o.h5", "-m", "cs", "-q")
            with h5py.File(f"{out}/o.h5", "r") as f:
                dflt = json.loads(f.attrs["parameters"])["method_parameters"]["reg"]
            row["cs default"] = (psnr(us, f"{out}/o.h5"), ",".join(f"{t['term']}:{t.get('lambda', '')}" for t in dflt))
            for cname, tmpl in FMR_CONFIGS[c["kind"]].items():
                sweep = {}
                for a in WEIGHTS_OF[c["kind"]]:
                    reg = tmpl.format(a=a, b=a / 5)
                    sweep[a] = cached(f"{key}/fmr/{reg}", lambda: (
                        fmr("recon", us, "-o", f"{out}/o.h5", "-m", "cs", "--reg", reg, "-q"), psnr(us, f"{out}/o.h5"))[1])
                row[f"cs {cname}"] = sweep
            for cname, flags in BART_CONFIGS[c["kind"]].items():
                sweep = {}
                for a in WEIGHTS_OF[c["kind"]]:
                    fl = [f.format(a=a) for f in flags]
                    sweep[a] = cached(f"{key}/bart/{' '.join(fl)}", lambda: psnr(us, run_bart(us, key.replace("/", "_"), fl, "b")[0]))
                row[f"bart {cname}"] = sweep
            table[key] = row
            print(f"done {key}", file=sys.stderr, flush=True)

    def best(sw):
        a = max(sw, key=lambda k: sw[k])
        return sw[a], a

    for kind in (CINE, FRAME):
        print(f"\n== {kind}: PSNR dB (fastMRI rules); regularised rows at their best weight of the sweep "
              + "/".join(map(str, WEIGHTS_OF[kind])) + f" (second weight of two-term configs = first / 5); {ITERS} iterations")
        ks = [k for k in table if next(c for c in cases if c["name"] == k.split("/")[0])["kind"] == kind]
        if not ks:
            continue
        methods = list(table[ks[0]].keys())
        print(f"{'method':<22}" + "".join(f"{k:>20}" for k in ks))
        for m in methods:
            cells = []
            for k in ks:
                v = table[k][m]
                if isinstance(v, dict):
                    q, a = best(v)
                    cells.append(f"{q:7.2f} ({a:g})")
                elif isinstance(v, (list, tuple)):
                    cells.append(f"{v[0]:7.2f}")
                else:
                    cells.append(f"{v:7.2f}")
            print(f"{m:<22}" + "".join(f"{c:>20}" for c in cells))
        print("held out: " + ", ".join(c["name"] for c in cases if c["kind"] == kind and not c["sweep"])
              + "; default terms: " + table[ks[0]]["cs default"][1])
        # the default candidate: best mean over the sweep cases (cine / single frame separately)
        sweep_keys = [k for k in ks if next(c for c in cases if c["name"] == k.split("/")[0])["sweep"]]
        cand = {}
        for m in methods:
            if not m.startswith("cs ") or m == "cs default":
                continue
            for a in WEIGHTS_OF[kind]:
                cand[(m, a)] = statistics.mean(table[k][m][a] for k in sweep_keys)
        (m, a), q = max(cand.items(), key=lambda t: t[1])
        print(f"best mean over the sweep cases: {m} at {a} ({q:.2f} dB)")
        best_bart = {k: max(best(v)[0] for mm, v in table[k].items() if mm.startswith("bart")) for k in ks}
        print("default cs - BART best-of-sweep: " + "  ".join(f"{k}: {table[k]['cs default'][0] - best_bart[k]:+.2f}" for k in ks))

# ---- whole-process times at equal iterations ---------------------------------------------------
if not args.skip_timing and not args.noref_only:
    print(f"\n== speed: whole processes (maps included), {ITERS} ADMM iterations x 10 CG each, OMP_NUM_THREADS="
          f"{args.threads}, median of 3 interleaved runs (shared 2-core machine: noisy)")
    tcases = [("semi-A", "semiA", 8, CINE, "tv-t:0.01", ["-R", "T:1024:0:0.01"]),
              ("brain", "brain", 8, FRAME, "tv-s:0.003", ["-R", "T:3:0:0.003"])]
    for name, _, R, kind, reg, flags in tcases:
        us = os.path.join(out, f"{name}_r{R}.h5")
        if not os.path.exists(us):
            continue
        key = f"time_{name}"
        base = os.path.join(out, key)
        with h5py.File(us, "r") as f:
            k = f["kspace"][:, 0]
        T, C, H, W = k.shape
        k.astype(np.complex64).tofile(base + "k.cfl")
        with open(base + "k.hdr", "w") as fh:
            fh.write("# Dimensions\n" + " ".join(map(str, [W, H, 1, C, 1, 1, 1, 1, 1, 1, T])) + "\n")

        def t_bart():
            t0 = time.perf_counter()
            for cmd in (["avg", "1024", base + "k", base + "a"], ["ecalib", "-m1", base + "a", base + "s"],
                        ["pics", "-i", str(ITERS)] + flags + [base + "k", base + "s", base + "x"]):
                subprocess.run(["bart"] + cmd, env=env, capture_output=True, check=True)
            return time.perf_counter() - t0

        def t_fmr():
            t0 = time.perf_counter()
            fmr("recon", us, "-o", f"{out}/t.h5", "-m", "cs", "--reg", reg, "--admm-iters", ITERS, "-q")
            return time.perf_counter() - t0

        tb, tf = [], []
        for _ in range(3):
            tb.append(t_bart())
            tf.append(t_fmr())
        mb, mf = statistics.median(tb), statistics.median(tf)
        print(f"{name} R={R} ({kind}, {T}x{H}x{W}, {C} coils) bart pics {' '.join(flags)}: {mb:.2f} s   "
              f"fmrecon cs --reg {reg}: {mf:.2f} s   bart/fmrecon {mb / mf:.2f}x   (runs: bart "
              + "/".join(f"{t:.2f}" for t in tb) + ", fmrecon " + "/".join(f"{t:.2f}" for t in tf) + ")")

# ---- real samples without a reference: they run; no PSNR is possible -------------------------
print("\n== real undersampled samples without a fully sampled reference: whole-process seconds (no PSNR possible)")


def cmrx25():
    path = os.path.join(out, "cmrx25.h5")
    if not os.path.exists(path):
        d = h5py.File(os.path.join(SH, "cmrxrecon2025_cine_sax_undersampled", "underkslice.mat"), "r")["underkspace"][()]
        k = (d["real"] + 1j * d["imag"]).transpose(2, 0, 1)  # (coil, kx 448, ky 162)
        mask = (np.abs(k).sum((0, 1)) > 0).astype(np.uint8)
        with h5py.File(path, "w") as f:
            f["kspace"] = k[None, None].astype(np.complex64)
            f["mask"] = mask
    return path


def ismrmrd():
    path = os.path.join(out, "ismrmrd.h5")
    if not os.path.exists(path):
        fmr("undersample", os.path.join(SH, "ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5"), "-o", path,
            "--mask", "keep", "-q")
    return path


for name, src in (("cmrx25 (10 coils, 448x162, 32 of 162 lines)", cmrx25()), ("ismrmrd phantom (14 coils, R 3)", ismrmrd())):
    cells = []
    for m, extra in (("zf", ()), ("sense", ()), ("cs default", ())):
        t0 = time.perf_counter()
        fmr("recon", src, "-o", f"{out}/nr.h5", "-m", m.split()[0], "-q", *extra)
        cells.append(f"{m} {time.perf_counter() - t0:.2f} s")
    key = "noref_" + name.split()[0]
    base, sc = bart_inputs(src, key)
    with h5py.File(src, "r") as f:
        T, _, C, H, W = f["kspace"].shape
    t0 = time.perf_counter()
    flags = ["-l1", "-r", "0.003"] if T == 1 else ["-R", "T:1024:0:0.01"]
    subprocess.run(["bart", "pics", "-w", "1", "-i", str(ITERS)] + flags + [base + "k", base + "s", base + "x"], env=env,
                   capture_output=True, check=True)
    cells.append(f"bart pics {' '.join(flags)} {time.perf_counter() - t0:.2f} s (maps apart)")
    print(f"{name}: " + ", ".join(cells))
print(f"(outputs and results.json in {out})")
