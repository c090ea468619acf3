//! The real guest side under QEMU/TCG: Debian's cloud kernel boots husk's
//! initramfs (written by husk's own cpio writer from a busybox rootfs) with
//! husk-agent as /init, and this test drives the agent over COM2 with the
//! protocol from channel.rs. It does not exercise husk's VMM (see
//! vm_testguest.rs for that); it proves the initramfs, the agent and the
//! protocol against the real kernel.
//!
//! Needs: qemu-system-x86_64, `make vm-kernel`, `make vm-agent`, busybox.
//! Run by `make vm-qemu-test`, which sets HUSK_VM_QEMU_REQUIRED=1 so a
//! missing prerequisite fails instead of skipping.

use husk::sandbox::vm::channel::{
    AgentConfig, Channel, ExitStatus, Msg, Process, PROTOCOL_VERSION,
};
use husk::sandbox::vm::guest::{kernel_cmdline, write_initramfs, FileBind};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KERNEL: &str = "vm/kernel/vmlinuz";
const AGENT: &str = "target/x86_64-unknown-linux-gnu/release/husk-agent";
const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> Result<(), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    for (p, how) in [
        (KERNEL, "make vm-kernel"),
        (AGENT, "make vm-agent"),
        (BUSYBOX, "apt-get install -y busybox-static"),
    ] {
        let full = if p.starts_with('/') {
            PathBuf::from(p)
        } else {
            Path::new(root).join(p)
        };
        if !full.exists() {
            return Err(format!("{} is missing ({how})", full.display()));
        }
    }
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("qemu-system-x86_64 is missing (apt-get install -y qemu-system-x86)".into());
    }
    Ok(())
}

/// A busybox rootfs: /bin/busybox plus a link per applet, users for the
/// uid test.
fn make_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nbob:x:1000:\nwheel:x:10:bob\n",
    )
    .unwrap();
}

struct Qemu {
    child: Child,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(cmd: &str) -> Process {
    Process {
        args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        ..Default::default()
    }
}

/// Collects a process's output until its Exited, answering nothing else.
fn run_to_exit(ch: &mut Channel<UnixStream>, id: u32) -> (String, String, ExitStatus) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        match ch.recv().expect("message from the agent") {
            Msg::Stdout { id: i, data } if i == id => out.extend(data),
            Msg::Stderr { id: i, data } if i == id => err.extend(data),
            Msg::Exited { id: i, status } if i == id => {
                return (
                    String::from_utf8_lossy(&out).into(),
                    String::from_utf8_lossy(&err).into(),
                    status,
                )
            }
            Msg::Started { .. } => {}
            m => panic!("unexpected {m:?} while waiting for process {id}"),
        }
    }
}

fn expect_started(ch: &mut Channel<UnixStream>, id: u32) {
    match ch.recv().unwrap() {
        Msg::Started { id: i, pid } if i == id => assert!(pid > 1),
        m => panic!("expected Started for {id}, got {m:?}"),
    }
}

#[test]
fn agent_under_qemu_with_the_real_kernel() {
    if let Err(why) = prerequisites() {
        if std::env::var_os("HUSK_VM_QEMU_REQUIRED").is_some() {
            panic!("cannot run the QEMU test: {why}");
        }
        eprintln!("skipped: {why}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::temp_dir().join(format!("husk-vm-qemu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    make_rootfs(&work.join("rootfs"));

    let config = AgentConfig {
        hostname: Some("husk-test".into()),
        process: sh("echo main says hi; exit 7"),
    };
    // The same path the lifecycle takes: rootfs + a file bind + agent + config.
    let initrd = work.join("initramfs.cpio");
    std::fs::write(work.join("hosts"), "127.0.0.1 localhost husk-test\n").unwrap();
    let binds = [FileBind {
        host: work.join("hosts"),
        guest: "/etc/hosts".into(),
    }];
    write_initramfs(
        &initrd,
        &work.join("rootfs"),
        &root.join(AGENT),
        &config,
        &binds,
    )
    .unwrap();

    let sock = work.join("com2.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let console = work.join("console.log");
    let t0 = Instant::now();
    let mut qemu = Qemu {
        child: Command::new("qemu-system-x86_64")
            .args([
                "-M",
                "pc,acpi=off",
                "-accel",
                "tcg",
                "-m",
                "256",
                "-nographic",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(root.join(KERNEL))
            .arg("-initrd")
            .arg(&initrd)
            // husk's own command line (pci=off, i8042 flags) with the real kernel.
            .arg("-append")
            .arg(kernel_cmdline(None))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-chardev")
            .arg(format!("socket,id=agent,path={}", sock.display()))
            .args(["-serial", "chardev:agent", "-monitor", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn qemu-system-x86_64"),
    };
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut ch = Channel::new(stream.try_clone().unwrap());

    // The greeting.
    assert_eq!(
        ch.recv().unwrap(),
        Msg::Ready {
            version: PROTOCOL_VERSION
        }
    );
    eprintln!("agent ready after {:?}", t0.elapsed());

    // An exec before Start, with the hostname from the config.
    ch.send(&Msg::Exec {
        id: 1,
        process: sh("echo greeting from $(hostname); echo to-stderr >&2; cat /etc/hosts"),
    })
    .unwrap();
    expect_started(&mut ch, 1);
    let (out, err, st) = run_to_exit(&mut ch, 1);
    assert_eq!(
        out,
        "greeting from husk-test\n127.0.0.1 localhost husk-test\n"
    );
    assert_eq!(err, "to-stderr\n");
    assert_eq!(st, ExitStatus::Code(0));

    // stdin echoed back, then EOF.
    ch.send(&Msg::Exec {
        id: 2,
        process: sh("cat"),
    })
    .unwrap();
    expect_started(&mut ch, 2);
    ch.send(&Msg::Stdin {
        id: 2,
        data: b"ping over COM2\n".to_vec(),
    })
    .unwrap();
    ch.send(&Msg::CloseStdin { id: 2 }).unwrap();
    let (out, _, st) = run_to_exit(&mut ch, 2);
    assert_eq!(
        (out.as_str(), st),
        ("ping over COM2\n", ExitStatus::Code(0))
    );

    // A signal delivered.
    ch.send(&Msg::Exec {
        id: 3,
        process: sh("echo up; exec sleep 100"),
    })
    .unwrap();
    expect_started(&mut ch, 3);
    assert_eq!(
        ch.recv().unwrap(),
        Msg::Stdout {
            id: 3,
            data: b"up\n".to_vec()
        }
    );
    ch.send(&Msg::Signal {
        id: 3,
        sig: libc::SIGTERM,
    })
    .unwrap();
    let (_, _, st) = run_to_exit(&mut ch, 3);
    assert_eq!(st, ExitStatus::Signal(libc::SIGTERM));

    // User and groups from /etc/passwd and /etc/group, without NSS.
    let mut p = sh("id -u; id -G; echo $HOME");
    (p.uid, p.gid, p.additional_gids) = (1000, 1000, vec![44]);
    ch.send(&Msg::Exec { id: 4, process: p }).unwrap();
    expect_started(&mut ch, 4);
    let (out, _, _) = run_to_exit(&mut ch, 4);
    assert_eq!(out, "1000\n1000 10 44\n/home/bob\n");

    // A terminal.
    let mut p = sh("tty; stty size");
    p.terminal = true;
    ch.send(&Msg::Exec { id: 5, process: p }).unwrap();
    expect_started(&mut ch, 5);
    let (out, _, _) = run_to_exit(&mut ch, 5);
    assert!(out.starts_with("/dev/pts/"), "tty output: {out:?}");
    assert!(out.contains("24 80"), "stty size output: {out:?}");

    // A failed exec is an answer, not an exit.
    ch.send(&Msg::Exec {
        id: 6,
        process: sh("x").with_args(&["/no/such/binary"]),
    })
    .unwrap();
    match ch.recv().unwrap() {
        Msg::Failed { id: 6, message } => assert!(message.contains("/no/such/binary"), "{message}"),
        m => panic!("expected Failed, got {m:?}"),
    }

    // The main process from the config: its exit code, then the VM ends.
    ch.send(&Msg::Start { process: None }).unwrap();
    expect_started(&mut ch, 0);
    let (out, _, st) = run_to_exit(&mut ch, 0);
    assert_eq!((out.as_str(), st), ("main says hi\n", ExitStatus::Code(7)));

    // reboot(RB_AUTOBOOT) with -no-reboot: QEMU exits by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = qemu.child.try_wait().unwrap() {
            assert!(st.success(), "qemu exit status {st:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the guest did not reset after the main process exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "whole run took {:?}; {} stray bytes skipped on COM2",
        t0.elapsed(),
        ch.skipped()
    );
    let log = std::fs::read_to_string(&console).unwrap();
    assert!(!log.contains("Kernel panic"), "console: {log}");
    let _ = std::fs::remove_dir_all(&work);
}

trait WithArgs {
    fn with_args(self, a: &[&str]) -> Self;
}

impl WithArgs for Process {
    fn with_args(mut self, a: &[&str]) -> Self {
        self.args = a.iter().map(|s| s.to_string()).collect();
        self
    }
}
