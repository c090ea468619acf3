//! The sync socket: one SOCK_SEQPACKET socketpair, a JSON message per
//! datagram, fds riding along by SCM_RIGHTS.

use super::{Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx("socketpair")
}

pub fn send(sock: RawFd, data: &[u8], fds: &[RawFd]) -> Result<()> {
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(|_| ()).ctx("sync socket: send"),
        }
    }
}

/// Receive one datagram; an empty result means the peer closed.
pub fn recv(sock: RawFd) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            // The peer exited with a message of ours unread (a child that
            // failed before it read a reply): the kernel reports that once,
            // ahead of what the peer sent before, which is still queued.
            Err(nix::errno::Errno::ECONNRESET) => continue,
            r => r.ctx("sync socket: receive")?,
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs().ctx("sync socket: control message")? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: the kernel installed these fds for us.
                fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let n = msg.bytes;
        buf.truncate(n);
        return Ok((buf, fds));
    }
}

/// Send a pty master to a --console-socket the way runc does: the fd by
/// SCM_RIGHTS, the pty's name as the message body.
pub fn send_console(path: &std::path::Path, master: &OwnedFd, name: &str) -> Result<()> {
    let what = || format!("console socket {}", path.display());
    let stream = std::os::unix::net::UnixStream::connect(path).with_ctx(what)?;
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_ctx(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that fails before reading the parent's reply: its error is
    /// queued for the parent, the reply is unread when it exits. The parent
    /// gets the error (the kernel's one-off ECONNRESET is skipped), then
    /// the end of the stream.
    #[test]
    fn peer_gone_with_our_message_unread_still_delivers_its_own() {
        let (parent, child) = pair().unwrap();
        send(child.as_raw_fd(), b"error", &[]).unwrap();
        send(parent.as_raw_fd(), b"reply", &[]).unwrap();
        drop(child);
        let (data, _) = recv(parent.as_raw_fd()).unwrap();
        assert_eq!(data, b"error");
        let (data, _) = recv(parent.as_raw_fd()).unwrap();
        assert!(data.is_empty());
    }
}
