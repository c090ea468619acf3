//! A small harness for the security and hostile-input tests: a busybox
//! rootfs, a runc-like config, and the husk binary run against a private
//! --root with every container deleted on drop. (Kept apart from
//! tests/common, which another branch owns.)
#![allow(dead_code)]

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Print why a test cannot run here and say so to the caller.
pub fn skip(why: &str) -> bool {
    eprintln!("skipped: {why}");
    true
}

pub fn prerequisites() -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} absent (apt-get install busybox-static)"));
    }
    None
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One test's world: a temp dir, a --root inside it, the husk binary.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub husk: PathBuf,
    pub tag: String,
    ids: std::sync::Mutex<Vec<String>>,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} stdout={:?} stderr={:?}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{tag}-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/husk-sec-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("state");
        std::fs::create_dir_all(&root).unwrap();
        Env {
            dir,
            root,
            husk: PathBuf::from(env!("CARGO_BIN_EXE_husk")),
            tag,
            ids: Default::default(),
        }
    }

    /// A unique container id (deleted on drop).
    pub fn id(&self, name: &str) -> String {
        let id = format!("{name}-{}", self.tag);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A bundle directory with a busybox rootfs and a base config.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let dir = self.dir.join(name);
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs);
        Bundle {
            config: base_config(args, &format!("husk-sec-{name}-{}", self.tag)),
            dir,
            rootfs,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.husk);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Run husk to completion with stdio in files (a container's init may
    /// keep pipes open long after husk returns).
    pub fn husk(&self, args: &[&str]) -> Out {
        self.husk_with(args, Stdio::null())
    }

    pub fn husk_with(&self, args: &[&str], stdin: Stdio) -> Out {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let o = self.dir.join(format!("out.{n}"));
        let e = self.dir.join(format!("err.{n}"));
        let status = self
            .cmd(args)
            .stdin(stdin)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        let out = Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap_or_default(),
            stderr: std::fs::read_to_string(&e).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        out
    }

    /// Start husk in the background, stdout and stderr to the given files.
    pub fn spawn(&self, args: &[&str], out: &Path, err: Stdio) -> Child {
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(err)
            .spawn()
            .unwrap()
    }

    /// `run` a bundle to completion (foreground, deleted afterwards).
    pub fn run(&self, b: &Bundle, id: &str) -> Out {
        b.write();
        self.husk(&["run", "--bundle", b.dir.to_str().unwrap(), id])
    }

    /// create + start a bundle whose process stays up; the init's stdout
    /// goes to `<bundle>/init.out`.
    pub fn start(&self, b: &Bundle, id: &str) {
        b.write();
        let out = b.dir.join("init.out");
        let mut c = self.spawn(
            &["create", "--bundle", b.dir.to_str().unwrap(), id],
            &out,
            Stdio::from(std::fs::File::create(b.dir.join("init.err")).unwrap()),
        );
        let st = c.wait().unwrap();
        assert!(
            st.success(),
            "create {id}: {}",
            std::fs::read_to_string(b.dir.join("init.err")).unwrap_or_default()
        );
        let o = self.husk(&["start", id]);
        assert!(o.ok(), "start {id}: {o:?}");
    }

    pub fn init_pid(&self, id: &str) -> i32 {
        let o = self.husk(&["state", id]);
        assert!(o.ok(), "state {id}: {o:?}");
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }

    pub fn exec(&self, id: &str, cmd: &[&str]) -> Out {
        let mut a = vec!["exec", id];
        a.extend_from_slice(cmd);
        self.husk(&a)
    }

    /// Is the --root directory empty (nothing left behind)?
    pub fn root_is_empty(&self) -> bool {
        std::fs::read_dir(&self.root)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("HUSK_SEC_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn mounts(&mut self) -> &mut Vec<Value> {
        self.config["mounts"].as_array_mut().unwrap()
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }
}

/// /bin/busybox and a link per applet, /etc/passwd, /tmp.
pub fn busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    for d in ["etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A runc-like config: the default mounts, masked and read-only paths,
/// pid/ipc/uts/mount/network namespaces, a cgroup below the test's own.
pub fn base_config(args: &[&str], cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS, "effective": CAPS, "permitted": CAPS
            },
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs"},
        "hostname": "sec",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "cgroupsPath": cgroups_path,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list",
                            "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]
        }
    })
}

/// Poll `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pids whose command line mentions `needle` (ours to watch, never to kill
/// blindly).
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&c).contains(needle) {
                v.push(pid);
            }
        }
    }
    v
}

/// Host mount table, without the fields that change under us.
pub fn host_mounts() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(3).take(2).collect::<Vec<_>>().join(" "))
        .filter(|l| l.contains("husk-sec-") || l.contains("husk-hostile"))
        .collect();
    v.sort();
    v
}

/// Every path under `dir` with its type and size (a snapshot to compare).
pub fn snapshot(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.push(format!(
                "{} {:?} {}",
                p.display(),
                m.file_type(),
                if m.is_file() { m.len() } else { 0 }
            ));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// Build a static helper from C source, or None (with the reason printed)
/// where no C compiler is at hand.
pub fn cc_static(src: &str, out: &Path) -> Option<()> {
    let c = out.with_extension("c");
    std::fs::write(&c, src).unwrap();
    match Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(&c)
        .output()
    {
        Ok(o) if o.status.success() => Some(()),
        Ok(o) => {
            eprintln!(
                "skipped: cc -static failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: no C compiler (cc: {e})");
            None
        }
    }
}
