//! The one home of unsafe and raw libc: fd-relative path ops, process
//! handles, the sync socket, small syscall wrappers whose errors name their
//! object.

pub mod exe;
pub mod fs;
pub mod io;
pub mod lsm;
pub mod proc;
pub mod signals;
pub mod sock;
pub mod time;

use std::fmt;

/// An OS error together with the object it was about.
#[derive(Debug)]
pub struct SysError {
    pub what: String,
    pub errno: nix::errno::Errno,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.errno.desc())
    }
}

impl std::error::Error for SysError {}

pub type Result<T> = std::result::Result<T, SysError>;

/// Attach a description of the object to a nix result.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: S) -> Result<T>;
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<S: Into<String>>(self, what: S) -> Result<T> {
        self.map_err(|errno| SysError {
            what: what.into(),
            errno,
        })
    }
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T> {
        self.map_err(|errno| SysError {
            what: f().into(),
            errno,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<S: Into<String>>(self, what: S) -> Result<T> {
        self.map_err(|e| SysError {
            what: what.into(),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T> {
        self.map_err(|e| SysError {
            what: f().into(),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
}

/// Make a process-wide syscall result into nix's.
pub fn check(ret: libc::c_long) -> nix::Result<libc::c_long> {
    if ret < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(ret)
    }
}
