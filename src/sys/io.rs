//! Small wrappers for the CLI and lifecycle layers: poll(2) over a few
//! fds, plain fd writes, the terminal's window size, flock, open, the
//! subreaper flag. Their errors name the object.

use super::{Context, Result};
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Wait until one of `fds` (fd, events) is ready, or for `timeout_ms`
/// (-1: no limit). Returns each fd's revents (all 0 on timeout). A
/// negative fd is skipped, as poll(2) does; EINTR is retried.
pub fn poll(fds: &[(RawFd, i16)], timeout_ms: i32) -> Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: a valid array of p.len() pollfds.
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        match nix::errno::Errno::result(r) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                r.ctx("poll")?;
                return Ok(p.iter().map(|x| x.revents).collect());
            }
        }
    }
}

/// Write all of `buf` to `fd`; false once the fd refuses (closed, EOF).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: `fd` is the caller's; the buffer is valid for its length.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match nix::unistd::write(fd, buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf = &buf[n..],
        }
    }
    true
}

/// Copy the window size of the terminal `from` to the pty `to`.
pub fn copy_window_size(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls fill and read it.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Adopt orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx("become a subreaper")
}

/// open(2) with O_CLOEXEC added, as an OwnedFd.
pub fn open(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(|| format!("open {}", path.display()))?;
    // SAFETY: a fresh fd from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An exclusive flock on `fd` (waiting for it); `what` names the object.
pub fn lock_exclusive(fd: &OwnedFd, what: &Path) -> Result<()> {
    // SAFETY: flock on an fd we own.
    let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
    nix::errno::Errno::result(r)
        .map(drop)
        .with_ctx(|| format!("lock {}", what.display()))
}
