//! `husk exec` in a VM container. The VMM listens on `<state dir>/vm.sock`;
//! each connection is one process, spoken in the agent protocol's own
//! frames: the client sends Exec (its id is ignored), then Stdin,
//! CloseStdin, Signal, WinSize; it receives Started or Failed, Stdout,
//! Stderr and Exited. The VMM gives each connection its own process id
//! toward the agent.
//!
//! A detached exec has no host process of its own: the process lives in
//! the guest. So `husk exec -d` forks a small relay that holds the
//! connection, passes the process's output to the stdio it was given and
//! exits with the process's status; `--pid-file` names that relay.

use super::channel::{Channel, ExitStatus, Msg, Process};
use super::vmm::AgentSender;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The connection of each exec'd process, by the id the agent knows it by.
#[derive(Clone, Default)]
pub struct Routes(Arc<Mutex<HashMap<u32, UnixStream>>>);

impl Routes {
    /// Hands an agent message about an exec'd process to its connection.
    /// A client that stops reading loses its output rather than stall the
    /// container's own.
    pub fn deliver(&self, m: Msg) {
        let (id, last) = match &m {
            Msg::Started { id, .. } | Msg::Stdout { id, .. } | Msg::Stderr { id, .. } => {
                (*id, false)
            }
            Msg::Failed { id, .. } | Msg::Exited { id, .. } => (*id, true),
            _ => return,
        };
        let mut map = self.0.lock().unwrap();
        let Some(conn) = map.get_mut(&id) else { return };
        let ok = m
            .encode()
            .map(|f| conn.write_all(&f).is_ok())
            .unwrap_or(false);
        if last || !ok {
            if let Some(c) = map.remove(&id) {
                let _ = c.shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

/// Accepts exec connections for as long as the VMM lives.
pub fn serve(listener: UnixListener, to: AgentSender) -> Routes {
    let routes = Routes::default();
    let r = routes.clone();
    let _ = std::thread::Builder::new()
        .name("husk-exec".into())
        .spawn(move || {
            let next = AtomicU32::new(1);
            for conn in listener.incoming().flatten() {
                let id = next.fetch_add(1, Ordering::SeqCst);
                let Ok(out) = conn.try_clone() else { continue };
                let _ = out.set_write_timeout(Some(Duration::from_secs(5)));
                r.0.lock().unwrap().insert(id, out);
                let to = to.clone();
                let _ = std::thread::Builder::new()
                    .name(format!("husk-exec-{id}"))
                    .spawn(move || client(conn, id, to));
            }
        });
    routes
}

/// One client's messages, rewritten to its process id. When the client
/// goes away the process goes on (as a detached exec's would).
fn client(conn: UnixStream, id: u32, to: AgentSender) {
    let mut ch = Channel::new(conn);
    while let Ok(m) = ch.recv() {
        let m = match m {
            Msg::Exec { process, .. } => Msg::Exec { id, process },
            Msg::Stdin { data, .. } => Msg::Stdin { id, data },
            Msg::CloseStdin { .. } => Msg::CloseStdin { id },
            Msg::Signal { sig, .. } => Msg::Signal { id, sig },
            Msg::WinSize { rows, cols, .. } => Msg::WinSize { id, rows, cols },
            _ => continue,
        };
        if to.send(&m).is_err() {
            return;
        }
    }
}

/// What `husk exec` got: the relay's pid when detached, else the exit code.
pub enum Done {
    Detached(i32),
    Exited(i32),
}

/// Runs `p` in the VM container whose VMM listens on `sock`.
pub fn exec(sock: &Path, p: Process, detach: bool) -> Result<Done, String> {
    let stream = UnixStream::connect(sock)
        .map_err(|e| format!("{}: {e} (is the container's VMM running?)", sock.display()))?;
    let mut ch = Channel::new(stream.try_clone().map_err(|e| e.to_string())?);
    ch.send(&Msg::Exec { id: 0, process: p })
        .map_err(|e| e.to_string())?;
    match ch.recv().map_err(|e| e.to_string())? {
        Msg::Started { .. } => {}
        Msg::Failed { message, .. } => return Err(format!("exec in the microVM: {message}")),
        other => return Err(format!("exec: unexpected {} from the VMM", other.name())),
    }
    if detach {
        // SAFETY: husk exec is single-threaded here; the child only relays.
        match unsafe { libc::fork() } {
            -1 => return Err(format!("fork: {}", nix::errno::Errno::last().desc())),
            0 => {
                let _ = nix::unistd::setsid();
                let code = relay(stream, ch);
                // SAFETY: leave the forked child without destructors.
                unsafe { libc::_exit(code) }
            }
            pid => return Ok(Done::Detached(pid)),
        }
    }
    Ok(Done::Exited(relay(stream, ch)))
}

/// stdin and signals to the process, its output to ours; its exit code
/// in shell form.
fn relay(stream: UnixStream, mut ch: Channel<UnixStream>) -> i32 {
    let out = Arc::new(Mutex::new(stream));
    let send = {
        let out = out.clone();
        move |m: Msg| {
            if let Ok(f) = m.encode() {
                let _ = out.lock().unwrap().write_all(&f);
            }
        }
    };
    let mut sigs = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
    ] {
        sigs.remove(s);
    }
    let _ = sigs.thread_block();
    if let Ok(sfd) = SignalFd::with_flags(&sigs, SfdFlags::SFD_CLOEXEC) {
        let send = send.clone();
        std::thread::spawn(move || loop {
            if let Ok(Some(i)) = sfd.read_signal() {
                let sig = i.ssi_signo as i32;
                if sig != libc::SIGCHLD && sig != libc::SIGWINCH {
                    send(Msg::Signal { id: 0, sig });
                }
            }
        });
    }
    std::thread::spawn(move || {
        let mut buf = vec![0u8; super::channel::MAX_DATA_CHUNK];
        while let Ok(n @ 1..) = nix::unistd::read(0, &mut buf) {
            send(Msg::Stdin {
                id: 0,
                data: buf[..n].to_vec(),
            });
        }
        send(Msg::CloseStdin { id: 0 });
    });
    loop {
        match ch.recv() {
            Ok(Msg::Stdout { data, .. }) => super::container::write_all(1, &data),
            Ok(Msg::Stderr { data, .. }) => super::container::write_all(2, &data),
            Ok(Msg::Exited { status, .. }) => {
                return match status {
                    ExitStatus::Code(c) => c,
                    ExitStatus::Signal(s) => 128 + s,
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("husk: exec: the VM ended before the process's exit status: {e}");
                return 255;
            }
        }
    }
}
