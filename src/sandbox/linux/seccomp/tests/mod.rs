//! Unit tests of the compiler: programs run in a small cBPF interpreter.

mod interp;
mod kernel;
mod podman;

use serde_json::{json, Value};

use super::*;
use interp::Data;

const ALLOW: u32 = 0x7fff_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const TRAP: u32 = 0x0003_0000;
const LOG: u32 = 0x7ffc_0000;
const NOTIFY: u32 = 0x7fc0_0000;
const fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}
const fn trace(d: u32) -> u32 {
    0x7ff0_0000 | d
}

pub(super) fn filter(v: Value) -> Filter {
    let s = parse_json(&v).unwrap_or_else(|e| panic!("{e}"));
    let f = compile(&s).unwrap_or_else(|e| panic!("{e}"));
    interp::check(f.program());
    f
}

fn err(v: Value) -> String {
    match parse_json(&v).and_then(|s| compile(&s)) {
        Ok(_) => panic!("expected an error for {v}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn nr(abi: Abi, name: &str) -> u32 {
    abi.number(name)
        .unwrap_or_else(|| panic!("{name} on {abi:?}"))
}

fn audit(abi: Abi) -> u32 {
    match abi {
        Abi::I386 => AUDIT_ARCH_I386,
        _ => AUDIT_ARCH_X86_64,
    }
}

/// The filter's verdict for syscall `name` of `abi` with `args`.
pub(super) fn eval(f: &Filter, abi: Abi, name: &str, args: &[u64]) -> u32 {
    eval_nr(f, audit(abi), nr(abi, name), args)
}

fn eval_nr(f: &Filter, arch: u32, nr: u32, args: &[u64]) -> u32 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    interp::run(f.program(), &Data { nr, arch, args: a }).0
}

fn x64(f: &Filter, name: &str, args: &[u64]) -> u32 {
    eval(f, Abi::X86_64, name, args)
}

#[test]
fn table_is_sorted_and_known_numbers_match() {
    assert!(table::SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(Abi::X86_64.number("read"), Some(0));
    assert_eq!(Abi::X86_64.number("mkdir"), Some(libc::SYS_mkdir as u32));
    assert_eq!(
        Abi::X86_64.number("personality"),
        Some(libc::SYS_personality as u32)
    );
    assert_eq!(Abi::X86_64.number("clone3"), Some(435));
    assert_eq!(Abi::X86_64.number("file_setattr"), Some(469));
    assert_eq!(Abi::I386.number("mkdir"), Some(39));
    assert_eq!(Abi::I386.number("socketcall"), Some(102));
    assert_eq!(Abi::I386.number("map_shadow_stack"), None);
    assert_eq!(Abi::X86_64.number("socketcall"), None);
    assert_eq!(Abi::X32.number("ioctl"), Some(0x4000_0000 + 514));
    assert_eq!(Abi::X32.number("mkdir"), Some(0x4000_0000 + 83));
    assert_eq!(Abi::X32.number("kexec_load"), Some(0x4000_0000 + 528));
}

#[test]
fn default_action_and_errno() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}));
    assert_eq!(x64(&f, "mkdir", &[]), errno(1));
    assert_eq!(x64(&f, "rmdir", &[]), errno(38));
    assert_eq!(x64(&f, "getpid", &[]), ALLOW);
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 0x3fff_ffff, &[]), ALLOW);

    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(x64(&f, "getpid", &[]), ALLOW);
    assert_eq!(x64(&f, "read", &[]), errno(13));
    let f = filter(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": []}));
    assert_eq!(x64(&f, "read", &[]), KILL_PROCESS);
}

#[test]
fn every_action() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_KILL"},
        {"names": ["write"], "action": "SCMP_ACT_KILL_THREAD"},
        {"names": ["open"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["close"], "action": "SCMP_ACT_TRAP"},
        {"names": ["stat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0},
        {"names": ["fstat"], "action": "SCMP_ACT_TRACE", "errnoRet": 77},
        {"names": ["lstat"], "action": "SCMP_ACT_TRACE"},
        {"names": ["poll"], "action": "SCMP_ACT_LOG"},
        {"names": ["lseek"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(x64(&f, "read", &[]), KILL_THREAD);
    assert_eq!(x64(&f, "write", &[]), KILL_THREAD);
    assert_eq!(x64(&f, "open", &[]), KILL_PROCESS);
    assert_eq!(x64(&f, "close", &[]), TRAP);
    assert_eq!(x64(&f, "stat", &[]), errno(0));
    assert_eq!(x64(&f, "fstat", &[]), trace(77));
    assert_eq!(x64(&f, "lstat", &[]), trace(1));
    assert_eq!(x64(&f, "poll", &[]), LOG);
    assert_eq!(x64(&f, "lseek", &[]), NOTIFY);
    assert!(f.needs_listener());
    assert_eq!(f.flags(), SECCOMP_FILTER_FLAG_NEW_LISTENER);
}

#[test]
fn flags() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]}));
    assert_eq!(
        f.flags(),
        SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
    assert!(!f.needs_listener());
}

#[test]
fn architectures() {
    let other_arch = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    let rules =
        json!([{"names": ["mkdir", "socketcall", "arch_prctl"], "action": "SCMP_ACT_ERRNO"}]);
    // Only the native arch: i386, x32 and foreign arches are bad arches.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert_eq!(x64(&f, "mkdir", &[]), errno(1));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_I386, 39, &[]), KILL_THREAD);
    assert_eq!(
        eval_nr(&f, AUDIT_ARCH_X86_64, 0x4000_0000 + 83, &[]),
        KILL_THREAD
    );
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, u32::MAX, &[]), KILL_THREAD);
    assert_eq!(eval_nr(&f, other_arch, 83, &[]), KILL_THREAD);
    assert_eq!(f.skipped(), ["socketcall"]); // not an x86_64 syscall

    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
    assert!(f.skipped().is_empty());
    assert_eq!(x64(&f, "mkdir", &[]), errno(1));
    assert_eq!(x64(&f, "arch_prctl", &[]), errno(1));
    assert_eq!(eval(&f, Abi::I386, "mkdir", &[]), errno(1));
    assert_eq!(eval(&f, Abi::I386, "socketcall", &[]), errno(1));
    assert_eq!(eval(&f, Abi::I386, "arch_prctl", &[]), errno(1));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_I386, 83, &[]), ALLOW); // i386 83 is symlink
    assert_eq!(eval(&f, Abi::X32, "mkdir", &[]), errno(1));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 0x4000_0000 + 39, &[]), ALLOW);
    assert_eq!(eval_nr(&f, other_arch, 83, &[]), KILL_THREAD);

    // SCMP_ARCH_NATIVE is x86_64; the list order does not matter.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
        "architectures": ["SCMP_ARCH_X32", "SCMP_ARCH_NATIVE"]}));
    assert_eq!(eval(&f, Abi::X32, "mkdir", &[]), errno(1));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_I386, 39, &[]), KILL_THREAD);

    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"]}),
    );
    assert!(
        e.starts_with(
            "linux.seccomp.architectures[1]: unsupported architecture \"SCMP_ARCH_AARCH64\""
        ),
        "{e}"
    );
}

#[test]
fn unknown_names_are_skipped() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_syscall", "getpid", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(f.skipped(), ["no_such_syscall"]);
    assert_eq!(x64(&f, "getpid", &[]), ALLOW);
    assert_eq!(x64(&f, "read", &[]), errno(1));
}

/// Reference semantics of one operator, as libseccomp defines it.
fn holds(op: &str, arg: u64, value: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_MASKED_EQ" => arg & value == two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];

/// Values whose halves straddle every boundary.
const VALUES: [u64; 12] = [
    0,
    1,
    2,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x8000_0000_0000_0000,
    0xffff_ffff_0000_0000,
    u64::MAX,
];

#[test]
fn every_operator_on_64_bit_halves() {
    for op in OPS {
        for &value in &VALUES {
            for two in [0, 1, value, value & 0xffff_ffff, value & !0xffff_ffff] {
                let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 3, "value": value, "valueTwo": two, "op": op}]}]}));
                for &arg in &VALUES {
                    let want = if holds(op, arg, value, two) {
                        errno(1)
                    } else {
                        ALLOW
                    };
                    let args = [0, 0, 0, arg];
                    assert_eq!(
                        x64(&f, "personality", &args),
                        want,
                        "{op} arg {arg:#x} value {value:#x} two {two:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_operator_on_32_bit_abis_compares_the_low_half() {
    for op in OPS {
        for &value in &VALUES {
            let two = value >> 1;
            let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": value, "valueTwo": two, "op": op}]}]}));
            for &arg in &VALUES {
                let (a, v, t) = (arg & 0xffff_ffff, value & 0xffff_ffff, two & 0xffff_ffff);
                let want = if holds(op, a, v, t) { errno(1) } else { ALLOW };
                for abi in [Abi::I386, Abi::X32] {
                    assert_eq!(
                        eval(&f, abi, "personality", &[arg]),
                        want,
                        "{abi:?} {op} {arg:#x} {value:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn args_of_one_rule_are_anded_and_rules_are_ored() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]},
        // Two conditions on the same argument: a range, ANDed (runc would OR them).
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 10, "op": "SCMP_CMP_GE"},
            {"index": 0, "value": 20, "op": "SCMP_CMP_LE"}]}]}));
    assert_eq!(x64(&f, "socket", &[2, 1]), ALLOW);
    assert_eq!(x64(&f, "socket", &[2, 2]), errno(1));
    assert_eq!(x64(&f, "socket", &[1, 1]), errno(1));
    assert_eq!(x64(&f, "socket", &[10, 5]), ALLOW);
    assert_eq!(x64(&f, "personality", &[9]), errno(1));
    assert_eq!(x64(&f, "personality", &[10]), ALLOW);
    assert_eq!(x64(&f, "personality", &[20]), ALLOW);
    assert_eq!(x64(&f, "personality", &[21]), errno(1));
}

#[test]
fn the_most_restrictive_matching_rule_wins() {
    let arg_eq = |v: u64| json!([{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]);
    let ge = |v: u64| json!([{"index": 0, "value": v, "op": "SCMP_CMP_GE"}]);
    // Listed least restrictive first, so order cannot be what decides.
    let rules = json!([
        {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": ge(1)},
        {"names": ["ioctl"], "action": "SCMP_ACT_TRACE", "args": ge(2)},
        {"names": ["ioctl"], "action": "SCMP_ACT_NOTIFY", "args": ge(3)},
        {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": ge(4)},
        {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6, "args": ge(4)},
        {"names": ["ioctl"], "action": "SCMP_ACT_TRAP", "args": ge(5)},
        {"names": ["ioctl"], "action": "SCMP_ACT_KILL_THREAD", "args": ge(6)},
        {"names": ["ioctl"], "action": "SCMP_ACT_KILL_PROCESS", "args": arg_eq(7)},
        {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": ge(0)},
    ]);
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": rules}),
    );
    let want = [
        ALLOW,
        LOG,
        trace(1),
        NOTIFY,
        errno(5),
        TRAP,
        KILL_THREAD,
        KILL_PROCESS,
        KILL_THREAD,
    ];
    for (arg, w) in want.iter().enumerate() {
        assert_eq!(x64(&f, "ioctl", &[arg as u64]), *w, "arg {arg}");
    }
    // Reversed order: the same verdicts.
    let mut rev = rules.as_array().unwrap().clone();
    rev.reverse();
    let f =
        filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": rev}));
    for (arg, w) in want.iter().enumerate() {
        let w = if *w == errno(5) { errno(6) } else { *w }; // first ERRNO in spec order
        assert_eq!(x64(&f, "ioctl", &[arg as u64]), w, "reversed, arg {arg}");
    }
}

#[test]
fn the_first_unconditional_rule_decides_as_in_libseccomp() {
    let ge = |v: u64| json!([{"index": 0, "value": v, "op": "SCMP_CMP_GE"}]);
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": ge(1)},
        {"names": ["mkdir"], "action": "SCMP_ACT_LOG"},
        {"names": ["mkdir"], "action": "SCMP_ACT_TRAP"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": ge(2)}]}));
    assert_eq!(x64(&f, "mkdir", &[0]), LOG);
    assert_eq!(x64(&f, "mkdir", &[5]), LOG);
    // podman's shape: a big ALLOW list, then ERRNO for the same names.
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["setns", "read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["setns", "bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
    );
    assert_eq!(x64(&f, "setns", &[]), ALLOW);
    assert_eq!(x64(&f, "bpf", &[]), errno(1));
}

#[test]
fn rules_equal_to_the_default_are_dropped_as_runc_does() {
    let any = json!([{"index": 0, "value": 0, "op": "SCMP_CMP_GE"}]);
    let five = |e: u32| {
        json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": e,
        "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]})
    };
    // Without the drop, the ERRNO(EPERM) rule would win over the ALLOW.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": any}, five(1)]}));
    assert_eq!(x64(&f, "personality", &[5]), ALLOW);
    // A different errno is a different action: kept.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": any}, five(2)]}));
    assert_eq!(x64(&f, "personality", &[5]), errno(2));
    assert_eq!(x64(&f, "personality", &[6]), ALLOW);
    // An unconditional rule equal to the default does not take the syscall.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(x64(&f, "mkdir", &[]), errno(1));
}

#[test]
fn enosys_for_syscalls_newer_than_the_profile() {
    let rules = json!([{"names": ["getpid", "mkdir"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
    assert_eq!(x64(&f, "mkdir", &[]), ALLOW);
    assert_eq!(x64(&f, "read", &[]), errno(1)); // below the newest named: default
    assert_eq!(x64(&f, "clone3", &[]), errno(1)); // named, equal to default
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 436, &[]), errno(38)); // newer
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 0x3fff_ffff, &[]), errno(38));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_I386, 436, &[]), errno(38));
    assert_eq!(eval_nr(&f, AUDIT_ARCH_I386, 39, &[]), ALLOW);
    assert_eq!(
        eval_nr(&f, AUDIT_ARCH_X86_64, 0x4000_0000 + 436, &[]),
        errno(38)
    );
    assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 0x4000_0000 + 83, &[]), ALLOW);
    // No stub when the default is permissive or already ENOSYS.
    for default in [
        json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        json!({"defaultAction": "SCMP_ACT_LOG"}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
    ] {
        let mut v = default.clone();
        v["syscalls"] = json!([{"names": ["getpid"], "action": "SCMP_ACT_KILL"}]);
        let f = filter(v);
        let d = match default["defaultAction"].as_str().unwrap() {
            "SCMP_ACT_ALLOW" => ALLOW,
            "SCMP_ACT_LOG" => LOG,
            _ => errno(38),
        };
        assert_eq!(eval_nr(&f, AUDIT_ARCH_X86_64, 436, &[]), d);
        assert_eq!(x64(&f, "getpid", &[]), KILL_THREAD);
    }
}

#[test]
fn errors_name_the_field() {
    let base = |sc: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, sc]});
    let e = err(base(
        json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}),
    ));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1].args[1].op: unknown operator \"SCMP_CMP_FOO\""
    );
    let e = err(base(json!({"names": ["read"], "action": "SCMP_ACT_BOGUS"})));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_BOGUS\""
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_NOPE"}));
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}));
    assert_eq!(
        e,
        "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_X"]}),
    );
    assert_eq!(
        e,
        "linux.seccomp.flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_X\""
    );
    let e = err(base(
        json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
    ));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1].args[0].index: 6 is not a syscall argument (0..=5)"
    );
    let e = err(base(
        json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}),
    ));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1].errnoRet: 65536 does not fit the 16-bit SECCOMP_RET_DATA"
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert_eq!(
        e,
        "linux.seccomp.defaultErrnoRet: 70000 does not fit the 16-bit SECCOMP_RET_DATA"
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    let e = err(base(
        json!({"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}),
    ));
    assert!(
        e.starts_with(
            "linux.seccomp.syscalls[1].names: SCMP_ACT_NOTIFY cannot be used for \"write\""
        ),
        "{e}"
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert!(e.starts_with("linux.seccomp: invalid type"), "{e}");
    assert_eq!(err(json!([1])), "linux.seccomp: must be an object");
}

/// A tiny deterministic PRNG for the randomized comparison below.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// (argument index, operator, value, valueTwo).
type Cnd = (usize, &'static str, u64, u64);

/// Large random profiles (far jumps, deep trees, many chains) against a
/// direct model of the semantics, on x86_64.
#[test]
fn random_profiles_match_the_model() {
    let actions = [
        ("SCMP_ACT_ALLOW", ALLOW),
        ("SCMP_ACT_LOG", LOG),
        ("SCMP_ACT_TRACE", trace(1)),
        ("SCMP_ACT_ERRNO", errno(1)),
        ("SCMP_ACT_TRAP", TRAP),
        ("SCMP_ACT_KILL", KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", KILL_PROCESS),
    ];
    let rank = |r: u32| match r {
        KILL_PROCESS => 0,
        KILL_THREAD => 1,
        TRAP => 2,
        ALLOW => 7,
        LOG => 6,
        r if r & 0xffff_0000 == 0x0005_0000 => 3,
        _ => 5,
    };
    let names: Vec<&str> = table::SYSCALLS
        .iter()
        .filter(|r| r.1 != table::NA)
        .map(|r| r.0)
        .take(300)
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sizes = Vec::new();
    for round in 0..40 {
        let (dname, dret) = rng.pick(&actions[..4]);
        let mut syscalls = Vec::new();
        // (nr, conds, ret) in spec order, for the model.
        let mut model: Vec<(u32, Vec<Cnd>, u32)> = Vec::new();
        for _ in 0..(30 + round * 6) {
            let (aname, mut aret) = rng.pick(&actions);
            let e = rng.next() % 3 + 1;
            if aname == "SCMP_ACT_ERRNO" {
                aret = errno(e as u32);
            } else if aname == "SCMP_ACT_TRACE" {
                aret = trace(e as u32);
            }
            let n: Vec<&str> = (0..rng.next() % 2 + 1).map(|_| rng.pick(&names)).collect();
            let conds: Vec<Cnd> = (0..rng.next() % 3)
                .map(|_| {
                    (
                        rng.pick(&[0usize, 1, 5]),
                        rng.pick(&OPS),
                        rng.pick(&VALUES),
                        rng.pick(&VALUES),
                    )
                })
                .collect();
            let args: Vec<Value> = conds
                .iter()
                .map(|(i, op, v, t)| json!({"index": i, "op": op, "value": v, "valueTwo": t}))
                .collect();
            syscalls.push(json!({"names": n, "action": aname, "errnoRet": e, "args": args}));
            if aret != dret {
                for name in &n {
                    model.push((nr(Abi::X86_64, name), conds.clone(), aret));
                }
            }
        }
        let max = syscalls
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().iter())
            .map(|n| nr(Abi::X86_64, n.as_str().unwrap()))
            .max()
            .unwrap();
        let f = filter(json!({"defaultAction": dname, "syscalls": syscalls}));
        sizes.push(f.program().len());
        let stub = dret != ALLOW && dret != LOG && dret != trace(1);
        for _ in 0..3000 {
            let n = if rng.next().is_multiple_of(8) {
                (rng.next() % 600) as u32
            } else {
                nr(Abi::X86_64, rng.pick(&names))
            };
            let args: Vec<u64> = (0..6).map(|_| rng.pick(&VALUES)).collect();
            let mut want: Option<u32> = None;
            let first_unconditional = model.iter().find(|(rn, c, _)| *rn == n && c.is_empty());
            if let Some((_, _, ret)) = first_unconditional {
                want = Some(*ret);
            }
            for (rn, conds, ret) in &model {
                if first_unconditional.is_none()
                    && *rn == n
                    && conds
                        .iter()
                        .all(|(i, op, v, t)| holds(op, args[*i], *v, *t))
                    && want.is_none_or(|w| rank(*ret) < rank(w))
                {
                    want = Some(*ret);
                }
            }
            let want = want.unwrap_or(if stub && n > max { errno(38) } else { dret });
            assert_eq!(
                eval_nr(&f, AUDIT_ARCH_X86_64, n, &args),
                want,
                "round {round} nr {n} args {args:x?}"
            );
        }
    }
    // The large rounds exercise far jumps (trampolines and ret copies).
    assert!(sizes.iter().any(|s| *s > 1000), "{sizes:?}");
}

#[test]
fn lookups_are_short() {
    // ~370 allowed names: the dispatch is a tree, not a chain.
    let names: Vec<&str> = table::SYSCALLS
        .iter()
        .filter(|r| r.1 != table::NA && r.1 % 7 != 3)
        .map(|r| r.0)
        .collect();
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}),
    );
    let worst = (0..500)
        .map(|n| {
            interp::run(
                f.program(),
                &Data {
                    nr: n,
                    arch: AUDIT_ARCH_X86_64,
                    args: [0; 6],
                },
            )
            .1
        })
        .max()
        .unwrap();
    assert!(
        worst <= 16,
        "worst case {worst} instructions, program {}",
        f.program().len()
    );
}
