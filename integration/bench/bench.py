#!/usr/bin/env python3
"""husk vs crun vs runc: start latency, create/start split, peak RSS,
throughput and exec, on one busybox bundle.  Stdlib only; run as root.

    python3 integration/bench/bench.py [--rounds N] [--quick] [--husk PATH]

Method
- Every runtime runs inside one private mount namespace in which the cgroup2
  `unified` mount is unmounted (crun 1.8 refuses the hybrid layout), so all
  three see the same pure cgroup v1 tree.  The script re-executes itself under
  `unshare -m --propagation private` to get there.
- Runtimes take turns within each round (A B C, then B C A, C A B: the order
  rotates so that none always follows the same neighbour) after warm-up runs.
  Per metric: median [min-max] over rounds; husk/X is the median of the
  per-round ratios, not the ratio of medians.
- Commands are started with posix_spawn and reaped with wait4: the timer
  covers exactly one runtime invocation plus spawn/reap (~0.1 ms, the same
  for all three).
- Every container gets its own cgroup, linux.cgroupsPath = P/husk-bench-...,
  an absolute path where P is this script's own cgroup (the deepest one in
  /proc/self/cgroup; the script refuses to run if the others are not its
  prefixes), so every cgroup a runtime makes is below the script's own in
  every hierarchy.  (crun reads a relative path from the hierarchy root.)
  Leftovers, and parent directories the runtimes had to create, are removed
  at the end, as are all containers and state dirs.
"""
import argparse, concurrent.futures as cf, datetime, json, os, platform
import shutil, statistics, subprocess, sys, tempfile, time

NS_ENV = "HUSK_BENCH_IN_NS"
CG = "/sys/fs/cgroup"
DEVNULL = os.open(os.devnull, os.O_RDWR)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40, help="rounds for latency, create/start, memory (default 40)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, small throughput/exec")
    ap.add_argument("--husk", default="target/release/husk")
    ap.add_argument("--bundle-rootfs", default="bundles/busybox/rootfs")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    if os.environ.get(NS_ENV) != "1":
        env = dict(os.environ, **{NS_ENV: "1"})
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private",
                               sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    ns_note = "private mount namespace (unshare -m --propagation private)"
    if os.path.ismount(CG + "/unified"):
        subprocess.run(["umount", CG + "/unified"], check=True)
        ns_note += ", cgroup2 /sys/fs/cgroup/unified unmounted: all runtimes see pure cgroup v1"
    if a.quick:
        a.rounds = 3
    n_tp, tp_rounds, n_exec = (20, 1, 10) if a.quick else (100, 5, 50)

    rts = {"husk": os.path.abspath(a.husk),
           "crun": "/usr/bin/crun",
           "runc": next((p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.path.exists(p)), "runc")}
    for n, p in rts.items():
        if not os.access(p, os.X_OK):
            sys.exit(f"bench: {n}: {p} is not executable")
    B = Bench(rts, a.bundle_rootfs)
    try:
        B.header(ns_note, a, n_tp, tp_rounds, n_exec)
        B.check()
        t0 = time.monotonic()
        B.latency(a.rounds)
        B.split(a.rounds)
        B.memory(a.rounds)
        B.throughput(tp_rounds, n_tp)
        B.exec_(n_exec)
        B.report(time.monotonic() - t0)
    finally:
        B.cleanup()


class Bench:
    def __init__(self, rts, rootfs):
        self.rts = rts
        self.names = list(rts)
        self.tmp = tempfile.mkdtemp(prefix="husk-bench.", dir="/run")
        self.seq = 0
        self.results = {}          # metric -> {rt: [values]}, plus per-round lists
        self.units = {}
        self.notes = []
        self.failures = {}         # (runtime, metric) -> [failed, first error]
        self.cg_parent, self.cg_existing = own_cgroup()
        self.rootfs = os.path.abspath(rootfs)
        if not os.path.exists(os.path.join(self.rootfs, "bin/true")):
            self.rootfs = make_rootfs(self.tmp)
        self.base = self.base_config()

    # ---------------------------------------------------------------- setup
    def base_config(self):
        d = os.path.join(self.tmp, "spec")
        os.makedirs(d)
        subprocess.run([self.rts["runc"], "spec"], cwd=d, check=True)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        c["root"] = {"path": self.rootfs, "readonly": True}
        return c

    def bundle(self, rt, args):
        """A fresh bundle dir + container id for one container of `rt`."""
        self.seq += 1
        cid = f"hb-{rt}-{os.getpid()}-{self.seq}"
        d = os.path.join(self.tmp, "b", cid)
        os.makedirs(d)
        c = json.loads(json.dumps(self.base))
        c["process"]["args"] = args
        c["linux"]["cgroupsPath"] = f"{self.cg_parent}/husk-bench-{cid}"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f)
        return cid, d

    def cmd(self, rt, *args):
        return [self.rts[rt], "--root", os.path.join(self.tmp, "root-" + rt)] + list(args)

    def state(self, rt, cid):
        p = subprocess.run(self.cmd(rt, "state", cid), capture_output=True, text=True)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def delete(self, rt, cid):
        subprocess.run(self.cmd(rt, "delete", "-f", cid), stdout=DEVNULL, stderr=DEVNULL)

    def header(self, ns_note, a, n_tp, tp_rounds, n_exec):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        self.meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu,
            "versions": {n: first_line([p, "--version"]) for n, p in self.rts.items()},
            "rounds": a.rounds, "throughput": {"containers": n_tp, "in_flight": 8, "rounds": tp_rounds},
            "exec_count": n_exec, "namespace": ns_note, "cgroup_parent": self.cg_parent,
            "rootfs": self.rootfs,
        }
        m = self.meta
        print(f"date      {m['date']}")
        print(f"machine   nproc={m['nproc']} kernel={m['kernel']} cpu={m['cpu']}")
        for n, v in m["versions"].items():
            print(f"{n:9} {v}  ({self.rts[n]})")
        print(f"rounds    {a.rounds} (latency, create/start, memory); throughput {tp_rounds} x {n_tp} "
              f"containers, 8 in flight; exec {n_exec} per runtime")
        print(f"setup     {ns_note}")
        print(f"cgroups   each container: cgroupsPath={self.cg_parent}/husk-bench-<id>")
        print(f"rootfs    {self.rootfs}")
        print(f"load      {open('/proc/loadavg').read().strip()} (1/5/15-min load average before the bench)")
        sys.stdout.flush()

    def check(self):
        """One container per runtime: does it run, where does its cgroup land,
        does `run` delete the container?"""
        self.run_deletes = {}
        for rt in self.names:
            cid, d = self.bundle(rt, ["/bin/sleep", "100"])
            t, rc, _, err = spawn(self.cmd(rt, "create", "--bundle", d, cid))
            if rc != 0:
                sys.exit(f"bench: {rt} create failed: {err}")
            pid = self.state(rt, cid)["pid"]
            mem = next((l.strip().split(":", 2)[2] for l in open(f"/proc/{pid}/cgroup") if ":memory:" in l), "?")
            want = f"{self.cg_parent}/husk-bench-{cid}"
            where = "own cgroup as asked" if mem == want else f"NOT its own cgroup: memory:{mem}"
            print(f"check     {rt}: container cgroup -> {where}")
            if mem != want:
                self.notes.append(f"{rt} did not put the container in its own cgroup (memory:{mem}); "
                                  f"it skips cgroup setup the others pay for")
            self.delete(rt, cid)
            cid, d = self.bundle(rt, ["/bin/true"])
            t, rc, _, err = spawn(self.cmd(rt, "run", "--bundle", d, cid))
            if rc != 0:
                sys.exit(f"bench: {rt} run failed ({rc}): {err}")
            self.run_deletes[rt] = self.state(rt, cid) is None
            if not self.run_deletes[rt]:
                print(f"check     {rt}: `run` leaves the container behind; latency adds a timed `delete`")
                self.delete(rt, cid)
        sys.stdout.flush()

    # ---------------------------------------------------------------- measurements
    def rounds(self, n, warm=2):
        """Yield (round, runtime order); the first `warm` rounds are warm-up (round < 0)."""
        for r in range(-warm, n):
            k = r % len(self.names)
            yield r, self.names[k:] + self.names[:k]

    def record(self, metric, unit, r, rt, v):
        """v is None for a failed attempt: it is counted, and the round drops
        out of that runtime's figures and ratios."""
        if r >= 0:
            self.results.setdefault(metric, {}).setdefault(rt, []).append(v)
            self.units[metric] = unit

    def failed(self, rt, metric, n, err):
        f = self.failures.setdefault((rt, metric), [0, err])
        f[0] += n

    def run_once(self, rt, args=("/bin/true",)):
        cid, d = self.bundle(rt, list(args))
        t, rc, ru, err = spawn(self.cmd(rt, "run", "--bundle", d, cid))
        if rc != 0:
            self.failed(rt, "run", 1, err)
            self.delete(rt, cid)
            return None, ru
        if not self.run_deletes[rt]:
            t2, rc, _, err = spawn(self.cmd(rt, "delete", cid))
            t += t2
        return t, ru

    def latency(self, n):
        progress("latency")
        for r, order in self.rounds(n):
            for rt in order:
                t, _ = self.run_once(rt)
                self.record("run latency", "ms", r, rt, t and t * 1e3)

    def split(self, n):
        progress("create/start")
        for r, order in self.rounds(n):
            for rt in order:
                cid, d = self.bundle(rt, ["/bin/true"])
                tc, rc, _, err = spawn(self.cmd(rt, "create", "--bundle", d, cid))
                if rc != 0:
                    self.failed(rt, "create", 1, err)
                    tc = None
                ts, rc2, _, err = spawn(self.cmd(rt, "start", cid)) if rc == 0 else (None, 1, None, "")
                if rc == 0 and rc2 != 0:
                    self.failed(rt, "start", 1, err)
                    ts = None
                self.delete(rt, cid)
                self.record("create", "ms", r, rt, tc and tc * 1e3)
                self.record("start", "ms", r, rt, ts and ts * 1e3)

    def memory(self, n):
        progress("memory")
        # wait4 from this Python process would report Python's own RSS: a
        # forked child's maxrss starts from its parent's image (and survives
        # exec).  So a small `time` forks the runtime and reports its wait4.
        tm = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else os.path.join(self.rootfs, "bin/busybox")
        tm_argv = [tm] if tm == "/usr/bin/time" else [tm, "time"]
        out = os.path.join(self.tmp, "maxrss")
        floor = None
        for r, order in self.rounds(n, warm=1):
            for rt in order:
                cid, d = self.bundle(rt, ["/bin/true"])
                _, rc, _, err = spawn(tm_argv + ["-f", "%M", "-o", out] + self.cmd(rt, "run", "--bundle", d, cid))
                if rc != 0:
                    self.failed(rt, "run", 1, err)
                if rc != 0 or not self.run_deletes[rt]:
                    self.delete(rt, cid)
                self.record("peak RSS (wait4)", "MiB", r, rt,
                            int(open(out).read().split()[-1]) / 1024 if rc == 0 else None)
        spawn(tm_argv + ["-f", "%M", "-o", out, os.path.join(self.rootfs, "bin/true")])
        self.rss_floor = f"{' '.join(tm_argv)} -f %M (floor: {int(open(out).read().split()[-1])} KiB for busybox true)"
        # /proc sample: a `run` of `sleep 0.3`, sampled once 150 ms in: the
        # summed RSS of the runtime's own processes (the tree under the
        # spawned command minus the container's process).
        for r, order in self.rounds(min(n, 5), warm=0):
            for rt in order:
                cid, d = self.bundle(rt, ["/bin/sleep", "0.3"])
                pid = os.posix_spawn(self.cmd(rt, "run", "--bundle", d, cid)[0],
                                     self.cmd(rt, "run", "--bundle", d, cid), os.environ,
                                     file_actions=stdio_actions(DEVNULL))
                time.sleep(0.15)
                st = self.state(rt, cid)
                ctr = st["pid"] if st else -1
                kb = sum(rss_kb(p) for p in tree(pid) if p != ctr)
                os.waitpid(pid, 0)
                if not self.run_deletes[rt]:
                    self.delete(rt, cid)
                self.record("RSS sum while running (/proc)", "MiB", r, rt, kb / 1024)

    def throughput(self, rounds, count):
        progress("throughput")
        for r, order in self.rounds(rounds, warm=1):
            for rt in order:
                jobs = [self.bundle(rt, ["/bin/true"]) for _ in range(count)]
                t0 = time.perf_counter()
                with cf.ThreadPoolExecutor(8) as ex:
                    errs = [e for e in ex.map(lambda j: self.run_job(rt, *j), jobs) if e]
                self.record(f"throughput {count} runs, 8 in flight", "s", r, rt, time.perf_counter() - t0)
                if errs:   # a failed run is counted, not hidden: it shows in the notes
                    self.failed(rt, "run, 8 in flight", len(errs), errs[0])
                    for cid, _ in jobs:
                        self.delete(rt, cid)

    def run_job(self, rt, cid, d):
        _, rc, _, err = spawn(self.cmd(rt, "run", "--bundle", d, cid))
        if rc == 0 and not self.run_deletes[rt]:
            spawn(self.cmd(rt, "delete", cid))
        return None if rc == 0 else f"exit {rc}: " + err.replace("\n", " | ")

    def exec_(self, count):
        progress("exec")
        ids = {}
        try:
            for rt in self.names:
                cid, d = self.bundle(rt, ["/bin/sleep", "1000"])
                ids[rt] = cid
                for sub in (["create", "--bundle", d, cid], ["start", cid]):
                    _, rc, _, err = spawn(self.cmd(rt, *sub))
                    if rc != 0:
                        raise SystemExit(f"bench: {rt} {sub[0]} failed: {err}")
            for r, order in self.rounds(count, warm=3):
                for rt in order:
                    t, rc, _, err = spawn(self.cmd(rt, "exec", ids[rt], "/bin/true"))
                    if rc != 0:
                        self.failed(rt, "exec", 1, err)
                    self.record("exec /bin/true", "ms", r, rt, t * 1e3 if rc == 0 else None)
        finally:
            for rt, cid in ids.items():
                self.delete(rt, cid)

    # ---------------------------------------------------------------- output
    def report(self, elapsed):
        out = {"meta": self.meta, "metrics": {}}
        rows = []
        for (rt, what), (n, err) in self.failures.items():
            self.notes.append(f"{rt}: {n} `{what}` FAILED (warm-up included; failed rounds are left out "
                              f"of the figures, a failed concurrent run still counts in the wall time): "
                              + err.replace("\n", " | ")[-300:])
        for metric, per in self.results.items():
            m = {rt: {"median": statistics.median(ok), "min": min(ok), "max": max(ok), "n": len(ok)}
                 for rt, v in per.items() for ok in [[x for x in v if x is not None]] if ok}
            if not all(rt in m for rt in self.names):
                self.notes.append(f"{metric}: no successful round for some runtime; left out")
                continue
            for other in ("crun", "runc"):
                ratios = [h / o for h, o in zip(per["husk"], per[other]) if h is not None and o]
                m[f"husk/{other}"] = statistics.median(ratios) if ratios else None
            m["unit"] = self.units[metric]
            out["metrics"][metric] = m
            rows.append([f"{metric} ({m['unit']})"] + [cell(m[rt]) for rt in self.names] +
                        [f"{m['husk/crun']:.2f}", f"{m['husk/runc']:.2f}"])
        head = ["metric"] + [f"{rt} median [min-max]" for rt in self.names] + ["husk/crun", "husk/runc"]
        w = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
        print()
        for row in [head] + rows:
            print("  ".join(str(x).ljust(w[i]) if i == 0 else str(x).rjust(w[i]) for i, x in enumerate(row)))
        print()
        print("peak RSS (wait4): ru_maxrss from wait4() of the runtime command, via " + self.rss_floor + ": "
              "the largest RSS of that process or of any descendant it reaped (which can be the container's "
              "own process, whose figure includes the runtime image it was exec'd from), not a sum.")
        print("RSS sum while running: one /proc sample 150 ms into `run` of `sleep 0.3`: VmRSS summed over "
              "the runtime's processes, the container's process excluded.")
        print("husk/X: median of per-round ratios (< 1: husk is faster/smaller).")
        for n in self.notes:
            print("note: " + n)
        print(f"bench took {elapsed:.0f} s; load average after: {open('/proc/loadavg').read().strip()}")
        out["notes"] = self.notes
        print("BENCH_JSON " + json.dumps(out, separators=(",", ":")))

    def cleanup(self):
        for rt in self.names:
            root = os.path.join(self.tmp, "root-" + rt)
            if os.path.isdir(root):
                for cid in os.listdir(root):
                    self.delete(rt, cid)
        left = []
        for h in hierarchies():
            base = os.path.join(CG, h) + self.cg_parent
            if not os.path.isdir(base):
                continue
            for e in os.listdir(base):
                if e.startswith("husk-bench-"):
                    left.append(os.path.join(base, e))
                    rmdir_tree(os.path.join(base, e))
            # parents of P a runtime created (mkdir -p) in hierarchies where we sit higher
            p = self.cg_parent
            while p not in ("", "/"):
                d = os.path.join(CG, h) + p
                if d not in self.cg_existing and os.path.isdir(d):
                    try:
                        os.rmdir(d)
                    except OSError:
                        break
                p = os.path.dirname(p)
        if left:
            print(f"cleanup: removed {len(left)} leftover cgroup dirs (e.g. {left[0]})")
        shutil.rmtree(self.tmp, ignore_errors=True)


# -------------------------------------------------------------------- helpers
def stdio_actions(errfd):
    return [(os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1),
            (os.POSIX_SPAWN_DUP2, errfd, 2)]


def spawn(argv):
    """Run argv, stdio to /dev/null (stderr kept for errors); return
    (seconds, exit code, rusage, stderr text)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=stdio_actions(err.fileno()))
        _, status, ru = os.wait4(pid, 0)
        t = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        msg = ""
        if rc != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()[-500:]
        return t, rc, ru, msg


def own_cgroup():
    """The deepest of this process's v1 cgroup paths; all others must be its
    prefixes.  Also: which dirs on the way down exist already in each hierarchy."""
    paths = {}
    for l in open("/proc/self/cgroup"):
        _, ctl, path = l.rstrip("\n").split(":", 2)
        if ctl:
            paths[ctl] = path
    deepest = max(paths.values(), key=len)
    for ctl, p in paths.items():
        if not (deepest == p or deepest.startswith(p.rstrip("/") + "/")):
            sys.exit(f"bench: own cgroups not nested ({ctl}:{p} vs {deepest}); cannot place all below")
    existing = set()
    for h in hierarchies():
        p = deepest
        while p not in ("", "/"):
            d = os.path.join(CG, h) + p
            if os.path.isdir(d):
                existing.add(d)
            p = os.path.dirname(p)
    return deepest.rstrip("/"), existing


def hierarchies():
    return [h for h in os.listdir(CG) if os.path.ismount(os.path.join(CG, h))]


def rmdir_tree(d):
    for root, dirs, _ in os.walk(d, topdown=False):
        for x in dirs:
            try:
                os.rmdir(os.path.join(root, x))
            except OSError:
                pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def make_rootfs(tmp):
    """Fallback when bundles/busybox/prepare.sh has not run: busybox-static + applet links."""
    bb = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    if not bb:
        sys.exit("bench: no busybox (apt-get install busybox-static)")
    r = os.path.join(tmp, "rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(r, d))
    shutil.copy(bb, os.path.join(r, "bin/busybox"))
    for ap in subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if ap != "busybox":
            os.symlink("busybox", os.path.join(r, "bin", ap))
    return r


def tree(root):
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def first_line(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


def cell(s):
    f = (lambda x: f"{x:.1f}") if s["median"] >= 10 else (lambda x: f"{x:.2f}")
    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]"


def progress(what):
    print(f"... {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
