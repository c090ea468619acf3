//! The container's root: propagation, the rootfs bind, pivot_root, masked
//! and read-only paths, the read-only root, sysctls.

use crate::spec::mounts::propagation_flag;
use crate::sys::fs::{fd_path, open_dir, open_in_root};
use crate::sys::{Context, Result, SysError};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

fn fl(bits: libc::c_ulong) -> MsFlags {
    MsFlags::from_bits_retain(bits)
}

/// Stop our mounts from propagating to the host, then make the rootfs a
/// mount point of its own. Returns an fd of the rootfs mount.
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<OwnedFd> {
    let prop = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    // Shared would leak our mounts to the host; the spec's value is applied
    // to the new root after pivot_root.
    let first = if prop & libc::MS_SHARED != 0 {
        libc::MS_SLAVE | libc::MS_REC
    } else {
        prop
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        fl(first | libc::MS_REC),
        None::<&str>,
    )
    .ctx("make / private to the container")?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        fl(libc::MS_BIND | libc::MS_REC),
        None::<&str>,
    )
    .with_ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    open_dir(rootfs)
}

/// pivot_root into the rootfs (or MS_MOVE + chroot with --no-pivot).
pub fn pivot(root: &OwnedFd, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).ctx("chdir to rootfs")?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx("move rootfs to /")?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // step into it and detach it right away (no directory for it is
        // needed in the image).
        let old = open_dir(Path::new("/"))?;
        nix::unistd::pivot_root(".", ".").ctx("pivot_root")?;
        nix::unistd::fchdir(old.as_raw_fd()).ctx("chdir to old root")?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            fl(libc::MS_SLAVE | libc::MS_REC),
            None::<&str>,
        )
        .ctx("make old root a slave")?;
        umount2(".", MntFlags::MNT_DETACH).ctx("detach old root")?;
    }
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// After pivot: rootfsPropagation on the new root.
pub fn propagate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        mount(None::<&str>, "/", None::<&str>, fl(p), None::<&str>)
            .ctx("linux.rootfsPropagation")?;
    }
    Ok(())
}

/// maskedPaths: directories get an empty read-only tmpfs, anything else the
/// verified /dev/null.
pub fn mask(root: &OwnedFd, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = super::devices::verified_null(root)?;
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_ctx(|| format!("linux.maskedPaths {p}")),
        };
        let r = if crate::sys::fs::is_dir(&fd) {
            mount(
                Some("tmpfs"),
                fd_path(&fd).as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some(fd_path(&null).as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.with_ctx(|| format!("linux.maskedPaths {p}"))?;
    }
    Ok(())
}

/// readonlyPaths: bind each onto itself, then remount read-only keeping
/// the locked flags.
pub fn readonly(root: &OwnedFd, paths: &[String]) -> Result<()> {
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_ctx(|| format!("linux.readonlyPaths {p}")),
        };
        mount(
            Some(fd_path(&fd).as_str()),
            fd_path(&fd).as_str(),
            None::<&str>,
            fl(libc::MS_BIND | libc::MS_REC),
            None::<&str>,
        )
        .with_ctx(|| format!("linux.readonlyPaths {p}: bind"))?;
        let fd = open_in_root(root, Path::new(p), OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .with_ctx(|| format!("linux.readonlyPaths {p}"))?;
        super::mounts::remount_keep_locked(&fd, libc::MS_RDONLY)
            .with_ctx(|| format!("linux.readonlyPaths {p}: remount"))?;
    }
    Ok(())
}

/// root.readonly: remount / read-only.
pub fn root_readonly(root: &OwnedFd) -> Result<()> {
    super::mounts::remount_keep_locked(root, libc::MS_RDONLY).ctx("root.readonly: remount /")
}

/// Write linux.sysctl through the container's procfs, checked to be procfs.
pub fn sysctl(root: &OwnedFd, spec: &Spec) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if map.is_empty() {
        return Ok(());
    }
    let sys = open_in_root(
        root,
        Path::new("/proc/sys"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .ctx("open /proc/sys")?;
    let st = nix::sys::statfs::fstatfs(&sys).ctx("statfs /proc/sys")?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(SysError {
            what: "linux.sysctl: /proc/sys in the container is not procfs".into(),
            errno: nix::errno::Errno::EPERM,
        });
    }
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let rel = k.replace('.', "/");
        let f = nix::fcntl::openat(
            Some(sys.as_raw_fd()),
            rel.as_str(),
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("linux.sysctl.{k}"))?;
        // SAFETY: fresh fd.
        let f = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f) };
        nix::unistd::write(&f, v.as_bytes()).with_ctx(|| format!("linux.sysctl.{k} = {v}"))?;
    }
    Ok(())
}
