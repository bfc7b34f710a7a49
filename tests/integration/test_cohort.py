"""`fmrecon cohort`: shards (--shard and the SLURM array variables, ranges not starting at 0) that
together cover every subject exactly once; resumable and exact (a damaged output is redone, done
ones are skipped); SIGUSR1 mid-run stops after the current subject with exit status 3 and a rerun
completes the rest, every subject done once; the summary matches `fmrecon eval`. Strict manifests:
a mistyped key, an unknown or refused option, an id leaving the output folder, changed options and
a double undersampling each stop with one line before anything is reconstructed; the summary's
cohort statistics match numpy, its CSV quoting Python's csv module, its crop rule `fmrecon eval
--crop cmrxrecon`, and a ~1.3 KB output path loses no subject."""
import csv
import json
import os
import shutil
import signal
import subprocess
import time

import h5py
import numpy as np

import common
from common import run


class Cohort(common.TmpCase):
    def make(self, n, **over):
        if not os.path.isdir(self.path("full")):
            run("simulate", "-o", self.path("full"), "--subjects", n, "--frames", 3, "--slices", 1, "--coils", 4,
                "--matrix", "48x40", "-q")
        man = self.path("manifest.json")
        m = {"name": "t", "subjects": ["full/subject_*.h5"], "output": "out",
             "undersample": ["--mask", "uniform", "--accel", "4", "--acs", "8", "-q"],
             "recon": ["-m", "sense", "--cg-iters", "20", "-q"]}
        m.update(over)
        with open(man, "w") as f:
            json.dump({k: v for k, v in m.items() if v is not None}, f)
        return man

    def one_line_failure(self, *args, needle):
        r = run("cohort", *args, check=False)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertLess(r.returncode, 128, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(needle, lines[0])
        return lines[0]

    def test_strict_manifest(self):
        base = {"undersample": ["--mask", "uniform", "--accel", "4", "-q"]}
        cases = [
            ({"undersampl": base["undersample"], "undersample": None}, "unknown key 'undersampl' (did you mean 'undersample'?)"),
            ({"recon": ["-m", "sense", "--cg-iter", "20"]}, "unknown 'fmrecon recon' option '--cg-iter' (did you mean '--cg-iters'?)"),
            ({"undersample": ["--mask", "uniform", "--acel", "4"]}, "(did you mean '--accel'?)"),
            ({"recon": ["-m", "sense", "-o", "/tmp/elsewhere.h5"]}, "option '--output' is not allowed in a manifest"),
            ({"recon": ["--output=/tmp/elsewhere.h5"]}, "option '--output' is not allowed in a manifest"),
            ({"recon": ["-m", "sense", "--cg-iters", "lots"]}, "--cg-iters: 'lots' is not a whole number"),
            ({"recon": ["-m", "sens"]}, "unknown method 'sens'"),
            ({"recon": ["-m", "sense", "extra.h5"]}, "unexpected value 'extra.h5'"),
            ({"recon": "-m sense"}, "\"recon\" must be a list"),
            ({"undersample": ["--mask", "unifrom", "--accel", "4"]}, "unifrom"),
            ({"evaluate": ["--ref", "x.h5"]}, "option '--ref' is not allowed here (only --crop)"),
            ({"evaluate": ["--crop", "cmrx"]}, "--crop: 'cmrx' unknown"),
            ({"evaluate": "yes"}, "\"evaluate\" must be true, false or a list"),
            ({"subjects": [{"id": "../escape", "input": "full/subject_000.h5"}]}, "would write outside the output folder"),
            ({"subjects": [{"id": "/abs", "input": "full/subject_000.h5"}]}, "would write outside the output folder"),
            ({"subjects": [{"idd": "a", "input": "full/subject_000.h5"}]}, "unknown key 'idd' in a subjects entry (did you mean 'id'?)"),
            ({"name": 3}, "\"name\" must be a non-empty string"),
        ]
        for over, needle in cases:
            man = self.make(2, **over)
            self.one_line_failure(man, needle=needle)
            self.assertFalse(os.path.exists(self.path("out")), f"{over}: something was done")
        # a symlinked folder inside OUT would send files elsewhere
        man = self.make(2)
        os.makedirs(self.path("out"))
        os.makedirs(self.path("elsewhere"))
        os.symlink(self.path("elsewhere"), self.path("out/markers"))
        self.one_line_failure(man, needle="not a folder, or a symbolic link")
        self.assertEqual(os.listdir(self.path("elsewhere")), [])
        shutil.rmtree(self.path("out"))
        # the valid forms: jobs/ examples and aliases of the same options
        here = os.path.dirname(os.path.abspath(__file__))
        for f in ("demo_simulated.json", "retrospective_sense.json", "prospective_unrolled.json"):
            with open(os.path.join(here, "..", "..", "jobs", f)) as fh:
                m = json.load(fh)
            m.update(subjects=["full/subject_*.h5"], output="out")
            m["recon"] = [a for a in m["recon"] if not a.startswith("/")]
            for k in ("--model", "--weights"):
                if k in m["recon"]:
                    i = m["recon"].index(k)
                    del m["recon"][i:i + 1]
            man = self.make(2, **m)
            r = run("cohort", man, "--summary-only", check=False)
            self.assertEqual(r.returncode, 0, f"{f}: {r.stderr}")
        # the effective manifest: defaults filled in, options in their long form
        man = self.make(2, recon=["-m", "zf", "-q"])
        run("cohort", man, "-q")
        with open(self.path("out/manifest.effective.json")) as f:
            eff = json.load(f)
        self.assertEqual(eff["recon"], ["--method=zf", "--quiet"])
        self.assertEqual(eff["evaluate"], {"crop": "fastmri"})
        self.assertEqual((eff["method"], eff["mask"], eff["nominal_R"]), ("zf", "uniform", 4))
        self.assertEqual([s["id"] for s in eff["subjects"]], ["subject_000", "subject_001"])

    def test_changed_options_stop_before_anything(self):
        man = self.make(3)
        run("cohort", man, "-q")
        before = {f: os.path.getmtime(self.path(f"out/{f}")) for f in os.listdir(self.path("out")) if f.endswith(".h5")}
        man = self.make(3, recon=["-m", "cs", "--admm-iters", "5", "-q"])
        line = self.one_line_failure(man, needle="3 subjects (subject_000, subject_001, subject_002)")
        self.assertIn("'--method=sense --cg-iters=20' -> '--method=cs --admm-iters=5'", line)
        self.assertIn("--redo-changed", line)
        after = {f: os.path.getmtime(self.path(f"out/{f}")) for f in os.listdir(self.path("out")) if f.endswith(".h5")}
        self.assertEqual(before, after)
        with open(self.path("out/summary.json")) as f:
            self.assertEqual(json.load(f)["method"], "sense")
        # a changed input is a change too
        man = self.make(3)
        with h5py.File(self.path("full/subject_001.h5"), "r+") as f:
            f["kspace"][0, 0, 0, 0, 0] += 1
        line = self.one_line_failure(man, needle="1 subject (subject_001)")
        self.assertIn("input changed", line)
        # --redo-changed redoes them: afterwards every marker certifies cs
        man = self.make(3, recon=["-m", "cs", "--admm-iters", "5", "-q"])
        run("cohort", man, "--redo-changed", "-q")
        s = self.summary()
        self.assertEqual({(r["status"], r["method"]) for r in s.values()}, {("done", "cs")})
        for sid in s:
            with open(self.path(f"out/markers/{sid}.json")) as f:
                self.assertIn("--method=cs", json.load(f)["settings"]["recon"])
        # quiet/verbose change nothing that a marker certifies
        man = self.make(3, recon=["-m", "cs", "--admm-iters", "5"])
        run("cohort", man, "-q")
        self.assertEqual(sum(self.done_lines(sid) for sid in s), 6)

    def test_double_undersampling_stops(self):
        ism = common.shared("ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5")
        info = json.loads(run("info", ism, "--json").stdout)
        man = self.make(1, subjects=[{"id": "phantom", "input": ism}], recon=["-m", "zf", "-q"])
        line = self.one_line_failure(man, "-q", needle="already undersampled (effective R = ")
        self.assertIn(f"effective R = {info['acceleration']:.2f}", line)
        self.assertFalse(os.path.exists(self.path("out/phantom.h5")))
        self.assertEqual([f for f in os.listdir(self.path("out/work")) if f.endswith(".h5") or "partial" in f], [])
        with open(self.path("out/summary.json")) as f:
            self.assertEqual(json.load(f)["subjects"][0]["status"], "failed")
        # --allow-subset: a mask whose lines are all acquired passes, with its effective R; one that
        # needs lines the input lacks is refused
        run("simulate", "-o", self.path("r2"), "--subjects", 1, "--frames", 2, "--slices", 1, "--coils", 4,
            "--matrix", "48x40", "--accel", 2, "--acs", 8, "-q")
        src = self.path("r2/subject_000.h5")
        with h5py.File(src, "r") as f:
            have = f["mask"][()].astype(bool)
        r = run("undersample", src, "-o", self.path("x.h5"), "--mask", "uniform", "--accel", 4, "--acs", 8, check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("already undersampled", r.stderr)
        r = run("undersample", src, "-o", self.path("x.h5"), "--mask", "uniform", "--accel", 3, "--acs", 8,
                "--allow-subset", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not a subset", r.stderr)
        self.assertFalse(os.path.exists(self.path("x.h5")))
        r = run("undersample", src, "-o", self.path("x.h5"), "--mask", "uniform", "--accel", 4, "--acs", 8, "--allow-subset")
        with h5py.File(self.path("x.h5"), "r") as f:
            got = f["mask"][()].astype(bool)
            eff = f.attrs["effective_acceleration"]
            self.assertEqual(f.attrs["acceleration"], 4.0)  # nominal
            self.assertAlmostEqual(f.attrs["source_effective_acceleration"], 40 / have.sum())
        self.assertTrue(np.all(have[got]))  # a subset of the acquired lines
        self.assertAlmostEqual(eff, 40 / got.sum())
        self.assertIn(f"effective R = {eff:.2f}", r.stderr)
        self.assertIn("nominal R = 4", r.stderr)

    def test_summary_statistics_quoting_and_crop(self):
        long_out = "/".join(["d" * 200] * 6) + "/out"  # with the temporary folder, an output path of about 1.25 KB
        man = self.make(5, subjects=["full/subject_*.h5", {"id": "with,comma\"q\"", "input": "full/subject_000.h5"}],
                        output=long_out, evaluate=["--crop", "cmrxrecon"])
        out = self.path(long_out)
        self.assertGreater(len(out), 1220)
        os.makedirs(self.path("elsewhere"))
        subprocess.run([os.path.abspath(common.ARGS.fmrecon), "cohort", man, "-q"], cwd=self.path("elsewhere"), check=True, timeout=300)
        with open(os.path.join(out, "summary.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 6)
        ids = [r["id"] for r in rows]
        self.assertIn('with,comma"q"', ids)
        for r in rows:
            self.assertEqual((r["status"], r["method"], r["mask"], r["nominal_R"], r["crop"]),
                             ("done", "sense", "uniform", "4", "cmrxrecon"))
            self.assertEqual(r["output"], r["id"] + ".h5")  # relative to the output folder
            with h5py.File(os.path.join(out, r["output"]), "r") as f:
                m = f["mask"][()].astype(bool)
            self.assertAlmostEqual(float(r["effective_R"]), m.shape[-1] / m.sum(), places=4)
            ev = json.loads(run("eval", "--ref", r["input"], "--rec", os.path.join(out, r["output"]), "--crop", "cmrxrecon",
                                "--json").stdout)["volumes"][0]
            self.assertAlmostEqual(float(r["psnr"]), ev["psnr"], places=3)
            self.assertAlmostEqual(float(r["ssim"]), ev["ssim"], places=4)
        with open(os.path.join(out, "summary_stats.csv")) as f:
            stats = {r["metric"]: r for r in csv.DictReader(f)}
        with open(os.path.join(out, "summary.json")) as f:
            js = json.load(f)
        for k in ("psnr", "ssim", "nmse", "effective_R"):
            v = np.array([e[k] for e in js["subjects"]])  # full precision (the CSV has 6 digits)
            self.assertTrue(np.allclose(v, [float(r[k]) for r in rows], rtol=1e-5))
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            self.assertEqual(int(stats[k]["n"]), 6)
            for name, ref in (("mean", v.mean()), ("median", med), ("q1", q1), ("q3", q3), ("iqr", q3 - q1)):
                self.assertAlmostEqual(float(stats[k][name]), ref, delta=1e-6 * max(1, abs(ref)), msg=f"{k} {name}")
                self.assertAlmostEqual(js["cohort"][k][name], ref, delta=1e-6 * max(1, abs(ref)))
        self.assertEqual((js["method"], js["mask"], js["nominal_R"], js["crop"]), ("sense", "uniform", 4, "cmrxrecon"))
        with open(os.path.join(out, "summary.md")) as f:
            md = f.read()
        self.assertIn("| with,comma\"q\" | done |", md)
        self.assertIn("| psnr | 6 |", md)
        # the same summary, rewritten from another working folder: paths do not depend on it
        with open(os.path.join(out, "summary.csv")) as f:
            first = f.read()
        run("cohort", man, "--summary-only")
        with open(os.path.join(out, "summary.csv")) as f:
            self.assertEqual(f.read(), first)

    def summary(self):
        with open(self.path("out/summary.csv")) as f:
            return {r["id"]: r for r in csv.DictReader(f)}

    def done_lines(self, sid):
        with open(self.path(f"out/logs/{sid}.log")) as f:
            return sum(1 for l in f if f" done {sid} " in l)

    def test_shards_resume_and_summary(self):
        man = self.make(5)
        run("cohort", man, "--shard", "0/2", "-q")
        s = self.summary()
        self.assertEqual(sorted(k for k, r in s.items() if r["status"] == "done"),
                         ["subject_000", "subject_002", "subject_004"])
        env = dict(os.environ, SLURM_ARRAY_TASK_ID="8", SLURM_ARRAY_TASK_MIN="7", SLURM_ARRAY_TASK_COUNT="2")
        r = subprocess.run([common.ARGS.fmrecon, "cohort", man, "-q"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.summary()
        self.assertEqual([r["status"] for r in s.values()], ["done"] * 5)
        for sid, row in s.items():
            self.assertEqual(self.done_lines(sid), 1)
            ev = json.loads(run("eval", "--ref", self.path(f"full/{sid}.h5"), "--rec", self.path(f"out/{sid}.h5"),
                                "--json").stdout)["volumes"][0]
            self.assertAlmostEqual(float(row["psnr"]), ev["psnr"], places=3)
            self.assertAlmostEqual(float(row["ssim"]), ev["ssim"], places=4)
        # damage one output: only that subject is redone on a rerun
        with open(self.path("out/subject_003.h5"), "r+b") as f:
            f.truncate(100)
        before = {sid: os.path.getmtime(self.path(f"out/markers/{sid}.json")) for sid in s}
        run("cohort", man, "-q")
        for sid in s:
            changed = os.path.getmtime(self.path(f"out/markers/{sid}.json")) != before[sid]
            self.assertEqual(changed, sid == "subject_003", sid)
            self.assertEqual(self.done_lines(sid), 2 if sid == "subject_003" else 1)
        self.assertEqual([r["status"] for r in self.summary().values()], ["done"] * 5)
        with open(self.path("out/summary.json")) as f:
            js = json.load(f)
        self.assertEqual((js["total"], js["done"], js["pending"], js["failed"]), (5, 5, 0, 0))

    def test_signal_stops_cleanly_and_rerun_completes(self):
        man = self.make(6)
        p = subprocess.Popen([common.ARGS.fmrecon, "cohort", man], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace")
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(self.path("out/logs/subject_001.log")):
            time.sleep(0.05)
        p.send_signal(signal.SIGUSR1)
        out, err = p.communicate(timeout=300)
        self.assertNotIn("\ufffd", err, err)
        s = self.summary()
        ndone = sum(r["status"] == "done" for r in s.values())
        if p.returncode == 3:
            self.assertIn("stopped by a signal", err)
            self.assertLess(ndone, 6)
            self.assertGreaterEqual(ndone, 1)
        else:  # the signal arrived after the last subject had started: it finishes normally
            self.assertEqual(p.returncode, 0, err)
        # no half-written output next to the finished ones
        leftovers = [f for f in os.listdir(self.path("out")) if "fmr-partial" in f]
        self.assertEqual(leftovers, [])
        run("cohort", man, "-q")
        s = self.summary()
        self.assertEqual([r["status"] for r in s.values()], ["done"] * 6)
        for sid in s:
            self.assertEqual(self.done_lines(sid), 1, sid)

    def test_bad_manifest(self):
        man = self.path("bad.json")
        for text, needle in (("{", "not a JSON object"), ('{"subjects": ["x"]}', "\"output\""),
                             ('{"output": "o", "subjects": ["nothing_*.h5"]}', "matches no file")):
            with open(man, "w") as f:
                f.write(text)
            r = run("cohort", man, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(needle, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        r = run("cohort", man, "--shard", "3/2", check=False)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    common.main()
