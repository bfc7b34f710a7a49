"""`fmrecon plan` against a measurement (issue 18, "a test checks memory on one small case"): on one
simulated subject, the predicted peak resident set of `fmrecon recon -m sense` on one rank is within
25 % of the peak RSS the kernel reports for that reconstruction run as a separate, fresh process
(getrusage(RUSAGE_CHILDREN) of a wrapper whose only child is fmrecon). The JSON carries the keys
slurm/submit reads, and the printed sbatch line is the JSON's values with the documented rounding
(memory x 1.25 per thread, ceil to MiB; time x 1.5, at least 5 minutes, ceil to seconds)."""
import json
import math
import os
import re
import subprocess
import sys

import common

# the wrapper's peak-RSS report: ru_maxrss of its children (KiB on Linux); the wrapper has one child
WRAP = ("import resource, subprocess, sys; r = subprocess.call(sys.argv[1:]); "
        "print('FMR_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(r)")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def hms(s):
    t = math.ceil(s)
    return f"{t // 3600:02d}:{(t // 60) % 60:02d}:{t % 60:02d}"


class Plan(common.TmpCase):
    def test_memory_one_small_case(self):
        fmr = common.ARGS.fmrecon
        sim = os.path.join(self.tmp, "sim")
        # big enough that k-space, coil calibration and solver are about a third of the peak,
        # not only the libraries' runtime; ~2 s of reconstruction on one core
        common.run("simulate", "-o", sim, "--matrix", "192x160", "--frames", "8", "--slices", "1",
                   "--coils", "12", "--accel", "4", "--acs", "16", "--seed", "3", "-q")
        inp = os.path.join(sim, "subject_000.h5")
        pj = os.path.join(self.tmp, "plan.json")
        r = subprocess.run([fmr, "plan", inp, "-m", "sense", "--ranks", "1", "--json", pj], env=ENV,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(pj) as f:
            plan = json.load(f)
        for k in ("peak_rss_per_rank_bytes", "wall_seconds", "sbatch_mem_per_cpu", "sbatch_time",
                  "threads_per_rank", "memory_bytes", "time_seconds"):
            self.assertIn(k, plan)
        self.assertEqual(plan["method"], "sense")
        self.assertEqual(plan["ranks"], 1)
        pred = plan["peak_rss_per_rank_bytes"]
        parts = plan["memory_bytes"]
        self.assertAlmostEqual(sum(parts.values()), pred, delta=pred * 1e-9)

        # the sbatch line: the JSON's values, rounded as documented
        lines = [l for l in r.stdout.splitlines() if l.startswith("sbatch ")]
        self.assertEqual(len(lines), 1, r.stdout)
        m = re.fullmatch(r"sbatch --mem-per-cpu=(\d+)M --time=(\d\d:\d\d:\d\d)", lines[0])
        self.assertIsNotNone(m, lines[0])
        mib = math.ceil(pred * 1.25 / plan["threads_per_rank"] / 2 ** 20)
        self.assertEqual(int(m.group(1)), mib)
        self.assertEqual(plan["sbatch_mem_per_cpu"], f"{mib}M")
        self.assertEqual(m.group(2), hms(max(300.0, plan["wall_seconds"] * 1.5)))
        self.assertEqual(plan["sbatch_time"], m.group(2))

        # the measurement: the same reconstruction in a fresh process
        out = os.path.join(self.tmp, "rec.h5")
        r = subprocess.run([sys.executable, "-c", WRAP, fmr, "recon", inp, "-o", out, "-m", "sense", "-q"],
                           env=ENV, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(out))
        kb = [int(l.split()[1]) for l in r.stderr.splitlines() if l.startswith("FMR_RSS_KB")]
        self.assertEqual(len(kb), 1, r.stderr)
        meas = kb[0] * 1024.0
        ratio = pred / meas
        print(f"plan vs measured peak RSS (sense, 1 rank, 8x1x12x192x160): predicted {pred / 2**20:.1f} MB, "
              f"measured {meas / 2**20:.1f} MB, ratio {ratio:.3f}; data parts (not runtime) "
              f"{(pred - parts['runtime']) / 2**20:.1f} MB", file=sys.stderr)
        self.assertLessEqual(abs(ratio - 1.0), 0.25, f"predicted {pred:.0f} B vs measured {meas:.0f} B")


if __name__ == "__main__":
    common.main()
