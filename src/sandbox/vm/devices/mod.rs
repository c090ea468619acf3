//! Legacy PC devices the guest needs: two 16550 UARTs and the i8042's
//! reset line. Their register models come from vm-superio; this module
//! wires them to interrupts, files and the agent channel.
pub mod i8042;
pub mod serial;

use vm_superio::Trigger;
use vmm_sys_util::eventfd::EventFd;

/// An eventfd as a vm-superio interrupt line: registered with KVM as an
/// irqfd, so writing it raises the guest IRQ without a vCPU exit.
pub struct EventTrigger(pub EventFd);

impl Trigger for EventTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}
