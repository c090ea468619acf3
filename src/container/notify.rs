//! NOTIFY_SOCKET relay (systemd's sd_notify, for podman --sdnotify=container),
//! as runc does it: `create` binds `<state dir>/notify/` into the container
//! at /run/notify and points the process's NOTIFY_SOCKET there; `start`
//! listens on `notify.sock`, releases the container, and passes its
//! READY=1 on to the host's NOTIFY_SOCKET with MAINPID set to the init.

use crate::sys::proc::PidFd;
use anyhow::{anyhow, Context, Result};
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

const IN_CONTAINER: &str = "/run/notify";

/// The host's notify socket, if husk was given one.
pub fn host_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

/// At create: the bind mount and the process's NOTIFY_SOCKET.
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let d = dir(state_dir);
    std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    let m: Mount = serde_json::from_value(serde_json::json!({
        "destination": IN_CONTAINER,
        "type": "bind",
        "source": d,
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    }))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER}/notify.sock"));
        p.set_env(Some(env));
    }
    Ok(())
}

/// At start, before the release: listen where the container will write.
pub fn listen(state_dir: &Path) -> Result<UnixDatagram> {
    let path = dir(state_dir).join("notify.sock");
    let _ = std::fs::remove_file(&path);
    UnixDatagram::bind(&path).with_context(|| format!("bind {}", path.display()))
}

/// After the release: wait for READY=1 (or the init's death, through its
/// pidfd: no polling), pass it on with the init's host pid.
pub fn relay(sock: &UnixDatagram, host: &str, pid: i32, start_time: u64) -> Result<()> {
    let gone = || anyhow!("the container exited before it reported READY=1");
    let pidfd = PidFd::open(pid, start_time)?.ok_or_else(gone)?;
    let mut buf = [0u8; 4096];
    loop {
        let fds = [
            (sock.as_raw_fd(), libc::POLLIN),
            (pidfd.raw(), libc::POLLIN),
        ];
        if crate::sys::io::poll(&fds, -1)?[0] & libc::POLLIN == 0 {
            return Err(gone());
        }
        let n = sock.recv(&mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.lines().any(|l| l == "READY=1") {
            let out = UnixDatagram::unbound()?;
            let msg = format!("READY=1\nMAINPID={pid}\n");
            send_to(&out, host, msg.as_bytes()).with_context(|| format!("NOTIFY_SOCKET {host}"))?;
            return Ok(());
        }
    }
}

/// A path, or an abstract socket written `@name`.
fn send_to(sock: &UnixDatagram, host: &str, msg: &[u8]) -> std::io::Result<()> {
    if let Some(name) = host.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg, &addr).map(|_| ())
    } else {
        sock.send_to(msg, host).map(|_| ())
    }
}
