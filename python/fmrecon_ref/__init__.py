"""Python references for fmrecon's tests, benchmarks and training scripts (not part of the C build).

safetensors_io -- a minimal safetensors reader/writer on numpy;
encoders       -- PyTorch forward passes of the frozen ViT encoders (CLIP, DINOv2, BiomedCLIP)
                  written from the published modelling code's behaviour, in float32 or float64.

Run with Debian's /usr/bin/python3 (torch, numpy, h5py)."""

__all__ = ["safetensors_io", "encoders"]
