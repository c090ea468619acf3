//! CVE-2019-5736: a process entering a container must never hand the
//! container a writable handle on the husk binary (through
//! /proc/<pid>/exe or a `#!/proc/self/exe` interpreter).
//!
//! husk re-executes itself, once, from a detached read-only bind mount of
//! its own binary (runc 1.2's approach): /proc/self/exe then names a file on
//! a read-only mount, so opening it for writing fails with EROFS, and no
//! copy is made. Where open_tree(2) is refused (no CAP_SYS_ADMIN), a sealed
//! memfd copy is used instead (crun's approach). Only the commands that
//! enter a container pay for it (create, run, exec).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MARK: &str = "_HUSK_SEALED";

/// The binary's own path before the re-exec (the mark's value): files
/// installed beside husk (husk-agent) are found from it.
static ORIGINAL: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Has this process already been re-executed from a sealed binary?
fn sealed_already() -> bool {
    if let Some(v) = std::env::var_os(MARK) {
        let _ = ORIGINAL.set(v.into());
        // Not for the container's processes or hooks to see.
        std::env::remove_var(MARK);
        return true;
    }
    false
}

/// Where husk was started from: /proc/self/exe names the sealed copy.
pub fn original() -> Option<std::path::PathBuf> {
    ORIGINAL
        .get()
        .cloned()
        .or_else(|| std::env::current_exe().ok())
}

/// A binary installed on a read-only mount (e.g. `mount --bind -o ro
/// /usr/bin/husk /usr/bin/husk`, as runc's memfd-bind does for runc) is
/// already safe: a write through /proc/<pid>/exe gets EROFS. Then the
/// re-exec, about 0.8 ms of each start here, is skipped.
fn on_read_only_mount() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn read_only_bind() -> Option<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    const MOUNT_ATTR_RDONLY: u64 = 1;
    // SAFETY: open_tree with a valid path; returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        prop: u64,
        userns: u64,
    }
    let attr = MountAttr {
        set: MOUNT_ATTR_RDONLY,
        clr: 0,
        prop: 0,
        userns: 0,
    };
    // SAFETY: mount_setattr on our detached mount.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    (r == 0).then_some(fd)
}

fn sealed_memfd() -> Option<OwnedFd> {
    let mut src = std::fs::File::open("/proc/self/exe").ok()?;
    // SAFETY: memfd_create with a valid name.
    let fd = unsafe {
        libc::memfd_create(
            c"husk".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(fd.try_clone().ok()?);
    std::io::copy(&mut src, &mut dst).ok()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our memfd.
    (unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == 0).then_some(fd)
}

/// Re-execute from a sealed binary unless already done. Returns only when
/// sealed (or when sealing is impossible, with an error to report).
pub fn ensure_sealed() -> Result<(), String> {
    if sealed_already() || on_read_only_mount() {
        return Ok(());
    }
    let fd = read_only_bind()
        .or_else(sealed_memfd)
        .ok_or("CVE-2019-5736 defence: cannot make a sealed copy of the husk binary")?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let me = std::env::current_exe().unwrap_or_default().into_os_string();
    let mut mark = format!("{MARK}=").into_bytes();
    mark.extend(me.into_encoded_bytes());
    env.push(
        CString::new(mark).unwrap_or_else(|_| CString::new(format!("{MARK}=")).expect("no NUL")),
    );
    let err = nix::unistd::execveat(
        Some(fd.as_raw_fd()),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(format!(
        "CVE-2019-5736 defence: re-exec from the sealed binary: {}",
        err.desc()
    ))
}
