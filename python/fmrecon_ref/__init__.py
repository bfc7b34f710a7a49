"""Python references for fmrecon's tests, benchmarks and training scripts (not part of the C build).

safetensors_io -- a minimal safetensors reader/writer on numpy;
encoders       -- PyTorch forward passes of the frozen ViT encoders (CLIP, DINOv2, BiomedCLIP)
                  written from the published modelling code's behaviour, in float32 or float64;
mri            -- torch complex SENSE operators, centred FFTs, fixed-iteration CG, bilinear resize;
unrolled       -- the unrolled network of docs/model.md (UNETR decoder, frozen encoder, DC), bundles.

Run with Debian's /usr/bin/python3 (torch, numpy, h5py)."""

__all__ = ["safetensors_io", "encoders", "mri", "unrolled"]
