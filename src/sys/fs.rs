//! Paths under the container's rootfs are fds, never strings.
//!
//! Every lookup resolves inside a root directory fd with openat2
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`; where the kernel lacks openat2
//! a component walk does the same (symlinks are read and re-resolved against
//! the root, `..` stops at the root). Creation is one component at a time
//! with `mkdirat`/`openat(O_EXCL|O_NOFOLLOW)` under an fd resolved that way,
//! so a racing symlink can never make anything land outside the rootfs.

use super::{check, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(p: &OsStr) -> CString {
    CString::new(p.as_bytes()).unwrap_or_else(|_| CString::new("\u{fffd}").unwrap())
}

/// The path of an fd through procfs, for mount(2) and friends.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", path.display()))?;
    // SAFETY: fresh fd from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Relative form of `path` (leading `/` stripped, `.` dropped); `..` kept for
/// the resolver, which clamps it at the root.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

fn openat2(dir: RawFd, path: &Path, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    let p = cstr(path.as_os_str());
    loop {
        // SAFETY: valid C string and open_how of the size we pass.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                p.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(r) {
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            // SAFETY: fresh fd.
            r => return r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        }
    }
}

/// Resolve `path` inside `root` and open it with `flags`.
pub fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    match openat2(root.as_fd().as_raw_fd(), &rel, flags, 0) {
        Err(Errno::ENOSYS) => walk_in_root(root.as_fd().as_raw_fd(), &rel, flags),
        r => r,
    }
}

/// The fallback resolver: one component at a time with O_NOFOLLOW, symlinks
/// expanded by hand against the root.
fn walk_in_root(root: RawFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let mut pending: Vec<Vec<u8>> = Vec::new();
    push_components(&mut pending, path);
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    let dup_root = || -> nix::Result<OwnedFd> {
        let fd = openat(
            Some(root),
            ".",
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: fresh fd.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut cur = dup_root()?;
    while let Some(name) = pending.pop() {
        if name == b".." {
            if let Some(up) = stack.pop() {
                cur = up;
            }
            continue;
        }
        let last = pending.is_empty();
        let cname = cstr(OsStr::from_bytes(&name));
        // A symlink is read and re-resolved against the root, never followed
        // by the kernel; the open below uses O_NOFOLLOW (and O_DIRECTORY for
        // inner components) so a swap after the check fails instead.
        let st = nix::sys::stat::fstatat(
            Some(cur.as_raw_fd()),
            cname.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            let target = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), cname.as_c_str())?;
            links += 1;
            if links > 40 {
                return Err(Errno::ELOOP);
            }
            let t = Path::new(&target);
            if t.is_absolute() {
                stack.clear();
                cur = dup_root()?;
            }
            push_components(&mut pending, t);
            continue;
        }
        let oflags = if last {
            flags | OFlag::O_NOFOLLOW
        } else {
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY
        };
        let fd = openat(
            Some(cur.as_raw_fd()),
            cname.as_c_str(),
            oflags | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(Errno::ELOOP);
        }
        if !last {
            stack.push(std::mem::replace(&mut cur, fd));
        } else {
            return Ok(fd);
        }
    }
    Ok(cur)
}

fn push_components(pending: &mut Vec<Vec<u8>>, p: &Path) {
    let comps: Vec<Vec<u8>> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            _ => None,
        })
        .collect();
    pending.extend(comps.into_iter().rev());
}

/// Create every missing directory of `path` inside `root` and return an
/// O_PATH fd of the last one.
pub fn mkdir_all_in_root(root: &impl AsFd, path: &Path, mode: u32) -> Result<OwnedFd> {
    let what = || format!("mkdir {} in rootfs", path.display());
    let rel = relative(path);
    mkdir_rel(root, &rel, mode).with_ctx(what)
}

/// The common case costs one openat2: the directory exists. A missing one
/// is made under its parent (resolved the same way, recursively) and opened
/// with O_NOFOLLOW from that parent fd, so a name swapped for a symlink
/// meanwhile is never followed; it then goes back through the resolver.
fn mkdir_rel(root: &impl AsFd, rel: &Path, mode: u32) -> nix::Result<OwnedFd> {
    let dirflags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, rel, dirflags) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Errno::ENOENT);
    };
    if rel.components().any(|c| c == Component::ParentDir) {
        // `..` makes the lexical parent a different directory: let the
        // resolver walk it one prefix at a time instead.
        return mkdir_prefixes(root, rel, mode);
    }
    let dir = mkdir_rel(root, parent, mode)?;
    let cname = cstr(name);
    // SAFETY: valid C string, fd we own.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), mode) } < 0
        && Errno::last() != Errno::EEXIST
    {
        return Err(Errno::last());
    }
    match openat(
        Some(dir.as_raw_fd()),
        cname.as_c_str(),
        dirflags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: fresh fd.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => open_in_root(root, rel, dirflags),
        Err(e) => Err(e),
    }
}

fn mkdir_prefixes(root: &impl AsFd, rel: &Path, mode: u32) -> nix::Result<OwnedFd> {
    let dirflags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut cur = open_in_root(root, Path::new("."), dirflags)?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        prefix.push(comp);
        match open_in_root(root, &prefix, dirflags) {
            Ok(fd) => cur = fd,
            Err(Errno::ENOENT) => {
                let name = cstr(comp.as_os_str());
                // SAFETY: valid C string, fd we own.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), mode) };
                if r < 0 && Errno::last() != Errno::EEXIST {
                    return Err(Errno::last());
                }
                cur = open_in_root(root, &prefix, dirflags)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Make sure `path` exists inside `root` as a file (created empty if
/// missing) and return an O_PATH fd of it.
pub fn touch_in_root(root: &impl AsFd, path: &Path) -> Result<OwnedFd> {
    let what = || format!("create {} in rootfs", path.display());
    match open_in_root(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).with_ctx(what),
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or(Errno::EINVAL).with_ctx(what)?;
    let dir = mkdir_all_in_root(root, parent, 0o755)?;
    // Reopen the parent as a real directory fd for openat(O_CREAT).
    let dirfd = openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(what)?;
    // SAFETY: fresh fd.
    let dirfd = unsafe { OwnedFd::from_raw_fd(dirfd) };
    match openat(
        Some(dirfd.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        // SAFETY: fresh fd, closed at once.
        Ok(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).with_ctx(what),
    }
    open_in_root(root, path, OFlag::O_PATH).with_ctx(what)
}

pub fn is_dir(fd: &impl AsRawFd) -> bool {
    fstat(fd.as_raw_fd())
        .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .unwrap_or(false)
}

/// Mark every fd from `from` up close-on-exec (CVE-2024-21626: nothing of
/// the runtime's may leak into the container's process).
pub fn cloexec_from(from: u32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC touches only flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds.into_iter().filter(|fd| *fd >= from as i32) {
                // SAFETY: only changes the flag of an fd number.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// Write a file atomically: a temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let what = || format!("write {}", path.display());
    let mut f = std::fs::File::create(&tmp).with_ctx(what)?;
    f.write_all(data).with_ctx(what)?;
    drop(f);
    std::fs::rename(&tmp, path)
        .inspect_err(|_e| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_ctx(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("husk-fs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlinks_resolve_inside_root() {
        let d = tmpdir("sym");
        let root = d.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("evil")).unwrap();
        symlink("../../../../etc", root.join("evil2")).unwrap();
        let rfd = open_dir(&root).unwrap();
        let made = mkdir_all_in_root(&rfd, Path::new("/evil/newdir"), 0o755).unwrap();
        assert!(is_dir(&made));
        assert!(root.join("etc/newdir").is_dir(), "lands inside the rootfs");
        assert!(!Path::new("/etc/newdir").exists());
        touch_in_root(&rfd, Path::new("/evil2/husk-probe")).unwrap();
        assert!(root.join("etc/husk-probe").is_file());
        assert!(!Path::new("/etc/husk-probe").exists());
        // The fallback walker agrees.
        let fd = walk_in_root(
            rfd.as_raw_fd(),
            Path::new("evil2/husk-probe"),
            OFlag::O_PATH,
        )
        .unwrap();
        let a = fstat(fd.as_raw_fd()).unwrap();
        let b = nix::sys::stat::stat(&root.join("etc/husk-probe")).unwrap();
        assert_eq!(a.st_ino, b.st_ino);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tmpdir("atomic");
        let p = d.join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
