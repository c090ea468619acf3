//! The container's terminal: a pty from its own devpts instance, the slave
//! bound onto /dev/console through a verified fd, setsid + TIOCSCTTY, and
//! the master sent to whoever asked (over the sync socket).

use crate::sys::fs::{fd_path, open_in_root, touch_in_root};
use crate::sys::{Context, Result, SysError};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Open a new pty pair in the container's devpts (after pivot_root):
/// returns (master, slave, slave's name).
pub fn open_pty(root: &OwnedFd) -> Result<(OwnedFd, OwnedFd, String)> {
    let master = open_in_root(root, Path::new("/dev/pts/ptmx"), OFlag::O_RDWR | OFlag::O_NOCTTY)
        .ctx("open /dev/pts/ptmx (a devpts mount with newinstance,ptmxmode=0666 is needed for a terminal)")?;
    let fd = master.as_raw_fd();
    // SAFETY: ioctls on a pty master we own.
    let n = unsafe {
        let unlock: libc::c_int = 0;
        if libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(nix::errno::Errno::last()).ctx("unlock pty");
        }
        let mut n: libc::c_uint = 0;
        if libc::ioctl(fd, libc::TIOCGPTN, &mut n) != 0 {
            return Err(nix::errno::Errno::last()).ctx("pty number");
        }
        n
    };
    // TIOCGPTPEER opens the slave through the master: no path lookup.
    // SAFETY: ioctl returning a new fd.
    let s = unsafe {
        libc::ioctl(
            fd,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(nix::errno::Errno::last()).ctx("open pty slave");
    }
    // SAFETY: fresh fd.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave, format!("/dev/pts/{n}")))
}

/// Bind the pty slave onto /dev/console (created as a plain file first).
/// The source is the slave fd itself (from TIOCGPTPEER), never a path the
/// image could have swapped (CVE-2025-52565).
pub fn bind_console(root: &OwnedFd, slave: &OwnedFd) -> Result<()> {
    let target = touch_in_root(root, Path::new("/dev/console"))?;
    let st = nix::sys::stat::fstat(target.as_raw_fd()).ctx("stat /dev/console")?;
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFREG && fmt != libc::S_IFCHR {
        return Err(SysError {
            what: "/dev/console in the container is neither a file nor a device".into(),
            errno: nix::errno::Errno::EPERM,
        });
    }
    mount(
        Some(fd_path(slave).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx("bind the pty onto /dev/console")
}

/// Make the slave our controlling terminal and stdio.
pub fn take_slave(slave: &OwnedFd) -> Result<()> {
    let fd = slave.as_raw_fd();
    // SAFETY: ioctl/dup2 on fds we own.
    unsafe {
        if libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
            return Err(nix::errno::Errno::last()).ctx("TIOCSCTTY");
        }
        for n in 0..3 {
            if libc::dup2(fd, n) < 0 {
                return Err(nix::errno::Errno::last()).ctx("dup2 pty slave");
            }
        }
    }
    Ok(())
}

/// Set the window size of a pty (from a process's consoleSize, or SIGWINCH).
pub fn set_size(fd: i32, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ioctl with a valid winsize.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}
