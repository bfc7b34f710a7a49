"""fmrecon on a real multi-node SLURM on this one machine (tests/slurm/multinode_start.sh): three
"nodes", each a network + UTS namespace with its own slurmd, joined by veths on a private bridge;
Open MPI between them only over the TCP BTL on that subnet. One ctest test per case (the case name
is the first argument, e.g. `test_multinode.py Multinode.test_recon_across_nodes --fmrecon ...`):

  test_recon_across_nodes   sbatch -N 3 (6 ranks, coil groups of 3 spanning nodes) == serial (< 1e-5),
                            one output written collectively from all nodes
  test_cohort_node_killed   a 3-task cohort array, one task per node; then a second array where one
                            node is killed mid-run (its slurmd and job steps end, the node is set down):
                            the task is requeued onto the other nodes, every subject done exactly once
                            (marker, one "done" line), summary complete
  test_rank_killed          SIGKILL to the rank on one node during srun recon: every other rank exits
                            within a bounded time, no complete-looking output, srun names rank and host
  test_scaling_nodes        slurm/scaling.sbatch on 1, 2, 3 nodes: strong-scaling efficiency next to the
                            cost model's prediction, communication bytes and time per node

Every cluster is removed at the end (class cleanup), and a crashed run's leftovers are removed by the
next start. Runs as root (namespaces); fails loudly if they cannot be created; skipped (printed)
only when not root."""
import csv
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import h5py

import common
from common import relerr, run

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBMIT = os.path.join(SRC, "slurm", "submit")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def ns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
    return [int(p) for p in r.stdout.split()]


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


PROBE = r"""
import socket, sys, time
role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(2000):
        c.sendall(c.recv(8))
    n = 0
    while n < 64 << 20:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    c.sendall(b"k")
else:
    c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.perf_counter()
    for _ in range(2000):
        c.sendall(b"12345678"); c.recv(8)
    alpha = (time.perf_counter() - t) / 4000
    buf = b"x" * (1 << 20); t = time.perf_counter()
    for _ in range(64):
        c.sendall(buf)
    c.recv(1)
    print(alpha, (64 << 20) / (time.perf_counter() - t))
"""


class Multinode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("multinode SLURM needs root (network namespaces, SlurmUser=root)")
        for b in ("slurmctld", "slurmd", "sbatch", "munged", "ip", "unshare", "nsenter"):
            if not shutil.which(b):
                raise AssertionError(f"'{b}' missing: run scripts/install-deps.sh (slurm-wlm munge iproute2)")
        cls.dir = tempfile.mkdtemp(prefix="fmr-mn-")
        cls.addClassCleanup(cls.stop)
        t0 = time.time()
        r = subprocess.run(["bash", os.path.join(SRC, "tests", "slurm", "multinode_start.sh"), cls.dir, "3"],
                           capture_output=True, text=True, timeout=180,
                           env=dict(os.environ, FMR_MN_OWNER=str(os.getpid())))
        if r.returncode:
            raise AssertionError(f"multi-node SLURM could not start (namespaces, bridge, daemons):\n"
                                 f"{r.stdout}\n{r.stderr}")
        print(r.stderr.strip() + ("\n" if r.stderr.strip() else "") + r.stdout.strip(), flush=True)
        print(f"multinode slurm up in {time.time() - t0:.2f} s", flush=True)
        with open(os.path.join(cls.dir, "env")) as f:
            for line in f:
                m = re.match(r'export (\w+)="?([^"\n]*)"?$', line.strip())
                if m:
                    os.environ[m.group(1)] = m.group(2)
        os.environ["OMP_NUM_THREADS"] = "1"
        cls.nodes = os.environ["FMR_MN_NODES"].split()
        cls.prefix = os.environ["FMR_MN_NETNS_PREFIX"]
        cls.fmr = os.path.abspath(common.ARGS.fmrecon)

    @classmethod
    def stop(cls):
        t0 = time.time()
        subprocess.run(["bash", os.path.join(SRC, "tests", "slurm", "multinode_stop.sh"), cls.dir], timeout=180)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        print(f"multinode slurm down in {time.time() - t0:.2f} s", flush=True)
        shutil.rmtree(cls.dir, ignore_errors=True)
        if cls.prefix in left:
            raise AssertionError(f"namespaces left after stop: {left}")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=self.dir)
        self.t0 = time.time()

    def tearDown(self):
        print(f"{self.id().split('.')[-1]}: {time.time() - self.t0:.1f} s", flush=True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def netns(self, node):
        return f"{self.prefix}{node[2:]}"

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

    def node_states(self):
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30)
        return dict(l.split() for l in r.stdout.splitlines() if l.strip())

    def kill_node(self, node):
        """The node dies: every process in its network namespace (slurmd, slurmstepd, the batch
        shell, job steps) gets SIGKILL; then it is marked down, as a site's health check would."""
        ns = self.netns(node)
        pids = ns_pids(ns)
        self.assertTrue(any(comm_of(p) == "slurmd" for p in pids), f"no slurmd in {ns}: {pids}")
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(100):
            if not ns_pids(ns):
                break
            time.sleep(0.05)
        self.assertEqual(ns_pids(ns), [], f"processes survive in {ns}")
        r = subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=killed_by_test"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def link_probe(self):
        """Latency (half round trip of 8 bytes) and bandwidth (64 MiB) of the TCP link between the
        namespaces of mn1 and mn2: what the cost model's alpha and beta are on these "nodes"."""
        sub = os.environ["FMR_MN_SUBNET"].rsplit(".", 1)[0]
        port = 40000 + os.getpid() % 20000
        srv = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns('mn2')}", sys.executable, "-c", PROBE,
                                "server", f"{sub}.12", str(port)], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(srv.stdout.readline().strip(), "ready")
            r = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns('mn1')}", sys.executable, "-c", PROBE,
                                "client", f"{sub}.12", str(port)], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            alpha, beta = (float(x) for x in r.stdout.split())
        finally:
            if srv.poll() is None:
                srv.kill()
            srv.wait(timeout=30)
            srv.stdout.close()
        return alpha, beta

    def cohort(self, n, matrix, frames, cg, name="out"):
        run("simulate", "-o", self.path("full"), "--subjects", n, "--frames", frames, "--slices", 1, "--coils", 4,
            "--matrix", matrix, "-q")
        man = self.path(f"manifest_{name}.json")
        with open(man, "w") as f:
            json.dump({"name": "mn", "subjects": ["full/subject_*.h5"], "output": name,
                       "undersample": ["--mask", "uniform", "--accel", "4", "--acs", "8", "-q"],
                       "recon": ["-m", "sense", "--cg-iters", str(cg), "-q"]}, f)
        return man

    def done_lines(self, out, sid):
        with open(self.path(out, "logs", f"{sid}.log")) as f:
            return sum(1 for l in f if f" done {sid} " in l)

    def verify_cohort(self, n, out="out"):
        """Every subject done exactly once, its output matching its marker, the summary complete,
        and no file that looks like a complete output except the verified ones."""
        ids = [f"subject_{i:03d}" for i in range(n)]
        for sid in ids:
            with open(self.path(out, "markers", f"{sid}.json")) as f:
                mk = json.load(f)
            o = self.path(out, f"{sid}.h5")
            with open(o, "rb") as f:
                data = f.read()
            self.assertEqual(len(data), mk["bytes"], sid)
            self.assertEqual(hashlib.sha256(data).hexdigest(), mk["sha256"], sid)
            with h5py.File(o, "r") as f:
                self.assertEqual(f["reconstruction"].shape[1], 1)
            self.assertEqual(self.done_lines(out, sid), 1, sid)
        h5 = sorted(f for f in os.listdir(self.path(out)) if f.endswith(".h5"))
        self.assertEqual(h5, [f"{s}.h5" for s in ids])
        with open(self.path(out, "summary.csv")) as f:
            rows = {r["id"]: r for r in csv.DictReader(f)}
        self.assertEqual(sorted(rows), ids)
        self.assertEqual({r["status"] for r in rows.values()}, {"done"}, rows)
        self.assertTrue(all(float(r["psnr"]) > 20 for r in rows.values()), rows)
        with open(self.path(out, "summary.json")) as f:
            js = json.load(f)
        self.assertEqual((js["total"], js["done"], js["pending"], js["failed"]), (n, n, 0, 0))

    # ---- tests
    def test_recon_across_nodes(self):
        run("simulate", "-o", self.path("sim"), "--matrix", "64x48", "--frames", 3, "--slices", 2, "--coils", 6,
            "--accel", 3, "--acs", 8, "-q")
        inp = self.path("sim", "subject_000.h5")
        run("recon", inp, "-o", self.path("serial.h5"), "-m", "sense", "-q")
        # 6 ranks, 2 per node (block placement: ranks 0-1 on mn1, 2-3 on mn2, 4-5 on mn3), coil
        # groups of 3: group 0 = ranks 0-2 (mn1 + mn2), group 1 = ranks 3-5 (mn2 + mn3)
        jid = self.submit("recon", inp, "-o", self.path("mpi.h5"), "-N", 3, "--ntasks-per-node", 2,
                          "--recon-args", "-m sense --coil-ranks 3")
        js = self.wait(jid)
        logs = self.logs()
        self.assertEqual((js[0]["JobState"], js[0]["ExitCode"]), ("COMPLETED", "0:0"), logs)
        self.assertEqual(js[0]["NodeList"], "mn[1-3]", js[0])
        self.assertIn("6 ranks on 3 node(s)", logs)
        self.assertIn("on 6 ranks", logs)
        # the ranks really were on three hosts, and reached each other only over TCP on the subnet
        hosts = re.findall(r"fmr-recon: rank (\d+) on (\S+)", logs)
        self.assertEqual(sorted(set(h for _, h in hosts)), ["mn1", "mn2", "mn3"], logs)
        self.assertIn(f"btl tcp,self on {os.environ['FMR_MN_SUBNET']}", logs)
        with h5py.File(self.path("serial.h5"), "r") as a, h5py.File(self.path("mpi.h5"), "r") as b:
            self.assertEqual(a["reconstruction"].shape, (3, 2, 64, 48))
            e = relerr(b["reconstruction"][()], a["reconstruction"][()])
            self.assertLess(e, 1e-5)
        print(f"3-node recon vs serial: relative difference {e:.2e}", flush=True)
        self.assertEqual([f for f in os.listdir(self.tmp) if "fmr-partial" in f], [])

    def test_cohort_node_killed(self):
        # part 1: an exclusive 3-task array: each task gets a whole node, all three nodes used
        man = self.cohort(9, "96x96", 6, 60)
        jid = self.submit("cohort", man, "--tasks", 3, "--sbatch", "--exclusive")
        js = self.wait(jid, 200)
        self.assertEqual({(j["JobState"], j["ExitCode"]) for j in js}, {("COMPLETED", "0:0")}, self.logs())
        self.assertEqual(sorted(j["BatchHost"] for j in js), ["mn1", "mn2", "mn3"], js)
        self.verify_cohort(9)
        print(f"cohort array on 3 nodes: {time.time() - self.t0:.1f} s", flush=True)

        # part 2: the same cohort into a new folder; the node of task 2 dies while it works
        t1 = time.time()
        man2 = self.path("manifest_out2.json")
        with open(man) as f:
            m = json.load(f)
        m["output"] = "out2"
        with open(man2, "w") as f:
            json.dump(m, f)
        jid = self.submit("cohort", man2, "--tasks", 3, "--sbatch", "--exclusive")

        def started(sid):
            return os.path.exists(self.path("out2", "logs", f"{sid}.log"))

        def done(sid):
            return os.path.exists(self.path("out2", "markers", f"{sid}.json"))

        # task 2's shard is subjects 2, 5, 8: kill its node after it finished subject 2 and began 5
        js = self.wait(jid, 200, until=lambda js: len(js) == 3 and all(j["JobState"] == "RUNNING" for j in js)
                       and done("subject_002") and started("subject_005"))
        victim = next(j for j in js if j["ArrayTaskId"] == "2")["BatchHost"]
        self.assertIn(victim, self.nodes)
        self.assertFalse(done("subject_005"))
        self.kill_node(victim)
        tk = time.time()
        # what task 2 certified before its node died (subject 5 may finish between the check above
        # and the kill; markers are renamed into place, so each one is there or not)
        before = [sid for sid in ("subject_002", "subject_005", "subject_008") if done(sid)]
        self.assertIn("subject_002", before)
        self.assertEqual(self.node_states()[victim].rstrip("*"), "down", self.node_states())
        js = self.wait(jid, 240)
        logs = self.logs()
        by = {j["ArrayTaskId"]: j for j in js}
        self.assertEqual({(j["JobState"], j["ExitCode"]) for j in js}, {("COMPLETED", "0:0")}, logs + str(js))
        self.assertEqual(int(by["2"]["Restarts"]), 1, by["2"])
        self.assertNotEqual(by["2"]["BatchHost"], victim)
        self.assertIn(by["2"]["BatchHost"], set(self.nodes) - {victim})
        self.assertEqual(self.node_states()[victim].rstrip("*"), "down")
        self.verify_cohort(9, "out2")
        # the requeued task skipped what was certified before the kill (subject 2, maybe 5) and did the rest
        with open(self.path("out2", "markers", "shard_2_of_3.state")) as f:
            st = json.load(f)
        self.assertEqual((st["done_now"], st["skipped"]), (3 - len(before), len(before)), (st, before))
        print(f"node {victim} killed: task 2 requeued onto {by['2']['BatchHost']}, all 9 subjects once, "
              f"{time.time() - tk:.1f} s from the kill to the end; part 2 {time.time() - t1:.1f} s", flush=True)

    def test_rank_killed(self):
        run("simulate", "-o", self.path("big"), "--matrix", "128x128", "--frames", 24, "--slices", 1, "--coils", 6,
            "--accel", 3, "--acs", 8, "-q")
        out = self.path("kill.h5")
        # the launch line the recon template uses (slurm/recon.sbatch): -K1 ends the step when a rank dies
        cmd = ["srun", "--kill-on-bad-exit=1", "-N", "3", "-n", "3", "--mpi=pmix", self.fmr, "recon",
               self.path("big", "subject_000.h5"), "-o", out, "-m", "sense", "--coil-ranks", "3", "--cg-iters", "500",
               "--cg-rtol", "0"]  # every solve runs its 500 iterations: the recon outlasts the kill
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            victim = None
            deadline = time.time() + 90
            while time.time() < deadline and victim is None:
                for pid in ns_pids(self.netns("mn2")):
                    if comm_of(pid) == "fmrecon":
                        victim = pid
                time.sleep(0.2)
            self.assertIsNotNone(victim, "no fmrecon rank appeared on mn2")
            time.sleep(1.5)  # inside the reconstruction (its CG allreduces)
            if p.poll() is not None:
                raise AssertionError(f"recon ended before the kill ({p.returncode}):\n{p.communicate()[0]}")
            os.kill(victim, signal.SIGKILL)
            tk = time.time()
            text, _ = p.communicate(timeout=60)
            dt = time.time() - tk
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertNotEqual(p.returncode, 0, text)
        self.assertLess(dt, 30, text)
        self.assertRegex(text, r"mn2: task 1: Killed", text)
        self.assertFalse(os.path.exists(out), "a complete-looking output was left")
        self.assertEqual([f for f in os.listdir(self.tmp) if f.endswith(".h5")], [])
        # no rank of the step is left anywhere
        time.sleep(1)
        for node in self.nodes:
            self.assertEqual([q for q in ns_pids(self.netns(node)) if comm_of(q) == "fmrecon"], [], node)
        print(f"rank 1 on mn2 killed: srun and all other ranks ended {dt:.2f} s later (status {p.returncode})",
              flush=True)

    def test_scaling_nodes(self):
        out = self.path("scaling")
        # strong scaling, one rank per node: K = 1 (items spread over nodes, no coil traffic) and
        # K = P (one coil group spanning every node: a coil-sum allreduce over TCP per CG iteration)
        jid = self.submit("scaling", "--nodes", "1,2,3", "--ranks-per-node", "1", "--modes", "strong",
                          "--coil-ranks", "1,2,3", "--out", out, "--bench-args",
                          "--frames 6 --slices 1 --coils 6 --matrix 96x96 --cg-iters 30")
        js = self.wait(jid, 280)
        self.assertEqual((js[0]["JobState"], js[0]["ExitCode"]), ("COMPLETED", "0:0"), self.logs())
        alpha, beta = self.link_probe()
        print(f"link mn1 <-> mn2 (veth + bridge, TCP): latency {alpha * 1e6:.0f} us, {beta / 1e9:.2f} GB/s",
              flush=True)
        r = subprocess.run([sys.executable, os.path.join(SRC, "slurm", "report.py"), "--scaling", out, "--model",
                            "--cores", str(os.cpu_count()), "--latency-us", f"{alpha * 1e6:.3f}",
                            "--bandwidth-gbs", f"{beta / 1e9:.4f}", "-o", self.path("report")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        print(r.stdout, flush=True)
        pts = {}
        for f in os.listdir(out):
            if f.endswith(".json"):
                with open(os.path.join(out, f)) as fh:
                    d = json.load(fh)
                pts[(d["slurm"]["nodes"], d["K"])] = d
        want = {(1, 1), (2, 1), (3, 1), (2, 2), (3, 3)}
        self.assertTrue(want <= set(pts), sorted(pts))
        for (n, k), d in pts.items():
            self.assertEqual(sorted(set(x["host"] for x in d["ranks"])), [f"mn{i}" for i in range(1, n + 1)])
            if k > 1:  # coil sums crossed the links: bytes per rank = calls x image (8 h w) x ring factor
                for x in d["ranks"]:
                    self.assertGreater(x["comm_calls"], 0)
                    self.assertGreaterEqual(x["comm_bytes"], x["comm_calls"] * 8 * 96 * 96)
            else:
                self.assertTrue(all(x["comm_calls"] == 0 for x in d["ranks"]))
        self.assertIn("efficiency", r.stdout)
        self.assertIn("predicted", r.stdout)


if __name__ == "__main__":
    common.main()
