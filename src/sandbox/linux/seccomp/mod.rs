//! seccomp: `linux.seccomp` → a classic BPF program, installed with seccomp(2).
//!
//! # Shape
//!
//! [`compile`] is pure: it validates the spec, resolves names with husk's own
//! table ([`table`]) and generates the cBPF itself ([`bpf`]); nothing touches
//! the kernel, so bad input is refused before any side effect.
//! [`Filter::install`] is the only effect: one `seccomp(SECCOMP_SET_MODE_FILTER)`
//! call that does not allocate, so it is safe between fork and exec.
//!
//! seccompiler is not used: it has one match action per filter, keeps its
//! syscall table private, always sets no_new_privs on apply, and cannot ask
//! for a listener. Stacking one filter per action would cost a full
//! arch+dispatch walk per filter on every syscall; one generated program is
//! smaller and faster.
//!
//! # Semantics (runc + libseccomp, with the differences named)
//!
//! - Architectures: SCMP_ARCH_X86_64 (= SCMP_ARCH_NATIVE; always present, as
//!   libseccomp adds the native arch), SCMP_ARCH_X86 (i386 numbers from the
//!   table) and SCMP_ARCH_X32 (x86_64's audit arch with
//!   `__X32_SYSCALL_BIT`). Any other architecture is an error. A syscall
//!   from an arch not listed (including x32 numbers when x32 is not listed)
//!   gets libseccomp's default bad-arch action, SECCOMP_RET_KILL_THREAD.
//! - Names unknown to every listed arch are skipped (runc does the same) and
//!   reported by [`Filter::skipped`]; a name known to only some arches applies
//!   where it exists.
//! - A rule whose action (with its errno) equals the default action is
//!   dropped, as runc does (libseccomp refuses such rules).
//! - Conditions of one rule are ANDed, rules for one syscall are ORed.
//!   Which rule decides, as libseccomp's rule database does: the first
//!   unconditional rule of a syscall (in spec order) decides it alone, later
//!   or earlier conditional rules notwithstanding (libseccomp drops them).
//!   podman's profile depends on this: `setns`, `sethostname`, … are in its
//!   big ALLOW list and again in an ERRNO rule for containers without
//!   CAP_SYS_ADMIN, and runc/crun allow them. Among conditional rules that
//!   match together, libseccomp's result depends on its internal tree order;
//!   husk makes it defined: the most restrictive action wins, in the
//!   kernel's order KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF >
//!   TRACE > LOG > ALLOW (same kind, e.g. two ERRNOs: the first in the spec).
//! - runc splits conditions on the same argument index into separate ORed
//!   rules (an old libseccomp limit); husk ANDs them, which is what the rule
//!   says and never more permissive.
//! - Arguments are compared as 64-bit values on two 32-bit halves on x86_64;
//!   on the 32-bit ABIs (i386, x32) only the low half is compared, with the
//!   value truncated to 32 bits, exactly as libseccomp does for them.
//!   MASKED_EQ: `(arg & value) == valueTwo`.
//! - ERRNO and TRACE take `errnoRet` (`defaultErrnoRet` for the default
//!   action) as their 16-bit data, EPERM when absent, as runc does.
//! - runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE,
//!   or the default already returns ENOSYS, a syscall number above the
//!   highest one the profile names for that arch returns ENOSYS, so that
//!   libcs fall back from syscalls newer than the profile (clone3 and friends).
//! - NOTIFY sets SECCOMP_FILTER_FLAG_NEW_LISTENER and [`Filter::install`]
//!   returns the listener. As in runc it cannot be the default action, nor
//!   apply to `write` (the runtime must still be able to write after install).
//! - Flags: SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW are
//!   passed to the kernel; SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored,
//!   as runc does: init is single-threaded.
//!
//! # Program layout (see [`bpf`])
//!
//! ```text
//!   ld arch; jeq X86_64 → A; [jeq I386 → B]; ret KILL_THREAD (bad arch)
//! A: ld nr; jge 0x40000000 → C (x32) or bad arch
//!    [jgt max_nr → ret ENOSYS]; binary search on nr; leaves are handlers
//! B: the same for i386       C: the same for x32 (numbers with the x32 bit)
//! ```
//! Syscall numbers are grouped into intervals with the same handler (runs of
//! consecutive allowed numbers collapse), and a tree of `jge` splits them:
//! podman's profile (~370 names, three ABIs) compiles to 371 instructions.
//! A handler is either a `ret` or, for conditional rules, a chain that tests
//! the rules most restrictive first and falls back to the default action.
//! Far jumps (cBPF conditional offsets are 8 bits) get a `ja` trampoline or a
//! copy of the target `ret`.

mod bpf;
mod json;
mod table;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use bpf::Insn;
pub use json::{check_json, parse_json};

/// The kernel's limit on a cBPF program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_LOG: u32 = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;

const EPERM: u16 = libc::EPERM as u16;
const ENOSYS: u16 = libc::ENOSYS as u16;

/// Errors of this module; `field` is the JSON path, e.g.
/// `linux.seccomp.syscalls[3].args[0].op`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "linux.seccomp: the filter needs {0} BPF instructions, more than the kernel's {MAX_INSNS}"
    )]
    TooLarge(usize),
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {source}{hint}")]
    Install {
        flags: u32,
        source: io::Error,
        hint: &'static str,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// What a filter returns for a syscall, with its 16-bit data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Notify,
    Trace(u16),
    Log,
    Allow,
}

impl Action {
    /// The SECCOMP_RET_* value.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::Notify => 0x7fc0_0000,
            Action::Trace(d) => 0x7ff0_0000 | u32::from(d),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// 0 is the most restrictive; the kernel's precedence between filters.
    fn rank(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::KillThread => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::Notify => 4,
            Action::Trace(_) => 5,
            Action::Log => 6,
            Action::Allow => 7,
        }
    }
}

/// The ABIs a filter can match on an x86_64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    X86_64,
    I386,
    X32,
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Abi {
    fn number(self, name: &str) -> Option<u32> {
        let i = table::SYSCALLS
            .binary_search_by(|(n, ..)| (*n).cmp(name))
            .ok()?;
        let (_, x64, i386, x32) = table::SYSCALLS[i];
        let nr = match self {
            Abi::X86_64 => x64,
            Abi::I386 => i386,
            Abi::X32 => x32,
        };
        if nr == table::NA {
            return None;
        }
        let nr = u32::from(nr);
        Some(if self == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        })
    }

    /// libseccomp compares only the low 32 bits of arguments on 32-bit ABIs.
    fn wide_args(self) -> bool {
        self == Abi::X86_64
    }
}

/// One argument condition, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

impl std::hash::Hash for Cond {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.index, self.op as u32, self.value, self.value_two).hash(h);
    }
}

/// One rule of one syscall: the conditions (ANDed) and what it returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Rule {
    action: Action,
    conds: Vec<Cond>,
}

/// A compiled filter: the cBPF program and the flags to install it with.
#[derive(Clone, Debug)]
pub struct Filter {
    program: Vec<Insn>,
    flags: u32,
    skipped: Vec<String>,
}

/// Validates `s` and compiles it into a program. Pure: no syscalls.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, Error> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == Action::Notify {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let abis = abis(s.architectures().as_deref().unwrap_or_default())?;
    let mut flags = filter_flags(s.flags().as_deref().unwrap_or_default());

    let mut per_abi: BTreeMap<Abi, BTreeMap<u32, Vec<Rule>>> = BTreeMap::new();
    let mut max_nr: BTreeMap<Abi, u32> = BTreeMap::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut skipped_set: HashSet<&str> = HashSet::new();
    for (i, sc) in s
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let rule = rule(sc, &field)?;
        if rule.action == Action::Notify {
            if let Some(w) = sc.names().iter().find(|n| *n == "write") {
                return Err(invalid(
                    format!("{field}.names"),
                    format!("SCMP_ACT_NOTIFY cannot be used for {w:?}: the runtime writes after installing the filter"),
                ));
            }
            flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        }
        for name in sc.names() {
            let mut known = false;
            for &abi in &abis {
                let Some(nr) = abi.number(name) else { continue };
                known = true;
                // The ENOSYS stub counts every name the profile mentions.
                let m = max_nr.entry(abi).or_insert(nr);
                *m = (*m).max(nr);
                if rule.action != default {
                    let rules = per_abi.entry(abi).or_default().entry(nr).or_default();
                    rules.push(rule.clone());
                }
            }
            if !known && skipped_set.insert(name) {
                skipped.push(name.clone());
            }
        }
    }

    let enosys = !matches!(
        default,
        Action::Allow | Action::Log | Action::Trace(_) | Action::Errno(ENOSYS)
    );
    let blocks = abis
        .iter()
        .map(|&abi| bpf::ArchBlock {
            abi,
            syscalls: per_abi.remove(&abi).unwrap_or_default(),
            enosys_above: if enosys {
                max_nr.get(&abi).copied()
            } else {
                None
            },
        })
        .collect::<Vec<_>>();
    let program = bpf::generate(&blocks, default);
    if program.len() > MAX_INSNS {
        return Err(Error::TooLarge(program.len()));
    }
    Ok(Filter {
        program,
        flags,
        skipped,
    })
}

impl Filter {
    /// Loads the filter into the calling thread with seccomp(2).
    ///
    /// The caller guarantees no_new_privs or CAP_SYS_ADMIN. Returns the
    /// listener when the filter uses SCMP_ACT_NOTIFY. Does not allocate on
    /// success, so it may run between fork and exec.
    pub fn install(&self) -> Result<Option<OwnedFd>, Error> {
        let prog = bpf::SockFprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call;
        // the kernel copies the program and reads nothing else.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const bpf::SockFprog,
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            let hint = match source.raw_os_error() {
                Some(libc::EACCES) => " (set no_new_privs or keep CAP_SYS_ADMIN before installing)",
                _ => "",
            };
            return Err(Error::Install {
                flags: self.flags,
                source,
                hint,
            });
        }
        if self.needs_listener() {
            // SAFETY: with NEW_LISTENER, seccomp(2) returns a new fd we own.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as RawFd) }))
        } else {
            Ok(None)
        }
    }

    /// True when the filter uses SCMP_ACT_NOTIFY: install returns a listener.
    pub fn needs_listener(&self) -> bool {
        self.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// The cBPF program.
    pub fn program(&self) -> &[Insn] {
        &self.program
    }

    /// The SECCOMP_FILTER_FLAG_* bits passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Names unknown to every listed architecture; skipped, as runc does.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

fn action(a: LinuxSeccompAction, ret: Option<u32>, field: &str) -> Result<Action, Error> {
    let data = |default: u16| match ret {
        None => Ok(default),
        Some(v) => u16::try_from(v).map_err(|_| {
            invalid(
                field,
                format!("{v} does not fit the 16-bit SECCOMP_RET_DATA"),
            )
        }),
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
        LinuxSeccompAction::ScmpActTrap => Action::Trap,
        LinuxSeccompAction::ScmpActErrno => Action::Errno(data(EPERM)?),
        LinuxSeccompAction::ScmpActNotify => Action::Notify,
        LinuxSeccompAction::ScmpActTrace => Action::Trace(data(EPERM)?),
        LinuxSeccompAction::ScmpActLog => Action::Log,
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
    })
}

fn abis(archs: &[Arch]) -> Result<Vec<Abi>, Error> {
    let mut abis = vec![Abi::X86_64];
    for (i, a) in archs.iter().enumerate() {
        let abi = match a {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                return Err(invalid(
                    format!("linux.seccomp.architectures[{i}]"),
                    format!("unsupported architecture \"{other}\" (husk supports SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32)"),
                ))
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }
    abis.sort();
    Ok(abis)
}

fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> u32 {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // As runc: init is single-threaded, there is nothing to sync.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        }
    })
}

fn rule(sc: &oci_spec::runtime::LinuxSyscall, field: &str) -> Result<Rule, Error> {
    let action = action(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
    let mut conds = Vec::new();
    for (j, a) in sc.args().as_deref().unwrap_or_default().iter().enumerate() {
        let index = u8::try_from(a.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| {
                invalid(
                    format!("{field}.args[{j}].index"),
                    format!("{} is not a syscall argument (0..=5)", a.index()),
                )
            })?;
        conds.push(Cond {
            index,
            op: a.op(),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    Ok(Rule { action, conds })
}

/// Compile a container's filter: the names this table lacks are skipped
/// (logged at debug level, as runc does), and SCMP_ACT_NOTIFY is refused
/// until husk sends the listener to `listenerPath`.
pub fn compile_for_container(s: &LinuxSeccomp) -> Result<Filter, String> {
    let f = compile(s).map_err(|e| e.to_string())?;
    for name in f.skipped() {
        log::debug!("linux.seccomp: syscall {name:?} is unknown here: skipped");
    }
    if f.needs_listener() {
        return Err(
            "linux.seccomp: SCMP_ACT_NOTIFY (a seccomp listener) is not supported by husk yet"
                .into(),
        );
    }
    Ok(f)
}
