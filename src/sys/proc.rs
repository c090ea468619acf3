//! Process handles that survive PID reuse: the init's start time from
//! /proc/<pid>/stat (field 22) plus a pidfd for signals.

use super::{check, Context, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What /proc/<pid>/stat says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub start_time: u64,
}

/// Parse /proc/<pid>/stat; the comm field may hold spaces and ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); start time is field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// True when `pid` is the same live (non-zombie) process that started at
/// `start_time`.
pub fn alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    matches!(stat(pid), Some(s) if s.start_time == start_time && s.state != 'Z' && s.state != 'X')
}

/// A pidfd checked, after opening, to refer to the process that started at
/// `start_time`: signals through it can never reach a recycled pid.
pub struct PidFd(OwnedFd);

impl PidFd {
    pub fn open(pid: i32, start_time: u64) -> Result<Option<PidFd>> {
        // SAFETY: plain syscall with integer arguments.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = match check(r) {
            Ok(fd) => fd as i32,
            Err(Errno::ESRCH) => return Ok(None),
            Err(e) => return Err(e).ctx(format!("pidfd_open {pid}")),
        };
        // SAFETY: the kernel just gave us this fd.
        let fd = PidFd(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(if alive(pid, start_time) {
            Some(fd)
        } else {
            None
        })
    }

    pub fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    pub fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: plain syscall; null siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match check(r) {
            Ok(_) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(e).ctx(format!("signal {sig}")),
        }
    }

    /// Wait until the process has exited (it need not be our child).
    pub fn wait_exit(&self, timeout_ms: i32) -> bool {
        super::io::poll(&[(self.0.as_raw_fd(), libc::POLLIN)], timeout_ms).is_ok_and(|r| r[0] != 0)
    }
}

/// This process's effective and bounding capability masks, read once.
pub fn own_caps() -> (u64, u64) {
    static CAPS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        };
        (
            field("CapEff:").unwrap_or(0),
            field("CapBnd:").unwrap_or(u64::MAX),
        )
    })
}

pub fn has_cap(cap: u32) -> bool {
    own_caps().0 & (1 << cap) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let s = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.start_time, 98765);
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap();
        assert!(alive(me, st.start_time));
        assert!(!alive(me, st.start_time + 1));
        assert!(PidFd::open(me, st.start_time).unwrap().is_some());
    }
}
