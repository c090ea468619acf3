//! husk's VMM on this machine's /dev/kvm, driven with the project's own
//! test guest (vm/testguest/guest.S): a minimal bzImage loaded by the same
//! linux-loader path and entered by the same 64-bit boot protocol as the
//! real kernel. (This host's nested KVM cannot boot a stock kernel; see
//! vm_qemu.rs for the real kernel under QEMU.)
//!
//! Needs root (for /dev/kvm) and binutils (the guest is assembled here).
//! `make vm-test` sets HUSK_VM_KVM_REQUIRED=1 so a missing prerequisite
//! fails instead of skipping.

use husk::sandbox::vm::channel::{ExitStatus, Msg, Process};
use husk::sandbox::vm::initramfs::{InitramfsBuilder, Meta, Source};
use husk::sandbox::vm::{Vm, VmConfig, VmExit, VmmError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn guest() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = root.join("target/testguest.bin");
            let st = Command::new(root.join("vm/testguest/build.sh"))
                .arg(&out)
                .status()
                .map_err(|e| format!("vm/testguest/build.sh: {e}"))?;
            if !st.success() {
                return Err(format!(
                    "vm/testguest/build.sh failed ({st}); is binutils installed?"
                ));
            }
            Ok(out)
        })
        .clone()
}

/// The test guest, or why this test cannot run here.
fn prerequisites() -> Option<PathBuf> {
    let why = match (
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm"),
        guest(),
    ) {
        (Ok(_), Ok(g)) => return Some(g),
        (Err(e), _) => format!("/dev/kvm: {e} (needs KVM and root)"),
        (_, Err(e)) => e,
    };
    if std::env::var_os("HUSK_VM_KVM_REQUIRED").is_some() {
        panic!("cannot run the KVM test-guest tests: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

struct Work(PathBuf);

impl Work {
    fn new(tag: &str) -> Work {
        let d = std::env::temp_dir().join(format!("husk-vm-tg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Work(d)
    }

    fn config(&self, kernel: &Path, cmdline: &str) -> VmConfig {
        let initramfs = self.0.join("initramfs.cpio");
        InitramfsBuilder::new()
            .extra(
                "/init",
                Source::Bytes(b"#!/bin/sh\n".to_vec()),
                Meta::new(0o755),
            )
            .write_to_path(&initramfs)
            .unwrap();
        VmConfig {
            kernel: kernel.to_path_buf(),
            initramfs: Some(initramfs),
            cmdline: cmdline.into(),
            memory_mib: 64,
            console_log: self.0.join("console.log"),
        }
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.0.join("console.log")).unwrap_or_default()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ready_start_exited_then_reset() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let w = Work::new("ok");
    let cfg = w.config(&kernel, "console=ttyS0 testguest.exit=7 reboot=k");

    // created: the VM exists and the agent says ready.
    let mut vm = Vm::new(&cfg).unwrap().start().unwrap();
    vm.wait_ready(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\nconsole:\n{}", w.console()));

    // running: Start answered by Started. A Start carrying a process spec
    // is ~1 KiB, far over the UART's 64-byte FIFO: it arrives only if the
    // host-side queue refills the FIFO as the guest's IRQ 3 handler drains it.
    let process = Process {
        args: vec!["/bin/sh".into(), "-c".into(), "x".repeat(600)],
        env: (0..20).map(|i| format!("VAR{i}=value{i}")).collect(),
        cwd: "/".into(),
        ..Default::default()
    };
    vm.send(&Msg::Start {
        process: Some(process),
    })
    .unwrap();
    assert_eq!(
        vm.recv_timeout(Duration::from_secs(10)).unwrap(),
        Msg::Started { id: 0, pid: 1 }
    );

    // stopped: the exit status from the command line, then the i8042 reset.
    let exited = vm.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        exited,
        Msg::Exited {
            id: 0,
            status: ExitStatus::Code(7)
        }
    );
    assert_eq!(vm.wait().unwrap(), VmExit::Reset);

    let log = w.console();
    eprintln!("{log}");
    assert!(log.contains("boot_params at 0x0000000000007000"), "{log}");
    assert!(
        log.contains("e820 0x0000000000000000 0x000000000009fc00 0x0000000000000001"),
        "{log}"
    );
    // 64 MiB of RAM from 1 MiB: 63 MiB = 0x3f00000.
    assert!(
        log.contains("e820 0x0000000000100000 0x0000000003f00000 0x0000000000000001"),
        "{log}"
    );
    assert!(
        log.contains("cmdline: console=ttyS0 testguest.exit=7 reboot=k"),
        "{log}"
    );
    assert!(log.contains("initramfs magic 070701 ok"), "{log}");
    assert!(
        log.contains("sent Exited, status 0x0000000000000007"),
        "{log}"
    );
}

#[test]
fn a_guest_that_never_says_ready_fails_within_the_bound() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let w = Work::new("silent");
    let cfg = w.config(&kernel, "testguest.mode=silent");
    let mut vm = Vm::new(&cfg).unwrap().start().unwrap();
    let t0 = Instant::now();
    let err = vm.wait_ready(Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, VmmError::NotReady(_)), "{err}");
    assert!(err.to_string().contains("never reported ready"), "{err}");
    // wait_ready stopped the halted vCPU: the VM is over, promptly.
    assert_eq!(vm.wait().unwrap(), VmExit::Killed);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert!(w.console().contains("silent mode"));
}

#[test]
fn an_instruction_kvm_cannot_emulate_is_a_clean_error() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let w = Work::new("badinsn");
    let cfg = w.config(&kernel, "testguest.mode=badinsn");
    let mut vm = Vm::new(&cfg).unwrap().start().unwrap();
    let t0 = Instant::now();
    let err = vm.wait_ready(Duration::from_secs(10)).unwrap_err();
    eprintln!("error: {err}\nconsole:\n{}", w.console());
    assert!(
        matches!(err, VmmError::Internal { suberror: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("emulation failure"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn host_side_errors_name_their_object() {
    let Some(kernel) = prerequisites() else {
        return;
    };
    let w = Work::new("errors");
    let mut cfg = w.config(&kernel, "");
    cfg.kernel = w.0.join("no-such-kernel");
    let e = Vm::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("no-such-kernel"), "{e}");

    cfg.kernel = cfg.initramfs.clone().unwrap(); // a cpio is no bzImage
    let e = Vm::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("not a loadable bzImage"), "{e}");

    cfg.kernel = kernel.clone();
    cfg.memory_mib = 1;
    let e = Vm::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("1 MiB is out of range"), "{e}");

    cfg.memory_mib = 64;
    cfg.console_log = w.0.join("no/such/dir/console.log");
    let e = Vm::new(&cfg).err().unwrap().to_string();
    assert!(
        e.contains("console log") && e.contains("no/such/dir"),
        "{e}"
    );
}
