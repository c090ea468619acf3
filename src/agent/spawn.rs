//! Starting one workload process in the guest: fork, apply the process
//! spec in the child, exec. Failures before exec come back to the parent
//! over a close-on-exec pipe, so "exec: no such file" is an answer to
//! Start/Exec rather than an exit status.

use husk::sandbox::vm::channel::Process;
use nix::fcntl::OFlag;
use nix::pty::{openpty, Winsize};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{self, ForkResult, Gid, Pid, Uid};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use crate::users;

/// The parent's ends of a started process's stdio.
pub struct Spawned {
    pub pid: Pid,
    pub stdin: Option<OwnedFd>,
    /// With a terminal, the pty master: stdout and stderr both come here.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub pty: bool,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn spawn(p: &Process) -> Result<Spawned, String> {
    if p.args.is_empty() {
        return Err("process.args is empty".into());
    }
    // Everything that allocates is prepared before fork.
    let env = build_env(p);
    let argv: Vec<CString> = p.args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|e| cstr(e)).collect::<Result<_, _>>()?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let candidates = exec_candidates(&p.args[0], path_var)?;
    let groups = users::supplementary_groups(p.uid, p.gid, &p.additional_gids);
    let rlimits = p
        .rlimits
        .iter()
        .map(|r| Ok((resource(&r.kind)?, r.soft, r.hard)))
        .collect::<Result<Vec<_>, String>>()?;

    let (err_r, err_w) = unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (child_fds, parent) = if p.terminal {
        let pty = openpty(
            &Winsize {
                ws_row: 24,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
            None,
        )
        .map_err(|e| format!("openpty: {e}"))?;
        let slave = pty.slave;
        let fds = [slave.try_clone(), slave.try_clone(), Ok(slave)];
        let fds: [OwnedFd; 3] = fds.map(|f| f.expect("dup pty slave"));
        let master2 = pty.master.try_clone().map_err(|e| format!("dup: {e}"))?;
        (fds, (Some(pty.master), Some(master2), None, true))
    } else {
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_pr, err_pw) = pipe()?;
        (
            [in_r, out_w, err_pw],
            (Some(in_w), Some(out_r), Some(err_pr), false),
        )
    };

    // SAFETY: the agent is single-threaded, so the child may allocate.
    match unsafe { unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(err_r);
            let why = child(p, &child_fds, &groups, &rlimits, &candidates, &argv, &envp);
            let mut w = std::fs::File::from(err_w);
            let _ = w.write_all(why.as_bytes());
            // _exit: never run the agent's own destructors or atexit in the child.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child: pid } => {
            drop(err_w);
            drop(child_fds);
            let mut why = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut why);
            if !why.is_empty() {
                // The child has _exit'ed; SIGCHLD reaping will collect it.
                return Err(why);
            }
            let (stdin, stdout, stderr, pty) = parent;
            Ok(Spawned {
                pid,
                stdin,
                stdout,
                stderr,
                pty,
            })
        }
    }
}

/// In the child: the steps in the order runc takes them. Returns only on
/// failure, with the reason.
fn child(
    p: &Process,
    fds: &[OwnedFd; 3],
    groups: &[Gid],
    rlimits: &[(Resource, u64, u64)],
    candidates: &[CString],
    argv: &[CString],
    envp: &[CString],
) -> String {
    let step = |what: &str, r: nix::Result<()>| r.map_err(|e| format!("{what}: {e}"));
    let run = || -> Result<(), String> {
        // The agent blocks SIGCHLD for its signalfd; the workload must not inherit that.
        step(
            "sigprocmask",
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None),
        )?;
        step("setsid", unistd::setsid().map(drop))?;
        for (i, fd) in fds.iter().enumerate() {
            step("dup2", unistd::dup2(fd.as_raw_fd(), i as i32).map(drop))?;
        }
        if p.terminal {
            // Make the pty our controlling terminal so job control and ^C work.
            if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                return Err(format!("TIOCSCTTY: {}", std::io::Error::last_os_error()));
            }
        }
        for &(res, soft, hard) in rlimits {
            step(
                &format!("setrlimit {res:?} {soft}:{hard}"),
                setrlimit(res, soft, hard),
            )?;
        }
        if !p.cwd.is_empty() {
            step(&format!("chdir {}", p.cwd), unistd::chdir(p.cwd.as_str()))?;
        }
        step("setgroups", unistd::setgroups(groups))?;
        step(
            &format!("setgid {}", p.gid),
            unistd::setgid(Gid::from_raw(p.gid)),
        )?;
        step(
            &format!("setuid {}", p.uid),
            unistd::setuid(Uid::from_raw(p.uid)),
        )?;
        if let Some(m) = p.umask {
            umask(Mode::from_bits_truncate(m));
        }
        if p.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0
        {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
        let mut last = nix::errno::Errno::ENOENT;
        for path in candidates {
            // execve returns only on failure; try the next PATH entry on ENOENT.
            let e = unistd::execve(path, argv, envp).unwrap_err();
            last = e;
            if e != nix::errno::Errno::ENOENT && e != nix::errno::Errno::ENOTDIR {
                return Err(format!("exec {}: {e}", path.to_string_lossy()));
            }
        }
        Err(format!("exec {}: {last}", p.args[0]))
    };
    run().err().unwrap_or_default()
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// The process env, plus HOME from /etc/passwd when the spec gives none
/// (what runc does), and a default PATH.
fn build_env(p: &Process) -> Vec<String> {
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = users::home_of(p.uid).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// Where to look for args[0]: as given if it has a slash, else along PATH.
fn exec_candidates(arg0: &str, path: &str) -> Result<Vec<CString>, String> {
    if arg0.contains('/') {
        return Ok(vec![cstr(arg0)?]);
    }
    path.split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(|d| cstr(&format!("{d}/{arg0}")))
        .collect()
}

fn resource(name: &str) -> Result<Resource, String> {
    Ok(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        other => return Err(format!("rlimit {other}: unknown")),
    })
}
