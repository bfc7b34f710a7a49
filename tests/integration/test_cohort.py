"""`fmrecon cohort`: shards (--shard and the SLURM array variables, ranges not starting at 0) that
together cover every subject exactly once; resumable and exact (a damaged output is redone, done
ones are skipped); SIGUSR1 mid-run stops after the current subject with exit status 3 and a rerun
completes the rest, every subject done once; the summary matches `fmrecon eval`."""
import csv
import json
import os
import signal
import subprocess
import time

import common
from common import run


class Cohort(common.TmpCase):
    def make(self, n):
        run("simulate", "-o", self.path("full"), "--subjects", n, "--frames", 3, "--slices", 1, "--coils", 4,
            "--matrix", "48x40", "-q")
        man = self.path("manifest.json")
        with open(man, "w") as f:
            json.dump({"name": "t", "subjects": ["full/subject_*.h5"], "output": "out",
                       "undersample": ["--mask", "uniform", "--accel", "4", "--acs", "8", "-q"],
                       "recon": ["-m", "sense", "--cg-iters", "20", "-q"]}, f)
        return man

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
