//! seccomp: linux.seccomp → BPF, installed with seccomp(2).
//! Placeholder until the seccomp translation lands: specs that ask for a
//! filter are refused in validation, so `compile` is never reached with one.

#[derive(Debug)]
pub struct Filter;

pub fn install(_f: &Filter) -> Result<(), String> {
    Err("seccomp is not supported by husk yet".into())
}
