//! The spec's `mounts`, in order, each destination resolved fd-relative
//! inside the rootfs (CVE-2021-30465): mount(2) targets /proc/self/fd/N.

use crate::spec::mounts::{parse, MountOpts};
use crate::sys::fs::{fd_path, is_dir, mkdir_all_in_root, open_in_root, touch_in_root};
use crate::sys::{Context, Result, SysError};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn flags(bits: libc::c_ulong) -> MsFlags {
    MsFlags::from_bits_retain(bits)
}

fn err(what: String, errno: nix::errno::Errno) -> SysError {
    SysError { what, errno }
}

/// Mount one entry of `mounts` (index `i`) under the rootfs fd. A `cgroup`
/// mount shows the container's cgroups `cg` (with a cgroup namespace
/// `cgroupns`, mounted afresh).
pub fn mount_one(
    root: &OwnedFd,
    i: usize,
    m: &Mount,
    cg: Option<&crate::cgroups::CgroupPaths>,
    cgroupns: bool,
) -> Result<()> {
    let field = format!("mounts[{i}]");
    let typ = m.typ().clone().unwrap_or_default();
    let opts = parse(m.options().as_deref().unwrap_or(&[]), &typ, &field)
        .map_err(|e| err(e.to_string(), nix::errno::Errno::EINVAL))?;
    let dest = m.destination();
    let what = |s: &str| format!("{field} {}: {s}", dest.display());
    if opts.is_bind() {
        return bind(root, m, &opts, &field);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        let cg = cg.ok_or_else(|| {
            err(
                what("a cgroup mount needs the container's cgroups"),
                nix::errno::Errno::EINVAL,
            )
        })?;
        return cgroup(root, m, &opts, &cg.views(), cgroupns, &field);
    }
    if dest == Path::new("/proc") || dest == Path::new("/sys") {
        refuse_symlink(root, dest).map_err(|e| err(what(&e), nix::errno::Errno::EINVAL))?;
    }
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    mount(
        Some(source.as_path()),
        fd_path(&target).as_str(),
        Some(typ.as_str()),
        flags(opts.flags & !libc::MS_REMOUNT),
        data,
    )
    .with_ctx(|| what(&format!("mount {typ}")))?;
    after_mount(root, dest, &opts, &what)
}

/// Propagation and recursive read-only, applied to the new mount (reopened:
/// the fd taken before mounting names the directory underneath).
fn after_mount(
    root: &OwnedFd,
    dest: &Path,
    opts: &MountOpts,
    what: &dyn Fn(&str) -> String,
) -> Result<()> {
    if opts.propagation.is_empty() && !opts.recursive_ro {
        return Ok(());
    }
    let fd = open_in_root(root, dest, OFlag::O_PATH).with_ctx(|| what("reopen"))?;
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            flags(*p),
            None::<&str>,
        )
        .with_ctx(|| what("set propagation"))?;
    }
    if opts.recursive_ro {
        set_recursive_ro(&fd).with_ctx(|| what("rro"))?;
    }
    Ok(())
}

fn set_recursive_ro(fd: &OwnedFd) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: 0x1,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr with a valid struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    crate::sys::check(r).map(|_| ())
}

fn bind(root: &OwnedFd, m: &Mount, opts: &MountOpts, field: &str) -> Result<()> {
    let dest = m.destination();
    let src = m.source().clone().unwrap_or_default();
    let what = |s: &str| format!("{field} {} → {}: {s}", src.display(), dest.display());
    let meta = std::fs::metadata(&src).map_err(|e| {
        err(
            what("source"),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    let target = if meta.is_dir() {
        mkdir_all_in_root(root, dest, 0o755)?
    } else {
        let t = touch_in_root(root, dest)?;
        if is_dir(&t) {
            return Err(err(
                what("a file source needs a file destination"),
                nix::errno::Errno::EISDIR,
            ));
        }
        t
    };
    let rec = opts.flags & libc::MS_REC;
    mount(
        Some(src.as_path()),
        fd_path(&target).as_str(),
        None::<&str>,
        flags(libc::MS_BIND | rec),
        None::<&str>,
    )
    .with_ctx(|| what("bind"))?;
    let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if extra != 0 {
        let fd = open_in_root(root, dest, OFlag::O_PATH).with_ctx(|| what("reopen"))?;
        remount_keep_locked(&fd, extra).with_ctx(|| what("remount"))?;
    }
    after_mount(root, dest, opts, &what)
}

/// Remount a bind with `extra` flags, keeping the nosuid/nodev/noexec/
/// atime flags the kernel locks on it (else EPERM in a user namespace).
pub fn remount_keep_locked(fd: &OwnedFd, extra: libc::c_ulong) -> nix::Result<()> {
    let st = nix::sys::statvfs::fstatvfs(fd)?;
    let locked = st.flags().bits() as libc::c_ulong
        & (libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_NOATIME
            | libc::MS_NODIRATIME
            | libc::MS_RELATIME);
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        flags(libc::MS_BIND | libc::MS_REMOUNT | extra | locked),
        None::<&str>,
    )
}

/// CVE-2019-19921 / CVE-2023-27561: /proc and /sys must be real
/// directories in the image, not symlinks.
fn refuse_symlink(root: &OwnedFd, dest: &Path) -> std::result::Result<(), String> {
    let parent = open_in_root(
        root,
        dest.parent().unwrap_or(Path::new("/")),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .map_err(|e| e.desc().to_string())?;
    let name = dest.file_name().unwrap_or_default();
    match nix::sys::stat::fstatat(
        Some(parent.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => {
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFLNK {
                Err("is a symlink in the image: refusing to mount over it".into())
            } else if fmt != libc::S_IFDIR {
                Err("is not a directory in the image: refusing to mount over it".into())
            } else {
                Ok(())
            }
        }
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.desc().into()),
    }
}

/// `cgroup` mounts. With a cgroup namespace the hierarchies are mounted
/// afresh (their root is the container's cgroup); without one, the
/// container's own cgroup directories are bound in. On v1/hybrid a tmpfs
/// holds one directory per hierarchy, as runc lays it out.
fn cgroup(
    root: &OwnedFd,
    m: &Mount,
    opts: &MountOpts,
    views: &[crate::cgroups::View],
    cgroupns: bool,
    field: &str,
) -> Result<()> {
    let dest = m.destination();
    let what = |s: &str| format!("{field} {}: {s}", dest.display());
    let ro = opts.flags & libc::MS_RDONLY;
    let base = opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let cgroup_root = Path::new("/sys/fs/cgroup");
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    if let Some(v2) = views.iter().find(|h| h.v2 && h.mount == cgroup_root) {
        return mount_hierarchy(root, dest, v2, cgroupns, base | ro, &what);
    }
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags(base),
        Some("mode=755"),
    )
    .with_ctx(|| what("tmpfs"))?;
    for h in views {
        let sub = dest.join(h.mount.strip_prefix(cgroup_root).unwrap_or(&h.mount));
        mount_hierarchy(root, &sub, h, cgroupns, base | ro, &what)?;
    }
    if ro != 0 {
        let fd = open_in_root(root, dest, OFlag::O_PATH).with_ctx(|| what("reopen"))?;
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            flags(libc::MS_REMOUNT | base | ro),
            Some("mode=755"),
        )
        .with_ctx(|| what("remount tmpfs read-only"))?;
    }
    Ok(())
}

fn mount_hierarchy(
    root: &OwnedFd,
    dest: &Path,
    h: &crate::cgroups::View,
    cgroupns: bool,
    fl: libc::c_ulong,
    what: &dyn Fn(&str) -> String,
) -> Result<()> {
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    if cgroupns {
        let (t, data) = if h.v2 {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(h.options.as_str()))
        };
        mount(Some(t), fd_path(&target).as_str(), Some(t), flags(fl), data)
            .with_ctx(|| what(&format!("mount {t} {}", dest.display())))?;
    } else {
        mount(
            Some(h.dir.as_path()),
            fd_path(&target).as_str(),
            None::<&str>,
            flags(libc::MS_BIND | libc::MS_REC),
            None::<&str>,
        )
        .with_ctx(|| what(&format!("bind {}", h.dir.display())))?;
        if fl != 0 {
            let fd = open_in_root(root, dest, OFlag::O_PATH).with_ctx(|| what("reopen"))?;
            remount_keep_locked(&fd, fl).with_ctx(|| what("remount"))?;
        }
    }
    Ok(())
}
