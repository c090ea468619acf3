//! The container's filesystem, as seen from inside: mounts and their
//! options and propagation, root.readonly, masked and read-only paths,
//! devices, the cgroup mount, hostname/domainname, sysctl.

mod common;
use common::*;
use serde_json::json;
use std::fs;

/// One parsed /proc/self/mountinfo line.
#[derive(Debug)]
struct MountInfo {
    root: String,
    point: String,
    opts: String,
    optional: String,
    fstype: String,
    super_opts: String,
}

fn mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                root: f.get(3)?.to_string(),
                point: f.get(4)?.to_string(),
                opts: f.get(5)?.to_string(),
                optional: f[6..].join(" "),
                fstype: g.first()?.to_string(),
                super_opts: g.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The last (topmost) mount at `point`.
fn at<'a>(m: &'a [MountInfo], point: &str) -> &'a MountInfo {
    m.iter()
        .rev()
        .find(|x| x.point == point)
        .unwrap_or_else(|| panic!("no mount at {point} in {m:#?}"))
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

#[test]
fn readonly_bind_mount_from_host() {
    let ctx = Ctx::new("robind");
    let host = ctx.tempdir("src");
    fs::write(host.join("hello"), "from host\n").unwrap();
    let mut b = ctx.bundle();
    b.bind(&host, "/root", true).sh(
        "cat /root/hello; touch /root/x 2>/dev/null && echo WRITABLE; cat /proc/self/mountinfo",
    );
    let out = ctx.run_ok(&b);
    assert!(out.starts_with("from host\n"), "{out}");
    assert!(!out.contains("WRITABLE"), "{out}");
    let m = mountinfo(&out);
    let r = at(&m, "/root");
    assert_eq!(r.root, host.to_str().unwrap(), "{r:?}");
    assert!(has_opt(&r.opts, "ro"), "{r:?}");
    assert!(!host.join("x").exists());
}

#[test]
fn tmpfs_with_options() {
    let ctx = Ctx::new("tmpfs");
    let mut b = ctx.bundle();
    b.mount(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=1770", "size=1m"]
    }))
    .sh("echo ok > /tmp/f && cat /tmp/f; cat /proc/self/mountinfo");
    let out = ctx.run_ok(&b);
    assert!(out.starts_with("ok\n"), "{out}");
    let m = mountinfo(&out);
    let t = at(&m, "/tmp");
    assert_eq!(t.fstype, "tmpfs");
    for o in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(has_opt(&t.opts, o), "{o} missing: {t:?}");
    }
    assert!(has_opt(&t.super_opts, "size=1024k"), "{t:?}");
    assert!(has_opt(&t.super_opts, "mode=1770"), "{t:?}");
}

#[test]
fn bind_propagation_rshared_vs_default() {
    let ctx = Ctx::new("propagation");
    let a = ctx.tempdir("a");
    let c = ctx.tempdir("c");
    let mut b = ctx.bundle();
    b.mount(
        json!({"destination": "/root", "type": "bind", "source": a.to_str().unwrap(),
                   "options": ["rbind", "rshared"]}),
    )
    .bind(&c, "/tmp", false)
    .sh("cat /proc/self/mountinfo");
    let out = ctx.run_ok(&b);
    let m = mountinfo(&out);
    assert!(
        at(&m, "/root").optional.contains("shared:"),
        "{:?}",
        at(&m, "/root")
    );
    assert!(
        !at(&m, "/tmp").optional.contains("shared:"),
        "{:?}",
        at(&m, "/tmp")
    );
}

#[test]
fn root_readonly() {
    let ctx = Ctx::new("rootro");
    let mut b = ctx.bundle();
    b.sh("touch /x 2>&1 && echo WRITABLE; cat /proc/self/mountinfo");
    let out = ctx.run_ok(&b);
    assert!(!out.contains("WRITABLE"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let m = mountinfo(&out);
    assert!(has_opt(&at(&m, "/").opts, "ro"), "{out}");
}

#[test]
fn root_writable_when_not_readonly() {
    let ctx = Ctx::new("rootrw");
    let rootfs = ctx.tempdir("rootfs");
    copy_rootfs(&rootfs);
    let mut b = ctx.bundle();
    b.spec["root"] = json!({"path": rootfs.to_str().unwrap(), "readonly": false});
    b.sh("echo hi > /written && cat /written");
    assert_eq!(ctx.run_ok(&b), "hi\n");
    assert_eq!(fs::read_to_string(rootfs.join("written")).unwrap(), "hi\n");
}

#[test]
fn masked_paths() {
    let ctx = Ctx::new("masked");
    let mut b = ctx.bundle();
    b.sh(
        "stat -c '%F %t,%T' /proc/timer_list; wc -c < /proc/timer_list; \
         ls -A /proc/acpi | wc -l; echo x > /proc/acpi/y 2>/dev/null && echo WRITABLE; true",
    );
    let out = ctx.run_ok(&b);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["character special file 1,3", "0", "0"], "{out}");
}

#[test]
fn readonly_paths() {
    let ctx = Ctx::new("ropaths");
    let mut b = ctx.bundle();
    b.sh(
        "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 && echo WRITABLE; \
         grep ' /proc/sys ' /proc/self/mountinfo; true",
    );
    let out = ctx.run_ok(&b);
    assert!(!out.contains("WRITABLE"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        has_opt(&at(&mountinfo(&out), "/proc/sys").opts, "ro"),
        "{out}"
    );
}

#[test]
fn default_devices() {
    let ctx = Ctx::new("devices");
    let mut b = ctx.bundle();
    b.sh(
        "for d in null zero full random urandom tty; do stat -c \"$d %F %t,%T\" /dev/$d; done; \
         readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; \
         head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok",
    );
    let out = ctx.run_ok(&b);
    let want = "null character special file 1,3\n\
                zero character special file 1,5\n\
                full character special file 1,7\n\
                random character special file 1,8\n\
                urandom character special file 1,9\n\
                tty character special file 5,0\n\
                pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n";
    assert!(out.starts_with(want), "got:\n{out}\nwant prefix:\n{want}");
    assert!(out.ends_with("4\nnull-ok\n"), "{out}");
}

#[test]
fn linux_devices_entry() {
    let ctx = Ctx::new("lindev");
    let mut b = ctx.bundle();
    b.linux(
        "devices",
        json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 7,
                "fileMode": 0o640, "uid": 1000, "gid": 1001}]),
    )
    .sh("stat -c '%F %t,%T %a %u %g' /dev/mydev");
    assert_eq!(ctx.run_ok(&b), "character special file 1,7 640 1000 1001\n");
}

#[test]
fn cgroup_mount_present() {
    let ctx = Ctx::new("cgmount");
    let mut b = ctx.bundle();
    b.sh("cat /proc/self/mountinfo");
    let out = ctx.run_ok(&b);
    let m = mountinfo(&out);
    let cg = at(&m, "/sys/fs/cgroup");
    assert!(has_opt(&cg.opts, "ro"), "{cg:?}");
    assert!(
        m.iter()
            .any(|x| x.point.starts_with("/sys/fs/cgroup") && x.fstype.starts_with("cgroup")),
        "no cgroup filesystem under /sys/fs/cgroup:\n{out}"
    );
}

#[test]
fn hostname_and_domainname() {
    let ctx = Ctx::new("uts");
    let mut b = ctx.bundle();
    b.spec["hostname"] = json!("box");
    b.spec["domainname"] = json!("example.org");
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(ctx.run_ok(&b), "box\nexample.org\n");
}

#[test]
fn sysctl_in_net_namespace() {
    let ctx = Ctx::new("sysctl");
    let mut b = ctx.bundle();
    b.linux("sysctl", json!({"net.ipv4.ip_forward": "1"}))
        .sh("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(ctx.run_ok(&b), "1\n");
}
