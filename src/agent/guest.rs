//! What PID 1 must set up in the guest before anything else, and how it
//! ends the VM.

use nix::mount::{mount, MsFlags};
use nix::sys::termios::{self, ControlFlags, SetArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

/// The kernel leaves an initramfs with nothing mounted: give the workload
/// the usual /dev, /proc and /sys. A failure is reported, not fatal, so a
/// rootfs that lacks a mount point still runs.
pub fn mount_basics() {
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let table: [(&str, &str, &str, MsFlags, Option<&str>); 6] = [
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
        ("proc", "/proc", "proc", nodev, None),
        ("sysfs", "/sys", "sysfs", nodev, None),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        ("shm", "/dev/shm", "tmpfs", nodev, Some("mode=1777")),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
    ];
    for (src, dst, fstype, flags, data) in table {
        let _ = std::fs::create_dir_all(dst);
        if let Err(e) = mount(Some(src), dst, Some(fstype), flags, data) {
            eprintln!("husk-agent: mount {fstype} on {dst}: {e}");
        }
    }
    // With a private devpts instance, /dev/ptmx must point into it.
    let _ = std::fs::remove_file("/dev/ptmx");
    let _ = std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx");
}

/// Opens the agent's serial line and makes it an 8-bit clean pipe: no echo,
/// no line editing, no CR/LF translation, no flow control, no modem lines.
pub fn open_serial(path: &str) -> Result<File, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))?;
    let mut t = termios::tcgetattr(&f).map_err(|e| format!("tcgetattr {path}: {e}"))?;
    termios::cfmakeraw(&mut t);
    t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    t.control_flags &= !ControlFlags::CRTSCTS;
    // No baud rate: an emulated UART has none that matters (and glibc's
    // cfsetspeed does not link statically here).
    termios::tcsetattr(&f, SetArg::TCSANOW, &t).map_err(|e| format!("tcsetattr {path}: {e}"))?;
    // Whatever arrived before raw mode may be cooked garbage: drop it.
    let _ = termios::tcflush(&f, termios::FlushArg::TCIOFLUSH);
    Ok(f)
}

pub fn set_hostname(name: &str) {
    if let Err(e) = nix::unistd::sethostname(name) {
        eprintln!("husk-agent: sethostname {name}: {e}");
    }
}

/// Ends the VM. Without ACPI, power-off would halt forever; a reboot with
/// `reboot=k` goes through the i8042 reset line, which the VMM treats as
/// the end of the VM.
pub fn reboot() -> ! {
    nix::unistd::sync();
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    // Only reached if reboot(2) failed (not PID 1, no CAP_SYS_BOOT):
    // exiting PID 1 panics the kernel, and panic=-1 resets too.
    eprintln!("husk-agent: reboot: {}", std::io::Error::last_os_error());
    std::process::exit(1)
}
