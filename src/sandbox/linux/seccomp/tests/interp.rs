//! A tiny cBPF interpreter for the subset the compiler emits, with the
//! kernel's static checks (bounds, aligned loads inside seccomp_data, a final
//! `ret`), so unit tests can run programs against any `seccomp_data`.

use super::super::bpf::{Insn, ALU_AND_K, JA, JEQ_K, JGE_K, JGT_K, LD_W_ABS, RET_K};
use super::super::MAX_INSNS;

/// `struct seccomp_data`.
#[derive(Clone, Copy, Debug)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_le_bytes());
        // 8..16: instruction_pointer, always 0 here.
        for (i, a) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let o = off as usize;
        u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap())
    }
}

/// The checks the kernel makes before accepting a classic program.
pub fn check(prog: &[Insn]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "length {}",
        prog.len()
    );
    assert_eq!(
        prog.last().unwrap().code,
        RET_K,
        "last instruction must be ret"
    );
    for (pc, i) in prog.iter().enumerate() {
        match i.code {
            LD_W_ABS => assert!(i.k % 4 == 0 && i.k < 64, "pc {pc}: load at {}", i.k),
            ALU_AND_K | RET_K => {}
            JA => assert!(
                pc + 1 + (i.k as usize) < prog.len(),
                "pc {pc}: ja out of range"
            ),
            JEQ_K | JGT_K | JGE_K => {
                assert!(
                    pc + 1 + (i.jt as usize) < prog.len(),
                    "pc {pc}: jt out of range"
                );
                assert!(
                    pc + 1 + (i.jf as usize) < prog.len(),
                    "pc {pc}: jf out of range"
                );
            }
            c => panic!("pc {pc}: unexpected opcode {c:#x}"),
        }
    }
}

/// Runs `prog` on `d`; returns the SECCOMP_RET_* value and the number of
/// instructions executed.
pub fn run(prog: &[Insn], d: &Data) -> (u32, usize) {
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let i = prog[pc];
        steps += 1;
        pc += 1;
        match i.code {
            LD_W_ABS => a = d.word(i.k),
            ALU_AND_K => a &= i.k,
            RET_K => return (i.k, steps),
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}
