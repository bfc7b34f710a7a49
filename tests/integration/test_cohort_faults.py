"""Fault injection for `fmrecon cohort` (docs/reliability.md, "Cohorts and faults"). Each case
breaks a run the way clusters and users do: kill -9 mid-subject, SIGINT/SIGHUP, a full disk during
the reconstruction and during the marker write (small tmpfs mounted here, unmounted in finally), the
output folder turned read-only mid-run, a finished output or its marker corrupted, two cohort
processes on one manifest, SIGTERM during the collective write of a 2-rank job, one rank of a
2-rank job killed. Every case ends with the same audit (`audit`): each subject is either done and
verified (its marker certifies the current settings and its output's size and SHA-256, computed
here with hashlib) or listed as not done in the summary; no .h5 in the output folder without a
certifying marker; no temporary file left, except those the next run removes (then the rerun is
audited too, and every subject must have been done exactly once).
Cases that need mounts (tmpfs) are skipped with the reason when this process may not mount."""
import csv
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import common
from common import run


def children(pid):
    """Direct children of pid (mpirun's ranks), from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(x.split(b"=", 1) for x in f.read().split(b"\0") if b"=" in x)
        return int(env.get(b"OMPI_COMM_WORLD_RANK", b"-1"))
    except OSError:
        return -1


class Faults(common.TmpCase):
    N = 4

    # ---- set-up helpers
    def make(self, n=N, matrix="96x96", frames=6, cg=100, prospective=False, out="out"):
        if not os.path.isdir(self.path("full")):
            extra = ["--accel", 2, "--acs", 8] if prospective else []
            run("simulate", "-o", self.path("full"), "--subjects", n, "--frames", frames, "--slices", 1, "--coils", 4,
                "--matrix", matrix, "-q", *extra)
        m = {"name": "faults", "subjects": ["full/subject_*.h5"], "output": out,
             "recon": ["-m", "sense", "--cg-iters", str(cg), "-q"]}
        if not prospective:
            m["undersample"] = ["--mask", "uniform", "--accel", "4", "--acs", "8", "-q"]
        man = self.path("manifest.json")
        with open(man, "w") as f:
            json.dump(m, f)
        self.ids = [f"subject_{i:03d}" for i in range(n)]
        self.out = self.path(out)
        return man

    def start(self, man, *extra, mpi=0):
        cmd = ([common.ARGS.mpiexec, "-n", str(mpi)] if mpi else []) + [common.ARGS.fmrecon, "cohort", man, *extra]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")

    def wait_for(self, cond, timeout=120, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    def log(self, sid):
        p = os.path.join(self.out, "logs", f"{sid}.log")
        if not os.path.exists(p):
            return ""
        with open(p) as f:
            return f.read()

    def count(self, sid, word):
        return sum(1 for l in self.log(sid).splitlines() if f" {word} {sid} " in l)

    def partials(self):
        return [f for f in os.listdir(self.out) if ".fmr-partial-" in f]

    def temporaries(self):
        found = []
        for root, _, files in os.walk(self.out):
            found += [os.path.join(root, f) for f in files if ".fmr-partial-" in f or ".tmp-" in f]
        return found

    def mount_tmpfs(self, where, size):
        os.makedirs(where, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where], capture_output=True, text=True)
        if r.returncode:
            raise unittest.SkipTest(f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root / CAP_SYS_ADMIN")
        self.mounts.append(where)

    def setUp(self):
        super().setUp()
        self.mounts = []

    def tearDown(self):
        for m in reversed(self.mounts):  # before the temporary folder goes
            self.umount(m)
        super().tearDown()

    def umount(self, where):
        for _ in range(50):
            if subprocess.run(["umount", where], capture_output=True).returncode == 0 or not os.path.ismount(where):
                return
            time.sleep(0.1)
        subprocess.run(["umount", "-l", where])

    # ---- the audit every case ends with
    def audit(self, temps_allowed=False, once=False, unmarked_allowed=False):
        with open(os.path.join(self.out, "summary.csv"), newline="") as f:
            rows = {r["id"]: r for r in csv.DictReader(f)}
        self.assertEqual(sorted(rows), self.ids)
        done = []
        for sid in self.ids:
            out = os.path.join(self.out, f"{sid}.h5")
            mk = os.path.join(self.out, "markers", f"{sid}.json")
            if rows[sid]["status"] == "done":
                with open(mk) as f:
                    m = json.load(f)
                with open(out, "rb") as f:
                    data = f.read()
                self.assertEqual((len(data), hashlib.sha256(data).hexdigest()), (m["bytes"], m["sha256"]), sid)
                with open(m["input"], "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), m["input_sha256"], sid)
                self.assertIn("settings", m)
                done.append(sid)
            else:
                self.assertIn(rows[sid]["status"], ("pending", "failed", "running", "changed"), sid)
                # nothing that looks complete: no output, or one without a certifying marker
                if os.path.exists(out) and os.path.exists(mk):
                    with open(mk) as f:
                        try:
                            m = json.load(f)
                        except ValueError:
                            m = {}  # a corrupted marker certifies nothing
                    with open(out, "rb") as f:
                        self.assertNotEqual(hashlib.sha256(f.read()).hexdigest(), m.get("sha256"), sid)
        # no final-looking .h5 without its marker (a marker-less output is invisible to users' scripts)
        for f in os.listdir(self.out):
            if f.endswith(".h5") and not unmarked_allowed:
                self.assertTrue(os.path.exists(os.path.join(self.out, "markers", f[:-3] + ".json")), f)
        if not temps_allowed:
            self.assertEqual(self.temporaries(), [])
        if once:
            self.assertEqual(done, self.ids)
            for sid in self.ids:
                self.assertEqual(self.count(sid, "done"), 1, sid + "\n" + self.log(sid))
        return rows

    def rerun_complete(self, man):
        r = run("cohort", man, "-q", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.audit(once=True)

    # ---- the cases
    def test_kill9_mid_subject(self):
        man = self.make()
        p = self.start(man, "-q")
        self.wait_for(lambda: self.count("subject_001", "start") and self.partials(), what="subject_001 under way")
        p.kill()
        p.wait(timeout=30)
        self.assertEqual(self.count("subject_001", "done"), 0, "killed too late")
        # the run left its temporaries; nothing looks complete
        self.assertTrue(self.temporaries())
        for f in os.listdir(self.out):
            if f.endswith(".h5"):
                self.assertTrue(os.path.exists(os.path.join(self.out, "markers", f[:-3] + ".json")), f)
        r = run("cohort", man, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed", r.stderr)  # the leftovers of the killed run
        self.audit(once=True)
        self.assertEqual(self.count("subject_001", "start"), 2)  # redone exactly once more
        self.assertEqual(self.count("subject_000", "start"), 1)

    def signal_case(self, sig):
        man = self.make()
        p = self.start(man)
        self.wait_for(lambda: self.count("subject_001", "start"), what="subject_001 started")
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, err)
        self.assertIn("stopped by a signal", err)
        with open(os.path.join(self.out, "markers", "shard_0_of_1.state")) as f:
            st = json.load(f)
        self.assertEqual((st["stopped_by_signal"], st["signal"]), (True, int(sig)))
        rows = self.audit()
        self.assertEqual(rows["subject_001"]["status"], "done")  # the current subject was finished
        self.assertEqual(sum(r["status"] == "done" for r in rows.values()), st["done_now"])
        self.assertLess(st["done_now"], self.N)
        self.rerun_complete(man)

    def test_sigint_stops_cleanly(self):
        self.signal_case(signal.SIGINT)

    def test_sighup_stops_cleanly(self):
        self.signal_case(signal.SIGHUP)

    def test_disk_full_during_recon(self):
        man = self.make(n=2, prospective=True)
        # the reconstruction (230 KB) does not fit; logs, locks and markers do
        self.mount_tmpfs(self.out, "160k")
        r = run("cohort", man, "-q", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("No space left on device", r.stderr)
        rows = self.audit()
        self.assertEqual({r["status"] for r in rows.values()}, {"failed"})
        with open(os.path.join(self.out, "markers", "subject_000.failed")) as f:
            self.assertIn("No space left on device", f.read())
        subprocess.run(["mount", "-o", "remount,size=16m", self.out], check=True)
        self.rerun_complete(man)

    def test_disk_full_during_marker_write(self):
        man = self.make(n=2, prospective=True)
        markers = os.path.join(self.out, "markers")
        self.mount_tmpfs(markers, "64k")
        filler = os.path.join(markers, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:  # fill it to the last block
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        r = run("cohort", man, "-q", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("No space left on device", r.stderr)
        rows = self.audit()
        self.assertEqual({r["status"] for r in rows.values()}, {"pending"})  # not even .failed fits
        self.assertEqual([f for f in os.listdir(self.out) if f.endswith(".h5")], [])  # outputs withdrawn
        os.remove(filler)
        self.rerun_complete(man)

    def test_output_read_only_mid_run(self):
        man = self.make(n=6)  # plenty of subjects after the remount, which lands after subject_000
        self.mount_tmpfs(self.out, "64m")
        p = self.start(man, "-q")
        self.wait_for(lambda: os.path.exists(os.path.join(self.out, "markers", "subject_000.json")), what="a done subject")
        # remount read-only at a moment no file is open for writing (between two writes)
        made = False
        deadline = time.time() + 60
        while not made and time.time() < deadline and p.poll() is None:
            p.send_signal(signal.SIGSTOP)
            made = subprocess.run(["mount", "-o", "remount,ro", self.out], capture_output=True).returncode == 0
            p.send_signal(signal.SIGCONT)
            if not made:
                time.sleep(0.003)
        if not made:
            p.wait(timeout=120)
            self.skipTest("the run ended before the folder could be remounted read-only")
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 1, f"remounted read-only after {os.listdir(os.path.join(self.out, 'markers'))}:\n{err}")
        self.assertIn("Read-only file system", err)
        subprocess.run(["mount", "-o", "remount,rw", self.out], check=True)
        # the summary could not be rewritten on a read-only folder: the one on disk is older, so
        # audit with a fresh one (the markers are what counts). An output finished just before the
        # remount could be neither certified nor removed: it has no marker, is not done, and the
        # rerun replaces it.
        run("cohort", man, "--summary-only")
        rows = self.audit(temps_allowed=True, unmarked_allowed=True)
        self.assertEqual(rows["subject_000"]["status"], "done")
        self.assertLess(sum(r["status"] == "done" for r in rows.values()), len(self.ids))
        self.rerun_complete(man)

    def test_corrupted_output_and_markers(self):
        man = self.make(matrix="48x40", frames=3, cg=20)
        run("cohort", man, "-q")
        before = {sid: os.path.getmtime(os.path.join(self.out, "markers", f"{sid}.json")) for sid in self.ids}
        with open(os.path.join(self.out, "subject_001.h5"), "r+b") as f:  # one byte flipped, same size
            f.seek(os.path.getsize(f.name) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        with open(os.path.join(self.out, "markers", "subject_002.json"), "w") as f:
            f.write("{ not json")
        with open(os.path.join(self.out, "markers", "subject_003.json"), "r+") as f:
            f.truncate(20)
        run("cohort", man, "--summary-only")  # the damaged ones are no longer reported done...
        rows = self.audit()
        self.assertEqual({sid for sid, r in rows.items() if r["status"] != "done"}, {"subject_001", "subject_002", "subject_003"})
        run("cohort", man, "-q")
        self.audit()  # ...and are redone; the intact one is not
        for sid in self.ids:
            changed = os.path.getmtime(os.path.join(self.out, "markers", f"{sid}.json")) != before[sid]
            self.assertEqual(changed, sid != "subject_000", sid)
            self.assertEqual(self.count(sid, "done"), 1 if sid == "subject_000" else 2, sid)

    def test_two_processes_one_manifest(self):
        man = self.make(n=6)
        a, b = self.start(man, "-q"), self.start(man, "-q")
        ea, eb = a.communicate(timeout=300)[1], b.communicate(timeout=300)[1]
        self.assertEqual((a.returncode, b.returncode), (0, 0), ea + eb)
        self.audit(once=True)
        for sid in self.ids:
            self.assertEqual(self.count(sid, "start"), 1, sid)  # never started twice
        # both really worked (the start lines name the pid): the work was shared, not serialised
        pids = {l.split("pid ")[-1].rstrip(")") for sid in self.ids for l in self.log(sid).splitlines() if " start " in l}
        self.assertEqual(pids, {str(a.pid), str(b.pid)})
        with open(os.path.join(self.out, "summary.json")) as f:
            self.assertEqual(json.load(f)["done"], 6)

    def test_sigterm_during_collective_write(self):
        man = self.make()
        p = self.start(man, "-q", mpi=2)
        self.wait_for(lambda: self.count("subject_001", "start") and self.partials(), what="subject_001 being written")
        ranks = children(p.pid)
        self.assertEqual(len(ranks), 2, ranks)
        for r in ranks:  # as scancel --signal=TERM does: every rank
            os.kill(r, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, err)
        rows = self.audit()
        self.assertEqual(rows["subject_001"]["status"], "done")  # the write was finished, not torn
        self.rerun_complete(man)

    def test_rank_killed_mid_recon(self):
        man = self.make()
        p = self.start(man, "-q", mpi=2)
        self.wait_for(lambda: self.count("subject_001", "start") and self.partials(), what="subject_001 under way")
        every = children(p.pid)
        ranks = [r for r in every if rank_of(r) == 1]
        self.assertEqual((len(every), len(ranks)), (2, 1), every)
        t0 = time.time()
        os.kill(ranks[0], signal.SIGKILL)
        p.communicate(timeout=60)
        # bounded: mpirun has returned and every rank process is gone
        self.wait_for(lambda: not any(os.path.exists(f"/proc/{r}") for r in every), timeout=30, what="the ranks to exit")
        took = time.time() - t0
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(took, 30, "the other rank did not exit in bounded time")
        print(f"rank killed: the job ended {took:.2f} s later", flush=True)
        self.audit(temps_allowed=True) if os.path.exists(os.path.join(self.out, "summary.csv")) else None
        for f in os.listdir(self.out):
            if f.endswith(".h5"):
                self.assertTrue(os.path.exists(os.path.join(self.out, "markers", f[:-3] + ".json")), f)
        self.rerun_complete(man)


if __name__ == "__main__":
    common.main()
