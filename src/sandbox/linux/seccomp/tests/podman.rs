//! podman's real profile (`/usr/share/containers/seccomp.json`, the
//! containers/docker format) converted to OCI form the way podman does for
//! its default capabilities on amd64, then compiled and run.

use std::path::Path;

use nix::sys::wait::WaitStatus;
use serde_json::Value;

use super::super::{compile, parse_json, Abi, Filter};
use super::{eval, kernel, nr};

include!("../../../../../tests/shared/podman_seccomp.rs");
use podman_seccomp::{default_caps, to_oci, PROFILE};
const ALLOW: u32 = 0x7fff_0000;
const fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}

fn podman_filter() -> Option<Filter> {
    if !Path::new(PROFILE).exists() {
        eprintln!("skipped: {PROFILE} is absent (apt-get install podman)");
        return None;
    }
    let p: Value = serde_json::from_str(&std::fs::read_to_string(PROFILE).unwrap()).unwrap();
    let oci = to_oci(&p, &default_caps());
    let f = compile(&parse_json(&oci).unwrap()).unwrap();
    super::interp::check(f.program());
    Some(f)
}

/// What husk's init may still call after installing the filter (with
/// noNewPrivileges false it is loaded before caps are dropped and setuid).
const RUNTIME_AFTER_INSTALL: &[&str] = &[
    "capget",
    "capset",
    "setresuid",
    "setresgid",
    "setuid",
    "setgid",
    "setgroups",
    "prctl",
    "close",
    "close_range",
    "chdir",
    "fchdir",
    "execve",
    "execveat",
    "read",
    "write",
    "readv",
    "writev",
    "openat",
    "openat2",
    "open",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "getdents64",
    "newfstatat",
    "fstat",
    "statx",
    "readlink",
    "readlinkat",
    "exit",
    "exit_group",
    "rt_sigprocmask",
    "rt_sigaction",
    "rt_sigreturn",
    "setsid",
    "ioctl",
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "umask",
    "keyctl",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "getpid",
    "getppid",
    "gettid",
    "kill",
    "tgkill",
    "wait4",
    "waitid",
    "poll",
    "ppoll",
    "epoll_wait",
    "futex",
    "sched_getaffinity",
    "getrandom",
    "lseek",
    "pread64",
    "access",
    "faccessat2",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "prlimit64",
    "setrlimit",
    "uname",
    "getcwd",
    "pidfd_open",
    "pidfd_send_signal",
    "clone",
    "clone3",
    "rseq",
    "set_robust_list",
];

#[test]
fn podman_profile_compiles_and_behaves() {
    let Some(f) = podman_filter() else { return };
    let n = f.program().len();
    eprintln!(
        "podman profile: {n} instructions, skipped names: {:?}",
        f.skipped()
    );
    assert!(n < 4096, "{n} instructions");
    let x = Abi::X86_64;
    assert_eq!(eval(&f, x, "mkdir", &[]), ALLOW);
    assert_eq!(eval(&f, x, "kexec_load", &[]), errno(1));
    assert_eq!(eval(&f, x, "personality", &[0x20008]), ALLOW);
    assert_eq!(eval(&f, x, "personality", &[0xffff_ffff]), ALLOW);
    assert_eq!(eval(&f, x, "personality", &[12345]), errno(38)); // the default
    assert_eq!(eval(&f, x, "socket", &[16, 3, 9]), errno(22)); // netlink audit, no CAP_AUDIT_WRITE
    assert_eq!(eval(&f, x, "socket", &[16, 3, 0]), ALLOW);
    assert_eq!(eval(&f, x, "socket", &[2, 1, 0]), ALLOW);
    assert_eq!(eval(&f, x, "bpf", &[]), errno(1)); // no CAP_SYS_ADMIN
    assert_eq!(eval(&f, x, "chroot", &[]), ALLOW); // CAP_SYS_CHROOT is a default
    assert_eq!(eval(&f, x, "open_by_handle_at", &[]), errno(1));
    // In the ALLOW list and in the ERRNO rule for no CAP_SYS_ADMIN: the
    // first unconditional rule decides, as with runc and crun.
    assert_eq!(eval(&f, x, "setns", &[]), ALLOW);
    assert_eq!(eval(&f, x, "sethostname", &[]), errno(1)); // only in the ERRNO rule
    assert_eq!(eval(&f, Abi::I386, "mkdir", &[]), ALLOW);
    assert_eq!(eval(&f, Abi::I386, "socketcall", &[]), ALLOW);
    assert_eq!(eval(&f, Abi::X32, "mkdir", &[]), ALLOW);
    assert_eq!(eval(&f, Abi::X32, "kexec_load", &[]), errno(1));

    let blocked: Vec<&str> = RUNTIME_AFTER_INSTALL
        .iter()
        .copied()
        .filter(|s| eval(&f, x, s, &[]) != ALLOW)
        .collect();
    assert!(
        blocked.is_empty(),
        "the runtime needs {blocked:?} after install"
    );

    // For the record: every x86_64 syscall the profile does not allow outright.
    let denied: Vec<String> = super::super::table::SYSCALLS
        .iter()
        .filter(|r| r.1 != super::super::table::NA)
        .filter_map(|r| {
            let v = eval(&f, x, r.0, &[]);
            (v != ALLOW).then(|| format!("{}={}", r.0, v & 0xffff))
        })
        .collect();
    eprintln!(
        "x86_64 syscalls not allowed with zero args (name=errno): {}",
        denied.join(" ")
    );
}

#[test]
fn podman_profile_in_the_kernel() {
    let Some(f) = podman_filter() else { return };
    let dir = std::env::temp_dir().join(format!("husk-seccomp-podman-{}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    let st = kernel::in_child(&f, |_| unsafe {
        let mk = kernel::errno_of(libc::syscall(libc::SYS_mkdir, c.as_ptr(), 0o700));
        let kexec = kernel::errno_of(libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0));
        let pers = kernel::errno_of(libc::syscall(libc::SYS_personality, 12345u64));
        let ok = kernel::errno_of(libc::syscall(libc::SYS_personality, 0xffff_ffffu64));
        if mk == 0 && kexec == libc::EPERM && pers == libc::ENOSYS && ok == 0 {
            0
        } else {
            1
        }
    });
    let made = dir.exists();
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(st, WaitStatus::Exited(st.pid().unwrap(), 0));
    assert!(made);
    let _ = nr(Abi::X86_64, "mkdir");
}
