"""slurm/submit's argument handling (--dry-run, no SLURM needed) and slurm/launch.sh's launcher
choice: common options in any position give the same sbatch line; the fmrecon to run is checked;
--shard inside an array is refused; --launcher/--cpus-per-task/--mem-per-cpu reach the job; the
auto launcher follows `srun --mpi=list` (a fake srun on PATH prints the lists of real SLURM sites);
memory and time come from `fmrecon plan` (the values of `fmrecon plan --json` run here) unless given,
--no-plan omits them, a failing plan stops the submission."""
import json
import os
import shlex
import subprocess
import tempfile
import unittest

import common

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBMIT = os.path.join(SRC, "slurm", "submit")


class Submit(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fmr-submit-")
        self.fmr = os.path.abspath(common.ARGS.fmrecon)
        self.man = os.path.join(self.tmp, "m.json")
        with open(self.man, "w") as f:
            json.dump({"subjects": ["a.h5", "b.h5", "c.h5"], "output": "out"}, f)

    def submit(self, *args, ok=True):
        r = subprocess.run([SUBMIT, "--dry-run"] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=60, cwd=self.tmp)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def parse(self, line):
        """(environment assignments, sbatch argv) of the printed command line"""
        toks = shlex.split(line)
        i = toks.index("sbatch")
        return dict(t.split("=", 1) for t in toks[:i]), toks[i:]

    def test_options_in_any_position(self):
        common_opts = ["-t", "01:00:00", "-p", "part", "--fmrecon", self.fmr, "--cpus-per-task", "4",
                       "--launcher", "pmi2", "--sbatch", "--exclusive", "--mem-per-cpu", "2G"]
        # the subcommand's own arguments, as units (an option with its value stays together)
        units = [["recon"], ["in.h5"], ["-o", "out.h5"], ["-N", "2"], ["--ntasks-per-node", "8"],
                 ["--recon-args", "-m sense"]]
        pairs = [common_opts[i:i + 2] for i in range(0, len(common_opts), 2)]
        lines = set()
        for pos in range(len(units) + 1):
            # the common options as a block at every position between units
            args = sum(units[:pos], []) + common_opts + sum(units[pos:], [])
            lines.add(self.submit(*args).stdout.strip())
        # and interleaved: one common option after each unit
        inter = []
        for k, u in enumerate(units):
            inter += u + (pairs[k] if k < len(pairs) else [])
        inter += sum(pairs[len(units):], [])
        lines.add(self.submit(*inter).stdout.strip())
        self.assertEqual(len(lines), 1, lines)
        env, sb = self.parse(lines.pop())
        self.assertEqual(env["FMR_BIN"], self.fmr)
        self.assertEqual(env["FMR_LAUNCHER"], "pmi2")
        self.assertEqual(env["FMR_RECON_ARGS"], "-m sense")
        self.assertEqual(env["FMR_INPUT"], os.path.join(self.tmp, "in.h5"))
        self.assertTrue(os.path.isfile(os.path.join(env["FMR_SLURM_DIR"], "launch.sh")))
        for o in ("-t", "01:00:00", "-p", "part", "--cpus-per-task=4", "--mem-per-cpu=2G", "-N", "2",
                  "--ntasks-per-node=8", "--exclusive"):
            self.assertIn(o, sb)
        self.assertTrue(sb[-1].endswith("slurm/recon.sbatch"))

    def test_equals_form_and_cohort(self):
        r = self.submit("cohort", self.man, "--tasks", "8", f"--fmrecon={self.fmr}", "--time=00:30:00", "--no-plan")
        env, sb = self.parse(r.stdout.strip())
        self.assertIn("--array=0-2", sb)  # at most one task per subject
        self.assertEqual(sb[sb.index("-t") + 1], "00:30:00")
        self.assertEqual(env["FMR_MANIFEST"], self.man)

    def test_missing_fmrecon_refused(self):
        for path in (os.path.join(self.tmp, "nope"), "fmrecon-not-on-path-xyz"):
            r = self.submit("recon", "a.h5", "-o", "b.h5", "--fmrecon", path, ok=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not found", r.stderr)
            self.assertEqual(r.stdout, "")  # nothing printed as if it would run

    def test_shard_in_array_refused(self):
        for ca in ("--shard 1/2", "-q --shard=0/4"):
            r = self.submit("cohort", self.man, "--fmrecon", self.fmr, "--cohort-args", ca, ok=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("--shard", r.stderr)
        self.submit("cohort", self.man, "--fmrecon", self.fmr, "--cohort-args", "-q", "--no-plan")

    def test_bad_values(self):
        r = self.submit("recon", "a.h5", "-o", "b.h5", "--fmrecon", self.fmr, "--launcher", "mvapich", ok=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.submit("recon", "a.h5", "-o", "b.h5", "--fmrecon", self.fmr, "-t", ok=False)
        self.assertIn("needs a value", r.stderr)

    # ---- memory and time from fmrecon plan
    @classmethod
    def setUpClass(cls):
        cls.ctmp = tempfile.mkdtemp(prefix="fmr-submit-plan-")
        sim = os.path.join(cls.ctmp, "sim")
        common.run("simulate", "-o", sim, "-n", "2", "--matrix", "64x48", "--frames", "4", "--slices", "2",
                   "--coils", "4", "--accel", "4", "--acs", "12", "-q")
        cls.inp = os.path.join(sim, "subject_000.h5")
        cls.cman = os.path.join(cls.ctmp, "cohort.json")
        with open(cls.cman, "w") as f:
            json.dump({"subjects": ["sim/*.h5"], "output": "out", "recon": ["-m", "sense"]}, f)

    def plan(self, *args):
        """`fmrecon plan ... --json`, run here: its JSON"""
        pj = os.path.join(self.tmp, "plan.json")
        common.run("plan", *args, "--json", pj, "-q")
        with open(pj) as f:
            return json.load(f)

    def slow_calibration(self, *plan_args):
        """a saved calibration of PLAN_ARGS with each item 100000 times slower, so that the planned
        time is above sbatch's 5-minute floor and its value shows"""
        cal = os.path.join(self.tmp, "cal.json")
        self.plan(*plan_args, "--save-calibration", cal)
        with open(cal) as f:
            c = json.load(f)
        c["t_item_s"] = c["t_item_s"] * 1e5
        slow = os.path.join(self.tmp, "cal_slow.json")
        with open(slow, "w") as f:
            json.dump(c, f)
        return slow

    def opt(self, sb, name):
        """the values of `name=...` tokens in the sbatch argv"""
        return [t.split("=", 1)[1] for t in sb if t.startswith(name + "=")]

    def test_plan_sizes_recon(self):
        job = ["recon", self.inp, "-o", "out.h5", "-N", "2", "--ntasks-per-node", "2", "--recon-args",
               "-m sense --coil-ranks 2", "--fmrecon", self.fmr]
        plan_args = [self.inp, "-m", "sense", "--coil-ranks", "2", "--ranks", "4", "--ranks-per-node", "2"]
        slow = self.slow_calibration(*plan_args)
        want = self.plan(*plan_args, "--calibration", slow)
        self.assertNotEqual(want["sbatch_time"], "00:05:00")
        r = self.submit(*job, "--plan-args", f"--calibration {slow}")
        env, sb = self.parse(r.stdout.strip())
        self.assertEqual(self.opt(sb, "--mem-per-cpu"), [want["sbatch_mem_per_cpu"]])
        self.assertEqual(self.opt(sb, "--time"), [want["sbatch_time"]])
        self.assertNotIn("-t", sb)
        self.assertEqual(env["FMR_RECON_ARGS"], "-m sense --coil-ranks 2")
        note = [l for l in r.stderr.splitlines() if l.startswith("submit: ")]
        self.assertEqual(len(note), 1, r.stderr)
        self.assertIn("from `", note[0])
        self.assertIn(f"--mem-per-cpu={want['sbatch_mem_per_cpu']} --time={want['sbatch_time']}", note[0])

        # recon options that change neither memory nor time are taken by the plan as well
        pv = list(job)
        pv[pv.index("-m sense --coil-ranks 2")] = "-m sense --coil-ranks 2 --preview --export nifti --export-dir d"
        env, sb = self.parse(self.submit(*pv, "--plan-args", f"--calibration {slow}").stdout.strip())
        self.assertEqual(self.opt(sb, "--mem-per-cpu"), [want["sbatch_mem_per_cpu"]])
        self.assertEqual(self.opt(sb, "--time"), [want["sbatch_time"]])

        # the default: a calibration measured by the plan submit runs; memory is measured, so
        # it agrees with this test's own plan up to the measurement's noise
        meas = self.plan(*plan_args)
        env, sb = self.parse(self.submit(*job).stdout.strip())
        got = self.opt(sb, "--mem-per-cpu")
        self.assertEqual(len(got), 1, sb)
        self.assertTrue(got[0].endswith("M"), got)
        ref = float(meas["sbatch_mem_per_cpu"][:-1])
        self.assertLess(abs(float(got[0][:-1]) - ref), 0.15 * ref, (got, meas["sbatch_mem_per_cpu"]))
        self.assertEqual(self.opt(sb, "--time"), [meas["sbatch_time"]])

        # user values win, one at a time
        r = self.submit(*job, "-t", "02:00:00", "--plan-args", f"--calibration {slow}")
        env, sb = self.parse(r.stdout.strip())
        self.assertEqual(sb[sb.index("-t") + 1], "02:00:00")
        self.assertEqual(self.opt(sb, "--time"), [])
        self.assertEqual(self.opt(sb, "--mem-per-cpu"), [want["sbatch_mem_per_cpu"]])
        for mem in (["--mem-per-cpu", "3G"], ["--sbatch", "--mem=8G"]):
            env, sb = self.parse(self.submit(*job, *mem, "--plan-args", f"--calibration {slow}").stdout.strip())
            self.assertEqual(self.opt(sb, "--time"), [want["sbatch_time"]])
            self.assertEqual(self.opt(sb, "--mem-per-cpu"), ["3G"] if mem[0] == "--mem-per-cpu" else [])
            self.assertEqual(self.opt(sb, "--mem"), [] if mem[0] == "--mem-per-cpu" else ["8G"])

    def test_plan_skipped_or_failing(self):
        missing = os.path.join(self.tmp, "missing.h5")
        # both given, or --no-plan: no plan runs (a missing input is not even opened)
        for extra in (["-t", "01:00:00", "--mem-per-cpu", "2G"], ["--sbatch", "--time=10 --mem-per-cpu=1G"],
                      ["--no-plan"]):
            r = self.submit("recon", missing, "-o", "o.h5", "--fmrecon", self.fmr, *extra)
            env, sb = self.parse(r.stdout.strip())
            self.assertEqual(r.stderr, "")
            if extra[0] == "--no-plan":
                self.assertEqual(self.opt(sb, "--mem-per-cpu") + self.opt(sb, "--time"), [])
                self.assertNotIn("-t", sb)
        # a plan that fails stops the submission with its error, nothing printed as if it would run
        for kind in (["recon", missing, "-o", "o.h5"], ["cohort", self.man], ["recon", self.inp, "-o", "o.h5",
                     "--recon-args", "-m nosuchmethod"]):
            r = self.submit(*kind, "--fmrecon", self.fmr, ok=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(r.stdout, "")
            self.assertIn("fmrecon plan", r.stderr)
            self.assertIn("nothing submitted", r.stderr)
        self.assertIn("nosuchmethod", r.stderr)  # the plan's own error is shown

    def test_plan_sizes_cohort(self):
        # the cohort plan: the manifest's recon options, ranks per array task, one shard per task
        plan_args = [self.cman, "--ranks", "2", "--shards", "2"]
        slow = self.slow_calibration(*plan_args)
        want = self.plan(*plan_args, "--calibration", slow)
        self.assertEqual(len(want["subjects"]), 2)
        self.assertNotEqual(want["sbatch_time"], "00:05:00")
        r = self.submit("cohort", self.cman, "--tasks", "4", "-n", "2", "--fmrecon", self.fmr,
                        "--plan-args", f"--calibration {slow}")
        env, sb = self.parse(r.stdout.strip())
        self.assertIn("--array=0-1", sb)  # two subjects: two tasks, two shards planned
        self.assertEqual(self.opt(sb, "--mem-per-cpu"), [want["sbatch_mem_per_cpu"]])
        self.assertEqual(self.opt(sb, "--time"), [want["sbatch_time"]])
        self.assertIn("--shards 2", r.stderr)

    def launcher(self, mpi_list, setting=None):
        """fmr_launcher with a fake srun printing MPI_LIST for --mpi=list"""
        bin_ = os.path.join(self.tmp, "bin")
        os.makedirs(bin_, exist_ok=True)
        with open(os.path.join(bin_, "srun"), "w") as f:
            f.write("#!/bin/sh\n[ \"$1\" = --mpi=list ] && printf '%s' \"$MPI_LIST\"\n")
        os.chmod(os.path.join(bin_, "srun"), 0o755)
        env = dict(os.environ, PATH=bin_ + ":" + os.environ["PATH"], MPI_LIST=mpi_list)
        env.pop("FMR_LAUNCHER", None)
        if setting:
            env["FMR_LAUNCHER"] = setting
        r = subprocess.run(["bash", "-c", f". {SRC}/slurm/launch.sh && fmr_launcher && fmr_launch_cmd 2 4 2 "
                            "&& echo \"${FMR_CMD[*]}\""], capture_output=True, text=True, env=env, timeout=30)
        return r

    def test_launcher_auto_detection(self):
        # the lists SLURM 22.05 prints: with and without PMIx, and a site without either
        deb = "MPI plugin types are...\n\tnone\n\tcray_shasta\n\tpmi2\n\tpmix\nspecific pmix plugin versions available: pmix_v4\n"
        nopmix = "MPI plugin types are...\n\tnone\n\tcray_shasta\n\tpmi2\n"
        none = "MPI plugin types are...\n\tnone\n"
        for lst, want, cmd in ((deb, "pmix", "srun --kill-on-bad-exit=1 --mpi=pmix -N 2 -n 4 --ntasks-per-node=2"),
                               (nopmix, "pmi2", "srun --kill-on-bad-exit=1 --mpi=pmi2 -N 2 -n 4 --ntasks-per-node=2"),
                               (none, "mpirun", "mpirun -x OMP_NUM_THREADS -np 4 --map-by ppr:2:node")):
            r = self.launcher(lst)
            out = r.stdout.split("\n")
            self.assertEqual(out[0], want, r.stderr)
            self.assertTrue(out[1].startswith(cmd), out[1])
        r = self.launcher(deb, "pmi2")
        self.assertEqual(r.stdout.split("\n")[0], "pmi2")
        r = self.launcher(deb, "bogus")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not auto, pmix, pmi2 or mpirun", r.stderr)


if __name__ == "__main__":
    common.main()
