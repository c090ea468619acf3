//! The typed messages on the sync socket between `husk create`/`exec` and
//! the process it is setting up.

use crate::sys::{self, sock};
use serde::{Deserialize, Serialize};
use std::os::fd::{OwnedFd, RawFd};

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// child → parent: unshared the user namespace; write the id maps.
    MapIds,
    /// parent → child: id maps written.
    MapsDone,
    /// child → parent: the pid of the process that becomes init (host view).
    InitPid(i32),
    /// child → parent: mounts are done; run prestart and createRuntime hooks.
    RuntimeHooks,
    /// parent → child: those hooks ran; the body is the state JSON that
    /// the container's own hooks get on stdin.
    HooksDone(String),
    /// child → parent: the pty master rides along; the body is its name.
    Pty(String),
    /// child → parent: set up and waiting for start (or about to exec).
    Ready,
    /// child → parent: a step failed; the child exits.
    Error(String),
}

pub fn send(sock: RawFd, m: &Msg) -> sys::Result<()> {
    sock::send(sock, &serde_json::to_vec(m).expect("serializable"), &[])
}

pub fn send_fd(sock: RawFd, m: &Msg, fd: RawFd) -> sys::Result<()> {
    sock::send(sock, &serde_json::to_vec(m).expect("serializable"), &[fd])
}

/// Receive one message; None when the peer closed its end.
pub fn recv(sock: RawFd) -> sys::Result<Option<(Msg, Vec<OwnedFd>)>> {
    let (data, fds) = sock::recv(sock)?;
    if data.is_empty() {
        return Ok(None);
    }
    let m = serde_json::from_slice(&data).map_err(|_| sys::SysError {
        what: "sync socket: malformed message".into(),
        errno: nix::errno::Errno::EBADMSG,
    })?;
    Ok(Some((m, fds)))
}
