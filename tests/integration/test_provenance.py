"""Provenance (docs/formats.md, "Provenance"): every output's `parameters` JSON holds the options as
used, defaults included, the SHA-256 and size of every file read (checked with hashlib and os), the
library versions (checked against pkg-config and the installed oneDNN header, independent of fmrecon)
and the hosts and ranks; coil-map files carry their source and ESPIRiT settings; `fmrecon checkpoint`
prints a bundle's metadata as the safetensors header (parsed here with json) holds it."""
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

import h5py

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import TmpCase, run  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")
BUNDLE = os.path.abspath(os.path.join(MODELS, "demo_unrolled.safetensors"))
ENCODER = os.path.abspath(os.path.join(MODELS, "demo_vit_random.safetensors"))

# the defaults `fmrecon recon --help` / `fmrecon maps --help` document
RECON_DEFAULTS = {"lambda": 0.01, "cg_iters": 50, "cg_rtol": 1e-6, "lambda_t": 0.01, "lambda_s": 0.005,
                  "rho": "auto", "admm_iters": 30}
ESPIRIT_DEFAULTS = {"kernel": 6, "cal": 24, "threshold": 0.001, "crop": 0.8}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def params(path, dset=None):
    with h5py.File(path, "r") as f:
        a = (f[dset] if dset else f).attrs
        return json.loads(a["parameters"]), dict(a)


def pkg_version(name):
    return subprocess.run(["pkg-config", "--modversion", name], capture_output=True, text=True,
                          check=True).stdout.strip()


def onednn_version():
    with open("/usr/include/oneapi/dnnl/dnnl_version.h") as f:
        t = f.read()
    return ".".join(re.search(rf"#define DNNL_VERSION_{k}\s+(\d+)", t).group(1) for k in ("MAJOR", "MINOR", "PATCH"))


class Provenance(TmpCase):
    @classmethod
    def setUpClass(cls):
        cls._d = tempfile.TemporaryDirectory(prefix="fmr-prov-")
        cls.sim = os.path.join(cls._d.name, "sim")
        run("simulate", "-o", cls.sim, "--frames", 2, "--slices", 1, "--coils", 4, "--matrix", "64x48",
            "--accel", 4, "--acs", 8, "--seed", 3, "-q")
        cls.input = os.path.join(cls.sim, "subject_000.h5")
        # fully sampled, for undersample (which refuses to undersample an undersampled file)
        cls.full = os.path.join(cls._d.name, "full")
        run("simulate", "-o", cls.full, "--frames", 2, "--slices", 1, "--coils", 4, "--matrix", "64x48",
            "--seed", 3, "-q")
        cls.full_input = os.path.join(cls.full, "subject_000.h5")

    @classmethod
    def tearDownClass(cls):
        cls._d.cleanup()

    def check_file(self, rec, path):
        self.assertEqual(rec["path"], path)
        self.assertEqual(rec["sha256"], sha256(path))
        self.assertEqual(rec["size"], os.path.getsize(path))

    def check_runtime(self, rt, ranks):
        v = rt["versions"]
        fm = run("--version").stdout.split()
        self.assertEqual(["fmrecon", v["fmrecon"]], fm)
        self.assertEqual(v["petsc"], pkg_version("PETSc"))
        self.assertEqual(v["hdf5"], pkg_version("hdf5-openmpi"))
        self.assertTrue(v["fftw"].startswith(pkg_version("fftw3f")), v["fftw"])
        self.assertEqual(v["onednn"], onednn_version())
        self.assertIn(pkg_version("ompi"), v["mpi"])
        self.assertIn("Open MPI", v["mpi"])
        self.assertEqual(rt["ranks"], ranks)
        self.assertEqual(rt["hosts"], 1)  # every rank of these tests runs on this machine

    def test_recon_options_defaults_and_runtime(self):
        """sense on 2 ranks with three options set: those three as given, every other one at its
        documented default, the pipeline's original keys kept, input SHA-256 as hashlib's."""
        out = self.path("sense.h5")
        run("recon", self.input, "-o", out, "--method", "sense", "--lambda", 0.02, "--espirit-crop", 0.7,
            "--cg-iters", 20, "-q", mpi=2)
        p, attrs = params(out)
        for k in ("method", "mask", "pad_left", "pad_right", "ranks", "complex_image"):
            self.assertIn(k, p)  # the keys parameters always had
        self.assertEqual(p["method"], "sense")
        self.assertEqual(p["options"], {"method": "sense", "batch": 8, "coil_ranks": 1, "schedule": "static",
                                        "fft_slabs": False, "complex": False, "save_cascades": False})
        mp = p["method_options"]
        expect = dict(RECON_DEFAULTS, **{"lambda": 0.02, "cg_iters": 20})
        for k, v in expect.items():
            self.assertAlmostEqual(mp[k], v, msg=k, delta=1e-12)
        self.assertEqual(mp["espirit"], dict(ESPIRIT_DEFAULTS, crop=0.7))
        self.assertIsNone(mp["sens"])
        self.assertIsNone(mp["reg"])  # the cs defaults (not a cs run: no method_parameters terms)
        self.assertEqual(mp["precision"], "f32")
        self.assertIsNone(mp["model"])
        self.assertEqual(p["open"], {"variable": None, "mask_file": None, "mask_variable": None,
                                     "prewhiten": True, "virtual_coils": 0})
        self.check_file(p["input"], self.input)
        self.assertEqual(attrs["input_size"], os.path.getsize(self.input))
        self.check_runtime(p["runtime"], ranks=2)
        self.assertEqual(p["ranks"], 2)

    def test_recon_petsc_options_and_sens_file(self):
        """Options after '--' go to PETSc and are recorded; a --sens file is hashed."""
        maps = self.path("maps.h5")
        run("maps", self.input, "-o", maps, "-q")
        out = self.path("sense.h5")
        run("recon", self.input, "-o", out, "--method", "sense", "--sens", maps, "--virtual-coils", 4, "-q",
            "--", "-ksp_rtol", "1e-9")
        p, _ = params(out)
        self.assertIn("-ksp_rtol 1e-9", p["petsc_options"])
        self.assertEqual(p["method_options"]["sens"], maps)
        self.check_file(p["files"]["sens"], maps)
        self.assertEqual(p["open"]["virtual_coils"], 4)

    def test_unrolled_records_bundle_and_encoder(self):
        """The model bundle's and the encoder's SHA-256 as hashlib computes them, and the bundle's
        own settings (its CG iterations and cascades) as its safetensors header states them."""
        out = self.path("unrolled.h5")
        run("recon", self.input, "-o", out, "--method", "unrolled", "--model", BUNDLE, "--weights", ENCODER, "-q")
        p, _ = params(out)
        self.check_file(p["files"]["model"], BUNDLE)
        self.check_file(p["files"]["encoder"], ENCODER)
        self.assertEqual(p["method_options"]["model"], BUNDLE)
        self.assertEqual(p["method_options"]["weights"], ENCODER)
        meta = read_st_metadata(BUNDLE)
        self.assertEqual(p["bundle_metadata"], meta)
        self.assertEqual(meta["encoder_sha256"], p["files"]["encoder"]["sha256"])

    def test_undersample_records_mask(self):
        out = self.path("us.h5")
        run("undersample", self.full_input, "-o", out, "--mask", "uniform", "--accel", 2, "--seed", 11, "-q")
        p, attrs = params(out)
        m = p["mask"]
        self.assertEqual(m["type"], "uniform")
        self.assertEqual(m["acceleration"], 2)
        self.assertEqual(m["seed"], 11)
        self.assertEqual(m["acs_lines"], attrs["acs_lines"])
        self.check_file(p["input"], self.full_input)
        self.check_runtime(p["runtime"], ranks=1)

    def test_maps_record_source_and_espirit(self):
        out = self.path("maps.h5")
        run("maps", self.input, "-o", out, "--espirit-kernel", 5, "--espirit-threshold", 0.002, "-q")
        p, _ = params(out)
        with h5py.File(out, "r") as f:
            a = dict(f["maps"].attrs)
        self.assertEqual(a["source"], self.input)
        got = {"kernel": a["espirit_kernel"], "cal": a["espirit_cal"], "threshold": a["espirit_threshold"],
               "crop": a["espirit_crop"]}
        expect = dict(ESPIRIT_DEFAULTS, kernel=5, threshold=0.002)
        self.assertEqual(got, expect)
        self.assertEqual(p["espirit"], expect)
        self.check_file(p["input"], self.input)

    def test_encode_records_options_and_encoder(self):
        out = self.path("feats.h5")
        run("encode", self.input, "-o", out, "--encoder", "biomedclip", "--weights", ENCODER, "--layers", "1,3",
            "--size", 96, "-q")
        p, _ = params(out)
        self.assertEqual(p["options"], {"layers": [1, 3], "encoder": "biomedclip", "encoder_resolved": "biomedclip",
                                        "batch": 8, "input": "magnitude", "size": 96, "precision": "f32"})
        self.check_file(p["files"]["input"], self.input)
        self.check_file(p["files"]["encoder"], ENCODER)
        self.check_runtime(p["runtime"], ranks=1)

    def test_simulate_records_its_parameters(self):
        """simulate's parameters: the options given (frames, slices, coils, matrix, seed), the default
        SNR of 40, the noise level and the sampled columns as the file's own mask has them."""
        p, attrs = params(self.input)
        with h5py.File(self.input, "r") as f:
            sampled = int((f["mask"][()] != 0).sum())
        self.assertEqual(p["simulation"], {"frames": 2, "slices": 1, "coils": 4, "h": 64, "w": 48, "snr": 40,
                                           "seed": 3, "noise_std": attrs["sim_noise_std"],
                                           "sampled_columns": sampled})
        self.check_runtime(p["runtime"], ranks=1)

    def test_checkpoint_prints_bundle_metadata(self):
        meta = read_st_metadata(BUNDLE)
        self.assertIn("encoder_sha256", meta)
        j = json.loads(run("checkpoint", BUNDLE, "--json").stdout)
        self.assertEqual(j["metadata"], meta)
        text = run("checkpoint", BUNDLE).stdout
        self.assertIn(f"metadata: {len(meta)} entries:", text)
        for k, v in meta.items():
            self.assertIn(f"  {k}: {v}\n", text)


def read_st_metadata(path):
    """The __metadata__ of a safetensors file, parsed with json (8-byte length, JSON header)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


if __name__ == "__main__":
    common.main()
