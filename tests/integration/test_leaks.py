"""Memory errors and leaks of fmrecon's own code under valgrind, on the success path and on error
paths (LeakSanitizer cannot judge MPI programs here: see tests/CMakeLists.txt). Losses inside the
MPI runtime's init/finalize are not ours; any definitely-lost block allocated from fmrecon code
(src/, solvers/) fails the test, as does any invalid read or write."""
import os
import re
import shutil
import subprocess

import h5py
import numpy as np

import common
from common import crandn, run

def valgrind(args):
    cmd = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite", "--num-callers=30",
           common.ARGS.fmrecon] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return r


def our_problems(stderr):
    """Valgrind records that concern fmrecon: invalid accesses anywhere, and definitely-lost
    blocks allocated with an fmr_ function on the stack."""
    problems = []
    for b in re.split(r"\n==\d+== \n", stderr):
        if "Invalid read" in b or "Invalid write" in b or "uninitialised" in b:
            # OpenBLAS's hand-written kernels load whole vectors past the ends of LAPACKE's own
            # work arrays (a known valgrind false positive); anything else is ours to fix
            top = re.search(r"at 0x[0-9A-F]+: \S+ \(in ([^)]*)\)", b)
            if top and "openblas" in top.group(1):
                continue
            problems.append(b)
        elif "definitely lost" in b and re.search(r"(?:at|by) 0x[0-9A-F]+: fmr_", b):
            problems.append(b)
    return problems


class Leaks(common.TmpCase):
    def test_recon_success_and_errors(self):
        sim = self.path("sim")
        run("simulate", "-o", sim, "--frames", "2", "--slices", "2", "--coils", "3", "--matrix", "32x24",
            "--accel", "2", "--acs", "12", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        r = valgrind(["recon", inp, "-o", self.path("ok.h5"), "-q"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(our_problems(r.stderr), [])
        for m in ("sense", "cs"):
            r = valgrind(["recon", inp, "-o", self.path(f"{m}.h5"), "-q", "-m", m, "--espirit-cal", "12",
                          "--espirit-kernel", "4", "--admm-iters", "2"])
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            self.assertEqual(our_problems(r.stderr), [])
        r = valgrind(["info", inp, "--json"])
        self.assertEqual(our_problems(r.stderr), [])
        rng = np.random.default_rng(0)
        k = crandn(rng, 2, 2, 16, 16)
        k[1, 1, 3, 3] = np.nan
        bad = self.path("nan.h5")
        with h5py.File(bad, "w") as f:
            f["kspace"] = k
            f["mask"] = np.ones(15)
        r = valgrind(["recon", bad, "-o", self.path("bad.h5"), "-q"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(our_problems(r.stderr), [])
        with h5py.File(bad, "w") as f:
            f["kspace"] = k
        r = valgrind(["recon", bad, "-o", self.path("bad.h5"), "-q"])
        self.assertIn("NaN/Inf", r.stderr)
        self.assertEqual(our_problems(r.stderr), [])
        self.assertFalse(os.path.exists(self.path("bad.h5")))


    def test_dicom_in_and_exports(self):
        # two frames of one location of the real DICOM cine: DCMTK reading, semi-real k-space
        src = common.shared("sunnybrook_preclinical_cine_sax", "E774S5-shortAxis")
        d = self.path("dcm")
        os.mkdir(d)
        for n in ("I0001.dcm", "I0002.dcm"):
            shutil.copy(os.path.join(src, n), d)
        r = valgrind(["simulate", "--from-dicom", d, "-o", self.path("sr"), "--coils", "2", "-q"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(our_problems(r.stderr), [])
        run("recon", os.path.join(self.path("sr"), "subject_000.h5"), "-o", self.path("r.h5"), "-q")
        r = valgrind(["export", self.path("r.h5"), "-f", "nifti,dicom,gif,png", "-o", self.path("x"), "-q"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(our_problems(r.stderr), [])
        shutil.copy(os.path.join(src, "I0021.dcm"), d)  # another location: frames do not add up
        r = valgrind(["simulate", "--from-dicom", d, "-o", self.path("sr2"), "-q"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(our_problems(r.stderr), [])
        r = valgrind(["export", self.path("r.h5"), "-f", "nifti,bogus", "-o", self.path("y"), "-q"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(our_problems(r.stderr), [])

    def test_encode_success_and_errors(self):
        """The oneDNN encoder path: plans, packed weights and the engine are all released."""
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import make_random_encoder as mre
        ck = self.path("d.safetensors")
        mre.write_random_encoder(ck, "dinov2", width=64, mlp=128, patch=14, blocks=2, pos_grid=5, seed=1)
        px = self.path("px.h5")
        with h5py.File(px, "w") as f:
            f["pixel_values"] = np.random.default_rng(0).standard_normal((3, 3, 56, 56)).astype(np.float32)
        r = valgrind(["encode", px, "-o", self.path("f.h5"), "--encoder", "dinov2", "--weights", ck,
                      "--layers", "1,2", "--batch", "2", "-q"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(our_problems(r.stderr), [])
        r = valgrind(["encode", px, "-o", self.path("g.h5"), "--encoder", "dinov2", "--weights", ck,
                      "--layers", "3", "-q"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(our_problems(r.stderr), [])

if __name__ == "__main__":
    common.main()
