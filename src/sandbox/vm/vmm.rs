//! The VMM: one KVM VM with one vCPU, the legacy devices, and the agent
//! channel on COM2.
//!
//! Two phases, so husk can do everything that needs host paths and
//! /dev/kvm before its sandbox closes:
//! - `Vm::new` opens /dev/kvm, creates the VM, its memory and the vCPU,
//!   and loads kernel, initramfs and command line;
//! - `Vm::start` runs the vCPU on its own thread and returns a
//!   `RunningVm` to talk to the agent and wait for the end.
//!
//! Call both in the same process: KVM binds a VM to the address space that
//! created it, so its fds are useless (EIO) in a forked child. The VMM
//! process creates the VM after entering its namespaces and cgroups but
//! before pivot_root. `RunningVm::kill` uses the signal SIGRTMIN+1 to pull
//! the vCPU thread out of KVM_RUN; the process must not block it there.

use super::boot::{self, BootError};
use super::channel::{ChannelError, Msg, PROTOCOL_VERSION};
use super::devices::i8042::{self, I8042};
use super::devices::serial::{self, AgentEvent, AgentPort, ConsoleLog, Uart};
use super::devices::EventTrigger;
use super::memory::{self, MemoryError};
use kvm_bindings::{kvm_pit_config, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Cap, Kvm, VcpuExit, VcpuFd, VmFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

/// Where KVM puts the TSS it needs on Intel (three pages below 4 GiB,
/// out of the way of RAM, which ends below the MMIO gap).
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initramfs: Option<PathBuf>,
    pub cmdline: String,
    pub memory_mib: u64,
    /// COM1: the guest console.
    pub console_log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("/dev/kvm: {0} (is KVM available, and may this process open it?)")]
    NoKvm(kvm_ioctls::Error),
    #[error("KVM lacks {0:?}, which husk's VMM needs")]
    MissingCap(Cap),
    #[error("KVM {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("console log {path}: {source}")]
    ConsoleLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("eventfd for {what}: {source}")]
    EventFd {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("KVM internal error in the guest: {reason} (suberror {suberror}, data {data:x?})")]
    Internal {
        reason: &'static str,
        suberror: u32,
        data: Vec<u64>,
    },
    #[error("KVM could not enter the guest: hardware entry failure reason {reason:#x}")]
    FailEntry { reason: u64 },
    #[error("the guest stopped with an unexpected KVM exit: {0}")]
    UnexpectedExit(String),
    #[error("KVM_RUN: {0}")]
    Run(kvm_ioctls::Error),
    #[error("the guest agent never reported ready within {0:?}")]
    NotReady(Duration),
    #[error("the guest agent speaks protocol {got}, husk speaks {PROTOCOL_VERSION}")]
    Protocol { got: u32 },
    #[error("the guest agent sent {0} before Ready")]
    NotReadyFirst(&'static str),
    #[error("the VM ended ({0:?}) before the expected message")]
    Ended(VmExit),
    #[error("no message from the guest agent within {0:?}")]
    Timeout(Duration),
    #[error("the vCPU thread: {0}")]
    Thread(String),
}

type Result<T> = std::result::Result<T, VmmError>;

/// How a VM that ran to its end ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmExit {
    /// The guest reset through the i8042 (Linux `reboot` with reboot=k).
    Reset,
    /// A triple fault, or KVM's shutdown / reset system event.
    Shutdown,
    /// `RunningVm::kill` stopped it.
    Killed,
}

pub struct Vm {
    // Fields drop in order: the vCPU and VM fds before the memory they map.
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    com1: Uart<ConsoleLog>,
    com2: Arc<Mutex<AgentPort>>,
    i8042: I8042,
    msgs: Receiver<AgentEvent>,
    ended: Sender<AgentEvent>,
    _mem: GuestMemoryMmap,
}

fn kvm_err(what: &'static str) -> impl Fn(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { what, source }
}

impl Vm {
    pub fn new(cfg: &VmConfig) -> Result<Vm> {
        let kvm = Kvm::new().map_err(VmmError::NoKvm)?;
        for cap in [
            Cap::Irqchip,
            Cap::Irqfd,
            Cap::Pit2,
            Cap::ExtCpuid,
            Cap::UserMemory,
        ] {
            if !kvm.check_extension(cap) {
                return Err(VmmError::MissingCap(cap));
            }
        }
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        vm.set_tss_address(KVM_TSS_ADDRESS)
            .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        vm.create_irq_chip()
            .map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(kvm_err("KVM_CREATE_PIT2"))?;
        let mem = memory::create(&vm, cfg.memory_mib)?;
        let loaded = boot::load(&mem, &cfg.kernel, cfg.initramfs.as_deref(), &cfg.cmdline)?;

        let vcpu = vm.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        boot::setup_cpuid(&vcpu, cpuid)?;
        boot::setup_vcpu(&mem, &vcpu, &loaded)?;
        boot::setup_lapic(&vcpu)?;

        let irq = |what, gsi| -> Result<EventTrigger> {
            let fd = EventFd::new(libc::EFD_NONBLOCK)
                .map_err(|source| VmmError::EventFd { what, source })?;
            vm.register_irqfd(&fd, gsi).map_err(kvm_err("KVM_IRQFD"))?;
            Ok(EventTrigger(fd))
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.console_log)
            .map_err(|source| VmmError::ConsoleLog {
                path: cfg.console_log.clone(),
                source,
            })?;
        let com1 = serial::console(irq("COM1", serial::COM1_IRQ)?, log);
        let (tx, msgs) = mpsc::channel();
        let com2 = Arc::new(Mutex::new(AgentPort::new(
            irq("COM2", serial::COM2_IRQ)?,
            tx.clone(),
        )));
        Ok(Vm {
            vcpu,
            _vm: vm,
            _kvm: kvm,
            com1,
            com2,
            i8042: I8042::default(),
            msgs,
            ended: tx,
            _mem: mem,
        })
    }

    /// Runs the vCPU on its own thread.
    pub fn start(self) -> Result<RunningVm> {
        install_kick_handler();
        let stop = Arc::new(AtomicBool::new(false));
        let com2 = self.com2.clone();
        let (vcpu_part, msgs) = self.split();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("husk-vcpu".into())
            .spawn(move || vcpu_part.run(&stop2))
            .map_err(|e| VmmError::Thread(e.to_string()))?;
        Ok(RunningVm {
            com2,
            msgs,
            thread: Some(thread),
            stop,
            ready: false,
        })
    }

    fn split(self) -> (VcpuLoop, Receiver<AgentEvent>) {
        let Vm {
            vcpu,
            _vm,
            _kvm,
            com1,
            com2,
            i8042,
            msgs,
            ended,
            _mem,
        } = self;
        (
            VcpuLoop {
                vcpu,
                _vm,
                _kvm,
                com1,
                com2,
                i8042,
                ended,
                _mem,
            },
            msgs,
        )
    }
}

/// What the vCPU thread owns.
struct VcpuLoop {
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    com1: Uart<ConsoleLog>,
    com2: Arc<Mutex<AgentPort>>,
    i8042: I8042,
    ended: Sender<AgentEvent>,
    _mem: GuestMemoryMmap,
}

impl VcpuLoop {
    fn run(mut self, stop: &AtomicBool) -> Result<VmExit> {
        let r = self.run_inner(stop);
        let _ = std::io::Write::flush(self.com1.writer_mut());
        // Wake an owner blocked in recv_timeout: it collects `r` by joining.
        let _ = self.ended.send(AgentEvent::VcpuEnded);
        r
    }

    fn run_inner(&mut self, stop: &AtomicBool) -> Result<VmExit> {
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(VmExit::Killed);
            }
            let exit = match self.vcpu.run() {
                Ok(exit) => exit,
                // The kick signal (kill) or another interruption: re-check stop.
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => return Err(VmmError::Run(e)),
            };
            match exit {
                VcpuExit::IoIn(port, data) => {
                    let v = io_in(&mut self.com1, &self.com2, &mut self.i8042, port);
                    data.fill(v);
                }
                VcpuExit::IoOut(port, data) => {
                    let v = data.first().copied().unwrap_or(0);
                    io_out(&mut self.com1, &self.com2, &mut self.i8042, port, v);
                    if self.i8042.reset_requested() {
                        return Ok(VmExit::Reset);
                    }
                }
                // No devices on MMIO: reads float high, writes vanish.
                VcpuExit::MmioRead(_, data) => data.fill(0xff),
                VcpuExit::MmioWrite(..) => {}
                VcpuExit::Shutdown | VcpuExit::SystemEvent(..) => return Ok(VmExit::Shutdown),
                VcpuExit::Intr => {}
                VcpuExit::InternalError => return Err(self.internal_error()),
                VcpuExit::FailEntry(reason, _) => return Err(VmmError::FailEntry { reason }),
                other => return Err(VmmError::UnexpectedExit(format!("{other:?}"))),
            }
        }
    }

    fn internal_error(&mut self) -> VmmError {
        let run = self.vcpu.get_kvm_run();
        // SAFETY: exit_reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the live member.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let reason = match internal.suberror {
            1 => "emulation failure (an instruction KVM cannot emulate)",
            2 => "exception while delivering an exception (simultaneous exceptions)",
            3 => "error while delivering an event",
            4 => "unexpected exit reason",
            _ => "unknown",
        };
        let n = (internal.ndata as usize).min(internal.data.len());
        VmmError::Internal {
            reason,
            suberror: internal.suberror,
            data: internal.data[..n].to_vec(),
        }
    }
}

fn io_in(com1: &mut Uart<ConsoleLog>, com2: &Mutex<AgentPort>, kbd: &mut I8042, port: u16) -> u8 {
    use serial::{COM1_BASE, COM2_BASE, LEN};
    match port {
        p if (COM1_BASE..COM1_BASE + LEN).contains(&p) => com1.read((p - COM1_BASE) as u8),
        p if (COM2_BASE..COM2_BASE + LEN).contains(&p) => {
            let mut c = com2.lock().unwrap();
            let v = c.uart.read((p - COM2_BASE) as u8);
            // The guest just drained a byte or looked at the status: refill.
            c.refill();
            v
        }
        p if (i8042::BASE..i8042::BASE + i8042::LEN).contains(&p) => kbd.read(p - i8042::BASE),
        // No device: the bus floats high, as on real hardware.
        _ => 0xff,
    }
}

fn io_out(com1: &mut Uart<ConsoleLog>, com2: &Mutex<AgentPort>, kbd: &mut I8042, port: u16, v: u8) {
    use serial::{COM1_BASE, COM2_BASE, LEN};
    match port {
        p if (COM1_BASE..COM1_BASE + LEN).contains(&p) => {
            let _ = com1.write((p - COM1_BASE) as u8, v);
        }
        p if (COM2_BASE..COM2_BASE + LEN).contains(&p) => {
            let mut c = com2.lock().unwrap();
            let _ = c.uart.write((p - COM2_BASE) as u8, v);
            c.refill();
        }
        p if (i8042::BASE..i8042::BASE + i8042::LEN).contains(&p) => kbd.write(p - i8042::BASE, v),
        _ => {}
    }
}

/// The signal that pulls the vCPU thread out of KVM_RUN (EINTR) so it
/// sees the stop flag. Its handler does nothing.
fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN() + 1
}

fn install_kick_handler() {
    extern "C" fn noop(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
    // Registering twice is harmless; failing only means kill() falls back on
    // the guest's own next exit.
    let _ = vmm_sys_util::signal::register_signal_handler(kick_signal(), noop);
}

/// Sends frames to the agent; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct AgentSender(Arc<Mutex<AgentPort>>);

impl AgentSender {
    pub fn send(&self, m: &Msg) -> std::result::Result<(), ChannelError> {
        let frame = m.encode()?;
        self.0.lock().unwrap().send(&frame);
        Ok(())
    }
}

/// A VM whose vCPU runs; the handle to its agent.
pub struct RunningVm {
    com2: Arc<Mutex<AgentPort>>,
    msgs: Receiver<AgentEvent>,
    thread: Option<JoinHandle<Result<VmExit>>>,
    stop: Arc<AtomicBool>,
    ready: bool,
}

impl RunningVm {
    /// Waits for the agent's Ready. A VM that fails or ends first reports
    /// why (e.g. a KVM emulation failure); silence is `NotReady`.
    pub fn wait_ready(&mut self, within: Duration) -> Result<()> {
        match self.recv_timeout(within) {
            Ok(Msg::Ready { version }) if version == PROTOCOL_VERSION => {
                self.ready = true;
                Ok(())
            }
            Ok(Msg::Ready { version }) => Err(VmmError::Protocol { got: version }),
            Ok(other) => Err(VmmError::NotReadyFirst(other.name())),
            Err(VmmError::Timeout(_)) => {
                self.kill();
                Err(VmmError::NotReady(within))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the agent has said Ready.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn send(&self, m: &Msg) -> std::result::Result<(), ChannelError> {
        self.sender().send(m)
    }

    /// A handle for sending to the agent from other threads (stdin,
    /// signals, exec connections) while this one receives.
    pub fn sender(&self) -> AgentSender {
        AgentSender(self.com2.clone())
    }

    /// The next message from the agent. If the vCPU thread ended, its
    /// result is returned: the error that stopped it, or `Ended`.
    /// Frames that fail to parse are skipped (logged to stderr).
    pub fn recv_timeout(&mut self, within: Duration) -> Result<Msg> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.msgs.recv_timeout(left) {
                Ok(AgentEvent::Msg(Ok(m))) => return Ok(m),
                Ok(AgentEvent::Msg(Err(e))) => eprintln!("husk: {e}"),
                Ok(AgentEvent::VcpuEnded) => return Err(self.ended()),
                Err(RecvTimeoutError::Timeout) => {
                    // The vCPU may have failed while we waited.
                    if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                        return Err(self.ended());
                    }
                    return Err(VmmError::Timeout(within));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended()),
            }
            if Instant::now() >= deadline {
                return Err(VmmError::Timeout(within));
            }
        }
    }

    fn ended(&mut self) -> VmmError {
        match self.join() {
            Ok(exit) => VmmError::Ended(exit),
            Err(e) => e,
        }
    }

    /// Stops the vCPU: sets the flag and kicks the thread out of KVM_RUN
    /// until it notices (a kick that lands just before KVM_RUN is lost, so
    /// it repeats).
    pub fn kill(&mut self) {
        use std::os::unix::thread::JoinHandleExt;
        self.stop.store(true, Ordering::SeqCst);
        while let Some(t) = &self.thread {
            if t.is_finished() {
                break;
            }
            unsafe { libc::pthread_kill(t.as_pthread_t(), kick_signal()) };
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the VM to end by itself.
    pub fn wait(mut self) -> Result<VmExit> {
        self.join()
    }

    fn join(&mut self) -> Result<VmExit> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| VmmError::Thread("panicked".into()))?,
            None => Ok(VmExit::Killed),
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.kill();
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bus_routes_and_floats_high() {
        let irq = || EventTrigger(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let log = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let mut com1 = serial::console(irq(), log);
        let (tx, rx) = mpsc::channel();
        let com2 = Mutex::new(AgentPort::new(irq(), tx));
        let mut kbd = I8042::default();
        // Nothing at 0x80 (POST codes) or 0x3e8 (COM3): 0xff, and no panic.
        assert_eq!(io_in(&mut com1, &com2, &mut kbd, 0x80), 0xff);
        assert_eq!(io_in(&mut com1, &com2, &mut kbd, 0x3e8), 0xff);
        io_out(&mut com1, &com2, &mut kbd, 0x80, 0x12);
        // COM1's LSR says "transmitter empty"; COM2 bytes reach the decoder.
        assert_ne!(
            io_in(&mut com1, &com2, &mut kbd, serial::COM1_BASE + 5) & 0x20,
            0
        );
        for b in (Msg::CloseStdin { id: 9 }).encode().unwrap() {
            io_out(&mut com1, &com2, &mut kbd, serial::COM2_BASE, b);
        }
        assert!(matches!(
            rx.try_recv(),
            Ok(AgentEvent::Msg(Ok(Msg::CloseStdin { id: 9 })))
        ));
        // The reset line.
        io_out(&mut com1, &com2, &mut kbd, 0x64, 0xfe);
        assert!(kbd.reset_requested());
    }
}
