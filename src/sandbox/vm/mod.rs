//! The KVM microVM sandbox.
//!
//! - `initramfs`: the per-container newc cpio archive (rootfs + agent).
//! - `channel`: the framed agent protocol over COM2, shared with husk-agent.
pub mod channel;
pub mod initramfs;
