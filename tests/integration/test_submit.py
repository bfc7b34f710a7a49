"""slurm/submit's argument handling (--dry-run, no SLURM needed) and slurm/launch.sh's launcher
choice: common options in any position give the same sbatch line; the fmrecon to run is checked;
--shard inside an array is refused; --launcher/--cpus-per-task/--mem-per-cpu reach the job; the
auto launcher follows `srun --mpi=list` (a fake srun on PATH prints the lists of real SLURM sites)."""
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
        r = self.submit("cohort", self.man, "--tasks", "8", f"--fmrecon={self.fmr}", "--time=00:30:00")
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
        self.submit("cohort", self.man, "--fmrecon", self.fmr, "--cohort-args", "-q")

    def test_bad_values(self):
        r = self.submit("recon", "a.h5", "-o", "b.h5", "--fmrecon", self.fmr, "--launcher", "mvapich", ok=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.submit("recon", "a.h5", "-o", "b.h5", "--fmrecon", self.fmr, "-t", ok=False)
        self.assertIn("needs a value", r.stderr)

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
