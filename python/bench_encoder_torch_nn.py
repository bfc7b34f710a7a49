#!/usr/bin/python3
"""An independent PyTorch figure for `fmrecon bench encoder`: a ViT of the same shapes built only
from torch.nn modules (Conv2d patch embedding, nn.LayerNorm, nn.TransformerEncoderLayer with
norm_first=True, batch_first=True, eval mode, dropout 0), random weights, float32. Prints seconds
per image (best of --repeats timed runs after one warm-up) on stdout.

This is not the project's reference implementation (python/fmrecon_ref): it is what a user of
stock PyTorch would run, including PyTorch's own fused inference path for
TransformerEncoderLayer where it applies (activation "gelu")."""
import argparse
import sys
import time

import torch


def build(width, heads, mlp, patch, blocks, tokens, act):
    class ViT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = torch.nn.Conv2d(3, width, patch, stride=patch, bias=False)
            self.cls = torch.nn.Parameter(torch.randn(1, 1, width) * 0.02)
            self.pos = torch.nn.Parameter(torch.randn(1, tokens, width) * 0.02)
            self.pre = torch.nn.LayerNorm(width)
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(width, heads, mlp, dropout=0.0, activation=act,
                                                 batch_first=True, norm_first=True)
                for _ in range(blocks))

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
            t = self.pre(t)
            for b in self.blocks:
                t = b(t)
            return t
    return ViT().eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--mlp", type=int, default=3072)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--activation", default="gelu", choices=["gelu", "quick_gelu"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    act = "gelu" if a.activation == "gelu" else (lambda x: x * torch.sigmoid(1.702 * x))
    g = a.size // a.patch
    net = build(a.width, a.heads, a.mlp, a.patch, a.blocks, 1 + g * g, act)
    x = torch.randn(a.batch, 3, a.size, a.size)
    best = float("inf")
    with torch.inference_mode():
        net(x)
        for _ in range(max(1, a.repeats)):
            t0 = time.perf_counter()
            net(x)
            best = min(best, time.perf_counter() - t0)
    print(f"{best / a.batch:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
