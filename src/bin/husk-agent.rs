//! husk-agent: the guest's /init in a husk microVM.
//!
//! As PID 1 it mounts the basics, reads its config from the initramfs,
//! says Ready on COM2, runs the container's process on Start (and more on
//! Exec), relays stdio and signals, reaps every orphan, reports exit
//! statuses, and ends the VM by reboot when the main process is gone.
//! Its own messages go to stderr, which is the console (COM1).
//!
//! Built statically (see mk/vm.mk, target `vm-agent`).

#[path = "../agent/guest.rs"]
mod guest;
#[path = "../agent/spawn.rs"]
mod spawn;
#[path = "../agent/users.rs"]
mod users;

use husk::sandbox::vm::channel::{
    AgentConfig, Decoder, ExitStatus, Msg, Process, AGENT_TTY, CONFIG_PATH,
};
use husk::sandbox::vm::channel::{INIT_ID, MAX_DATA_CHUNK, PROTOCOL_VERSION};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// One running process and the parent's ends of its stdio.
struct Proc {
    pid: Pid,
    stdin: Option<OwnedFd>,
    pending_in: Vec<u8>,
    close_in: bool,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: bool,
    exited: Option<ExitStatus>,
}

#[derive(Clone, Copy)]
enum Src {
    Serial,
    Signals,
    Out(u32, bool), // (id, is_stderr)
    In(u32),
}

struct Agent {
    serial: File,
    dec: Decoder,
    config: AgentConfig,
    procs: BTreeMap<u32, Proc>,
    started: bool,
}

fn main() {
    let pid1 = std::process::id() == 1;
    if pid1 {
        guest::mount_basics();
    }
    let config = read_config();
    if let (true, Some(h)) = (pid1, &config.hostname) {
        guest::set_hostname(h);
    }
    let serial = match guest::open_serial(AGENT_TTY) {
        Ok(f) => f,
        Err(e) => fatal(&e),
    };
    // SIGCHLD arrives through a signalfd so reaping is one more poll source.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    if let Err(e) = mask.thread_block() {
        fatal(&format!("block SIGCHLD: {e}"));
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .unwrap_or_else(|e| fatal(&format!("signalfd: {e}")));
    let mut agent = Agent {
        serial,
        dec: Decoder::new(),
        config,
        procs: BTreeMap::new(),
        started: false,
    };
    agent.send(&Msg::Ready {
        version: PROTOCOL_VERSION,
    });
    loop {
        agent.step(&sfd);
    }
}

fn fatal(why: &str) -> ! {
    eprintln!("husk-agent: {why}");
    guest::reboot()
}

fn read_config() -> AgentConfig {
    match std::fs::read(CONFIG_PATH) {
        Ok(b) => {
            serde_json::from_slice(&b).unwrap_or_else(|e| fatal(&format!("{CONFIG_PATH}: {e}")))
        }
        Err(e) => {
            // Still usable: Start can carry the process.
            eprintln!("husk-agent: {CONFIG_PATH}: {e}; waiting for a process in Start");
            AgentConfig::default()
        }
    }
}

impl Agent {
    fn send(&mut self, m: &Msg) {
        let frame = m.encode().unwrap_or_else(|e| fatal(&e.to_string()));
        if let Err(e) = self.serial.write_all(&frame) {
            fatal(&format!("write {AGENT_TTY}: {e}"));
        }
    }

    /// One poll round over the serial line, SIGCHLD and every process's stdio.
    fn step(&mut self, sfd: &SignalFd) {
        let mut srcs = vec![Src::Serial, Src::Signals];
        for (&id, p) in &self.procs {
            if p.stdout.is_some() {
                srcs.push(Src::Out(id, false));
            }
            if p.stderr.is_some() {
                srcs.push(Src::Out(id, true));
            }
            if p.stdin.is_some() && !p.pending_in.is_empty() {
                srcs.push(Src::In(id));
            }
        }
        let ready: Vec<(Src, PollFlags)> = {
            let mut fds: Vec<PollFd> = srcs
                .iter()
                .map(|s| match *s {
                    Src::Serial => PollFd::new(self.serial.as_fd(), PollFlags::POLLIN),
                    Src::Signals => PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                    Src::Out(id, err) => {
                        let p = &self.procs[&id];
                        let fd = if err { &p.stderr } else { &p.stdout };
                        PollFd::new(fd.as_ref().unwrap().as_fd(), PollFlags::POLLIN)
                    }
                    Src::In(id) => PollFd::new(
                        self.procs[&id].stdin.as_ref().unwrap().as_fd(),
                        PollFlags::POLLOUT,
                    ),
                })
                .collect();
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => fatal(&format!("poll: {e}")),
            }
            srcs.iter()
                .zip(&fds)
                .filter_map(|(s, f)| f.revents().filter(|r| !r.is_empty()).map(|r| (*s, r)))
                .collect()
        };
        for (src, _) in ready {
            match src {
                Src::Serial => self.read_serial(),
                Src::Signals => {
                    while let Ok(Some(_)) = sfd.read_signal() {}
                    self.reap();
                }
                Src::Out(id, err) => self.relay_output(id, err, false),
                Src::In(id) => self.flush_stdin(id),
            }
        }
        self.finish_exited();
    }

    fn read_serial(&mut self) {
        let mut buf = [0u8; 4096];
        match self.serial.read(&mut buf) {
            Ok(n) => self.dec.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => fatal(&format!("read {AGENT_TTY}: {e}")),
        }
        while let Some(m) = self.dec.next_msg() {
            match m {
                Ok(m) => self.handle(m),
                Err(e) => eprintln!("husk-agent: {e}"),
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Start { process } => {
                if self.started {
                    return self.send(&Msg::Failed {
                        id: INIT_ID,
                        message: "already started".into(),
                    });
                }
                self.started = true;
                let p = process.unwrap_or_else(|| self.config.process.clone());
                if !self.run(INIT_ID, &p) {
                    // Without its main process the container cannot live.
                    self.end_vm();
                }
            }
            Msg::Exec { id, process } => {
                if id == INIT_ID || self.procs.contains_key(&id) {
                    return self.send(&Msg::Failed {
                        id,
                        message: format!("process id {id} is in use"),
                    });
                }
                self.run(id, &process);
            }
            Msg::Signal { id, sig } => {
                if let Some(p) = self.procs.get(&id).filter(|p| p.exited.is_none()) {
                    let sig = Signal::try_from(sig).ok();
                    if let Err(e) = kill(p.pid, sig) {
                        eprintln!("husk-agent: kill process {id}: {e}");
                    }
                }
            }
            Msg::Stdin { id, data } => {
                if let Some(p) = self.procs.get_mut(&id) {
                    p.pending_in.extend_from_slice(&data);
                }
            }
            Msg::CloseStdin { id } => {
                if let Some(p) = self.procs.get_mut(&id) {
                    if p.pty {
                        // Closing a pty master hangs the session up; ^D is the terminal's EOF.
                        p.pending_in.push(4);
                    } else {
                        p.close_in = true;
                    }
                }
                self.flush_stdin(id);
            }
            Msg::WinSize { id, rows, cols } => {
                if let Some(fd) = self
                    .procs
                    .get(&id)
                    .filter(|p| p.pty)
                    .and_then(|p| p.stdin.as_ref())
                {
                    let ws = libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
            }
            other => eprintln!("husk-agent: unexpected {} from the host", other.name()),
        }
    }

    /// Spawns and answers Started or Failed; true if it runs.
    fn run(&mut self, id: u32, p: &Process) -> bool {
        match spawn::spawn(p) {
            Ok(s) => {
                for fd in [&s.stdin, &s.stdout, &s.stderr].into_iter().flatten() {
                    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                }
                self.send(&Msg::Started {
                    id,
                    pid: s.pid.as_raw() as u32,
                });
                let proc = Proc {
                    pid: s.pid,
                    stdin: s.stdin,
                    pending_in: Vec::new(),
                    close_in: false,
                    stdout: s.stdout,
                    stderr: s.stderr,
                    pty: s.pty,
                    exited: None,
                };
                self.procs.insert(id, proc);
                true
            }
            Err(message) => {
                eprintln!("husk-agent: process {id}: {message}");
                self.send(&Msg::Failed { id, message });
                false
            }
        }
    }

    /// Reads what one output has; `drain` keeps going until EAGAIN.
    fn relay_output(&mut self, id: u32, err: bool, drain: bool) {
        let mut buf = vec![0u8; MAX_DATA_CHUNK];
        loop {
            let Some(p) = self.procs.get_mut(&id) else {
                return;
            };
            let slot = if err { &mut p.stderr } else { &mut p.stdout };
            let Some(fd) = slot.as_ref() else { return };
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let data = buf[..n].to_vec();
                    self.send(&if err {
                        Msg::Stderr { id, data }
                    } else {
                        Msg::Stdout { id, data }
                    });
                    if !drain {
                        return;
                    }
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => return,
                // 0 is EOF on a pipe; EIO is how a pty master says the slave side is gone.
                _ => {
                    *slot = None;
                    let data = Vec::new();
                    self.send(&if err {
                        Msg::Stderr { id, data }
                    } else {
                        Msg::Stdout { id, data }
                    });
                    return;
                }
            }
        }
    }

    fn flush_stdin(&mut self, id: u32) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if let Some(fd) = &p.stdin {
            match nix::unistd::write(fd, &p.pending_in) {
                Ok(n) => drop(p.pending_in.drain(..n)),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // The reader is gone (EPIPE): nothing more can be delivered.
                Err(_) => {
                    p.pending_in.clear();
                    p.close_in = true;
                }
            }
        }
        if p.close_in && p.pending_in.is_empty() {
            p.stdin = None;
        }
    }

    /// Collects every child that has exited: ours get a status, orphans
    /// re-parented to PID 1 are just reaped.
    fn reap(&mut self) {
        loop {
            let st = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, status) = match st {
                WaitStatus::Exited(pid, c) => (pid, ExitStatus::Code(c)),
                WaitStatus::Signaled(pid, s, _) => (pid, ExitStatus::Signal(s as i32)),
                _ => continue,
            };
            if let Some(p) = self.procs.values_mut().find(|p| p.pid == pid) {
                p.exited = Some(status);
            }
        }
    }

    /// Reports processes that have exited, after relaying every byte they
    /// wrote (it is all in the pipe by now). When the main process is gone,
    /// everything else goes too and the VM ends.
    fn finish_exited(&mut self) {
        let done: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.exited.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in done {
            if id == INIT_ID {
                // As in a PID namespace: the rest die with the container's init.
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            }
            self.relay_output(id, false, true);
            self.relay_output(id, true, true);
            let p = self.procs.remove(&id).unwrap();
            self.send(&Msg::Exited {
                id,
                status: p.exited.unwrap(),
            });
            if id == INIT_ID {
                self.end_vm();
            }
        }
    }

    fn end_vm(&mut self) -> ! {
        // Let the UART send the last frames before the reset cuts the line.
        let _ = nix::sys::termios::tcdrain(&self.serial);
        guest::reboot()
    }
}
