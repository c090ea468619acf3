//! Arbitrary bytes → JSON → `LinuxSeccomp` → `compile`: must never panic,
//! and whatever compiles must be a program the kernel would accept.
#![no_main]

use husk::sandbox::linux::seccomp::{self, Insn, MAX_INSNS};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    // The path husk's spec loader takes: raw JSON, field-naming checks, serde.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = seccomp::check_json(&v);
        if let Ok(s) = seccomp::parse_json(&v) {
            check(seccomp::compile(&s));
        }
    }
    // And straight serde, as a caller holding a typed spec would.
    if let Ok(s) = serde_json::from_slice::<LinuxSeccomp>(data) {
        check(seccomp::compile(&s));
    }
});

fn check(r: Result<seccomp::Filter, seccomp::Error>) {
    let Ok(f) = r else { return };
    let p: &[Insn] = f.program();
    assert!(!p.is_empty() && p.len() <= MAX_INSNS);
    assert_eq!(p[p.len() - 1].code, 0x06, "last instruction must be ret");
    for (pc, i) in p.iter().enumerate() {
        match i.code {
            0x05 => assert!(pc + 1 + (i.k as usize) < p.len()),
            0x15 | 0x25 | 0x35 => {
                assert!(pc + 1 + (i.jt as usize) < p.len());
                assert!(pc + 1 + (i.jf as usize) < p.len());
            }
            0x20 => assert!(i.k % 4 == 0 && i.k < 64),
            0x54 | 0x06 => {}
            c => panic!("opcode {c:#x}"),
        }
    }
}
