//! The KVM microVM sandbox.
//!
//! - `initramfs`: the per-container newc cpio archive (rootfs + agent).
pub mod initramfs;
