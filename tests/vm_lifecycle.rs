//! The microVM sandbox behind husk's own lifecycle, on this machine's
//! /dev/kvm, with the project's test guest as the "kernel"
//! (vm/testguest: it speaks Ready, answers Start with Started and
//! Exited{testguest.exit=N}, then resets). `husk create/start/state/run/
//! kill/delete` are driven as an engine would drive them.
//!
//! Needs root (for /dev/kvm and cgroups) and binutils (the guest is
//! assembled here). `HUSK_VM_KVM_REQUIRED=1` turns a skip into a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The husk under test: $HUSK_BIN (make test's release build) when it
/// exists, else cargo's own.
fn husk_bin() -> PathBuf {
    std::env::var_os("HUSK_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_husk").into())
}

fn guest() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = root.join("target/testguest.bin");
            for tool in ["as", "ld", "make"] {
                let found = Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !found {
                    return Err(format!("{tool} is missing: cannot build the test guest"));
                }
            }
            // make rebuilds it when vm/testguest/ changed.
            let st = Command::new("make")
                .args(["-s", "-f", "mk/vm.mk", "vm-testguest"])
                .current_dir(root)
                .status()
                .map_err(|e| format!("make vm-testguest: {e}"))?;
            if !st.success() || !out.exists() {
                return Err(format!("make vm-testguest failed ({st})"));
            }
            Ok(out)
        })
        .clone()
}

/// The test guest, or why these tests cannot run here.
fn prerequisites() -> Option<PathBuf> {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    let why = match (kvm, guest()) {
        (Ok(_), Ok(g)) => return Some(g),
        (Err(e), _) => format!("/dev/kvm: {e} (needs KVM and root)"),
        (_, Err(e)) => e,
    };
    if std::env::var_os("HUSK_VM_KVM_REQUIRED").is_some() {
        panic!("cannot run the VM lifecycle tests: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A bundle and a state root of its own, removed at the end.
struct Case {
    dir: PathBuf,
    id: String,
}

impl Case {
    fn new(tag: &str, annotations: &[(&str, &str)]) -> Case {
        let id = format!("vmlc-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bundle/rootfs/etc")).unwrap();
        std::fs::write(
            dir.join("bundle/rootfs/etc/passwd"),
            "root:x:0:0::/:/bin/sh\n",
        )
        .unwrap();
        let ann: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh"], "cwd": "/", "env": ["PATH=/bin"]},
            "root": {"path": "rootfs"},
            "hostname": "vm",
            "annotations": ann,
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]}
        });
        std::fs::write(dir.join("bundle/config.json"), config.to_string()).unwrap();
        Case { dir, id }
    }

    /// Runs husk; its stdio are files, not pipes, since the VMM (as any
    /// container init) inherits them and would hold a pipe open.
    fn husk(&self, args: &[&str]) -> Output {
        self.husk_in(args, Stdio::null())
    }

    fn husk_in(&self, args: &[&str], stdin: Stdio) -> Output {
        let root = self.dir.join("root");
        let (o, e) = (self.dir.join("stdout"), self.dir.join("stderr"));
        // The test guest ignores the initramfs; any agent binary will do.
        let status = Command::new(husk_bin())
            .env("HUSK_AGENT", env!("CARGO_BIN_EXE_husk-agent"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .current_dir(self.dir.join("bundle"))
            .stdin(stdin)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap_or_default(),
            stderr: std::fs::read(&e).unwrap_or_default(),
        }
    }

    fn status(&self) -> String {
        let out = self.husk(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    fn wait_status(&self, want: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.status() != want {
            assert!(Instant::now() < until, "never became {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Nothing of the container is left: no state dir, no process that
    /// names our root, no cgroup below ours.
    fn assert_nothing_left(&self) {
        let state = self.dir.join("root").join(&self.id);
        assert!(!state.exists(), "{} is left behind", state.display());
        let root = self.dir.join("root").to_string_lossy().into_owned();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(!cmd.contains(&root), "process left behind: {cmd}");
        }
        for line in std::fs::read_to_string("/proc/self/cgroup")
            .unwrap()
            .lines()
        {
            let mut f = line.splitn(3, ':');
            let (_, ctrl, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
            if ctrl.is_empty() || ctrl.starts_with("name=") {
                continue;
            }
            let mount = Path::new("/sys/fs/cgroup").join(ctrl);
            let cg = mount.join(path.trim_start_matches('/')).join(&self.id);
            assert!(!cg.exists(), "cgroup left behind: {}", cg.display());
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = Command::new(husk_bin())
            .arg("--root")
            .arg(self.dir.join("root"))
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn vm_annotations<'a>(kernel: &'a str, extra: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("dev.husk.vm", "true"),
        ("dev.husk.vm.kernel", kernel),
        ("dev.husk.vm.cmdline_extra", extra),
    ]
}

#[test]
fn created_running_stopped() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("life", &vm_annotations(&k, "testguest.exit=7"));
    let out = c.husk(&["create", &c.id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert_eq!(c.status(), "created");
    let state: serde_json::Value =
        serde_json::from_slice(&c.husk(&["state", &c.id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "husk", "state.pid is the VMM process");
    let console = c.dir.join("root").join(&c.id).join("console.log");
    let log = std::fs::read_to_string(&console).unwrap();
    assert!(log.contains("testguest.exit=7"), "{log}");

    let out = c.husk(&["start", &c.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    // The test guest exits at once: running is brief, stopped follows.
    c.wait_status("stopped");
    let log = std::fs::read_to_string(&console).unwrap();
    assert!(log.contains("testguest: got Start"), "{log}");
    assert!(
        log.contains("sent Exited, status 0x0000000000000007"),
        "{log}"
    );
    let out = c.husk(&["delete", &c.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    c.assert_nothing_left();
}

#[test]
fn run_exits_with_the_guest_status() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    for code in [7, 0] {
        let extra = format!("testguest.exit={code}");
        let c = Case::new(&format!("run{code}"), &vm_annotations(&k, &extra));
        let out = c.husk(&["run", &c.id]);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        c.assert_nothing_left();
    }
}

#[test]
fn run_with_a_terminal() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("tty", &vm_annotations(&k, "testguest.exit=5"));
    let cfg = c.dir.join("bundle/config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["process"]["terminal"] = true.into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    // No console socket: husk run proxies the host pty the VMM sent it.
    let out = c.husk(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    c.assert_nothing_left();
}

#[test]
fn husk_vm_link_selects_the_vm() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    // No dev.husk.vm annotation: the name husk is invoked by decides.
    let c = Case::new("argv0", &vm_annotations(&k, "testguest.exit=6")[1..]);
    let link = c.dir.join("husk-vm");
    std::os::unix::fs::symlink(husk_bin(), &link).unwrap();
    let status = Command::new(&link)
        .arg("--root")
        .arg(c.dir.join("root"))
        .args(["run", &c.id])
        .env("HUSK_AGENT", env!("CARGO_BIN_EXE_husk-agent"))
        .current_dir(c.dir.join("bundle"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(6));
    c.assert_nothing_left();
}

#[test]
fn kill_ends_a_created_vm() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("kill", &vm_annotations(&k, "testguest.exit=1"));
    assert!(c.husk(&["create", &c.id]).status.success());
    let out = c.husk(&["kill", &c.id, "TERM"]);
    assert!(out.status.success(), "kill: {}", text(&out.stderr));
    c.wait_status("stopped");
    assert!(c.husk(&["delete", &c.id]).status.success());
    c.assert_nothing_left();
}

fn create_fails(c: &Case, within: Duration) -> String {
    fails(c, "create", within)
}

/// `create` or `run` fails within `within`, with one line, leaving nothing.
fn fails(c: &Case, cmd: &str, within: Duration) -> String {
    let t = Instant::now();
    let out = c.husk(&[cmd, &c.id]);
    let took = t.elapsed();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "create succeeded");
    assert!(took < within, "create took {took:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    c.assert_nothing_left();
    err
}

#[test]
fn silent_guest_fails_create_within_its_bound() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    // run too: it blocks signals before create, and the VMM must still be
    // able to kick its vCPU out of KVM_RUN.
    for cmd in ["create", "run"] {
        let c = Case::new(cmd, &vm_annotations(&k, "testguest.mode=silent"));
        let err = fails(&c, cmd, Duration::from_secs(15));
        assert!(
            err.starts_with("husk: microVM: the guest agent never reported ready within 10s"),
            "{err}"
        );
        assert!(err.contains("silent mode, never ready"), "{err}");
    }
}

#[test]
fn kvm_emulation_failure_fails_create() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("badinsn", &vm_annotations(&k, "testguest.mode=badinsn"));
    let err = create_fails(&c, Duration::from_secs(15));
    assert!(
        err.starts_with("husk: microVM: KVM internal error in the guest: emulation failure"),
        "{err}"
    );
}

#[test]
fn bad_annotations_are_named_and_leave_nothing() {
    // No KVM needed: these fail before anything happens.
    let k = "/proc/self/exe";
    for (extra, want) in [
        (
            ("dev.husk.vm.memory_mib", "64"),
            "husk: dev.husk.vm.memory_mib: a guest of 64 MiB is below the 128 MiB minimum",
        ),
        (
            ("dev.husk.vm.vcpus", "2"),
            "husk: dev.husk.vm.vcpus 2: only 1 vCPU is supported",
        ),
        (
            ("dev.husk.vm.kernel", "/nonexistent/vmlinuz"),
            "husk: dev.husk.vm.kernel /nonexistent/vmlinuz: No such file or directory",
        ),
    ] {
        let mut ann = vec![("dev.husk.vm", "true"), ("dev.husk.vm.kernel", k)];
        ann.retain(|(key, _)| *key != extra.0);
        ann.push(extra);
        let c = Case::new("bad", &ann);
        let err = create_fails(&c, Duration::from_secs(5));
        assert!(err.starts_with(want), "{err}");
    }
}

/// The test guest in wait mode runs until a signal, the end of its stdin,
/// and answers Exec.
fn waiting(kernel: &str) -> Vec<(&str, &str)> {
    vm_annotations(kernel, "testguest.mode=wait testguest.exit=4")
}

#[test]
fn stdin_and_stdout_are_relayed() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("stdio", &waiting(&k));
    let input = c.dir.join("input");
    std::fs::write(&input, "hello through COM2\n").unwrap();
    let stdin = Stdio::from(std::fs::File::open(&input).unwrap());
    // The guest echoes Stdin as Stdout; the end of stdin ends it (exit=4).
    let out = c.husk_in(&["run", &c.id], stdin);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello through COM2\n");
}

/// A container whose stdin stays open (a pipe we hold), created and
/// started; we are the subreaper of its VMM, so we can wait for it.
fn started_waiting(c: &Case) -> (i32, std::os::fd::OwnedFd) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let out = c.husk_in(&["create", &c.id], Stdio::from(r));
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let out = c.husk(&["start", &c.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    assert_eq!(c.status(), "running");
    let state: serde_json::Value =
        serde_json::from_slice(&c.husk(&["state", &c.id]).stdout).unwrap();
    (state["pid"].as_i64().unwrap() as i32, w)
}

fn wait_for(pid: i32) -> nix::sys::wait::WaitStatus {
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap()
}

#[test]
fn the_vmm_dies_by_the_signal_that_killed_the_container() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("signal", &waiting(&k));
    let (pid, _stdin) = started_waiting(&c);
    let out = c.husk(&["kill", &c.id, "TERM"]);
    assert!(out.status.success(), "kill: {}", text(&out.stderr));
    // The guest answers Signal with Exited{Signal(15)}; the VMM re-raises.
    assert_eq!(
        wait_for(pid),
        nix::sys::wait::WaitStatus::Signaled(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
            false
        )
    );
    assert_eq!(c.status(), "stopped");
    assert!(c.husk(&["delete", &c.id]).status.success());
    c.assert_nothing_left();
}

#[test]
fn exec_runs_in_the_guest_through_the_vmm() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let k = kernel.to_string_lossy();
    let c = Case::new("exec", &waiting(&k));
    let (pid, stdin) = started_waiting(&c);
    // The guest answers Exec with "exec ok" and exit status 3.
    let out = c.husk(&["exec", &c.id, "/bin/true"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "exec ok\n");
    // Detached: --pid-file names a relay that exits with the status.
    let pidfile = c.dir.join("exec.pid");
    let p = pidfile.to_string_lossy();
    let out = c.husk(&["exec", "-d", "--pid-file", &p, &c.id, "/bin/true"]);
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    let relay: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_eq!(
        wait_for(relay),
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(relay), 3)
    );
    let out = c.husk(&["exec", "-t", &c.id, "/bin/sh"]);
    assert!(
        text(&out.stderr).contains("exec --tty"),
        "{}",
        text(&out.stderr)
    );
    // The end of the container's stdin ends it with testguest.exit.
    drop(stdin);
    assert_eq!(
        wait_for(pid),
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 4)
    );
    assert!(c.husk(&["delete", &c.id]).status.success());
    c.assert_nothing_left();
}
