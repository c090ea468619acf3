//! /dev: the default devices, `linux.devices`, and the standard symlinks.
//! Nodes are made with mknodat under an fd resolved inside the rootfs;
//! in a user namespace (no mknod) the host's node is bound instead.

use crate::sys::fs::{fd_path, mkdir_all_in_root, open_in_root, touch_in_root};
use crate::sys::{Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

struct Dev<'a> {
    path: &'a Path,
    kind: libc::mode_t,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

const DEFAULTS: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Create the devices. `bind` when mknod is not allowed (user namespace).
pub fn create(root: &OwnedFd, devices: &[LinuxDevice], bind: bool) -> Result<()> {
    for (p, major, minor) in DEFAULTS {
        if devices.iter().any(|d| d.path() == Path::new(p)) {
            continue;
        }
        let d = Dev {
            path: Path::new(p),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make(root, &d, bind)?;
    }
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(crate::sys::SysError {
                    what: format!("linux.devices[{i}].type: \"a\" is not a device type"),
                    errno: nix::errno::Errno::EINVAL,
                })
            }
        };
        let dev = Dev {
            path: d.path(),
            kind,
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        make(root, &dev, bind)?;
    }
    Ok(())
}

fn make(root: &OwnedFd, d: &Dev, bind: bool) -> Result<()> {
    let what = || format!("device {}", d.path.display());
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d.path.file_name().unwrap_or_default();
    if bind {
        let t = touch_in_root(root, d.path)?;
        return mount(
            Some(d.path),
            fd_path(&t).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(what);
    }
    let dir = mkdir_all_in_root(root, parent, 0o755)?;
    let dirfd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(what)?;
    // SAFETY: fresh fd.
    let dirfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dirfd) };
    let cname = CString::new(name.as_encoded_bytes()).unwrap_or_default();
    // An existing node (an image's own /dev entry) is replaced.
    // SAFETY: unlinkat/mknodat/fchownat on a directory fd we own and a valid name.
    unsafe {
        libc::unlinkat(dirfd.as_raw_fd(), cname.as_ptr(), 0);
        let dev = libc::makedev(d.major as u32, d.minor as u32);
        if libc::mknodat(
            dirfd.as_raw_fd(),
            cname.as_ptr(),
            d.kind | (d.mode & 0o7777),
            dev,
        ) != 0
        {
            return Err(nix::errno::Errno::last()).with_ctx(what);
        }
        if libc::fchownat(
            dirfd.as_raw_fd(),
            cname.as_ptr(),
            d.uid,
            d.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        ) != 0
        {
            return Err(nix::errno::Errno::last()).with_ctx(what);
        }
        // mknod's mode is filtered by the umask; set it exactly.
        if libc::fchmodat(dirfd.as_raw_fd(), cname.as_ptr(), d.mode & 0o7777, 0) != 0 {
            return Err(nix::errno::Errno::last()).with_ctx(what);
        }
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx (→ the container's devpts),
/// and /dev/core where /proc/kcore exists.
pub fn symlinks(root: &OwnedFd) -> Result<()> {
    let dev = mkdir_all_in_root(root, Path::new("/dev"), 0o755)?;
    let dirfd = nix::fcntl::openat(
        Some(dev.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /dev in rootfs")?;
    // SAFETY: fresh fd.
    let dirfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dirfd) };
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dirfd.as_raw_fd()), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("symlink /dev/{name}")),
        }
    }
    // /dev/ptmx must reach the container's own devpts instance.
    let cname = c"ptmx";
    // SAFETY: unlink a name in a directory fd we own.
    unsafe { libc::unlinkat(dirfd.as_raw_fd(), cname.as_ptr(), 0) };
    nix::unistd::symlinkat("pts/ptmx", Some(dirfd.as_raw_fd()), "ptmx").ctx("symlink /dev/ptmx")?;
    Ok(())
}

/// Open /dev/null inside the (pivoted) root and check it is the real
/// character device 1:3 (CVE-2025-31133: a masked path must not be bound
/// from something an image or a racing process put there).
pub fn verified_null(root: &OwnedFd) -> Result<OwnedFd> {
    let fd = open_in_root(
        root,
        Path::new("/dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
    )
    .ctx("open /dev/null")?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).ctx("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(crate::sys::SysError {
            what: "/dev/null in the container is not the null device (1:3)".into(),
            errno: nix::errno::Errno::EPERM,
        });
    }
    Ok(fd)
}
