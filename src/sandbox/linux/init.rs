//! The steps inside the container, in the order the runtime spec and
//! runc's experience demand. Each step is a small function elsewhere; this
//! file is the order.

use super::msg::{self, Msg};
use super::{caps, console, devices, mounts, rlimits, rootfs, user};
use crate::container::hooks;
use crate::spec::LinuxNamespaceType as NsT;
use crate::sys::fs::mkdir_all_in_root;
use oci_spec::runtime::{Process, Spec};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Everything the child needs, inherited through the fork.
pub struct Init<'a> {
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub rootfs: &'a Path,
    pub sock: RawFd,
    /// O_PATH fd of the exec fifo.
    pub fifo: RawFd,
    /// Namespaces to join by path (user first), other than pid and time.
    pub join: Vec<(NsT, OwnedFd)>,
    /// CLONE_NEW* flags still to unshare after joining.
    pub unshare: libc::c_int,
    /// A new user namespace: unshare it and let the parent map ids.
    pub new_user: bool,
    /// A new pid namespace that clone did not already give us: fork after
    /// unsharing it.
    pub fork_for_pid: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub caps: caps::Sets,
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// Another sandbox's main (the microVM's VMM), run once the namespaces
    /// are joined, instead of the steps that build a container rootfs.
    pub vmm: Option<Vmm<'a>>,
    /// The container's cgroups: this child moves itself there, first thing
    /// (`spawn::clone_placed`); clone3 may have put it in the cgroup2 one.
    pub cgroup: Option<&'a crate::cgroups::Manager>,
    pub in_cgroup2: bool,
}

pub type Vmm<'a> = &'a dyn Fn(&Init) -> Result<Infallible, String>;

type R<T> = Result<T, String>;

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

/// The child's entry point after clone; never returns.
pub fn main(init: Init) -> ! {
    let sock = init.sock;
    let err = match run(init) {
        Ok(never) => match never {},
        Err(m) => m,
    };
    if msg::send(sock, &Msg::Error(err.clone())).is_err() {
        eprintln!("husk: {err}");
    }
    // SAFETY: leave without running destructors or atexit handlers.
    unsafe { libc::_exit(1) }
}

fn expect(sock: RawFd, what: &str) -> R<Msg> {
    match msg::recv(sock).map_err(e)? {
        Some((m, _)) => Ok(m),
        None => Err(format!("parent went away while waiting for {what}")),
    }
}

fn run(init: Init) -> R<Infallible> {
    if let Some(m) = init.cgroup {
        m.join_self(init.in_cgroup2).map_err(e)?;
    }
    // Still the host's /proc, and before any user namespace: the score
    // may be lowered (the parent checked that it may).
    if let Some(adj) = init.process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|x| format!("process.oomScoreAdj {adj}: {x}"))?;
    }
    namespaces(&init)?;
    let spec = init.spec;
    let p = init.process;
    session(&init)?;
    if let Some(vmm) = init.vmm {
        return vmm(&init);
    }
    let root = rootfs::prepare(spec, init.rootfs).map_err(e)?;
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().clone())
        .unwrap_or_default();
    let cg = init.cgroup.map(|c| c.paths());
    let cgroupns = init.unshare & libc::CLONE_NEWCGROUP != 0;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let m = with_mount_label(m, &label);
        mounts::mount_one(&root, i, &m, cg, cgroupns).map_err(e)?;
    }
    dev(&init, &root)?;
    mkdir_all_in_root(&root, p.cwd(), 0o755).map_err(e)?;
    // The state JSON for the container's own hooks comes with the runtime
    // hooks' round trip, skipped when the spec has no hooks at all.
    let state = if has_hooks(spec) {
        msg::send(init.sock, &Msg::RuntimeHooks).map_err(e)?;
        match expect(init.sock, "the createRuntime hooks")? {
            Msg::HooksDone(s) => s,
            other => return Err(format!("unexpected {other:?}")),
        }
    } else {
        String::new()
    };
    run_hooks("createContainer", spec, &state)?;
    rootfs::pivot(&root, init.no_pivot).map_err(e)?;
    rootfs::propagate(spec).map_err(e)?;
    let labels = ExecLabel::open(p)?;
    if p.terminal().unwrap_or(false) {
        terminal(&init, &root)?;
    }
    rootfs::sysctl(&root, spec).map_err(e)?;
    let linux = spec.linux().as_ref();
    rootfs::mask(
        &root,
        linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[]),
    )
    .map_err(e)?;
    rootfs::readonly(
        &root,
        linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[]),
    )
    .map_err(e)?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::root_readonly(&root).map_err(e)?;
    }
    names(spec)?;
    rlimits::apply(p.rlimits().as_deref().unwrap_or(&[]))?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if !nnp {
        seccomp(&init)?;
    }
    caps::drop_bounding(init.caps.bounding).map_err(e)?;
    user::switch(p.user()).map_err(e)?;
    caps::apply(&init.caps).map_err(e)?;
    let exe = finish_process(p, nnp)?;
    let env = environment(p);
    crate::sys::fs::cloexec_from(3 + init.preserve_fds);
    msg::send(init.sock, &Msg::Ready).map_err(e)?;
    // `start` opens the fifo; the startContainer hooks run before the byte
    // that lets `start` go on to the poststart hooks.
    wait_for_start(init.fifo, || run_hooks("startContainer", spec, &state))?;
    labels.apply()?;
    if nnp {
        seccomp(&init)?;
    }
    exec(&exe, p.args().as_deref().unwrap_or(&[]), &env)
}

/// linux.mountLabel goes into the data of every mount but binds (SELinux's
/// `context=`; the option parser passes it through as data).
fn with_mount_label(m: &oci_spec::runtime::Mount, label: &str) -> oci_spec::runtime::Mount {
    let mut m = m.clone();
    let opts = m.options().clone().unwrap_or_default();
    if label.is_empty()
        || m.typ().as_deref() == Some("bind")
        || opts.iter().any(|o| o == "bind" || o == "rbind")
    {
        return m;
    }
    let data = crate::sys::lsm::with_mount_label("", label);
    m.set_options(Some(opts.into_iter().chain([data]).collect()));
    m
}

/// The process's AppArmor profile or SELinux label: the procfs handle is
/// opened while husk is still privileged, the label written just before
/// execve.
pub struct ExecLabel(Vec<(crate::sys::lsm::Lsm, String)>, Option<OwnedFd>);

impl ExecLabel {
    pub fn open(p: &Process) -> R<ExecLabel> {
        use crate::sys::lsm::Lsm;
        let mut v = Vec::new();
        if let Some(a) = p.apparmor_profile().as_deref().filter(|a| !a.is_empty()) {
            v.push((Lsm::AppArmor, a.to_string()));
        }
        if let Some(l) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
            v.push((Lsm::SELinux, l.to_string()));
        }
        let fd = if v.is_empty() {
            None
        } else {
            Some(crate::sys::lsm::trusted_procfs().map_err(e)?)
        };
        Ok(ExecLabel(v, fd))
    }

    pub fn apply(&self) -> R<()> {
        for (lsm, label) in &self.0 {
            let fd = self.1.as_ref().expect("opened with the labels");
            crate::sys::lsm::set_exec_label(fd, *lsm, label, true).map_err(e)?;
        }
        Ok(())
    }
}

/// Join what the spec names by path (user first), unshare the rest; with a
/// new user namespace the parent writes the id maps in between.
fn namespaces(init: &Init) -> R<()> {
    for (t, fd) in &init.join {
        super::spawn::setns(*t, fd)?;
    }
    if init.new_user {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(|x| format!("unshare user namespace: {}", x.desc()))?;
        msg::send(init.sock, &Msg::MapIds).map_err(e)?;
        match expect(init.sock, "the id maps")? {
            Msg::MapsDone => {}
            other => return Err(format!("unexpected {other:?}")),
        }
        // Become root of the new namespace (uid 0 must be mapped).
        // SAFETY: plain syscalls.
        unsafe {
            libc::setresgid(0, 0, 0);
            libc::setresuid(0, 0, 0);
        }
    }
    if init.unshare != 0 {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(init.unshare))
            .map_err(|x| format!("unshare namespaces: {}", x.desc()))?;
    }
    if init.fork_for_pid {
        // The new pid namespace applies to our children: the next one is init.
        // SAFETY: single-threaded; the child only continues this code path.
        match unsafe { libc::fork() } {
            -1 => {
                return Err(format!(
                    "fork into the pid namespace: {}",
                    nix::errno::Errno::last().desc()
                ))
            }
            0 => {}
            pid => {
                let _ = msg::send(init.sock, &Msg::InitPid(pid));
                // SAFETY: leave at once; the grandchild carries on.
                unsafe { libc::_exit(0) }
            }
        }
    }
    Ok(())
}

/// Our own session, and a fresh session keyring unless --no-new-keyring.
fn session(init: &Init) -> R<()> {
    let _ = nix::unistd::setsid();
    if !init.no_new_keyring {
        // KEYCTL_JOIN_SESSION_KEYRING with a NULL name: a new anonymous one.
        // SAFETY: keyctl with integer/null arguments.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) };
        if r < 0 && nix::errno::Errno::last() != nix::errno::Errno::ENOSYS {
            return Err(format!(
                "join a new session keyring: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    Ok(())
}

fn dev(init: &Init, root: &OwnedFd) -> R<()> {
    let spec = init.spec;
    let dev_mounted = spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && !m
                .options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    });
    let devs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    if dev_mounted || !devs.is_empty() {
        let in_userns = init.new_user || init.join.iter().any(|(t, _)| *t == NsT::User);
        let defaults = if dev_mounted { &devs[..] } else { &[] };
        devices::create(root, if dev_mounted { defaults } else { &devs }, in_userns).map_err(e)?;
    }
    if dev_mounted {
        devices::symlinks(root).map_err(e)?;
    }
    Ok(())
}

pub fn has_hooks(spec: &Spec) -> bool {
    #[allow(deprecated)]
    spec.hooks().as_ref().is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    })
}

pub fn run_hooks(kind: &'static str, spec: &Spec, state: &str) -> R<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let list = match kind {
        "createContainer" => h.create_container(),
        _ => h.start_container(),
    };
    hooks::run(kind, list.as_deref().unwrap_or(&[]), state).map_err(e)
}

fn terminal(init: &Init, root: &OwnedFd) -> R<()> {
    let (master, slave, name) = console::open_pty(root).map_err(e)?;
    if let Some(sz) = init.process.console_size() {
        console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
    }
    msg::send_fd(init.sock, &Msg::Pty(name.clone()), master.as_raw_fd()).map_err(e)?;
    drop(master);
    console::bind_console(root, &slave).map_err(e)?;
    console::take_slave(&slave).map_err(e)
}

fn names(spec: &Spec) -> R<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|x| format!("hostname {h:?}: {}", x.desc()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname with a valid buffer and length.
        if unsafe { libc::setdomainname(d.as_ptr() as *const libc::c_char, d.len()) } != 0 {
            return Err(format!(
                "domainname {d:?}: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    Ok(())
}

fn seccomp(init: &Init) -> R<()> {
    if let Some(f) = init.seccomp {
        f.install().map_err(e)?;
    }
    Ok(())
}

/// cwd (checked to be inside the root, CVE-2024-21626), the program's
/// path, and no_new_privs.
fn finish_process(p: &Process, nnp: bool) -> R<PathBuf> {
    chdir_checked(p.cwd())?;
    let exe = lookup(p)?;
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "process.noNewPrivileges: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    Ok(exe)
}

/// chdir, then check the cwd is inside our root: a cwd reached through a
/// leaked fd (`/proc/self/fd/N`) is outside it, and getcwd says so
/// (CVE-2024-21626).
pub fn chdir_checked(cwd: &Path) -> R<()> {
    nix::unistd::chdir(cwd).map_err(|x| format!("process.cwd {}: {}", cwd.display(), x.desc()))?;
    match nix::unistd::getcwd() {
        Ok(c) if c.is_absolute() => Ok(()),
        _ => Err(format!(
            "process.cwd {}: resolves outside the container",
            cwd.display()
        )),
    }
}

/// Find args[0] along the process's PATH, as execvp would.
pub fn lookup(p: &Process) -> R<PathBuf> {
    let name = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    if name.contains('/') {
        // As runc: a missing program fails create, not the start after it.
        return match std::fs::metadata(&name) {
            Ok(m) if m.is_file() => Ok(PathBuf::from(name)),
            Ok(_) => Err(format!("process.args[0]: {name:?}: not a regular file")),
            Err(e) => Err(format!(
                "process.args[0]: {name:?}: {}",
                crate::spec::io_msg(&e)
            )),
        };
    }
    let path = p
        .env()
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(&name);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && nix::unistd::access(&cand, nix::unistd::AccessFlags::X_OK).is_ok() {
                return Ok(cand);
            }
        }
    }
    Err(format!(
        "process.args[0]: {name:?}: executable file not found in $PATH"
    ))
}

pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        let home = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|pw| user::home_of(&pw, p.user().uid()))
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    if let Ok(n) = std::env::var("LISTEN_FDS") {
        env.retain(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push(format!("LISTEN_PID={}", std::process::id()));
    }
    env
}

/// Block until `husk start` opens the fifo for reading.
pub fn wait_for_start(fifo: RawFd, then: impl FnOnce() -> R<()>) -> R<()> {
    let path = format!("/proc/self/fd/{fifo}");
    let fd = nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|x| {
        format!(
            "open exec fifo (the container needs /proc mounted): {}",
            x.desc()
        )
    })?;
    // SAFETY: fresh fd.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    then()?;
    nix::unistd::write(&fd, b"0").map_err(|x| format!("write exec fifo: {}", x.desc()))?;
    Ok(())
}

pub fn exec(exe: &Path, args: &[String], env: &[String]) -> R<Infallible> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let path = c(&exe.to_string_lossy())?;
    let argv: Vec<CString> = args.iter().map(|a| c(a)).collect::<R<_>>()?;
    let envp: Vec<CString> = env.iter().map(|a| c(a)).collect::<R<_>>()?;
    reset_signals();
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(format!("exec {}: {}", exe.display(), err.desc()))
}

/// The program starts with an empty signal mask (`run` and `exec` block
/// signals to read them from a signalfd) and SIGPIPE at its default. husk
/// installs no handlers, and execve resets caught ones anyway.
pub fn reset_signals() {
    // SAFETY: resetting one disposition and the mask of this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
