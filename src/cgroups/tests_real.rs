//! Tests against this host's real cgroups. Every cgroup is made below the
//! cgroup the test process is in (a relative cgroupsPath), in each
//! hierarchy, and removed by a Drop guard, pass or fail. The test process
//! never moves: a child (`sleep`, a busy loop) is moved and killed by pid.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{plan, CgroupPaths, Layout, Manager};

/// A test's cgroups and children; cleaned up on drop whatever happened.
struct Guard {
    mgr: Manager,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.mgr.destroy();
        for d in self.mgr.paths().created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// None (the test says why) when not root or the host has no cgroups.
fn setup(name: &str, tweak: impl FnOnce(&mut CgroupPaths)) -> Option<Guard> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: cgroup tests need root");
        return None;
    }
    let rel = format!("husk-test-{}-{name}", std::process::id());
    let mut p = plan(Some(&rel), "unused").expect("plan");
    tweak(&mut p);
    let mut g = Guard {
        mgr: Manager::new(p),
        children: Vec::new(),
    };
    g.mgr.create().expect("create");
    Some(g)
}

impl Guard {
    fn spawn(&mut self, script: &str) -> i32 {
        let c = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = c.id() as i32;
        self.children.push(c);
        self.mgr.add_pid(pid).expect("add_pid");
        pid
    }

    fn dir(&self, ctrl: &str) -> &Path {
        &self.mgr.paths().v1[ctrl].dir
    }
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f))
        .unwrap()
        .trim()
        .to_string()
}

fn is_v1_host() -> bool {
    matches!(super::detect(), Ok(Layout::V1 | Layout::Hybrid))
}

#[test]
fn real_v1_limits_pids_and_destroy() {
    if !is_v1_host() {
        return eprintln!("skipped: no cgroup v1 hierarchies on this host");
    }
    let Some(mut g) = setup("limits", |_| {}) else {
        return;
    };
    let pid = g.spawn("exec sleep 100");
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(
        r#"{"memory":{"limit":67108864},"pids":{"limit":32},"cpu":{"quota":20000,"period":100000}}"#,
    )
    .unwrap();
    super::validate(&r, g.mgr.paths()).unwrap();
    g.mgr.apply(&r).unwrap();
    assert_eq!(read(g.dir("memory"), "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(g.dir("pids"), "pids.max"), "32");
    assert_eq!(read(g.dir("cpu"), "cpu.cfs_quota_us"), "20000");
    // The new cpuset cgroup inherited its parent's cpus and mems.
    let cs = g.mgr.paths().v1["cpuset"].clone();
    assert_eq!(
        read(&cs.dir, "cpuset.cpus"),
        read(cs.dir.parent().unwrap(), "cpuset.cpus")
    );
    // The child is in every hierarchy, name=systemd and unified included.
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let name = format!("husk-test-{}-limits", std::process::id());
    for line in own.lines() {
        assert!(line.ends_with(&name), "{line}");
    }
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);
    let dirs: Vec<_> = g
        .mgr
        .paths()
        .hierarchies()
        .iter()
        .map(|h| h.dir.clone())
        .collect();
    assert!(dirs.iter().all(|d| d.is_dir()));

    let mut c = g.children.pop().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    g.mgr.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    g.mgr.destroy().expect("destroy twice is fine");
}

#[test]
fn real_v1_freezer_and_kill_all() {
    if !is_v1_host() {
        return eprintln!("skipped: no cgroup v1 hierarchies on this host");
    }
    let Some(mut g) = setup("freeze", |_| {}) else {
        return;
    };
    let busy = g.spawn("while :; do :; done");
    let sleeper = g.spawn("exec sleep 100");
    g.mgr.freeze().unwrap();
    assert_eq!(read(g.dir("freezer"), "freezer.state"), "FROZEN");
    assert!(g.mgr.is_frozen().unwrap());
    let ticks = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{busy}/stat")).unwrap();
        let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let t0 = ticks();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(ticks(), t0, "a frozen busy loop uses no cpu");
    g.mgr.thaw().unwrap();
    assert_eq!(read(g.dir("freezer"), "freezer.state"), "THAWED");
    assert!(!g.mgr.is_frozen().unwrap());

    let mut pids = g.mgr.pids().unwrap();
    pids.sort();
    let mut want = vec![busy, sleeper];
    want.sort();
    assert_eq!(pids, want);
    // SIGTERM goes pid by pid (freeze, signal, thaw): not cgroup.kill.
    g.mgr.kill_all(libc::SIGTERM).unwrap();
    for c in &mut g.children {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
    }
    assert!(!g.mgr.is_frozen().unwrap(), "kill_all thaws what it froze");
    g.children.clear();
}

/// cgroup v2 as the `unified` mount can do it: no controllers, but procs,
/// freeze and kill are core features.
#[test]
fn real_v2_unified_procs_freeze_kill() {
    let Ok(host) = super::Host::read() else {
        return;
    };
    if host.v2_mount().is_none() {
        return eprintln!("skipped: no cgroup2 mount");
    }
    // Only the unified hierarchy, so freeze and kill take the v2 paths.
    let Some(mut g) = setup("v2", |p| {
        p.v1.clear();
        p.unified_controllers.clear();
    }) else {
        return;
    };
    let u = g.mgr.paths().unified.clone().unwrap();
    assert!(super::layout::is_cgroup2(&u.dir));
    assert!(g.mgr.clone_into().is_some());
    let pid = g.spawn("while :; do :; done");
    assert_eq!(read(&u.dir, "cgroup.procs"), pid.to_string());
    g.mgr.freeze().unwrap();
    assert_eq!(read(&u.dir, "cgroup.freeze"), "1");
    assert!(read(&u.dir, "cgroup.events")
        .lines()
        .any(|l| l == "frozen 1"));
    assert!(g.mgr.is_frozen().unwrap());
    g.mgr.thaw().unwrap();
    assert!(read(&u.dir, "cgroup.events")
        .lines()
        .any(|l| l == "frozen 0"));
    // SIGKILL goes through cgroup.kill, which also reaches frozen tasks.
    g.mgr.freeze().unwrap();
    g.mgr.kill_all(libc::SIGKILL).unwrap();
    let mut c = g.children.pop().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGKILL));
    g.mgr.destroy().unwrap();
    assert!(!u.dir.exists());
}

#[test]
fn real_v1_stats_and_oom_event() {
    use super::OomEvent;
    use std::io::Write;
    use std::os::fd::AsFd;
    if !is_v1_host() {
        return eprintln!("skipped: no cgroup v1 hierarchies on this host");
    }
    let Some(mut g) = setup("oom", |_| {}) else {
        return;
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(
        r#"{"memory":{"limit":16777216,"swap":16777216},"pids":{"limit":10}}"#,
    )
    .unwrap();
    g.mgr.apply(&r).unwrap();
    // dd waits for a line, then touches a 64 MiB buffer: past the limit.
    let mut c = Command::new("sh")
        .args([
            "-c",
            "read x; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id() as i32;
    let mut stdin = c.stdin.take().unwrap();
    g.children.push(c);
    g.mgr.add_pid(pid).unwrap();

    let s = g.mgr.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 16_777_216);
    assert_eq!((s.pids.current, s.pids.limit), (1, 10));
    let j = serde_json::to_value(&s).unwrap();
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(j.get(k).is_some(), "{k} missing in {j}");
    }

    let mut w = g.mgr.oom_events().unwrap();
    writeln!(stdin, "go").unwrap();
    let mut fds = [nix::poll::PollFd::new(
        w.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut fds, 10_000u16).unwrap();
    assert_eq!(n, 1, "no OOM event within 10s");
    assert!(matches!(w.wait().unwrap(), OomEvent::Oom(k) if k >= 1));
    use std::os::unix::process::ExitStatusExt;
    let st = g.children[0].wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "dd was OOM-killed");
    let m = g.mgr.stats().unwrap().memory;
    // (This kernel leaves failcnt at 0 on an OOM kill; the peak shows it.)
    assert_eq!(m.usage.max, 16_777_216, "{m:?}");
}

/// The eBPF device program, loaded and attached for real to a cgroup of the
/// unified mount: /dev/null (c 1:3) opens, /dev/zero (c 1:5) does not.
#[test]
fn real_v2_device_program() {
    let Ok(host) = super::Host::read() else {
        return;
    };
    if host.v2_mount().is_none() {
        return eprintln!("skipped: no cgroup2 mount");
    }
    let Some(g) = setup("bpf", |p| {
        p.v1.clear();
        p.unified_controllers.clear();
    }) else {
        return;
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#,
    )
    .unwrap();
    g.mgr.apply(&r).expect("load and attach the device program");
    let mut c = Command::new("sh")
        .args(["-c", "read x; cat /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null || echo zero-denied"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    g.mgr.add_pid(c.id() as i32).unwrap();
    use std::io::Write;
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let out = c.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "null-ok\nzero-denied\n"
    );
}

/// A new child's placement of itself (`join_self`), as where clone3
/// could not start it in its cgroup2 cgroup: every v1 hierarchy through
/// `tasks`, and the cgroup2 one through cgroup.procs.
#[test]
fn real_join_self_moves_into_every_hierarchy() {
    use std::os::unix::process::CommandExt;
    if !is_v1_host() {
        return eprintln!("skipped: needs a v1 or hybrid host");
    }
    let Some(mut g) = setup("join-self", |_| {}) else {
        return;
    };
    let Some(u) = g.mgr.paths().unified.clone() else {
        return eprintln!("skipped: no cgroup2 hierarchy beside the v1 ones");
    };
    let paths = g.mgr.paths().clone();
    let mut cmd = Command::new("sleep");
    cmd.arg("1000").stdin(Stdio::null());
    // SAFETY: the hook only writes cgroupfs files (glibc's fork leaves
    // malloc usable in the child).
    unsafe {
        cmd.pre_exec(move || {
            Manager::new(paths.clone())
                .join_self(false)
                .map_err(std::io::Error::other)
        });
    }
    let c = cmd.spawn().expect("spawn");
    let pid = c.id() as i32;
    g.children.push(c);
    assert_eq!(read(&u.dir, "cgroup.procs"), pid.to_string());
    for (name, h) in &g.mgr.paths().v1 {
        assert_eq!(read(&h.dir, "cgroup.procs"), pid.to_string(), "{name}");
    }
}
