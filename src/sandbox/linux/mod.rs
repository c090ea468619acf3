//! The namespace + cgroups sandbox.
pub mod seccomp;
