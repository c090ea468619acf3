//! cgroups with real containers on this host's layout (hybrid here: v1
//! controllers plus a cgroup2 `unified` mount holding only hugetlb): limits
//! that take effect, pause/resume, update, events, ps, kill --all, the
//! cgroup namespace, clear errors for what the host lacks — and that every
//! cgroup a test makes is below the test's own cgroup and gone after delete.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------- hierarchies

/// One mounted hierarchy and the test process's own cgroup in it.
#[derive(Debug, Clone)]
struct Hier {
    /// `cpu`, `name=systemd`, … ; empty for cgroup2.
    controllers: Vec<String>,
    mount: PathBuf,
    own: PathBuf,
}

impl Hier {
    fn v2(&self) -> bool {
        self.controllers.is_empty()
    }
    /// The directory of relative cgroup path `rel` (below our own cgroup).
    fn dir(&self, rel: &str) -> PathBuf {
        self.own.join(rel)
    }
}

/// Every cgroup hierarchy mounted on the host, with our own cgroup in it
/// (from /proc/self/cgroup).
fn hierarchies() -> Vec<Hier> {
    let own: Vec<(Vec<String>, String)> = fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            let ctrls = c
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            Some((ctrls, p.to_string()))
        })
        .collect();
    let mut out = Vec::new();
    for l in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let mnt = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let opts: Vec<&str> = post.nth(1).unwrap_or("").split(',').collect();
        let (ctrls, path) = match fstype {
            "cgroup2" => match own.iter().find(|(c, _)| c.is_empty()) {
                Some((_, p)) => (Vec::new(), p.clone()),
                None => continue,
            },
            "cgroup" => match own
                .iter()
                .find(|(c, _)| !c.is_empty() && c.iter().all(|x| opts.contains(&x.as_str())))
            {
                Some((c, p)) => (c.clone(), p.clone()),
                None => continue,
            },
            _ => continue,
        };
        let mount = PathBuf::from(mnt);
        let own = mount.join(path.trim_start_matches('/'));
        out.push(Hier {
            controllers: ctrls,
            mount,
            own,
        });
    }
    assert!(!out.is_empty(), "no cgroup hierarchy mounted");
    out
}

/// The hierarchy hosting v1 controller `ctrl`, or cgroup2 for `""`.
fn hier(ctrl: &str) -> Option<Hier> {
    hierarchies().into_iter().find(|h| {
        if ctrl.is_empty() {
            h.v2()
        } else {
            h.controllers.iter().any(|c| c == ctrl)
        }
    })
}

/// The container's directory for controller `ctrl` (v1), `rel` below ours.
#[track_caller]
fn cg_dir(ctrl: &str, rel: &str) -> PathBuf {
    hier(ctrl)
        .unwrap_or_else(|| panic!("no hierarchy hosts {ctrl:?}"))
        .dir(rel)
}

#[track_caller]
fn read_cg(ctrl: &str, rel: &str, file: &str) -> String {
    let p = cg_dir(ctrl, rel).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The container's directories in every hierarchy that still exist.
fn existing_cgroups(rel: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| h.dir(rel))
        .filter(|d| d.exists())
        .collect()
}

#[track_caller]
fn assert_no_cgroup(rel: &str) {
    // Removal is synchronous in husk, but rmdir of a dying cgroup can lag
    // a moment behind the last process's exit.
    wait_for(Duration::from_secs(2), || existing_cgroups(rel).is_empty());
    let left = existing_cgroups(rel);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// A fresh relative cgroupsPath, below the test's own cgroup.
fn cg_rel() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "husk-cgtest-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Pids in the container's cgroup (the pids hierarchy's cgroup.procs).
fn cgroup_procs(rel: &str) -> BTreeSet<i32> {
    let ctrl = if hier("pids").is_some() { "pids" } else { "" };
    fs::read_to_string(cg_dir(ctrl, rel).join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

// ---------------------------------------------------------------- helpers

/// A bundle placed at a fresh relative cgroupsPath, with a writable dir of
/// the host bound at /sync (the rootfs is shared and read-only).
fn cg_bundle(ctx: &Ctx) -> (Bundle, String, PathBuf) {
    let mut b = ctx.bundle();
    let rel = cg_rel();
    b.linux("cgroupsPath", json!(rel));
    let sync = ctx.tempdir("sync");
    b.bind(&sync, "/sync", false);
    (b, rel, sync)
}

/// Create and start; returns the id.
#[track_caller]
fn create_start(ctx: &Ctx, b: &Bundle) -> String {
    let id = ctx.create(b);
    assert_ok(&ctx.husk(&["start", &id]));
    id
}

/// `delete --force`, then nothing of the container may remain.
#[track_caller]
fn delete_clean(ctx: &Ctx, id: &str, rel: &str) {
    assert_ok(&ctx.husk(&["delete", "--force", id]));
    assert_no_cgroup(rel);
    assert!(
        !ctx.root_entries().contains(&id.to_string()),
        "state dir of {id} left"
    );
}

#[track_caller]
fn wait_file(p: &Path, what: &str) -> String {
    assert!(
        wait_for(Duration::from_secs(5), || p.exists()),
        "timed out waiting for {what} ({})",
        p.display()
    );
    // The writer may still be mid-write; wait for a complete line.
    let mut s = String::new();
    wait_for(Duration::from_secs(2), || {
        s = fs::read_to_string(p).unwrap_or_default();
        s.ends_with('\n')
    });
    s
}

fn status_of(ctx: &Ctx, id: &str) -> String {
    ctx.state(id)["status"].as_str().unwrap_or("").to_string()
}

/// A spawned husk process (events stream), killed by pid on drop.
struct Spawned {
    child: Child,
    out: PathBuf,
}

impl Spawned {
    fn new(ctx: &Ctx, args: &[&str]) -> Spawned {
        let out = ctx.tempdir("spawn").join("out");
        let mut c = ctx.cmd();
        c.args(args)
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null());
        Spawned {
            child: c.spawn().unwrap(),
            out,
        }
    }
    fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_usage(rel: &str) -> u64 {
    if hier("cpuacct").is_some() {
        read_cg("cpuacct", rel, "cpuacct.usage").parse().unwrap()
    } else {
        let s = read_cg("", rel, "cpu.stat");
        s.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1000
    }
}

// ---------------------------------------------------------------- memory / OOM

/// A container whose sh waits for /sync/go, then runs dd past a 32 MiB
/// limit (swap equal: it cannot swap), writes dd's status to /sync/rc and
/// stays up.
fn oom_bundle(ctx: &Ctx) -> (Bundle, String, PathBuf) {
    let (mut b, rel, sync) = cg_bundle(ctx);
    let limit = 32u64 << 20;
    b.linux(
        "resources",
        json!({"memory": {"limit": limit, "swap": limit}}),
    );
    // dd reads 64M from /dev/zero into one buffer: every page is touched.
    b.sh(
        "exec 2>/sync/err; while [ ! -e /sync/go ]; do sleep 0.02; done; \
          dd if=/dev/zero of=/dev/null bs=64M count=1; echo $? > /sync/rc; sleep 1000",
    );
    (b, rel, sync)
}

#[track_caller]
fn trigger_oom(sync: &Path) {
    fs::write(sync.join("go"), "").unwrap();
    let rc = wait_file(&sync.join("rc"), "dd's exit status");
    assert_eq!(
        rc.trim(),
        "137",
        "dd was not SIGKILLed; stderr: {}",
        fs::read_to_string(sync.join("err")).unwrap_or_default()
    );
}

#[test]
fn memory_limit_oom_kills_a_process_past_it() {
    let ctx = Ctx::new("cgoom");
    let (b, rel, sync) = oom_bundle(&ctx);
    let id = create_start(&ctx, &b);
    let limit = (32u64 << 20).to_string();
    assert_eq!(read_cg("memory", &rel, "memory.limit_in_bytes"), limit);
    if cg_dir("memory", &rel)
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            read_cg("memory", &rel, "memory.memsw.limit_in_bytes"),
            limit
        );
    }
    trigger_oom(&sync);
    let oom_kills = fs::read_to_string(cg_dir("memory", &rel).join("memory.oom_control"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok());
    if let Some(n) = oom_kills {
        assert!(n >= 1, "memory.oom_control counts no OOM kill");
    }
    // The container itself (sh) survives the OOM kill of its child.
    assert_eq!(status_of(&ctx, &id), "running");
    delete_clean(&ctx, &id, &rel);
}

/// Run husk, failing the test if it has not finished within `secs`.
#[track_caller]
fn husk_within(ctx: &Ctx, secs: u64, args: &[&str]) -> std::process::Output {
    let out = ctx.tempdir("within").join("out");
    let err = out.with_extension("err");
    let mut c = ctx.cmd();
    c.args(args)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let mut child = c.spawn().unwrap();
    let mut st = None;
    wait_for(Duration::from_secs(secs), || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    let Some(status) = st else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`husk {}` hung for {secs} s", args.join(" "));
    };
    std::process::Output {
        status,
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read(&err).unwrap_or_default(),
    }
}

#[track_caller]
fn wait_event(ev: &Spawned, ty: &str, secs: u64) -> Value {
    let mut found = None;
    wait_for(Duration::from_secs(secs), || {
        found = ev.lines().into_iter().find(|v| v["type"] == ty);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("events printed no {ty:?} line: {:?}", ev.text()))
}

#[test]
fn events_stream_prints_stats_and_leaves_the_container_usable() {
    let ctx = Ctx::new("cgevstream");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.args(&["sleep", "1000"]);
    let id = create_start(&ctx, &b);
    let ev = Spawned::new(&ctx, &["events", "--interval", "100ms", &id]);
    assert!(
        wait_for(Duration::from_secs(3), || ev
            .lines()
            .iter()
            .filter(|v| v["type"] == "stats" && v["id"] == json!(id))
            .count()
            >= 2),
        "events printed fewer than 2 stats lines in 3 s: {:?}",
        ev.text()
    );
    // Other commands are not blocked by the stream.
    let o = husk_within(&ctx, 3, &["state", &id]);
    assert_ok(&o);
    let o = husk_within(&ctx, 3, &["kill", &id, "KILL"]);
    assert_ok(&o);
    // The stream ends when the container stops.
    let mut ev = ev;
    assert!(
        wait_for(Duration::from_secs(3), || ev
            .child
            .try_wait()
            .unwrap()
            .is_some()),
        "events did not end when the container stopped"
    );
    drop(ev);
    delete_clean(&ctx, &id, &rel);
}

#[test]
fn events_stream_reports_oom() {
    let ctx = Ctx::new("cgevoom");
    let (b, rel, sync) = oom_bundle(&ctx);
    let id = create_start(&ctx, &b);
    let ev = Spawned::new(&ctx, &["events", "--interval", "100ms", &id]);
    // The stream is up (and watching OOM) once it printed stats.
    wait_event(&ev, "stats", 3);
    trigger_oom(&sync);
    let oom = wait_event(&ev, "oom", 3);
    assert_eq!(oom["id"], json!(id), "{oom}");
    drop(ev);
    assert_ok(&husk_within(&ctx, 3, &["delete", "--force", &id]));
    assert_no_cgroup(&rel);
}

#[test]
fn oom_killed_init_exits_137() {
    let ctx = Ctx::new("cgoominit");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    let limit = 32u64 << 20;
    b.linux(
        "resources",
        json!({"memory": {"limit": limit, "swap": limit}}),
    );
    b.args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    let o = ctx.run(&b);
    assert_eq!(o.status.code(), Some(137), "{}", show(&o));
    assert_no_cgroup(&rel);
}

#[test]
fn events_stats_json_shape() {
    let ctx = Ctx::new("cgstats");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.linux(
        "resources",
        json!({"memory": {"limit": 64u64 << 20}, "pids": {"limit": 50}}),
    );
    b.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000");
    let id = create_start(&ctx, &b);
    let o = ctx.husk(&["events", "--stats", &id]);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "one JSON line expected: {out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], json!(id), "{v}");
    let d = &v["data"];
    for k in ["cpu", "memory", "pids"] {
        assert!(d[k].is_object(), "data.{k} missing: {v}");
    }
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert_eq!(d["memory"]["usage"]["limit"], json!(64u64 << 20), "{v}");
    let cur = d["pids"]["current"].as_u64().unwrap_or(0);
    assert!((1..=50).contains(&cur), "pids.current {cur}: {v}");
    assert_eq!(d["pids"]["limit"], json!(50), "{v}");
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- pids

#[test]
fn pids_limit_makes_fork_fail() {
    let ctx = Ctx::new("cgpids");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    b.linux("resources", json!({"pids": {"limit": 10}}));
    // busybox sh exits when fork fails: fork in a subshell.
    b.sh(
        "(for i in $(seq 20); do sleep 10 & done) 2>/sync/err; echo done > /sync/done; sleep 1000",
    );
    let id = create_start(&ctx, &b);
    wait_file(&sync.join("done"), "the fork loop");
    assert_eq!(read_cg("pids", &rel, "pids.max"), "10");
    let cur: u64 = read_cg("pids", &rel, "pids.current").parse().unwrap();
    assert!(cur <= 10, "pids.current {cur} > limit 10");
    assert!(cur >= 5, "pids.current {cur}: the sleeps did not start");
    let err = fs::read_to_string(sync.join("err")).unwrap();
    assert!(err.contains("can't fork"), "no fork failure: {err:?}");
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- cpu, cpuset, blkio

#[test]
fn cpu_cpuset_blkio_values_visible_in_cgroup_files() {
    let ctx = Ctx::new("cgcpu");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    b.add_namespace("cgroup");
    b.linux(
        "resources",
        json!({
            "cpu": {"quota": 25000, "period": 50000, "shares": 512, "cpus": "0", "mems": "0"},
            "blockIO": {"weight": 300},
        }),
    );
    b.sh("cd /sys/fs/cgroup/cpu && cat cpu.cfs_quota_us cpu.cfs_period_us cpu.shares > /sync/in.tmp; \
          mv /sync/in.tmp /sync/in; sleep 1000");
    let id = create_start(&ctx, &b);
    assert_eq!(read_cg("cpu", &rel, "cpu.cfs_quota_us"), "25000");
    assert_eq!(read_cg("cpu", &rel, "cpu.cfs_period_us"), "50000");
    assert_eq!(read_cg("cpu", &rel, "cpu.shares"), "512");
    assert_eq!(read_cg("cpuset", &rel, "cpuset.cpus"), "0");
    assert_eq!(read_cg("cpuset", &rel, "cpuset.mems"), "0");
    let blkio = cg_dir("blkio", &rel);
    let wfile = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| blkio.join(f).exists())
        .expect("no blkio weight file on this host");
    let w = read_cg("blkio", &rel, wfile);
    // blkio.bfq.weight reads "default 300" on some kernels.
    assert_eq!(w.split_whitespace().last(), Some("300"), "{wfile}: {w}");
    // Inside (cgroup namespace): the same values at /sys/fs/cgroup/cpu.
    let inside = wait_file(&sync.join("in"), "the values read inside");
    let inside: Vec<&str> = inside.lines().collect();
    assert_eq!(inside, ["25000", "50000", "512"]);
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- pause / resume

#[test]
fn pause_stops_a_busy_loop_and_resume_restarts_it() {
    let ctx = Ctx::new("cgpause");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.sh("while :; do :; done");
    let id = create_start(&ctx, &b);
    let _thaw = Thaw(rel.clone());
    let pid = ctx.pid(&id);
    let grows = |rel: &str| {
        let a = cpu_usage(rel);
        std::thread::sleep(Duration::from_millis(200));
        cpu_usage(rel) > a
    };
    assert!(grows(&rel), "the busy loop uses no cpu");

    assert_ok(&ctx.husk(&["pause", &id]));
    assert_eq!(status_of(&ctx, &id), "paused");
    if let Some(h) = hier("freezer") {
        assert_eq!(
            fs::read_to_string(h.dir(&rel).join("freezer.state"))
                .unwrap()
                .trim(),
            "FROZEN"
        );
    }
    // The first sample may still see the last tick being accounted.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!grows(&rel), "cpu usage grows while paused");
    assert!(pid_alive(pid));

    // exec into a paused container: refused, naming the status.
    let o = ctx.husk(&["exec", &id, "true"]);
    assert_err(&o, "paused");

    assert_ok(&ctx.husk(&["resume", &id]));
    assert_eq!(status_of(&ctx, &id), "running");
    assert!(grows(&rel), "cpu usage does not grow after resume");
    delete_clean(&ctx, &id, &rel);
}

#[test]
fn exec_ignore_paused_runs_once_resumed() {
    // runc's --ignore-paused lets exec join a paused container; the new
    // process is frozen with the rest until resume.
    let ctx = Ctx::new("cgigpaused");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    let id = {
        b.args(&["sleep", "1000"]);
        create_start(&ctx, &b)
    };
    let _thaw = Thaw(rel.clone());
    assert_ok(&ctx.husk(&["pause", &id]));
    let mut c = ctx.cmd();
    c.args([
        "exec",
        "--ignore-paused",
        &id,
        "sh",
        "-c",
        "echo ran > /sync/ran",
    ]);
    let out = ctx.tempdir("ex").join("out");
    c.stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(out.with_extension("err")).unwrap());
    let mut child = c.spawn().unwrap();
    // While paused, the process must not run.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !sync.join("ran").exists(),
        "exec'd process ran in a paused container"
    );
    assert_ok(&ctx.husk(&["resume", &id]));
    let mut st = None;
    wait_for(Duration::from_secs(5), || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("exec --ignore-paused did not finish after resume");
    }
    assert!(
        st.unwrap().success(),
        "exec --ignore-paused failed: {}",
        fs::read_to_string(out.with_extension("err")).unwrap_or_default()
    );
    assert_eq!(wait_file(&sync.join("ran"), "the exec'd process"), "ran\n");
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- update

#[test]
fn update_raises_limits_while_running() {
    let ctx = Ctx::new("cgupdate");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.linux(
        "resources",
        json!({"memory": {"limit": 64u64 << 20}, "pids": {"limit": 20}, "cpu": {"shares": 256}}),
    );
    b.args(&["sleep", "1000"]);
    let id = create_start(&ctx, &b);
    let pid = ctx.pid(&id);
    assert_eq!(
        read_cg("memory", &rel, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );

    // Flags.
    assert_ok(&ctx.husk(&["update", "--memory", "128m", &id]));
    assert_eq!(
        read_cg("memory", &rel, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(status_of(&ctx, &id), "running");

    // -r FILE with runtime-spec JSON.
    let f = ctx.tempdir("upd").join("r.json");
    fs::write(
        &f,
        json!({"memory": {"limit": 256u64 << 20}, "cpu": {"shares": 1024}}).to_string(),
    )
    .unwrap();
    assert_ok(&ctx.husk(&["update", "-r", f.to_str().unwrap(), &id]));
    assert_eq!(
        read_cg("memory", &rel, "memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(read_cg("cpu", &rel, "cpu.shares"), "1024");

    // --resources - from stdin, as containerd's shim calls it.
    let mut c = ctx.cmd();
    c.args(["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({"pids": {"limit": 64}}).to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_ok(&o);
    assert_eq!(read_cg("pids", &rel, "pids.max"), "64");
    // Only what was given changed.
    assert_eq!(
        read_cg("memory", &rel, "memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(read_cg("cpu", &rel, "cpu.shares"), "1024");
    assert_eq!(status_of(&ctx, &id), "running");
    assert!(pid_alive(pid));
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- delete / kill

/// Thaws the container's cgroup when dropped, so that the Ctx guard's
/// `delete --force` can clean up after a failed test with a frozen container.
struct Thaw(String);

impl Drop for Thaw {
    fn drop(&mut self) {
        if let Some(h) = hier("freezer") {
            let _ = fs::write(h.dir(&self.0).join("freezer.state"), "THAWED");
        } else if let Some(h) = hier("") {
            let _ = fs::write(h.dir(&self.0).join("cgroup.freeze"), "0");
        }
    }
}

#[test]
fn delete_force_of_paused_container_leaves_nothing() {
    let ctx = Ctx::new("cgdelpaused");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    b.sh("sleep 1000 & sleep 1000 & echo ok > /sync/up; wait");
    let id = create_start(&ctx, &b);
    wait_file(&sync.join("up"), "the children");
    let pids = cgroup_procs(&rel);
    assert!(pids.len() >= 3, "{pids:?}");
    let _thaw = Thaw(rel.clone());
    assert_ok(&ctx.husk(&["pause", &id]));
    assert_eq!(status_of(&ctx, &id), "paused");
    delete_clean(&ctx, &id, &rel);
    for p in &pids {
        assert!(
            wait_for(Duration::from_secs(2), || !pid_alive(*p)),
            "pid {p} survived delete --force"
        );
    }
}

/// Start a container whose sh has three background children, one in its
/// own session; `kill --all` it with `signal`; every pid of its cgroup must
/// die. Returns kill's output for the callers that check it.
fn kill_all(signal: &str, pid_ns: bool) -> std::process::Output {
    let ctx = Ctx::new(&format!("cgkillall{}", signal.to_lowercase()));
    let (mut b, rel, sync) = cg_bundle(&ctx);
    if !pid_ns {
        b.remove_namespace("pid");
    }
    b.sh("sleep 1000 & sleep 1000 & setsid sleep 1000 & echo ok > /sync/up; wait");
    let id = create_start(&ctx, &b);
    wait_file(&sync.join("up"), "the children");
    let mut pids = BTreeSet::new();
    wait_for(Duration::from_secs(2), || {
        pids = cgroup_procs(&rel);
        pids.len() >= 4
    });
    assert!(pids.len() >= 4, "{pids:?}");
    let o = ctx.husk(&["kill", "--all", &id, signal]);
    for p in &pids {
        assert!(
            wait_for(Duration::from_secs(3), || !pid_alive(*p)),
            "pid {p} survived kill --all {signal} (pid ns: {pid_ns})\n{}",
            show(&o)
        );
    }
    delete_clean(&ctx, &id, &rel);
    o
}

// These check that every process dies; the exit status of `kill --all` is
// checked by `kill_all_succeeds_when_the_signal_ends_init`.

#[test]
fn kill_all_sigkill_reaches_every_process() {
    kill_all("KILL", true);
}

#[test]
fn kill_all_sigkill_without_pid_namespace() {
    kill_all("KILL", false);
}

#[test]
fn kill_all_sigterm_without_pid_namespace() {
    kill_all("TERM", false);
}

#[test]
fn kill_all_succeeds_when_the_signal_ends_init() {
    for (sig, pid_ns) in [("KILL", false), ("TERM", false), ("KILL", true)] {
        let o = kill_all(sig, pid_ns);
        assert!(
            o.status.success(),
            "kill --all {sig} (pid ns: {pid_ns}) failed\n{}",
            show(&o)
        );
    }
}

#[test]
fn delete_force_without_pid_namespace_kills_background_processes() {
    let ctx = Ctx::new("cgdelnopidns");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    b.remove_namespace("pid");
    b.sh("sleep 1000 & setsid sleep 1000 & echo ok > /sync/up; wait");
    let id = create_start(&ctx, &b);
    wait_file(&sync.join("up"), "the children");
    let pids = cgroup_procs(&rel);
    assert!(pids.len() >= 3, "{pids:?}");
    delete_clean(&ctx, &id, &rel);
    for p in &pids {
        assert!(
            wait_for(Duration::from_secs(2), || !pid_alive(*p)),
            "pid {p} survived delete --force"
        );
    }
}

// ---------------------------------------------------------------- ps

#[test]
fn ps_lists_the_cgroup_processes() {
    let ctx = Ctx::new("cgps");
    let (mut b, rel, sync) = cg_bundle(&ctx);
    b.sh("sleep 1000 & sleep 1000 & echo ok > /sync/up; wait");
    let id = create_start(&ctx, &b);
    wait_file(&sync.join("up"), "the children");
    let procs = cgroup_procs(&rel);
    assert_eq!(procs.len(), 3, "{procs:?}");

    let o = ctx.husk(&["ps", "--format", "json", &id]);
    assert_ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: BTreeSet<i32> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect();
    assert_eq!(got, procs);

    let o = ctx.husk(&["ps", &id]);
    assert_ok(&o);
    let out = stdout(&o);
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = head
        .iter()
        .position(|h| *h == "PID")
        .unwrap_or_else(|| panic!("no PID column: {out}"));
    let table: BTreeSet<i32> = lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect();
    assert_eq!(table, procs, "{out}");
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- cgroup namespace

fn proc_self_cgroup(ctx: &Ctx, b: &mut Bundle) -> Vec<(String, String)> {
    b.sh("cat /proc/self/cgroup");
    ctx.run_ok(b)
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            Some((c.to_string(), p.to_string()))
        })
        .collect()
}

#[test]
fn container_sees_its_cgroup_as_root_in_a_cgroup_namespace() {
    let ctx = Ctx::new("cgns");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.add_namespace("cgroup");
    let lines = proc_self_cgroup(&ctx, &mut b);
    assert!(!lines.is_empty());
    for (c, p) in &lines {
        assert_eq!(p, "/", "controller {c:?} shows {p}: {lines:?}");
    }
    assert_no_cgroup(&rel);
}

#[test]
fn container_sees_host_path_without_a_cgroup_namespace() {
    let ctx = Ctx::new("cgnons");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.remove_namespace("cgroup");
    let lines = proc_self_cgroup(&ctx, &mut b);
    let hs = hierarchies();
    assert!(!lines.is_empty());
    for (c, p) in &lines {
        let h = hs
            .iter()
            .find(|h| h.controllers.join(",") == *c)
            .unwrap_or_else(|| panic!("inside lists {c:?}, the host does not"));
        let want = Path::new("/").join(h.own.strip_prefix(&h.mount).unwrap().join(&rel));
        assert_eq!(Path::new(p), want, "controller {c:?}: {lines:?}");
    }
    assert_no_cgroup(&rel);
}

// ---------------------------------------------------------------- clear errors

#[track_caller]
fn create_fails_leaving_nothing(ctx: &Ctx, b: &Bundle, rel: &str, needles: &[&str]) {
    b.write();
    let id = ctx.id();
    let o = ctx.husk(&["create", "--bundle", b.path(), &id]);
    assert!(!o.status.success(), "create succeeded\n{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("husk: ") && needles.iter().any(|n| l.contains(n))),
        "expected a `husk: ` line naming one of {needles:?}\n{}",
        show(&o)
    );
    assert!(ctx.root_entries().is_empty(), "{:?}", ctx.root_entries());
    assert_no_cgroup(rel);
}

#[test]
fn net_cls_class_id_without_net_cls_is_a_clear_error() {
    if hier("net_cls").is_some() {
        eprintln!("skipped: this host mounts net_cls; the error path needs it missing");
        return;
    }
    let ctx = Ctx::new("cgnetcls");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.linux("resources", json!({"network": {"classID": 1048577}}));
    b.args(&["true"]);
    create_fails_leaving_nothing(&ctx, &b, &rel, &["net_cls", "classID"]);
}

#[test]
fn unified_key_for_a_v1_controller_is_a_clear_error() {
    if hier("memory").is_none() {
        eprintln!("skipped: memory is not a v1 controller on this host");
        return;
    }
    let ctx = Ctx::new("cgunified");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.linux("resources", json!({"unified": {"memory.max": "67108864"}}));
    b.args(&["true"]);
    create_fails_leaving_nothing(&ctx, &b, &rel, &["memory.max", "unified"]);
}

#[test]
fn systemd_cgroup_driver_is_a_clear_error() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: systemd runs here; the error is for hosts without it");
        return;
    }
    let ctx = Ctx::new("cgsystemd");
    // A slice:prefix:name cgroupsPath.
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    let name = cg_rel();
    b.linux("cgroupsPath", json!(format!("husktest.slice:husk:{name}")));
    b.args(&["true"]);
    create_fails_leaving_nothing(&ctx, &b, &rel, &["systemd"]);
    assert_no_cgroup(&name);
    assert_no_cgroup("husktest.slice");

    // --systemd-cgroup with a plain path.
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    b.args(&["true"]);
    b.write();
    let id = ctx.id();
    let mut c = ctx.cmd();
    c.args(["--systemd-cgroup", "create", "--bundle", b.path(), &id]);
    let o = ctx.output(&mut c);
    assert_err(&o, "systemd");
    assert!(ctx.root_entries().is_empty(), "{:?}", ctx.root_entries());
    assert_no_cgroup(&rel);
}

// ---------------------------------------------------------------- hugetlb

#[test]
fn hugepage_limit_written_to_the_hugetlb_cgroup() {
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipped: the host has no 2MB hugepages");
        return;
    }
    let (ctrl, file) = match (hier("hugetlb"), hier("")) {
        (Some(_), _) => ("hugetlb", "hugetlb.2MB.limit_in_bytes"),
        (None, Some(u))
            if fs::read_to_string(u.mount.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "hugetlb") =>
        {
            ("", "hugetlb.2MB.max")
        }
        _ => {
            eprintln!("skipped: no hierarchy hosts hugetlb");
            return;
        }
    };
    let ctx = Ctx::new("cghuge");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    let limit = 8u64 << 20;
    b.linux(
        "resources",
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": limit}]}),
    );
    b.args(&["sleep", "1000"]);
    let id = create_start(&ctx, &b);
    assert_eq!(read_cg(ctrl, &rel, file), limit.to_string());
    delete_clean(&ctx, &id, &rel);
}

// ---------------------------------------------------------------- placement and cleanup

#[test]
fn default_placement_is_the_id_below_our_cgroup() {
    let ctx = Ctx::new("cgdefault");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    let id = create_start(&ctx, &b);
    let pid = ctx.pid(&id);
    for h in hierarchies() {
        let procs = fs::read_to_string(h.dir(&id).join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", h.dir(&id).display()));
        assert!(
            procs.split_whitespace().any(|p| p == pid.to_string()),
            "init {pid} not in {}",
            h.dir(&id).display()
        );
    }
    delete_clean(&ctx, &id, &id);
}

#[test]
fn delete_of_a_created_container_removes_its_cgroups() {
    let ctx = Ctx::new("cgdelcreated");
    for _ in 0..5 {
        let (mut b, rel, _sync) = cg_bundle(&ctx);
        b.args(&["true"]);
        let id = ctx.create(&b);
        assert!(!existing_cgroups(&rel).is_empty(), "create made no cgroup");
        assert_ok(&ctx.husk(&["delete", &id]));
        assert_no_cgroup(&rel);
    }
}

#[test]
fn failed_create_removes_its_cgroups() {
    let ctx = Ctx::new("cgcreatefail");
    for i in 0..10 {
        let (mut b, rel, _sync) = cg_bundle(&ctx);
        // Alternately one that reads the state first and one that does not.
        let hook = if i % 2 == 0 {
            host_sh_hook("cat > /dev/null; exit 1")
        } else {
            json!({"path": "/bin/false"})
        };
        b.args(&["true"]).hook("createRuntime", hook);
        create_fails_leaving_nothing(&ctx, &b, &rel, &["hooks.createRuntime[0]"]);
    }
}

#[test]
fn update_raises_and_lowers_memory_with_swap() {
    // v1 needs memory.limit <= memsw.limit at every step: raising writes
    // memsw first, lowering the limit first (runc orders them so).
    if !cg_dir("memory", "")
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        eprintln!("skipped: no memory.memsw (swap accounting) on this host");
        return;
    }
    let ctx = Ctx::new("cgupdswap");
    let (mut b, rel, _sync) = cg_bundle(&ctx);
    let mb = |n: u64| (n << 20).to_string();
    b.linux(
        "resources",
        json!({"memory": {"limit": 32u64 << 20, "swap": 32u64 << 20}}),
    );
    b.args(&["sleep", "1000"]);
    let id = create_start(&ctx, &b);
    assert_ok(&ctx.husk(&["update", "--memory", "128m", "--memory-swap", "128m", &id]));
    assert_eq!(read_cg("memory", &rel, "memory.limit_in_bytes"), mb(128));
    assert_eq!(
        read_cg("memory", &rel, "memory.memsw.limit_in_bytes"),
        mb(128)
    );
    assert_ok(&ctx.husk(&["update", "--memory", "48m", "--memory-swap", "48m", &id]));
    assert_eq!(read_cg("memory", &rel, "memory.limit_in_bytes"), mb(48));
    assert_eq!(
        read_cg("memory", &rel, "memory.memsw.limit_in_bytes"),
        mb(48)
    );
    assert_eq!(status_of(&ctx, &id), "running");
    delete_clean(&ctx, &id, &rel);
}
