//! Round-trip tests: write archives, parse them back with a tiny reader,
//! and list them with the real `cpio -t` where it is installed.

use super::*;
use std::os::unix::fs::symlink;
use std::process::Command;

#[derive(Debug)]
struct Entry {
    name: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

fn hex(b: &[u8]) -> u32 {
    u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap()
}

/// A minimal newc reader, independent of the writer's code.
fn parse(mut a: &[u8]) -> Vec<Entry> {
    let total = a.len();
    assert_eq!(total % 4, 0, "archive length is 4-aligned");
    let mut out = Vec::new();
    loop {
        assert_eq!(&a[..6], b"070701");
        let f = |i: usize| hex(&a[6 + i * 8..14 + i * 8]);
        let (mode, uid, gid, mtime, size) = (f(1), f(2), f(3), f(5), f(6) as usize);
        let rdev = (f(9), f(10));
        let namesize = f(11) as usize;
        let name = std::str::from_utf8(&a[110..110 + namesize - 1])
            .unwrap()
            .to_string();
        assert_eq!(a[110 + namesize - 1], 0, "name is NUL-terminated");
        let data_off = (110 + namesize + 3) & !3;
        let data = a[data_off..data_off + size].to_vec();
        let next = (data_off + size + 3) & !3;
        a = &a[next..];
        if name == "TRAILER!!!" {
            assert!(a.is_empty(), "nothing after the trailer");
            return out;
        }
        out.push(Entry {
            name,
            mode,
            uid,
            gid,
            mtime,
            rdev,
            data,
        });
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("husk-initramfs-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn writer_entries_round_trip() {
    let mut w = CpioWriter::new(Vec::new());
    let m = Meta {
        perm: 0o750,
        uid: 1000,
        gid: 100,
        mtime: 1_700_000_000,
    };
    w.dir("/", Meta::new(0o755)).unwrap();
    w.dir("/etc", m).unwrap();
    w.file("/etc/a", Meta::new(0o644), b"hello").unwrap();
    w.file("/etc/empty", Meta::new(0o600), b"").unwrap();
    w.symlink("/etc/l", b"../x/y", Meta::new(0)).unwrap();
    w.node("/null", libc::S_IFCHR, Meta::new(0o666), (1, 3))
        .unwrap();
    let (buf, n) = w.finish().unwrap();
    assert_eq!(n as usize, buf.len());
    let e = parse(&buf);
    let names: Vec<_> = e.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".", "etc", "etc/a", "etc/empty", "etc/l", "null"]);
    assert_eq!(e[1].mode, libc::S_IFDIR | 0o750);
    assert_eq!((e[1].uid, e[1].gid, e[1].mtime), (1000, 100, 1_700_000_000));
    assert_eq!(e[2].data, b"hello");
    assert_eq!(e[2].mode, libc::S_IFREG | 0o644);
    assert_eq!(e[3].data, b"");
    assert_eq!(e[4].mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(e[4].data, b"../x/y");
    assert_eq!(e[5].mode, libc::S_IFCHR | 0o666);
    assert_eq!(e[5].rdev, (1, 3));
}

#[test]
fn guest_paths_must_be_absolute_and_inside() {
    let mut w = CpioWriter::new(Vec::new());
    assert!(matches!(
        w.file("etc/x", Meta::new(0o644), b""),
        Err(InitramfsError::BadGuestPath { .. })
    ));
    assert!(matches!(
        w.file("/a/../../x", Meta::new(0o644), b""),
        Err(InitramfsError::BadGuestPath { .. })
    ));
}

#[test]
fn builds_from_rootfs_without_following_symlinks() {
    let d = tmpdir("rootfs");
    let root = d.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("bin/busybox"), b"ELF...").unwrap();
    symlink("busybox", root.join("bin/sh")).unwrap();
    // A link that points out of the rootfs must be stored as a link,
    // not replaced by the host's /etc/passwd.
    symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
    fs::write(root.join("etc/hosts"), b"rootfs hosts").unwrap();
    let agent = d.join("agent");
    fs::write(&agent, b"agent-binary").unwrap();

    let out = d.join("initramfs.cpio");
    let size = InitramfsBuilder::new()
        .rootfs(&root)
        .extra("/init", Source::Host(agent), Meta::new(0o755))
        .extra(
            "/etc/hosts",
            Source::Bytes(b"bind hosts".to_vec()),
            Meta::new(0o644),
        )
        .extra(
            "/.husk/config.json",
            Source::Bytes(b"{}".to_vec()),
            Meta::new(0o600),
        )
        .write_to_path(&out)
        .unwrap();
    let buf = fs::read(&out).unwrap();
    assert_eq!(size as usize, buf.len());
    let e = parse(&buf);
    let get = |n: &str| {
        e.iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(get("bin/busybox").data, b"ELF...");
    assert_eq!(get("bin/sh").data, b"busybox");
    assert_eq!(get("etc/passwd").mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(get("etc/passwd").data, b"/etc/passwd");
    assert_eq!(get("init").data, b"agent-binary");
    assert_eq!(get("init").mode, libc::S_IFREG | 0o755);
    // The extra replaces the rootfs file: exactly one etc/hosts entry.
    assert_eq!(e.iter().filter(|e| e.name == "etc/hosts").count(), 1);
    assert_eq!(get("etc/hosts").data, b"bind hosts");
    // Missing parents of extras are created, before their children.
    let pos = |n: &str| e.iter().position(|e| e.name == n).unwrap();
    assert!(pos(".husk") < pos(".husk/config.json"));
    assert!(pos("bin") < pos("bin/busybox"));
    assert_eq!(e[0].name, ".");

    // The real cpio, when present, must agree on the listing.
    let listed = Command::new("cpio")
        .args(["-t", "--quiet", "-F"])
        .arg(&out)
        .output();
    match listed {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8(o.stdout).unwrap();
            let got: Vec<&str> = text.lines().collect();
            let want: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(got, want);
        }
        Ok(o) => panic!("cpio -t failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!(
            "skipped cpio -t cross-check: cpio is not installed (apt-get install -y cpio)"
        ),
    }
    fs::remove_dir_all(&d).unwrap();
}
