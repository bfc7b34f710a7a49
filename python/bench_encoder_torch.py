#!/usr/bin/python3
"""The PyTorch reference's speed for `fmrecon bench encoder`: prints seconds per image (best of
--repeats timed runs after one warm-up, the statistic the C side reports) on stdout."""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import encoders  # noqa: E402
from encoder_reference import default_input_size, load_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layers", type=int, default=6, help="deepest block computed")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    enc = encoders.build(a.family, load_weights(a.weights), dtype=torch.float32)
    size = default_input_size(enc.spec)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((a.batch, 3, size, size)).astype(np.float32))
    best = float("inf")
    with torch.inference_mode():
        enc.forward(x, [a.layers])
        for _ in range(max(1, a.repeats)):
            t0 = time.perf_counter()
            enc.forward(x, [a.layers])
            best = min(best, time.perf_counter() - t0)
    print(f"{best / a.batch:.6f}")


if __name__ == "__main__":
    main()
