//! The VMM process as the container. The namespace backend clones it and
//! sets up its cgroups and namespaces; from there it boots the VM, says
//! Ready once the guest agent does, waits on the exec fifo as a container
//! init would (so `husk start` is the same for both sandboxes), then starts
//! the process in the guest and relays: its own stdin to the agent, the
//! agent's stdout/stderr to its own, every catchable signal to the process.
//! It exits with the container's exit code, or dies by the same signal, so
//! whoever waits on `state.pid` (conmon, a shim, `husk run`) sees the
//! container's own status.

use super::channel::{ExitStatus, Msg, INIT_ID};
use super::exec::Routes;
use super::host::Plan;
use super::vmm::{AgentSender, RunningVm, Vm, VmExit, VmmError};
use crate::sandbox::linux::init::{self, Init};
use crate::sandbox::linux::msg;
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::convert::Infallible;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type R<T> = Result<T, String>;

/// How long the VMM waits for the guest to reset after the exit status.
const RESET_WITHIN: Duration = Duration::from_secs(10);

/// The VMM's main, after `init` joined the namespaces; errors before
/// Ready reach `husk create` as its error.
pub fn main(plan: &Plan, init: &Init) -> R<Infallible> {
    let state = if init::has_hooks(init.spec) {
        runtime_hooks(init)?
    } else {
        String::new()
    };
    // On the host, in the VMM's namespaces: there is no container
    // filesystem on the host to run them in.
    init::run_hooks("createContainer", init.spec, &state)?;
    let listener = UnixListener::bind(&plan.exec_sock)
        .map_err(|e| format!("listen on {}: {e}", plan.exec_sock.display()))?;
    // Before the vCPU thread exists, so that it inherits the mask and
    // every relayed signal reaches the signalfd. Set, not added to: what
    // `husk run` blocked (the vCPU kick among it) must not stay blocked.
    relayed_signals()
        .thread_set_mask()
        .map_err(|e| format!("block signals: {}", e.desc()))?;
    let mut vm = boot(plan)?;
    let tty = init.process.terminal().unwrap_or(false);
    if tty {
        terminal(init)?;
    }
    msg::send(init.sock, &msg::Msg::Ready).map_err(|e| e.to_string())?;

    let started = Arc::new(AtomicBool::new(false));
    relay_signals(vm.sender(), started.clone(), tty)?;
    init::wait_for_start(init.fifo, || {
        init::run_hooks("startContainer", init.spec, &state)
    })?;
    vm.send(&Msg::Start { process: None })
        .map_err(|e| e.to_string())?;
    started.store(true, Ordering::SeqCst);
    if tty {
        send_winsize(&vm.sender());
    }
    relay_stdin(vm.sender());
    let routes = super::exec::serve(listener, vm.sender());
    let status = relay(&mut vm, &routes, &plan.vm.console_log)?;
    drop(vm);
    finish(status)
}

fn runtime_hooks(init: &Init) -> R<String> {
    msg::send(init.sock, &msg::Msg::RuntimeHooks).map_err(|e| e.to_string())?;
    match msg::recv(init.sock).map_err(|e| e.to_string())? {
        Some((msg::Msg::HooksDone(s), _)) => Ok(s),
        Some((other, _)) => Err(format!("unexpected {other:?}")),
        None => Err("parent went away while waiting for the createRuntime hooks".into()),
    }
}

/// Creates the VM (opening /dev/kvm, kernel and initramfs here, inside the
/// sandbox), runs it, and waits for the agent's Ready.
fn boot(plan: &Plan) -> R<RunningVm> {
    let log = &plan.vm.console_log;
    let vm = Vm::new(&plan.vm).map_err(|e| format!("microVM: {e}"))?;
    // The initramfs now lives in guest memory; free the host's copy.
    if let Some(i) = &plan.vm.initramfs {
        let _ = std::fs::remove_file(i);
    }
    let mut vm = vm.start().map_err(|e| format!("microVM: {e}"))?;
    if let Err(e) = vm.wait_ready(plan.ready_within) {
        vm.kill();
        return Err(format!("microVM: {e}{}", console_tail(log)));
    }
    Ok(vm)
}

/// The last lines of the guest console, for an error message.
fn console_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return " (the guest console is empty)".into();
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    format!(" (guest console: {})", tail.join(" | "))
}

/// Every signal the VMM relays: all but SIGKILL/SIGSTOP, the faults (they
/// must stay deliverable to the VMM itself) and the vCPU kick.
fn relayed_signals() -> SigSet {
    let mut s = crate::sys::signals::forwardable();
    let kick = vmm_sys_util::signal::SIGRTMIN() + 1;
    // SAFETY: removing a signal number from a valid set.
    unsafe { libc::sigdelset(&mut s as *mut SigSet as *mut libc::sigset_t, kick) };
    s
}

/// Signals whose default action is to do nothing.
fn harmless(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGWINCH | libc::SIGURG | libc::SIGCONT
    )
}

/// Before start a signal ends the VMM as it would end an init waiting on
/// the fifo; after start it goes to the container's process.
fn relay_signals(to: AgentSender, started: Arc<AtomicBool>, tty: bool) -> R<()> {
    let sfd = SignalFd::with_flags(&relayed_signals(), SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {}", e.desc()))?;
    std::thread::Builder::new()
        .name("husk-signals".into())
        .spawn(move || loop {
            let Ok(Some(info)) = sfd.read_signal() else {
                continue;
            };
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGWINCH && tty && started.load(Ordering::SeqCst) {
                send_winsize(&to);
            }
            if sig == libc::SIGCHLD || sig == libc::SIGWINCH {
                continue;
            }
            if !started.load(Ordering::SeqCst) {
                if !harmless(sig) {
                    reraise(sig);
                }
                continue;
            }
            let _ = to.send(&Msg::Signal { id: INIT_ID, sig });
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    Ok(())
}

/// process.terminal: the guest's process has a pty of the agent's; the
/// host side is a pty too, whose master goes to the console socket (or to
/// `husk run`) as for a namespace container. Its slave, raw so that only
/// the guest's line discipline acts, becomes the VMM's stdio and
/// controlling terminal (so a resize of the master is a SIGWINCH here).
fn terminal(init: &Init) -> R<()> {
    use crate::sandbox::linux::console;
    let host_root = crate::sys::fs::open_dir(Path::new("/")).map_err(|e| e.to_string())?;
    let (master, slave, name) = console::open_pty(&host_root).map_err(|e| e.to_string())?;
    if let Some(sz) = init.process.console_size() {
        console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
    }
    if let Ok(mut t) = nix::sys::termios::tcgetattr(&slave) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    msg::send_fd(init.sock, &msg::Msg::Pty(name), master.as_raw_fd()).map_err(|e| e.to_string())?;
    drop(master);
    console::take_slave(&slave).map_err(|e| e.to_string())
}

/// The host terminal's size, to the guest's.
fn send_winsize(to: &AgentSender) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ into a valid winsize.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        let _ = to.send(&Msg::WinSize {
            id: INIT_ID,
            rows: ws.ws_row,
            cols: ws.ws_col,
        });
    }
}

/// The VMM's stdin, to the process's; its end closes the process's stdin.
fn relay_stdin(to: AgentSender) {
    let _ = std::thread::Builder::new()
        .name("husk-stdin".into())
        .spawn(move || {
            let mut buf = vec![0u8; super::channel::MAX_DATA_CHUNK];
            loop {
                match nix::unistd::read(0, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let data = buf[..n].to_vec();
                        let _ = to.send(&Msg::Stdin { id: INIT_ID, data });
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            let _ = to.send(&Msg::CloseStdin { id: INIT_ID });
        });
}

pub fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: write from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const _, data.len()) };
        if n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        data = &data[n as usize..];
    }
}

/// The agent's messages until the VM ends: the main process's output to
/// ours, exec'd processes' to their connections. Returns the exit status.
fn relay(vm: &mut RunningVm, routes: &Routes, log: &Path) -> R<ExitStatus> {
    let mut status = None;
    let mut deadline = None;
    loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d: Instant| {
            d.saturating_duration_since(Instant::now())
        });
        match vm.recv_timeout(wait) {
            Ok(Msg::Stdout { id: INIT_ID, data }) => write_all(1, &data),
            Ok(Msg::Stderr { id: INIT_ID, data }) => write_all(2, &data),
            Ok(Msg::Started { id: INIT_ID, .. }) => {}
            Ok(Msg::Failed {
                id: INIT_ID,
                message,
            }) => {
                eprintln!("husk: container process: {message}");
                status = Some(ExitStatus::Code(127));
                deadline = Some(Instant::now() + RESET_WITHIN);
            }
            Ok(Msg::Exited {
                id: INIT_ID,
                status: s,
            }) => {
                status = Some(s);
                // The agent drains its channel, then resets the VM.
                deadline = Some(Instant::now() + RESET_WITHIN);
            }
            Ok(other) => routes.deliver(other),
            Err(VmmError::Timeout(_)) if deadline.is_some() => break,
            Err(VmmError::Timeout(_)) => {}
            Err(VmmError::Ended(VmExit::Reset | VmExit::Shutdown | VmExit::Killed)) => break,
            Err(e) if status.is_some() => {
                eprintln!("husk: microVM after the container exited: {e}");
                break;
            }
            Err(e) => return Err(format!("microVM: {e}{}", console_tail(log))),
        }
    }
    status.ok_or_else(|| {
        format!(
            "the guest reset without reporting the container's exit status: the guest kernel panicked or its agent died{}",
            console_tail(log)
        )
    })
}

/// Leave with the container's status: its exit code, or its signal.
fn finish(status: ExitStatus) -> ! {
    match status {
        ExitStatus::Code(c) => {
            // SAFETY: leave without destructors, as a container init would.
            unsafe { libc::_exit(c) }
        }
        ExitStatus::Signal(s) => {
            reraise(s);
            // SAFETY: as above; the signal's default was to go on.
            unsafe { libc::_exit(128 + s) }
        }
    }
}

/// Die by `sig` (no core dump of guest RAM); returns if its default
/// action is to ignore it.
fn reraise(sig: i32) {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process and thread.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
}
