//! LSM labels: the AppArmor profile or SELinux label a process gets at
//! execve, written to its own `attr/exec` through a procfs handle checked
//! to be procfs (CVE-2019-16884, CVE-2025-52881: a path an image or a
//! racing process controls must never take the write), and SELinux's
//! `context=` mount option.

use super::{Context, Result, SysError};
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lsm {
    AppArmor,
    SELinux,
}

/// Where under `/proc/thread-self/attr/` the exec label goes, and what is
/// written. AppArmor has its own directory on kernels with LSM stacking
/// (`apparmor/exec`), the shared `exec` before that.
pub fn exec_write(lsm: Lsm, label: &str, has_apparmor_dir: bool) -> (&'static str, Vec<u8>) {
    match lsm {
        Lsm::AppArmor => (
            if has_apparmor_dir {
                "apparmor/exec"
            } else {
                "exec"
            },
            format!("exec {label}").into_bytes(),
        ),
        Lsm::SELinux => ("exec", label.as_bytes().to_vec()),
    }
}

/// A private procfs instance (fsopen/fsmount: nothing in any mount table
/// can stand in for it), else /proc checked to be procfs.
pub fn trusted_procfs() -> Result<OwnedFd> {
    // SAFETY: fsopen/fsconfig/fsmount with valid arguments; fds we own.
    let fresh = unsafe {
        let fs = libc::syscall(
            libc::SYS_fsopen,
            c"proc".as_ptr(),
            1, /* FSOPEN_CLOEXEC */
        );
        if fs >= 0 {
            let fs = OwnedFd::from_raw_fd(fs as i32);
            let ok = libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                6, /* FSCONFIG_CMD_CREATE */
                0usize,
                0usize,
                0,
            ) == 0;
            let m = if ok {
                libc::syscall(
                    libc::SYS_fsmount,
                    fs.as_raw_fd(),
                    1, /* FSMOUNT_CLOEXEC */
                    0,
                )
            } else {
                -1
            };
            (m >= 0).then(|| OwnedFd::from_raw_fd(m as i32))
        } else {
            None
        }
    };
    let fd = match fresh {
        Some(fd) => fd,
        None => super::fs::open_dir(Path::new("/proc"))?,
    };
    check_procfs(&fd, "procfs handle")?;
    Ok(fd)
}

fn check_procfs(fd: &OwnedFd, what: &str) -> Result<()> {
    let st = nix::sys::statfs::fstatfs(fd).with_ctx(|| what.to_string())?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(SysError {
            what: format!("{what}: not procfs"),
            errno: nix::errno::Errno::EPERM,
        });
    }
    Ok(())
}

/// Write the exec label of this thread through `proc` (a trusted procfs
/// root, or any directory laid out like one, for tests).
pub fn set_exec_label(proc: &OwnedFd, lsm: Lsm, label: &str, require_procfs: bool) -> Result<()> {
    let attr = nix::fcntl::openat(
        Some(proc.as_raw_fd()),
        "thread-self/attr",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /proc/thread-self/attr")?;
    // SAFETY: fresh fd.
    let attr = unsafe { OwnedFd::from_raw_fd(attr) };
    let has_dir = nix::sys::stat::fstatat(
        Some(attr.as_raw_fd()),
        "apparmor",
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok();
    let (rel, bytes) = exec_write(lsm, label, has_dir);
    let what = || format!("write /proc/thread-self/attr/{rel}");
    let f = nix::fcntl::openat(
        Some(attr.as_raw_fd()),
        rel,
        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(what)?;
    // SAFETY: fresh fd.
    let f = unsafe { OwnedFd::from_raw_fd(f) };
    if require_procfs {
        check_procfs(&f, &what())?;
    }
    nix::unistd::write(&f, &bytes).with_ctx(what)?;
    Ok(())
}

/// linux.mountLabel on a mount's data, as runc's label.FormatMountLabel.
pub fn with_mount_label(data: &str, label: &str) -> String {
    if label.is_empty() {
        return data.to_string();
    }
    if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_label_bytes_and_paths() {
        assert_eq!(
            exec_write(Lsm::AppArmor, "podman-default", true),
            ("apparmor/exec", b"exec podman-default".to_vec())
        );
        assert_eq!(
            exec_write(Lsm::AppArmor, "p", false),
            ("exec", b"exec p".to_vec())
        );
        assert_eq!(
            exec_write(Lsm::SELinux, "system_u:system_r:container_t:s0", true).1,
            b"system_u:system_r:container_t:s0".to_vec()
        );
        assert_eq!(
            with_mount_label("mode=755", "system_u:object_r:container_file_t:s0"),
            "mode=755,context=\"system_u:object_r:container_file_t:s0\""
        );
        assert_eq!(with_mount_label("", "l"), "context=\"l\"");
    }

    #[test]
    fn writes_through_a_procfs_shaped_dir() {
        let d = std::env::temp_dir().join(format!("husk-lsm-{}", std::process::id()));
        let attr = d.join("thread-self/attr");
        std::fs::create_dir_all(attr.join("apparmor")).unwrap();
        std::fs::write(attr.join("apparmor/exec"), b"").unwrap();
        let fd = super::super::fs::open_dir(&d).unwrap();
        set_exec_label(&fd, Lsm::AppArmor, "prof", false).unwrap();
        assert_eq!(
            std::fs::read(attr.join("apparmor/exec")).unwrap(),
            b"exec prof"
        );
        // A real handle refuses a directory that only looks like procfs.
        assert!(set_exec_label(&fd, Lsm::AppArmor, "prof", true).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn trusted_handle_is_procfs() {
        let fd = trusted_procfs().unwrap();
        assert!(nix::sys::stat::fstatat(
            Some(fd.as_raw_fd()),
            "self",
            nix::fcntl::AtFlags::empty()
        )
        .is_ok());
    }
}
