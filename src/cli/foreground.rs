//! The foreground side of `run` and `exec`: reap as a subreaper, forward
//! every catchable signal, turn SIGWINCH into a resize, proxy a pty in raw
//! mode, and exit with the process's status (128+N for signal N).

use anyhow::{Context, Result};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

fn catchable() -> SigSet {
    crate::sys::signals::forwardable()
}

/// Before the process exists: become a subreaper and block the signals we
/// will read from a signalfd (none is lost between create and wait).
pub fn prepare(subreaper: bool) -> Result<()> {
    if subreaper {
        crate::sys::io::become_subreaper()?;
    }
    catchable().thread_block().context("block signals")?;
    Ok(())
}

struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        match nix::sys::termios::tcgetattr(stdin.as_fd()) {
            Ok(t) => {
                let mut raw = t.clone();
                nix::sys::termios::cfmakeraw(&mut raw);
                let _ = nix::sys::termios::tcsetattr(
                    stdin.as_fd(),
                    nix::sys::termios::SetArg::TCSANOW,
                    &raw,
                );
                RawMode(Some(t))
            }
            Err(_) => RawMode(None),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn resize(master: &OwnedFd) {
    crate::sys::io::copy_window_size(0, master.as_raw_fd());
}

fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 16384];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => crate::sys::io::write_all(to, &buf[..n]),
    }
}

/// Wait for `pid` (our child, or adopted as subreaper); returns its exit
/// code in shell form.
pub fn wait(pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(&catchable(), SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let _raw = pty.as_ref().map(|_| RawMode::enter());
    if let Some(m) = &pty {
        resize(m);
    }
    let mut stdin_open = pty.is_some();
    loop {
        let mut fds = vec![(sfd.as_raw_fd(), libc::POLLIN)];
        if let Some(m) = &pty {
            fds.push((m.as_raw_fd(), libc::POLLIN));
            fds.push((if stdin_open { 0 } else { -1 }, libc::POLLIN));
        }
        let rev = crate::sys::io::poll(&fds, -1)?;
        if let Some(m) = &pty {
            if rev[1] & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(m.as_raw_fd(), 1) {
                // The slave side closed: keep waiting for the exit status.
            }
            if rev[2] & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(0, m.as_raw_fd()) {
                stdin_open = false;
            }
        }
        if rev[0] & libc::POLLIN == 0 {
            continue;
        }
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        match sig {
            libc::SIGCHLD => {
                if let Some(code) = reap(pid) {
                    if let Some(m) = &pty {
                        drain(m);
                    }
                    return Ok(code);
                }
            }
            libc::SIGWINCH => {
                if let Some(m) = &pty {
                    resize(m);
                }
            }
            _ => {
                if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                }
            }
        }
    }
}

/// Reap every exited child; the status of `pid` if it was among them.
fn reap(pid: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => found = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                found = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}

/// After the process exited, copy what is still buffered in the pty.
fn drain(m: &OwnedFd) {
    loop {
        let ready = crate::sys::io::poll(&[(m.as_raw_fd(), libc::POLLIN)], 0)
            .is_ok_and(|r| r[0] & libc::POLLIN != 0);
        if !ready || !copy(m.as_raw_fd(), 1) {
            return;
        }
    }
}
