//! cgroup v2 device control: an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE built from `linux.resources.devices` and
//! attached to the container's cgroup (v2 has no devices.allow/deny).
//!
//! The program reads the request from `struct bpf_cgroup_dev_ctx`
//! (`access_type` = type | access << 16, `major`, `minor`) and walks the
//! rules from the last to the first, since a later rule overrides an earlier
//! one; the first that matches decides. With no match the request is allowed,
//! as a new v1 devices cgroup inherits "a *:* rwm": the usual list opens with
//! a deny-all, which then matches last and denies.
//!
//! An allow rule matches when the requested access is a subset of its own; a
//! deny rule when the request asks for any access it names.
//!
//! The raw bpf(2) calls would belong in sys/ (the home of unsafe); they sit
//! here until the lead moves them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::Error;

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JNE_K: u8 = 0x55;
const JMP_JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

fn access_bits(a: &str) -> i32 {
    a.chars().fold(0, |b, c| match c {
        'm' => b | 1, // BPF_DEVCG_ACC_MKNOD
        'r' => b | 2, // BPF_DEVCG_ACC_READ
        'w' => b | 4, // BPF_DEVCG_ACC_WRITE
        _ => b,
    })
}

/// The program for `rules` (config.json order).
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, Error> {
    // r2 = type, r3 = access, r4 = major, r5 = minor; r1 (ctx) is free after.
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let typ = match r.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            // A fifo is no device: cgroups do not govern it (runc skips it).
            LinuxDeviceType::P => continue,
        };
        let access = r
            .access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm");
        if access.chars().any(|c| !"rwm".contains(c)) {
            return Err(Error::Unsupported {
                resource: "linux.resources.devices".into(),
                reason: format!("access {access:?} is not made of r, w and m"),
            });
        }
        let acc = access_bits(access);
        // Each check: (insns before the jump, the jump with its target left
        // to patch to the end of the block).
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        if let Some(t) = typ {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, 2, 0, 0, t));
        }
        if acc != 7 {
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            if r.allow() {
                // Any requested bit outside the rule's: no match.
                block.push(insn(ALU32_AND_K, 1, 0, 0, !acc & 7));
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, 1, 0, 0, 0));
            } else {
                // No requested bit among the rule's: no match.
                block.push(insn(ALU32_AND_K, 1, 0, 0, acc));
                jumps.push(block.len());
                block.push(insn(JMP_JEQ_K, 1, 0, 0, 0));
            }
        }
        for (reg, n) in [(4, r.major()), (5, r.minor())] {
            if let Some(n) = n.filter(|n| *n >= 0) {
                let n = i32::try_from(n).map_err(|_| Error::Unsupported {
                    resource: "linux.resources.devices".into(),
                    reason: format!("device number {n} is out of range"),
                })?;
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, reg, 0, 0, n));
            }
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        let matches_all = jumps.is_empty();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
        if matches_all {
            // Earlier rules and the default are unreachable, and the
            // verifier refuses unreachable code.
            return Ok(p);
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Ok(p)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The head of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: attr is a live, initialised repr(C) prefix of union bpf_attr
    // and its size is passed along; the kernel zero-extends the rest.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Load the program and attach it to the cgroup directory `dir`.
///
/// Attached with BPF_F_ALLOW_MULTI, beside whatever a parent attached (all
/// must allow). Limitation: an `update` adds a program next to the old one
/// rather than replacing it, so an update can narrow device access but not
/// widen it.
pub(super) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    let sys = |what: &'static str, e: std::io::Error| Error::Sys {
        controller: "devices".into(),
        path: dir.to_path_buf(),
        what,
        source: e,
    };
    let prog = program(rules)?;
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"husk_devs");
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let fd = match bpf(BPF_PROG_LOAD, &mut load) {
        Ok(fd) => fd,
        Err(_) => {
            // Load again with the verifier's log, for an error that says why.
            let mut log = vec![0u8; 64 * 1024];
            load.log_level = 1;
            load.log_size = log.len() as u32;
            load.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut load) {
                Ok(fd) => fd,
                Err(e) => {
                    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                    let msg = String::from_utf8_lossy(&log[..end])
                        .trim()
                        .replace('\n', "; ");
                    return Err(sys(
                        "bpf(BPF_PROG_LOAD)",
                        std::io::Error::new(e.kind(), format!("{e}: {msg}")),
                    ));
                }
            }
        }
    };
    // SAFETY: the kernel just returned this new fd; we own it.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| sys("open", e))?;
    let mut attach = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| sys("bpf(BPF_PROG_ATTACH)", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn program_walks_rules_from_last_to_first() {
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]"#,
        ))
        .unwrap();
        let want = vec![
            // prologue
            insn(LDX_MEM_W, 2, 1, 0, 0),
            insn(ALU32_AND_K, 2, 0, 0, 0xffff),
            insn(LDX_MEM_W, 3, 1, 0, 0),
            insn(ALU32_RSH_K, 3, 0, 0, 16),
            insn(LDX_MEM_W, 4, 1, 4, 0),
            insn(LDX_MEM_W, 5, 1, 8, 0),
            // allow c 1:3 rw
            insn(JMP_JNE_K, 2, 0, 7, DEV_CHAR),
            insn(ALU32_MOV_X, 1, 3, 0, 0),
            insn(ALU32_AND_K, 1, 0, 0, 1), // mknod is not allowed
            insn(JMP_JNE_K, 1, 0, 4, 0),
            insn(JMP_JNE_K, 4, 0, 3, 1),
            insn(JMP_JNE_K, 5, 0, 2, 3),
            insn(ALU64_MOV_K, 0, 0, 0, 1),
            insn(EXIT, 0, 0, 0, 0),
            // deny a *:* rwm: matches everything, so no default follows
            insn(ALU64_MOV_K, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn deny_rules_match_any_named_access_and_fifos_are_skipped() {
        let p = program(&rules(
            r#"[{"allow":false,"type":"b","major":8,"access":"w"},{"allow":true,"type":"p"}]"#,
        ))
        .unwrap();
        assert_eq!(
            p[6..],
            [
                insn(JMP_JNE_K, 2, 0, 6, DEV_BLOCK),
                insn(ALU32_MOV_X, 1, 3, 0, 0),
                insn(ALU32_AND_K, 1, 0, 0, 4),
                insn(JMP_JEQ_K, 1, 0, 3, 0),
                insn(JMP_JNE_K, 4, 0, 2, 8),
                insn(ALU64_MOV_K, 0, 0, 0, 0),
                insn(EXIT, 0, 0, 0, 0),
                insn(ALU64_MOV_K, 0, 0, 0, 1),
                insn(EXIT, 0, 0, 0, 0),
            ]
        );
        assert!(program(&rules(r#"[{"allow":true,"access":"rx"}]"#)).is_err());
    }
}
