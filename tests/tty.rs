//! terminal: true — foreground run and `exec -t` under a pty (`script`), and
//! `--console-socket`: the master arrives by SCM_RIGHTS with the pty name.

mod common;
use common::*;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn have_script() -> bool {
    let ok = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `script` (util-linux/bsdutils) is not installed");
    }
    ok
}

/// Run a shell command line under `script`'s pty; returns the output.
fn under_pty(ctx: &Ctx, cmdline: &str) -> std::process::Output {
    let mut c = Command::new("script");
    c.args(["-qec", cmdline, "/dev/null"]);
    ctx.output(&mut c)
}

fn husk_cmdline(ctx: &Ctx, rest: &str) -> String {
    format!(
        "{} --root {} {rest}",
        husk_bin().display(),
        ctx.root.display()
    )
}

#[test]
fn run_with_terminal_gets_a_pty() {
    if !have_script() {
        return;
    }
    let ctx = Ctx::new("ttyrun");
    let mut b = ctx.bundle();
    b.spec["process"]["terminal"] = serde_json::json!(true);
    b.sh("tty; echo done");
    b.write();
    let id = ctx.id();
    let o = under_pty(
        &ctx,
        &husk_cmdline(&ctx, &format!("run --bundle {} {id}", b.path())),
    );
    // script(1) may feed the pty a NUL, echoed as "^@" (runc shows it too).
    let out = stdout(&o).replace(['\r', '\0'], "").replace("^@", "");
    assert!(out.contains("/dev/pts/0\ndone"), "{}", show(&o));
}

#[test]
fn exec_tty_gets_a_pty() {
    if !have_script() {
        return;
    }
    let ctx = Ctx::new("ttyexec");
    let mut b = ctx.bundle();
    let (id, _) = ctx.start_sleeper(&mut b);
    let o = under_pty(
        &ctx,
        &husk_cmdline(&ctx, &format!("exec -t {id} sh -c 'tty; echo done'")),
    );
    // script(1) may feed the pty a NUL, echoed as "^@" (runc shows it too).
    let out = stdout(&o).replace(['\r', '\0'], "").replace("^@", "");
    assert!(out.contains("/dev/pts/0\ndone"), "{}", show(&o));
    // Without -t there is no terminal.
    let o = ctx.husk(&["exec", &id, "tty"]);
    assert!(stdout(&o).contains("not a tty"), "{}", show(&o));
}

/// Accept one connection and receive (message body, fd).
fn recv_console(listener: UnixListener) -> (String, OwnedFd) {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                fd = fds.first().copied();
            }
        }
        (msg.bytes, fd.expect("no fd in the console message"))
    };
    // SAFETY: received by SCM_RIGHTS, now ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    (String::from_utf8_lossy(&buf[..n]).into_owned(), fd)
}

/// Read from the pty master until `needle` appears or the deadline.
fn read_until(master: &OwnedFd, needle: &str) -> String {
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && !String::from_utf8_lossy(&out).contains(needle) {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

#[test]
fn console_socket_receives_master() {
    let ctx = Ctx::new("consock");
    let sock = ctx.tempdir("sock").join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || recv_console(listener));

    let mut b = ctx.bundle();
    b.spec["process"]["terminal"] = serde_json::json!(true);
    b.sh("tty; echo hello-console; exec sleep 1000");
    b.write();
    let id = ctx.id();
    let o = ctx.husk(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path(),
        &id,
    ]);
    assert_ok(&o);
    let (name, master) = receiver.join().unwrap();
    assert!(
        Path::new(name.trim_end_matches('\0')).starts_with("/dev/pts/"),
        "message body {name:?}"
    );
    assert_ok(&ctx.husk(&["start", &id]));
    let out = read_until(&master, "hello-console");
    assert!(
        out.contains("/dev/pts/0\nhello-console"),
        "read from master: {out:?}"
    );
}
