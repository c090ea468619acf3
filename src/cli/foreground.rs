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
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("become a subreaper");
        }
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
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ioctls with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 16384];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                // SAFETY: write from a valid buffer.
                let w = unsafe { libc::write(to, buf[off..n].as_ptr() as *const _, n - off) };
                if w <= 0 {
                    return false;
                }
                off += w as usize;
            }
            true
        }
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
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = &pty {
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            fds.push(libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: valid pollfd array.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, -1) };
        if r < 0 {
            continue;
        }
        if let Some(m) = &pty {
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(m.as_raw_fd(), 1) {
                // The slave side closed: keep waiting for the exit status.
            }
            if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(0, m.as_raw_fd()) {
                stdin_open = false;
            }
        }
        if fds[0].revents & libc::POLLIN == 0 {
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
                // SAFETY: kill with a plain pid and signal.
                unsafe { libc::kill(pid, sig) };
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
        let mut p = libc::pollfd {
            fd: m.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 0) } <= 0 || !copy(m.as_raw_fd(), 1) {
            return;
        }
    }
}
