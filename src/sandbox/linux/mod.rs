//! The namespace + cgroups sandbox.
pub mod caps;
pub mod console;
pub mod devices;
pub mod exec;
pub mod init;
pub mod mounts;
pub mod msg;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod spawn;
pub mod user;
