//! The i8042 keyboard controller, reduced to what a guest without a
//! keyboard uses: the CPU reset command (0xfe to port 0x64), which Linux
//! sends on reboot with `reboot=k`. The VMM ends the VM when it fires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vm_superio::{I8042Device, Trigger};

pub const BASE: u16 = 0x60;
pub const LEN: u16 = 5;

/// Records that the guest asked for a reset.
#[derive(Clone, Default)]
pub struct ResetFlag(Arc<AtomicBool>);

impl ResetFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Trigger for ResetFlag {
    type E = std::convert::Infallible;
    fn trigger(&self) -> Result<(), Self::E> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

pub struct I8042 {
    dev: I8042Device<ResetFlag>,
    reset: ResetFlag,
}

impl Default for I8042 {
    fn default() -> Self {
        let reset = ResetFlag::default();
        I8042 {
            dev: I8042Device::new(reset.clone()),
            reset,
        }
    }
}

impl I8042 {
    pub fn read(&mut self, offset: u16) -> u8 {
        // Status 0: output buffer empty, input buffer empty, so Linux's
        // "wait until the controller is ready" loops end at once.
        self.dev.read(offset as u8)
    }

    pub fn write(&mut self, offset: u16, value: u8) {
        let _ = self.dev.write(offset as u8, value);
    }

    pub fn reset_requested(&self) -> bool {
        self.reset.is_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_sets_the_flag() {
        let mut d = I8042::default();
        d.write(0, 0xfe); // the data port does not reset
        d.write(4, 0xaa);
        assert!(!d.reset_requested());
        d.write(4, 0xfe);
        assert!(d.reset_requested());
    }
}
