"""Findings of the libFuzzer targets (tests/fuzz), as regression tests through the command line.
Each input also stays in tests/fuzz/regressions/<target>/, which the fuzz tests run first.

fuzz_maskfile: a small mask file can declare a huge mask (chunked, never written). The reader used
to allocate the declared size before comparing the shape with the k-space (libFuzzer: out of memory
at malloc(4907089920)); for 2^40 values the allocation failed ("cannot allocate 4194304 MiB", and
under AddressSanitizer the process aborted). It must refuse the shape first, naming the file.

fuzz_manifest: a subjects entry "" (or an input naming a folder, "sub/") was accepted as a subject
with an empty id whose input is the manifest's folder; the run then failed per subject with
"subject 's input is not a readable regular file". The manifest must be refused, naming it."""
import json
import os
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from common import TmpCase, main, run  # noqa: E402


class MaskFileRegressions(TmpCase):
    @classmethod
    def setUpClass(cls):
        cls._src = tempfile.TemporaryDirectory(prefix="fmr-fuzzreg-")
        run("simulate", "-o", cls._src.name, "--frames", "2", "--slices", "1", "--coils", "2",
            "--matrix", "32x24", "-q")
        cls.input = os.path.join(cls._src.name, "subject_000.h5")

    @classmethod
    def tearDownClass(cls):
        cls._src.cleanup()

    def setUp(self):
        super().setUp()
        self.outdir = self.path("out")
        os.mkdir(self.outdir)

    def declared(self, name, shape, matlab=False):
        p = self.path(name)
        with h5py.File(p, "w", userblock_size=512 if matlab else 0) as f:
            f.create_dataset("mask", shape=shape, maxshape=(None,) * len(shape), chunks=(64,) * len(shape),
                             dtype="f8")
        if matlab:
            with open(p, "r+b") as f:
                f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by the fmrecon tests HDF5 schema 1.00 .")
        self.assertLess(os.path.getsize(p), 64 * 1024)  # declared, not stored
        return p

    def test_declared_huge_mask_is_refused_by_shape(self):
        for name, shape, matlab in [("huge1d.h5", (1 << 40,), False),                 # fastMRI (w,)
                                    ("huge2d.h5", (1 << 20, 1 << 20), False),         # (frames, w)
                                    ("huge2d.mat", (24, 1 << 36), True),              # MATLAB (ny, nx)
                                    ("fuzzer.mat", (12, 38, 1 << 20), True)]:         # the fuzzer's k-t case
            mp = self.declared(name, shape, matlab)
            t0 = time.monotonic()
            line = self.expect_fail(["info", self.input, "--mask-file", mp], mp)
            self.assertNotIn("cannot allocate", line)
            # refused by the header audit (declared bytes vs stored bytes) or by the shape check
            if "does not fit" in line:
                self.assertIn("(" + ", ".join(str(d) for d in shape) + ")", line)
            else:
                self.assertRegex(line, r"declares [0-9.]+ [KMGTP]?i?B of data but the file stores")
            self.assertLess(time.monotonic() - t0, 60, f"{name}: the declared values were read")

    def test_fitting_mask_still_read(self):
        # the same path with a shape that fits: (w,) = 24 columns, every 2nd sampled
        mp = self.path("ok.h5")
        with h5py.File(mp, "w") as f:
            f["mask"] = [1.0 if c % 2 == 0 else 0.0 for c in range(24)]
        info = json.loads(run("info", self.input, "--mask-file", mp, "--json").stdout)
        self.assertEqual(info["mask"], "shared")
        self.assertEqual(info["sampled_lines"], 12)
        self.assertEqual(info["acceleration"], 2)


class ManifestRegressions(TmpCase):
    def manifest(self, subjects):
        self.outdir = self.path("out")  # the manifest's output folder: must stay empty
        os.mkdir(self.outdir)
        open(self.path("subject_000.h5"), "wb").close()
        os.mkdir(self.path("sub"))
        p = self.path("manifest.json")
        with open(p, "w") as f:
            json.dump({"output": "out", "subjects": subjects, "evaluate": False}, f)
        return p

    def test_empty_subject_entry_is_refused(self):
        p = self.manifest([""])
        self.expect_fail(["cohort", p], p, "empty string")

    def test_folder_as_input_is_refused(self):
        p = self.manifest([{"input": "sub/"}])
        self.expect_fail(["cohort", p], p, "gives an empty id")


if __name__ == "__main__":
    main()
