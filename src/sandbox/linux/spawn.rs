//! The parent side of `create`: open what the child needs, clone it into
//! its namespaces (it places itself in its cgroups), write its id maps, run the
//! runtime's hooks when it asks, and return once it waits for `start`.

use super::msg::{self, Msg};
use super::{caps, init, rlimits};
use crate::spec::{Bundle, LinuxNamespaceType as NsT};
use crate::sys::{self, proc};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub struct CreateOpts<'a> {
    pub bundle: &'a Bundle,
    /// The container's state dir (the exec fifo goes there).
    pub state_dir: &'a Path,
    /// The per-container lock; the child must not hold it.
    pub lock_fd: RawFd,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// The container's cgroups (`clone_placed`): the child moves itself
    /// there before it unshares its cgroup namespace.
    pub cgroup: Option<&'a crate::cgroups::Manager>,
    /// The compiled linux.seccomp filter (compiled before any side effect).
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// Run this instead of the container init (the microVM's VMM).
    pub vmm: Option<init::Vmm<'a>>,
}

pub struct Spawned {
    pub pid: i32,
    pub start_time: u64,
    /// The pty master when the process has a terminal and nobody gave a
    /// console socket (foreground `run` proxies it).
    pub pty: Option<OwnedFd>,
    pub warnings: Vec<String>,
}

/// The clone flag of each namespace type.
pub fn ns_flag(t: NsT) -> libc::c_int {
    match t {
        NsT::Mount => libc::CLONE_NEWNS,
        NsT::Cgroup => libc::CLONE_NEWCGROUP,
        NsT::Uts => libc::CLONE_NEWUTS,
        NsT::Ipc => libc::CLONE_NEWIPC,
        NsT::User => libc::CLONE_NEWUSER,
        NsT::Pid => libc::CLONE_NEWPID,
        NsT::Network => libc::CLONE_NEWNET,
        NsT::Time => 0x80,
    }
}

/// Open a namespace file given by path (checked to be a namespace).
pub fn open_ns(t: NsT, p: &Path) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("linux.namespaces {t} path {}: {}", p.display(), e.desc()))?;
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::statfs::fstatfs(&fd)
        .map_err(|e| format!("linux.namespaces {t} path {}: {}", p.display(), e.desc()))?;
    if st.filesystem_type().0 != 0x6e736673
        && st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC
    {
        return Err(format!(
            "linux.namespaces {t} path {}: not a namespace file",
            p.display()
        ));
    }
    // NS_GET_NSTYPE: the kernel says which kind of namespace this is.
    // SAFETY: ioctl without arguments on an fd we own.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), 0xb703) };
    if kind >= 0 && kind != ns_flag(t) {
        return Err(format!(
            "linux.namespaces {t} path {}: is not a {t} namespace",
            p.display()
        ));
    }
    Ok(fd)
}

/// Enter a namespace in this process (pid/time apply to our children).
pub fn setns(t: NsT, fd: &OwnedFd) -> Result<(), String> {
    // SAFETY: setns on an fd we own.
    if unsafe { libc::setns(fd.as_raw_fd(), ns_flag(t)) } != 0 {
        return Err(format!(
            "linux.namespaces {t}: setns: {}",
            nix::errno::Errno::last().desc()
        ));
    }
    Ok(())
}

/// fork-like clone3 with `flags`, into the cgroup2 directory `cgroup` when
/// given (CLONE_INTO_CGROUP): returns 0 in the child.
pub fn clone3(flags: libc::c_int, cgroup: Option<&OwnedFd>) -> Result<i32, String> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: flags as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // The kernel takes the short (v0, 64 bytes) form from kernels without
    // the cgroup field, so use it unless a cgroup is asked for.
    let mut size = 64;
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
        size = std::mem::size_of::<CloneArgs>();
    }
    // SAFETY: with no stack given clone3 behaves like fork; we are single-threaded.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size) };
    if r < 0 {
        return Err(format!("clone: {}", nix::errno::Errno::last().desc()));
    }
    Ok(r as i32)
}

/// Clone a child (fork-like, `flags`) that is to place itself in the
/// container's cgroups `cg` with `Manager::join_self`, first thing: clone3
/// starts it in the cgroup2 one where it can (CLONE_INTO_CGROUP). Returns
/// the pid (0 in the child) and whether the child is in its cgroup2 cgroup
/// already. Both `create` and `exec` clone this way.
pub fn clone_placed(
    flags: libc::c_int,
    cg: Option<&crate::cgroups::Manager>,
) -> Result<(i32, bool), String> {
    if let Some(fd) = cg.and_then(|m| m.clone_into()) {
        // An old kernel (E2BIG, EINVAL) or a cgroup refusing it: the child
        // writes cgroup.procs itself, whose error then says which.
        if let Ok(pid) = clone3(flags, Some(&fd)) {
            return Ok((pid, true));
        }
    }
    Ok((clone3(flags, None)?, false))
}

struct Cleanup {
    pids: Vec<i32>,
    fifo: PathBuf,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &p in &self.pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(p), None);
        }
        let _ = std::fs::remove_file(&self.fifo);
    }
}

pub fn create(
    o: &CreateOpts,
    hooks: &mut dyn FnMut(i32) -> Result<String, String>,
) -> Result<Spawned, String> {
    let spec = &o.bundle.spec;
    let process = spec.process().as_ref().ok_or("process: missing")?;
    rlimits::preflight(process.rlimits().as_deref().unwrap_or(&[]))?;
    if let Some(adj) = process.oom_score_adj() {
        oom_preflight(adj)?;
    }
    let (capsets, warnings) = caps::resolve(process.capabilities().as_ref());
    let filter = o.seccomp;
    // Namespaces: pid and time are entered here (they apply to children);
    // the others are joined by the child, user first.
    let mut join = Vec::new();
    let mut new_flags = 0;
    let mut new_user = false;
    for ns in crate::spec::namespaces(spec) {
        let t = ns.typ();
        match ns.path() {
            Some(p) => {
                let fd = open_ns(t, p)?;
                if matches!(t, NsT::Pid | NsT::Time) {
                    setns(t, &fd)?;
                } else {
                    join.push((t, fd));
                }
            }
            None if t == NsT::User => new_user = true,
            None if t == NsT::Time => time_namespace(spec)?,
            None => new_flags |= ns_flag(t),
        }
    }
    join.sort_by_key(|(t, _)| if *t == NsT::User { 0 } else { 1 });
    // Fast path: nothing to join and no user namespace → one clone3 with
    // every flag (the cgroup namespace waits until we placed the child).
    let fast = join.is_empty() && !new_user;
    let (clone_flags, unshare, fork_for_pid) = if fast {
        (
            new_flags & !libc::CLONE_NEWCGROUP,
            new_flags & libc::CLONE_NEWCGROUP,
            false,
        )
    } else {
        (0, new_flags, new_flags & libc::CLONE_NEWPID != 0)
    };

    let fifo_path = o.state_dir.join(crate::container::store::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| format!("mkfifo {}: {}", fifo_path.display(), e.desc()))?;
    let mut cleanup = Cleanup {
        pids: vec![],
        fifo: fifo_path.clone(),
        armed: true,
    };
    // mkfifo's mode went through the umask; the init may run as any user
    // (or as a mapped root), so set it exactly and give it to the
    // container's root, as runc does.
    let (ruid, rgid) = container_root(spec);
    std::os::unix::fs::chown(&fifo_path, Some(ruid), Some(rgid))
        .and_then(|_| {
            std::fs::set_permissions(
                &fifo_path,
                std::os::unix::fs::PermissionsExt::from_mode(0o622),
            )
        })
        .map_err(|e| format!("exec fifo {}: {e}", fifo_path.display()))?;
    let fifo = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {}: {}", fifo_path.display(), e.desc()))?;
    // SAFETY: fresh fd.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    let (parent_sock, child_sock) = sys::sock::pair().map_err(|e| e.to_string())?;

    let (child, in_cgroup2) = clone_placed(clone_flags, o.cgroup)?;
    if child == 0 {
        drop(parent_sock);
        // SAFETY: close our copy of the lock, or `start` would wait on it.
        unsafe { libc::close(o.lock_fd) };
        init::main(init::Init {
            spec,
            process,
            rootfs: &o.bundle.rootfs,
            sock: child_sock.as_raw_fd(),
            fifo: fifo.as_raw_fd(),
            join,
            unshare,
            new_user,
            fork_for_pid,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            preserve_fds: o.preserve_fds,
            caps: capsets,
            seccomp: filter,
            vmm: o.vmm,
            cgroup: o.cgroup,
            in_cgroup2,
        });
    }
    drop(child_sock);
    drop(join);
    cleanup.pids.push(child);
    let sock = parent_sock.as_raw_fd();

    let mut init_pid = if fork_for_pid { 0 } else { child };
    let mut pty = None;
    loop {
        let Some((m, mut fds)) = msg::recv(sock).map_err(|e| e.to_string())? else {
            return Err("container init exited during setup".into());
        };
        match m {
            Msg::MapIds => {
                write_id_maps(child, spec)?;
                msg::send(sock, &Msg::MapsDone).map_err(|e| e.to_string())?;
            }
            Msg::InitPid(p) => {
                init_pid = p;
                cleanup.pids.insert(0, p);
                let _ = waitpid(Pid::from_raw(child), None);
            }
            Msg::RuntimeHooks => {
                let state = hooks(init_pid)?;
                msg::send(sock, &Msg::HooksDone(state)).map_err(|e| e.to_string())?;
            }
            Msg::Pty(name) => {
                let master = fds.pop().ok_or("pty message without an fd")?;
                match o.console_socket {
                    Some(path) => {
                        sys::sock::send_console(path, &master, &name).map_err(|e| e.to_string())?
                    }
                    None => pty = Some(master),
                }
            }
            Msg::Ready => break,
            Msg::Error(e) => return Err(e),
            other => return Err(format!("unexpected message from init: {other:?}")),
        }
    }
    let start_time = proc::stat(init_pid)
        .map(|s| s.start_time)
        .ok_or("container init vanished")?;
    cleanup.armed = false;
    Ok(Spawned {
        pid: init_pid,
        start_time,
        pty,
        warnings,
    })
}

/// The host uid/gid of the container's root (0 without a user namespace).
fn container_root(spec: &oci_spec::runtime::Spec) -> (u32, u32) {
    let host_of = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    let linux = spec.linux().as_ref();
    (
        host_of(linux.and_then(|l| l.uid_mappings().as_ref())),
        host_of(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

fn oom_preflight(adj: i32) -> Result<(), String> {
    let cur: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if adj < cur && !crate::sys::proc::has_cap(24 /* CAP_SYS_RESOURCE */) {
        return Err(format!(
            "process.oomScoreAdj {adj}: below this process's {cur}, and lowering it needs CAP_SYS_RESOURCE"
        ));
    }
    Ok(())
}

/// A new time namespace: unshare it here (it applies to our children) and
/// write the offsets before any process enters it.
fn time_namespace(spec: &oci_spec::runtime::Spec) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(0x80))
        .map_err(|e| format!("linux.namespaces time: unshare: {}", e.desc()))?;
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    for (clock, v) in offsets {
        let line = format!("{clock} {v}");
        std::fs::write("/proc/self/timens_offsets", &line)
            .map_err(|e| format!("linux.timeOffsets {clock}: {e}"))?;
    }
    Ok(())
}

fn write_id_maps(pid: i32, spec: &oci_spec::runtime::Spec) -> Result<(), String> {
    let linux = spec.linux().as_ref().ok_or("linux: missing")?;
    for (file, field, maps) in [
        ("uid_map", "linux.uidMappings", linux.uid_mappings()),
        ("gid_map", "linux.gidMappings", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        std::fs::write(format!("/proc/{pid}/{file}"), text.as_bytes())
            .map_err(|e| format!("{field}: write /proc/{pid}/{file}: {e}"))?;
    }
    Ok(())
}
