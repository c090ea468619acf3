//! `exec`: a new process in a running container. It joins the init's
//! namespaces (user first), cgroups and seccomp filter, stays non-dumpable
//! until execve (CVE-2016-9962), and gets the same process steps as init.

use super::msg::{self, Msg};
use super::{caps, console, init, rlimits, spawn, user};
use crate::spec::LinuxNamespaceType as NsT;
use crate::sys::proc::{self, PidFd};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub struct ExecOpts<'a> {
    pub config: &'a Spec,
    pub init_pid: i32,
    pub init_start_time: u64,
    pub process: &'a Process,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
    /// The container's cgroups (else the init's are joined as found).
    pub cgroup: Option<&'a crate::cgroups::Manager>,
}

pub struct Execed {
    pub pid: i32,
    pub pty: Option<OwnedFd>,
}

fn proc_ns_name(t: NsT) -> &'static str {
    match t {
        NsT::Mount => "mnt",
        NsT::Cgroup => "cgroup",
        NsT::Uts => "uts",
        NsT::Ipc => "ipc",
        NsT::User => "user",
        NsT::Pid => "pid",
        NsT::Network => "net",
        NsT::Time => "time",
    }
}

pub fn exec(o: &ExecOpts) -> Result<Execed, String> {
    let p = o.process;
    rlimits::preflight(p.rlimits().as_deref().unwrap_or(&[]))?;
    let (capsets, warnings) = caps::resolve(p.capabilities().as_ref());
    for w in warnings {
        log::warn!("{w}");
    }
    let _pidfd = PidFd::open(o.init_pid, o.init_start_time)
        .map_err(|e| e.to_string())?
        .ok_or("the container's init is not running")?;
    let mut join = Vec::new();
    let mut types: Vec<NsT> = crate::spec::namespaces(o.config)
        .iter()
        .map(|n| n.typ())
        .collect();
    types.sort_by_key(|t| match t {
        NsT::User => 0,
        NsT::Mount => 2,
        _ => 1,
    });
    for t in types {
        let path = format!("/proc/{}/ns/{}", o.init_pid, proc_ns_name(t));
        let fd = spawn::open_ns(t, Path::new(&path)).map_err(|e| {
            if proc::alive(o.init_pid, o.init_start_time) {
                e
            } else {
                "the container's init exited".to_string()
            }
        })?;
        if matches!(t, NsT::Pid | NsT::Time) {
            spawn::setns(t, &fd)?;
        } else {
            join.push((t, fd));
        }
    }
    // The fds we hold must belong to the init we checked, not a successor.
    if !proc::alive(o.init_pid, o.init_start_time) {
        return Err("the container's init exited".into());
    }
    let (parent_sock, child_sock) = crate::sys::sock::pair().map_err(|e| e.to_string())?;
    // Every container husk creates records its cgroups; exec joins those.
    let Some(cg) = o.cgroup else {
        return Err("the container has no cgroup record in its state".into());
    };
    let (child, in_cgroup2) = spawn::clone_placed(0, Some(cg))?;
    if child == 0 {
        drop(parent_sock);
        let err = match child_main(o, in_cgroup2, &join, child_sock.as_raw_fd(), &capsets) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if msg::send(child_sock.as_raw_fd(), &Msg::Error(err.clone())).is_err() {
            eprintln!("husk: {err}");
        }
        // SAFETY: leave without destructors.
        unsafe { libc::_exit(1) }
    }
    drop(child_sock);
    drop(join);
    let fail = |e: String| {
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(child), None);
        e
    };
    let sock = parent_sock.as_raw_fd();
    let mut pty = None;
    loop {
        let Some((m, mut fds)) = msg::recv(sock).map_err(|e| fail(e.to_string()))? else {
            return Err(fail("the exec'd process exited during setup".into()));
        };
        match m {
            Msg::Pty(name) => {
                let master = fds
                    .pop()
                    .ok_or_else(|| fail("pty message without an fd".into()))?;
                match o.console_socket {
                    Some(path) => crate::sys::sock::send_console(path, &master, &name)
                        .map_err(|e| fail(e.to_string()))?,
                    None => pty = Some(master),
                }
            }
            Msg::Ready => break,
            Msg::Error(e) => {
                let _ = waitpid(Pid::from_raw(child), None);
                return Err(e);
            }
            other => return Err(fail(format!("unexpected message: {other:?}"))),
        }
    }
    Ok(Execed { pid: child, pty })
}

fn child_main(
    o: &ExecOpts,
    in_cgroup2: bool,
    join: &[(NsT, OwnedFd)],
    sock: i32,
    capsets: &caps::Sets,
) -> Result<std::convert::Infallible, String> {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some(m) = o.cgroup {
        m.join_self(in_cgroup2).map_err(|e| e.to_string())?;
    }
    for (t, fd) in join {
        // SAFETY: setns on an fd we own.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
            return Err(format!(
                "join the container's {t} namespace: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    let _ = nix::unistd::setsid();
    let p = o.process;
    if p.terminal().unwrap_or(false) {
        let root = crate::sys::fs::open_dir(Path::new("/")).map_err(|e| e.to_string())?;
        let (master, slave, name) = console::open_pty(&root).map_err(|e| e.to_string())?;
        if let Some(sz) = p.console_size() {
            console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
        }
        msg::send_fd(sock, &Msg::Pty(name), master.as_raw_fd()).map_err(|e| e.to_string())?;
        drop(master);
        console::take_slave(&slave).map_err(|e| e.to_string())?;
    }
    rlimits::apply(p.rlimits().as_deref().unwrap_or(&[]))?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let filter = seccomp_filter(o.config)?;
    if !nnp {
        if let Some(f) = &filter {
            f.install().map_err(|e| e.to_string())?;
        }
    }
    let labels = init::ExecLabel::open(p)?;
    caps::drop_bounding(capsets.bounding).map_err(|e| e.to_string())?;
    user::switch(p.user()).map_err(|e| e.to_string())?;
    caps::apply(capsets).map_err(|e| e.to_string())?;
    init::chdir_checked(p.cwd())?;
    let exe = init::lookup(p)?;
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "process.noNewPrivileges: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    let env = init::environment(p);
    crate::sys::fs::cloexec_from(3 + o.preserve_fds);
    msg::send(sock, &Msg::Ready).map_err(|e| e.to_string())?;
    labels.apply()?;
    if nnp {
        if let Some(f) = &filter {
            f.install().map_err(|e| e.to_string())?;
        }
    }
    init::exec(&exe, p.args().as_deref().unwrap_or(&[]), &env)
}

fn seccomp_filter(config: &Spec) -> Result<Option<super::seccomp::Filter>, String> {
    config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(super::seccomp::compile_for_container)
        .transpose()
}
