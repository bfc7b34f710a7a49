"""The same reconstruction on 1, 2 and 3 ranks (oversubscribed): one shared output, every item
exactly once, identical to the serial result; the simulator gives the same file on any rank count."""
import json
import os

import h5py
import numpy as np

import common
from common import run


class MpiRecon(common.TmpCase):
    def test_ranks_agree(self):
        sim = self.path("sim")
        run("simulate", "-o", sim, "--frames", "5", "--slices", "1", "--coils", "4", "--matrix", "48x40",
            "--accel", "3", "--acs", "8", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        run("recon", inp, "-o", self.path("r1.h5"), "-q")
        with h5py.File(self.path("r1.h5"), "r") as f:
            serial = f["reconstruction"][()]
        self.assertTrue(np.all(serial.reshape(5, -1).max(axis=1) > 0))  # every item written
        for p in (2, 3):
            out = self.path(f"r{p}.h5")
            run("recon", inp, "-o", out, "-q", "--batch", "1", mpi=p)
            with h5py.File(out, "r") as f:
                par = f["reconstruction"][()]
                self.assertIn(f'"ranks":{p}', f.attrs["parameters"])
            np.testing.assert_allclose(par, serial, rtol=1e-6, atol=0)
        sim2 = self.path("sim2")
        run("simulate", "-o", sim2, "--frames", "5", "--slices", "1", "--coils", "4", "--matrix", "48x40",
            "--accel", "3", "--acs", "8", "-q", mpi=2)
        with h5py.File(inp, "r") as a, h5py.File(os.path.join(sim2, "subject_000.h5"), "r") as b:
            np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["r1.h5", "r2.h5", "r3.h5", "sim", "sim2"])


    def test_coil_groups_and_ranks_match_serial(self):
        """P = 1..4 ranks with one rank per item, and P = 2, 4 with coil groups of K = 2 (coils and
        the PETSc solve shared) or slab mode (each coil image split in row slabs, FFTW3-MPI),
        statically or dynamically scheduled (items handed out as groups free up, written
        independently), give the serial images to 1e-5 for sense and cs (and zf); the
        shared output holds every (frame, slice) item exactly once (each frame has its own
        anatomy, so a missing or duplicated block shows as a mismatch); bad K is refused."""
        sim = self.path("sim")
        run("simulate", "-o", sim, "--frames", "4", "--slices", "2", "--coils", "4", "--matrix", "40x32",
            "--accel", "3", "--acs", "8", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        for m in ("zf", "sense", "cs"):
            extra = ["--admm-iters", "5"] if m == "cs" else []
            run("recon", inp, "-o", self.path(f"{m}_serial.h5"), "-q", "-m", m, *extra)
            with h5py.File(self.path(f"{m}_serial.h5"), "r") as f:
                serial = f["reconstruction"][()]
            self.assertTrue(np.all(serial.reshape(8, -1).max(axis=1) > 0))
            for p, k, sched in ((1, 1, "static"), (2, 1, "static"), (3, 1, "static"), (4, 1, "static"),
                                (2, 2, "static"), (4, 2, "static"), (3, 1, "dynamic"), (4, 2, "dynamic"),
                                (2, 2, "slabs"), (4, 4, "slabs")):
                out = self.path(f"{m}_{p}_{k}_{sched}.h5")
                mode = ["--fft-slabs"] if sched == "slabs" else ["--schedule", sched]
                run("recon", inp, "-o", out, "-q", "-m", m, "--coil-ranks", k, "--batch", "1", *mode, *extra, mpi=p)
                with h5py.File(out, "r") as f:
                    par = f["reconstruction"][()]
                rel = np.linalg.norm(par - serial) / np.linalg.norm(serial)
                self.assertLess(rel, 1e-5, f"{m} P={p} K={k} {sched}: relative difference {rel:.2e}")
                # item by item: each (frame, slice) block is the serial one
                for t in range(4):
                    for z in range(2):
                        d = np.linalg.norm(par[t, z] - serial[t, z]) / np.linalg.norm(serial[t, z])
                        self.assertLess(d, 1e-5, f"{m} P={p} K={k} {sched} frame {t} slice {z}")
        r = run("recon", inp, "-o", self.path("bad.h5"), "-q", "-m", "sense", "--coil-ranks", "2", check=False, mpi=3)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--coil-ranks 2 does not divide the 3 ranks", r.stderr)
        r = run("recon", inp, "-o", self.path("bad.h5"), "-q", "-m", "sense", "--coil-ranks", "8", check=False, mpi=8)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exceeds the 4 coils", r.stderr)
        self.assertFalse(os.path.exists(self.path("bad.h5")))


    def test_unrolled_on_many_ranks(self):
        """The unrolled network (tiny random encoder + random bundle) on P = 2, 3, 4 ranks, with
        coil groups (K = 2 at P = 2, 4), slab mode and the dynamic schedule, equals the serial run
        to 1e-5; in a coil group only the leader spends time in encoder and decoder (bench scaling's
        per-rank times)."""
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import make_random_encoder as mre
        import unrolled_reference as ur
        enc, bundle = self.path("enc.safetensors"), self.path("bundle.safetensors")
        mre.write_random_encoder(enc, "biomedclip", width=64, mlp=128, patch=8, blocks=6, pos_grid=4, seed=11)
        ur.make_random_bundle(bundle, enc, "biomedclip", feature_size=4, cascades=2, dc="cg", cg_iters=5, seed=3)
        sim = self.path("sim")
        run("simulate", "-o", sim, "--frames", "3", "--slices", "2", "--coils", "4", "--matrix", "64x48",
            "--accel", "4", "--acs", "8", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        maps = self.path("maps.h5")
        run("maps", inp, "-o", maps, "-q")
        common_args = ["-m", "unrolled", "--model", bundle, "--weights", enc, "--sens", maps, "-q"]
        run("recon", inp, "-o", self.path("u1.h5"), *common_args)
        with h5py.File(self.path("u1.h5"), "r") as f:
            serial = f["reconstruction"][()]
        for i, (p, extra) in enumerate(((2, []), (3, []), (4, []), (3, ["--schedule", "dynamic"]),
                                        (2, ["--coil-ranks", "2"]), (4, ["--coil-ranks", "2"]),
                                        (4, ["--coil-ranks", "2", "--fft-slabs"]))):
            out = self.path(f"u{p}_{i}.h5")
            run("recon", inp, "-o", out, *common_args, *extra, mpi=p)
            with h5py.File(out, "r") as f:
                par = f["reconstruction"][()]
            rel = np.linalg.norm(par - serial) / np.linalg.norm(serial)
            self.assertLess(rel, 1e-5, f"P={p} {extra}: relative difference {rel:.2e}")
        # within a coil group only the leader runs encoder and decoder (and broadcasts the result)
        js = self.path("scaling.json")
        run("bench", "scaling", "--method", "unrolled", "--coil-ranks", "2", "--frames", "2", "--slices", "1",
            "--coils", "4", "--matrix", "64x48", "--cg-iters", "5", "--model", bundle, "--weights", enc,
            "--dir", self.path(""), "--json", js, mpi=2)
        with open(js) as f:
            ranks = json.load(f)["ranks"]
        self.assertGreater(ranks[0]["encoder"] + ranks[0]["decoder"], 0)
        self.assertEqual(ranks[1]["encoder"] + ranks[1]["decoder"], 0, ranks)


if __name__ == "__main__":
    common.main()
