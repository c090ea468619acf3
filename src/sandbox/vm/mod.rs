//! The KVM microVM sandbox.
//!
//! - `initramfs`: the per-container newc cpio archive (rootfs + agent).
//! - `channel`: the framed agent protocol over COM2, shared with husk-agent.
//! - `memory`, `boot`: guest RAM and its layout; bzImage loading and the
//!   64-bit boot protocol.
//! - `devices`: COM1 (console log), COM2 (agent), the i8042 reset line.
//! - `vmm`: the VM, its vCPU loop, and the handle to a running VM.
//! - `guest`: the kernel command line and the container's initramfs.
//! - `settings`: the `dev.husk.vm*` annotations, checked before create acts.
//! - `host`, `container`, `exec`: the sandbox behind the lifecycle — the
//!   initramfs and plan written by `create`, the VMM process as the
//!   container, and `husk exec` through the VMM's socket.
pub mod boot;
pub mod channel;
pub mod container;
pub mod devices;
pub mod exec;
pub mod guest;
pub mod host;
pub mod initramfs;
pub mod memory;
pub mod settings;
pub mod vmm;

pub use vmm::{AgentSender, RunningVm, Vm, VmConfig, VmExit, VmmError};
