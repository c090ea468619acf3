//! cBPF generation: the program layout described in the module docs.
//!
//! The builder emits **backwards** (last instruction first), so every jump
//! target already exists when the jump is emitted and its offset is known.
//! A conditional jump reaches 255 instructions at most; a farther target gets
//! a copy of its `ret`, or a `ja` trampoline, placed right after the jump
//! (where nothing falls through into it, since the jump always jumps).

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::LinuxSeccompOperator as Op;

use super::{Abi, Action, Cond, Rule, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, ENOSYS, X32_SYSCALL_BIT};

/// One cBPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
pub(super) struct SockFprog {
    pub len: u16,
    pub filter: *const Insn,
}

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}

/// The rules of one ABI, keyed by syscall number (rules in spec order).
pub(super) struct ArchBlock {
    pub abi: Abi,
    pub syscalls: BTreeMap<u32, Vec<Rule>>,
    /// Numbers above this return ENOSYS (runc's stub), if set.
    pub enosys_above: Option<u32>,
}

/// A position in the program, counted from its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Label(usize);

#[derive(Default)]
struct Builder {
    rev: Vec<Insn>,
}

impl Builder {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(Insn { code, jt, jf, k });
        Label(self.rev.len() - 1)
    }

    /// The offset from the next emitted instruction to `t`.
    fn dist(&self, t: Label) -> usize {
        self.rev.len() - t.0 - 1
    }

    fn ret(&mut self, k: u32) -> Label {
        self.push(RET_K, 0, 0, k)
    }

    fn ld(&mut self, off: u32) -> Label {
        self.push(LD_W_ABS, 0, 0, off)
    }

    fn and(&mut self, k: u32) -> Label {
        self.push(ALU_AND_K, 0, 0, k)
    }

    /// `t`, or a stand-in for it near enough for a conditional jump. 253 and
    /// not 255: the two stand-ins of one jump may push the other target by 2.
    fn near(&mut self, t: Label) -> Label {
        if self.dist(t) <= 253 {
            return t;
        }
        let target = self.rev[t.0];
        if target.code == RET_K {
            self.ret(target.k)
        } else {
            let off = self.dist(t) as u32;
            self.push(JA, 0, 0, off)
        }
    }

    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) -> Label {
        let jt = self.near(jt);
        let jf = self.near(jf);
        let (t, f) = (self.dist(jt) as u8, self.dist(jf) as u8);
        self.push(code, t, f, k)
    }

    /// Makes the next emitted instruction fall through into `t`.
    fn goto(&mut self, t: Label) {
        if t.0 + 1 == self.rev.len() {
            return;
        }
        let target = self.rev[t.0];
        if target.code == RET_K {
            self.ret(target.k);
        } else {
            let off = self.dist(t) as u32;
            self.push(JA, 0, 0, off);
        }
    }

    fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// What a syscall number leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handler {
    Ret(Action),
    Code(Label),
}

/// Generates the whole program; `blocks` holds x86_64 and any of i386, x32.
pub(super) fn generate(blocks: &[ArchBlock], default: Action) -> Vec<Insn> {
    let mut b = Builder::default();
    let bad_arch = b.ret(Action::KillThread.ret());
    let find = |abi| blocks.iter().find(|bl| bl.abi == abi);
    // Emitted in reverse program order: x32, i386, x86_64, arch dispatch.
    let x32 = find(Abi::X32).map(|bl| emit_block(&mut b, bl, default, None));
    let i386 = find(Abi::I386).map(|bl| emit_block(&mut b, bl, default, None));
    let x64 = match find(Abi::X86_64) {
        Some(bl) => emit_block(&mut b, bl, default, Some(x32.unwrap_or(bad_arch))),
        None => bad_arch,
    };
    let mut next = bad_arch;
    if let Some(l) = i386 {
        next = b.jump(JEQ_K, AUDIT_ARCH_I386, l, next);
    }
    b.jump(JEQ_K, AUDIT_ARCH_X86_64, x64, next);
    b.ld(OFF_ARCH);
    b.finish()
}

/// Orders the rules of one syscall for a first-match chain.
///
/// As libseccomp: the first unconditional rule (in spec order) decides the
/// syscall alone, whatever other rules say. Otherwise the conditional rules
/// are tested most restrictive first, and no match falls back to `default`.
fn plan(rules: &[Rule], default: Action) -> (Vec<Rule>, Action) {
    if let Some(r) = rules.iter().find(|r| r.conds.is_empty()) {
        return (Vec::new(), r.action);
    }
    let mut seen = HashSet::new();
    let mut rs: Vec<Rule> = rules.iter().filter(|r| seen.insert(*r)).cloned().collect();
    rs.sort_by_key(|r| r.action.rank()); // stable: spec order within a rank
    while rs.last().is_some_and(|r| r.action == default) {
        rs.pop();
    }
    (rs, default)
}

/// One ABI's block; returns its entry. `x32` is where x86_64 sends numbers
/// with the x32 bit (the x32 block, or bad arch).
fn emit_block(b: &mut Builder, bl: &ArchBlock, default: Action, x32: Option<Label>) -> Label {
    let plans: Vec<(u32, Vec<Rule>, Action)> = bl
        .syscalls
        .iter()
        .map(|(&nr, rules)| {
            let (chain, fallback) = plan(rules, default);
            (nr, chain, fallback)
        })
        .collect();

    // Every `ret` of the block, once, at its end.
    let mut rets: BTreeMap<Action, Label> = BTreeMap::new();
    let mut want = vec![default];
    if bl.enosys_above.is_some() {
        want.push(Action::Errno(ENOSYS));
    }
    for (_, chain, fallback) in &plans {
        want.push(*fallback);
        want.extend(chain.iter().map(|r| r.action));
    }
    for a in want {
        rets.entry(a).or_insert_with(|| b.ret(a.ret()));
    }

    // Condition chains, then the intervals that lead to them.
    let wide = bl.abi.wide_args();
    let mut intervals: Vec<(u32, Handler)> = Vec::new();
    let mut add = |start: u32, h: Handler| {
        if intervals.last().map(|(_, last)| *last) != Some(h) {
            intervals.push((start, h));
        }
    };
    let mut cur: Option<u32> = Some(0); // first number not yet covered
    for (nr, chain, fallback) in &plans {
        let h = if chain.is_empty() {
            Handler::Ret(*fallback)
        } else {
            Handler::Code(emit_chain(b, chain, rets[fallback], wide, &rets))
        };
        if let Some(c) = cur {
            if *nr > c {
                add(c, Handler::Ret(default));
            }
        }
        add(*nr, h);
        cur = nr.checked_add(1);
    }
    if let Some(c) = cur {
        add(c, Handler::Ret(default));
    }

    let label_of = |h: Handler| match h {
        Handler::Ret(a) => rets[&a],
        Handler::Code(l) => l,
    };
    let mut entry = emit_tree(b, &intervals, &label_of);
    if let Some(max) = bl.enosys_above {
        entry = b.jump(JGT_K, max, rets[&Action::Errno(ENOSYS)], entry);
    }
    if let Some(x32) = x32 {
        entry = b.jump(JGE_K, X32_SYSCALL_BIT, x32, entry);
    }
    b.goto(entry);
    b.ld(OFF_NR)
}

/// A binary search over `intervals` (sorted starts; each runs to the next).
fn emit_tree(
    b: &mut Builder,
    intervals: &[(u32, Handler)],
    label_of: &dyn Fn(Handler) -> Label,
) -> Label {
    if intervals.len() == 1 {
        return label_of(intervals[0].1);
    }
    let mid = intervals.len() / 2;
    let right = emit_tree(b, &intervals[mid..], label_of);
    let left = emit_tree(b, &intervals[..mid], label_of);
    b.jump(JGE_K, intervals[mid].0, right, left)
}

/// First-match chain over `chain`; no match goes to `fallback`.
fn emit_chain(
    b: &mut Builder,
    chain: &[Rule],
    fallback: Label,
    wide: bool,
    rets: &BTreeMap<Action, Label>,
) -> Label {
    let mut next = fallback;
    for r in chain.iter().rev() {
        let fail = next;
        let mut entry = rets[&r.action];
        for c in r.conds.iter().rev() {
            entry = emit_cond(b, c, wide, entry, fail);
        }
        next = entry;
    }
    next
}

/// One argument test: to `pass` if it holds, else to `fail`.
fn emit_cond(b: &mut Builder, c: &Cond, wide: bool, pass: Label, fail: Label) -> Label {
    let lo_off = off_arg_lo(c.index);
    let hi_off = lo_off + 4;
    let (v_lo, v_hi) = (c.value as u32, (c.value >> 32) as u32);
    let (d_lo, d_hi) = (c.value_two as u32, (c.value_two >> 32) as u32);
    if !wide {
        // libseccomp on 32-bit ABIs: the low half only, values truncated.
        match c.op {
            Op::ScmpCmpEq => b.jump(JEQ_K, v_lo, pass, fail),
            Op::ScmpCmpNe => b.jump(JEQ_K, v_lo, fail, pass),
            Op::ScmpCmpGt => b.jump(JGT_K, v_lo, pass, fail),
            Op::ScmpCmpGe => b.jump(JGE_K, v_lo, pass, fail),
            Op::ScmpCmpLt => b.jump(JGE_K, v_lo, fail, pass),
            Op::ScmpCmpLe => b.jump(JGT_K, v_lo, fail, pass),
            Op::ScmpCmpMaskedEq => {
                b.jump(JEQ_K, d_lo, pass, fail);
                b.and(v_lo)
            }
        };
        return b.ld(lo_off);
    }
    match c.op {
        // hi == v_hi && lo == v_lo
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            let (p, f) = if c.op == Op::ScmpCmpEq {
                (pass, fail)
            } else {
                (fail, pass)
            };
            b.jump(JEQ_K, v_lo, p, f);
            let lo = b.ld(lo_off);
            b.jump(JEQ_K, v_hi, lo, f);
            b.ld(hi_off)
        }
        // (arg & value) == valueTwo
        Op::ScmpCmpMaskedEq => {
            b.jump(JEQ_K, d_lo, pass, fail);
            b.and(v_lo);
            let lo = b.ld(lo_off);
            if v_hi == 0 && d_hi == 0 {
                return lo; // the high half always passes
            }
            b.jump(JEQ_K, d_hi, lo, fail);
            b.and(v_hi);
            b.ld(hi_off)
        }
        // hi > v_hi, or hi == v_hi and lo (> or >=) v_lo; LT/LE are the negations.
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            let negate = matches!(c.op, Op::ScmpCmpLt | Op::ScmpCmpLe);
            let lo_code = if matches!(c.op, Op::ScmpCmpGt | Op::ScmpCmpLe) {
                JGT_K
            } else {
                JGE_K
            };
            let (p, f) = if negate { (fail, pass) } else { (pass, fail) };
            b.jump(lo_code, v_lo, p, f);
            let lo = b.ld(lo_off);
            let eq = b.jump(JEQ_K, v_hi, lo, f);
            b.jump(JGT_K, v_hi, p, eq);
            b.ld(hi_off)
        }
    }
}
