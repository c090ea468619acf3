//! COM1 and COM2: vm-superio's 16550 register model, an irqfd for the
//! interrupt, and what sits on the host side of each line.
//!
//! - COM1 (0x3f8, IRQ 4) is the guest console: its bytes go to a log file.
//! - COM2 (0x2f8, IRQ 3) carries the agent protocol. The UART's receive
//!   FIFO holds 64 bytes, so host→guest bytes wait in `pending` and are
//!   moved into the FIFO whenever the guest touches the port and there is
//!   room; guest→host bytes are decoded into messages as they are written.

use super::EventTrigger;
use crate::sandbox::vm::channel::{ChannelError, Decoder, Msg};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::sync::mpsc::Sender;
use vm_superio::serial::NoEvents;
use vm_superio::Serial;

pub const COM1_BASE: u16 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
pub const COM2_BASE: u16 = 0x2f8;
pub const COM2_IRQ: u32 = 3;
pub const LEN: u16 = 8;

pub type Uart<W> = Serial<EventTrigger, NoEvents, W>;

/// COM1's host side: the console log, flushed a line at a time so a
/// crashing guest leaves its last words in the file.
pub type ConsoleLog = LineWriter<File>;

pub fn console(irq: EventTrigger, log: File) -> Uart<ConsoleLog> {
    Serial::new(irq, LineWriter::new(log))
}

/// What the owner of a running VM hears: agent messages, and the end of
/// the vCPU thread (so a waiting owner learns of a failure at once).
#[derive(Debug)]
pub enum AgentEvent {
    Msg(Result<Msg, ChannelError>),
    VcpuEnded,
}

/// Guest→host bytes of COM2, decoded into agent messages for the VMM's
/// owner. If the owner has gone, bytes are dropped: the VM is ending.
pub struct AgentSink {
    dec: Decoder,
    tx: Sender<AgentEvent>,
}

impl Write for AgentSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.dec.push(buf);
        while let Some(m) = self.dec.next_msg() {
            let _ = self.tx.send(AgentEvent::Msg(m));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// COM2 with its host→guest queue.
pub struct AgentPort {
    pub uart: Uart<AgentSink>,
    pending: VecDeque<u8>,
}

impl AgentPort {
    pub fn new(irq: EventTrigger, tx: Sender<AgentEvent>) -> Self {
        let sink = AgentSink {
            dec: Decoder::new(),
            tx,
        };
        AgentPort {
            uart: Serial::new(irq, sink),
            pending: VecDeque::new(),
        }
    }

    /// Queues bytes for the guest and fills the FIFO as far as it goes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.pending.extend(bytes);
        self.refill();
    }

    /// Moves queued bytes into the FIFO while it has room; each move
    /// raises the receive interrupt, so the guest comes back for more.
    pub fn refill(&mut self) {
        while !self.pending.is_empty() && self.uart.fifo_capacity() > 0 {
            let n = self.uart.fifo_capacity().min(self.pending.len());
            let chunk: Vec<u8> = self.pending.iter().take(n).copied().collect();
            match self.uart.enqueue_raw_bytes(&chunk) {
                Ok(0) | Err(_) => break, // loopback mode, or the irqfd failed
                Ok(k) => drop(self.pending.drain(..k)),
            }
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::vm::channel::ExitStatus;
    use vmm_sys_util::eventfd::EventFd;

    const RBR: u8 = 0;
    const IER: u8 = 1;
    const LSR: u8 = 5;

    #[test]
    fn host_bytes_beyond_the_fifo_wait_and_arrive_in_order() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let irq = EventFd::new(0).unwrap();
        let mut port = AgentPort::new(EventTrigger(irq.try_clone().unwrap()), tx);
        port.uart.write(IER, 1).unwrap(); // receive interrupt on
        let data: Vec<u8> = (0..200u8).collect();
        port.send(&data);
        assert_eq!(port.pending(), 200 - 64);
        assert!(irq.read().unwrap() >= 1, "the receive interrupt fired");
        let mut got = Vec::new();
        while port.uart.read(LSR) & 1 == 1 {
            got.push(port.uart.read(RBR));
            port.refill();
        }
        assert_eq!(got, data);
        assert_eq!(port.pending(), 0);
    }

    #[test]
    fn guest_bytes_become_messages() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut port = AgentPort::new(EventTrigger(EventFd::new(0).unwrap()), tx);
        let m = Msg::Exited {
            id: 0,
            status: ExitStatus::Code(7),
        };
        for b in m.encode().unwrap() {
            port.uart.write(RBR, b).unwrap(); // THR shares RBR's offset
        }
        match rx.try_recv().unwrap() {
            AgentEvent::Msg(Ok(got)) => assert_eq!(got, m),
            other => panic!("{other:?}"),
        }
    }
}
