#!/usr/bin/python3
"""Export a train_unrolled.py checkpoint as an fmrecon bundle (docs/model.md).

    export_bundle.py CKPT.pt -o BUNDLE.safetensors [--training TEXT] [--note TEXT]

The bundle holds every tensor as F32: `lambda` (dc = cg) or `eta` (dc = soft) as the actual values
(the trainer learns their logarithms), and `cascades.{t}.decoder.*` (only cascade 0 when shared), with
the `__metadata__` of docs/model.md: fmrecon_bundle, denoiser, encoder, encoder_sha256 (of the encoder
checkpoint the run used, recorded in CKPT), taps, grid, feature_size, cascades, shared, dc, cg_iters,
input, normalisation, training (generated from the run unless --training is given; --note is
appended). The encoder checkpoint itself is not needed. Written atomically.
U-Net baseline runs (--denoiser unet) give `cascades.{t}.unet.*` and the metadata fmrecon_bundle,
denoiser = unet, chans, pools, cascades, shared, dc, cg_iters (cg), normalisation, training.

Importable: export(ckpt_path_or_dict, out_path, training=None, note=None) -> metadata.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmrecon_ref import unrolled  # noqa: E402


def export(ckpt, out, training=None, note=None):
    import train_unrolled

    ck = train_unrolled.torch_load(ckpt) if isinstance(ckpt, str) else ckpt
    if ck.get("format") != train_unrolled.CKPT_FORMAT:
        raise ValueError(f"{ckpt if isinstance(ckpt, str) else 'checkpoint'}: not a train_unrolled checkpoint")
    cfg = unrolled.UnrolledConfig(**ck["config"])
    model = unrolled.UnrolledNet(cfg)
    model.load_state_dict(ck["model"])
    text = training if training is not None else train_unrolled.training_text(ck)
    if note:
        text += "; " + note
    return unrolled.save_bundle(out, model, {"encoder_sha256": ck["encoder_sha256"], "training": text})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--training", help="replace the generated 'training' metadata text")
    ap.add_argument("--note", help="append to the 'training' text")
    a = ap.parse_args(argv)
    try:
        meta = export(a.checkpoint, a.output, a.training, a.note)
    except (unrolled.BundleError, ValueError, OSError, KeyError) as e:
        print(f"export_bundle: {e}", file=sys.stderr)
        return 1
    if meta["denoiser"] == "unet":
        print(f"{a.output}: U-Net baseline, {meta['cascades']} cascades, chans {meta['chans']}, pools {meta['pools']}, "
              f"dc {meta['dc']}")
    else:
        print(f"{a.output}: {meta['cascades']} cascades, F {meta['feature_size']}, grid {meta['grid']}, dc {meta['dc']}, "
              f"encoder {meta['encoder']} ({meta['encoder_sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
