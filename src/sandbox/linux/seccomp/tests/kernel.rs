//! Real-kernel tests: a forked child sets no_new_privs, installs a filter,
//! makes syscalls and reports by exit code. The child does only
//! async-signal-safe work (the test harness is multi-threaded): everything it
//! needs is allocated before the fork.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::json;

use super::filter;
use crate::sandbox::linux::seccomp::Filter;

/// `_IOW('!', 2, __u64)`: valid only on a seccomp listener.
const SECCOMP_IOCTL_NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;

/// Runs `body` in a child after installing `f`; the child's exit code is
/// `body`'s result (100 + errno if install failed).
pub(super) fn in_child(f: &Filter, body: impl FnOnce(Option<i32>) -> i32) -> WaitStatus {
    // SAFETY: the child only calls async-signal-safe functions and _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(99);
                }
                match f.install() {
                    Ok(fd) => body(fd.as_ref().map(|fd| fd.as_raw_fd())),
                    Err(_) => 100 + *libc::__errno_location(),
                }
            };
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// A raw syscall's errno, or 0 if it succeeded.
pub(super) fn errno_of(rc: libc::c_long) -> i32 {
    if rc == -1 {
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

fn scratch_dir(tag: &str) -> (std::path::PathBuf, CString) {
    let p = std::env::temp_dir().join(format!("husk-seccomp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir(&p);
    let c = CString::new(p.to_str().unwrap()).unwrap();
    (p, c)
}

fn mkdir(path: &CString) -> i32 {
    errno_of(unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o700) })
}

#[test]
fn mkdir_fails_with_eperm() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}));
    let (dir, c) = scratch_dir("eperm");
    let st = in_child(&f, |_| mkdir(&c));
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), libc::EPERM));
    assert!(!dir.exists());
}

#[test]
fn mkdir_fails_with_the_chosen_errno() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}));
    let (dir, c) = scratch_dir("enosys");
    let st = in_child(&f, |_| mkdir(&c));
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), 38));
    assert!(!dir.exists());
}

#[test]
fn only_personality_query_is_allowed() {
    // A whitelist: everything else, getpid included, gets EPERM.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}]}));
    let st = in_child(&f, |_| unsafe {
        let query = errno_of(libc::syscall(libc::SYS_personality, 0xffff_ffffu64));
        let set = errno_of(libc::syscall(libc::SYS_personality, 0u64));
        let pid = errno_of(libc::syscall(libc::SYS_getpid));
        if query == 0 && set == libc::EPERM && pid == libc::EPERM {
            0
        } else {
            1
        }
    });
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), 0));
}

#[test]
fn kill_process_ends_the_child_with_sigsys() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
    let (dir, c) = scratch_dir("kill");
    let st = in_child(&f, |_| {
        mkdir(&c);
        0
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
    assert!(!dir.exists());
}

#[test]
fn notify_returns_a_listener() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(f.needs_listener());
    let st = in_child(&f, |fd| {
        let Some(fd) = fd else { return 1 };
        // No notification with id 0 is pending: ENOENT proves a listener
        // (any other fd answers ENOTTY).
        let id: u64 = 0;
        let rc = unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) };
        if rc == -1 && errno_of(-1) == libc::ENOENT {
            0
        } else {
            2
        }
    });
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), 0));
}

#[test]
fn log_and_spec_allow_flags_are_accepted_by_the_kernel() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]}));
    let (_, c) = scratch_dir("flags");
    let st = in_child(&f, |_| mkdir(&c));
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), 5));
}
