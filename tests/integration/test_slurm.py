"""fmrecon on a real single-node SLURM (tests/slurm/start.sh; stopped by pid in tearDownClass):
an MPI reconstruction through sbatch + srun --mpi=pmix on 2 ranks equals the serial one; a 4-task
job array over an 8-subject cohort gives 8 verified outputs and a correct summary; a running
cohort array is signalled (USR1 to the batch shell, forwarded by the template's trap, and USR1 to
the job steps), fmrecon stops with status 3, the template requeues the tasks, and afterwards every
subject is present exactly once and verified. Fails (never skips) when SLURM is missing."""
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import h5py

import common
from common import relerr, run

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBMIT = os.path.join(SRC, "slurm", "submit")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


class Slurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in ("slurmctld", "slurmd", "sbatch", "munged"):
            if not shutil.which(b):
                raise AssertionError(f"SLURM is not installed ('{b}' missing): run scripts/install-deps.sh "
                                     "(slurm-wlm munge)")
        cls.dir = tempfile.mkdtemp(prefix="fmr-slurm-")
        cls.addClassCleanup(cls.stop)
        t0 = time.time()
        r = subprocess.run(["bash", os.path.join(SRC, "tests", "slurm", "start.sh"), cls.dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise AssertionError(f"SLURM could not start on this machine:\n{r.stdout}\n{r.stderr}")
        print(f"slurm up in {time.time() - t0:.2f} s", flush=True)
        os.environ["SLURM_CONF"] = os.path.join(cls.dir, "etc", "slurm.conf")
        cls.fmr = os.path.abspath(common.ARGS.fmrecon)

    @classmethod
    def stop(cls):
        t0 = time.time()
        subprocess.run(["bash", os.path.join(SRC, "tests", "slurm", "stop.sh"), cls.dir], timeout=120)
        print(f"slurm down in {time.time() - t0:.2f} s", flush=True)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=self.dir)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    # ---- helpers
    def submit(self, *args):
        r = subprocess.run([SUBMIT, "--fmrecon", self.fmr, "--log-dir", self.path("logs"), "-t", "00:10:00"]
                           + [str(a) for a in args], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        line, jid = r.stdout.strip().splitlines()[-2:]
        self.assertIn("sbatch --parsable", line)
        return jid

    def jobs(self, jid):
        r = subprocess.run(["scontrol", "-o", "show", "job", jid], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [dict(re.findall(r"(\w+)=(\S*)", l)) for l in r.stdout.splitlines() if l.strip()]

    def wait(self, jid, timeout=150, until=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = self.jobs(jid)
            if until is not None:
                if until(js):
                    return js
            elif js and all(j["JobState"] in TERMINAL for j in js):
                return js
            time.sleep(0.2)
        raise AssertionError(f"job {jid} still not done after {timeout} s: {self.jobs(jid)}\n" + self.logs())

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.path("logs"))) if os.path.isdir(self.path("logs")) else []:
            with open(self.path("logs", f), errors="replace") as fh:
                out.append(f"--- {f}\n{fh.read()}")
        return "\n".join(out)

    def cohort(self, n, matrix, frames, cg):
        run("simulate", "-o", self.path("full"), "--subjects", n, "--frames", frames, "--slices", 1, "--coils", 4,
            "--matrix", matrix, "-q")
        man = self.path("manifest.json")
        with open(man, "w") as f:
            json.dump({"name": "slurm", "subjects": ["full/subject_*.h5"], "output": "out",
                       "undersample": ["--mask", "uniform", "--accel", "4", "--acs", "8", "-q"],
                       "recon": ["-m", "sense", "--cg-iters", str(cg), "-q"]}, f)
        return man

    def done_lines(self, sid):
        with open(self.path("out", "logs", f"{sid}.log")) as f:
            return sum(1 for l in f if f" done {sid} " in l)

    def verify_cohort(self, n):
        """Every subject done exactly once, its output matching its marker, the summary complete."""
        ids = [f"subject_{i:03d}" for i in range(n)]
        for sid in ids:
            with open(self.path("out", "markers", f"{sid}.json")) as f:
                mk = json.load(f)
            out = self.path("out", f"{sid}.h5")
            with open(out, "rb") as f:
                data = f.read()
            self.assertEqual(len(data), mk["bytes"], sid)
            self.assertEqual(hashlib.sha256(data).hexdigest(), mk["sha256"], sid)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["reconstruction"].shape[1], 1)
            self.assertEqual(self.done_lines(sid), 1, sid)
        self.assertEqual([f for f in os.listdir(self.path("out")) if "fmr-partial" in f], [])
        with open(self.path("out", "summary.csv")) as f:
            rows = {r["id"]: r for r in csv.DictReader(f)}
        self.assertEqual(sorted(rows), ids)
        self.assertEqual({r["status"] for r in rows.values()}, {"done"}, rows)
        self.assertTrue(all(float(r["psnr"]) > 20 for r in rows.values()), rows)
        with open(self.path("out", "summary.json")) as f:
            js = json.load(f)
        self.assertEqual((js["total"], js["done"], js["pending"], js["failed"]), (n, n, 0, 0))

    # ---- tests
    def test_a_mpi_recon_equals_serial(self):
        t0 = time.time()
        run("simulate", "-o", self.path("sim"), "--matrix", "48x40", "--frames", 3, "--slices", 2, "--coils", 4,
            "--accel", 3, "--acs", 8, "-q")
        inp = self.path("sim", "subject_000.h5")
        run("recon", inp, "-o", self.path("serial.h5"), "-m", "sense", "-q")
        jid = self.submit("recon", inp, "-o", self.path("mpi.h5"), "--ntasks-per-node", 2, "--recon-args",
                          "-m sense")
        js = self.wait(jid)
        self.assertEqual((js[0]["JobState"], js[0]["ExitCode"]), ("COMPLETED", "0:0"), self.logs())
        self.assertIn("on 2 ranks", self.logs())
        with h5py.File(self.path("serial.h5"), "r") as a, h5py.File(self.path("mpi.h5"), "r") as b:
            self.assertEqual(a["reconstruction"].shape, (3, 2, 48, 40))
            self.assertLess(relerr(b["reconstruction"][()], a["reconstruction"][()]), 1e-5)
        print(f"mpi recon via sbatch: {time.time() - t0:.1f} s", flush=True)

    def test_b_cohort_array(self):
        t0 = time.time()
        man = self.cohort(8, "32x32", 2, 10)
        jid = self.submit("cohort", man, "--tasks", 4)
        js = self.wait(jid)
        self.assertEqual(sorted(j["ArrayTaskId"] for j in js), ["0", "1", "2", "3"])
        self.assertEqual({(j["JobState"], j["ExitCode"]) for j in js}, {("COMPLETED", "0:0")}, self.logs())
        self.verify_cohort(8)
        # each task did its own shard: two subjects each, subject k in task k mod 4
        for t in range(4):
            with open(self.path("out", "markers", f"shard_{t}_of_4.state")) as f:
                self.assertEqual(json.load(f)["done_now"], 2)
            with open(self.path("logs", f"fmr-cohort-{jid}_{t}.out")) as f:
                did = sorted(re.findall(r"cohort: subject (subject_\d+) ", f.read()))
            self.assertEqual(did, [f"subject_{k:03d}" for k in range(t, 8, 4)])
        print(f"cohort array: {time.time() - t0:.1f} s", flush=True)

    def test_c_preempted_cohort_is_requeued_and_complete(self):
        t0 = time.time()
        n = 8
        man = self.cohort(n, "96x96", 6, 100)
        jid = self.submit("cohort", man, "--tasks", 2)

        def started(k):  # subject k's log exists once its shard has begun it
            return os.path.exists(self.path("out", "logs", f"subject_{k:03d}.log"))

        # signal both tasks while they work on their first subject (about 1-2 s each): each
        # finishes it and stops with three of its four subjects left
        self.wait(jid, 120, until=lambda js: len(js) == 2 and started(0) and started(1))
        # task 0: USR1 to the batch shell only (what --signal=B:USR1@120 does): the trap forwards it;
        # task 1: USR1 to the job steps (reaches fmrecon directly)
        for args in (["-b", f"{jid}_0"], [f"{jid}_1"]):
            r = subprocess.run(["scancel", "--signal=USR1"] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        js = self.wait(jid, 170)
        logs = self.logs()
        self.assertEqual({(j["JobState"], j["ExitCode"]) for j in js}, {("COMPLETED", "0:0")}, logs)
        self.assertEqual(sorted(int(j["Restarts"]) for j in js), [1, 1], logs)
        self.assertIn("got USR1, forwarding", logs)
        self.assertEqual(logs.count("exited with status 3"), 2, logs)
        self.assertEqual(logs.count("requeueing job"), 2, logs)
        self.verify_cohort(n)
        print(f"preempted cohort: {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    common.main()
