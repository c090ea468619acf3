//! seccomp: linux.seccomp → BPF, installed with seccomp(2).
