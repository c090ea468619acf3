//! Namespaces as seen from inside: new ones differ from the host's, user
//! namespace mappings, joining by path, the time namespace.

mod common;
use common::*;
use serde_json::json;

fn inside_ns(ctx: &Ctx, b: &mut Bundle, names: &[&str]) -> Vec<String> {
    b.sh(&format!(
        "for n in {}; do readlink /proc/self/ns/$n; done",
        names.join(" ")
    ));
    ctx.run_ok(b).lines().map(str::to_string).collect()
}

#[test]
fn new_namespaces_differ_from_host() {
    let ctx = Ctx::new("nsnew");
    let mut b = ctx.bundle();
    b.add_namespace("cgroup");
    let names = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let got = inside_ns(&ctx, &mut b, &names);
    assert_eq!(got.len(), names.len(), "{got:?}");
    for (n, inside) in names.iter().zip(&got) {
        let host = ns_inode("self", n);
        assert!(inside.starts_with(&format!("{n}:[")), "{inside}");
        assert_ne!(inside, &host, "{n} namespace is the host's");
    }
}

#[test]
fn without_namespace_shares_hosts() {
    let ctx = Ctx::new("nsshare");
    let mut b = ctx.bundle();
    b.remove_namespace("network").remove_namespace("ipc");
    let got = inside_ns(&ctx, &mut b, &["net", "ipc"]);
    assert_eq!(got, [ns_inode("self", "net"), ns_inode("self", "ipc")]);
}

#[test]
fn user_namespace_mappings() {
    let ctx = Ctx::new("userns");
    let mut b = ctx.bundle();
    b.add_namespace("user")
        .linux(
            "uidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        )
        .linux(
            "gidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        )
        .sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user");
    let out = ctx.run_ok(&b);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"], "{out}");
    assert_eq!(lines[3], ["0"], "{out}");
    assert_ne!(lines[4][0], ns_inode("self", "user"), "{out}");
}

#[test]
fn join_network_namespace_by_path() {
    let ctx = Ctx::new("nsjoin");
    let mut a = ctx.bundle();
    let (_a_id, a_pid) = ctx.start_sleeper(&mut a);
    let a_net = ns_inode(&a_pid.to_string(), "net");
    assert_ne!(a_net, ns_inode("self", "net"));

    let mut b = ctx.bundle();
    b.remove_namespace("network");
    b.namespaces()
        .push(json!({"type": "network", "path": format!("/proc/{a_pid}/ns/net")}));
    let got = inside_ns(&ctx, &mut b, &["net", "uts"]);
    assert_eq!(got[0], a_net, "B did not join A's network namespace");
    assert_ne!(
        got[1],
        ns_inode(&a_pid.to_string(), "uts"),
        "B should have its own uts"
    );
}

#[test]
fn time_namespace_is_new() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: this kernel has no time namespaces");
        return;
    }
    let ctx = Ctx::new("timens");
    let mut b = ctx.bundle();
    b.add_namespace("time");
    let got = inside_ns(&ctx, &mut b, &["time"]);
    assert!(got[0].starts_with("time:["), "{got:?}");
    assert_ne!(got[0], ns_inode("self", "time"));
}

#[test]
fn time_namespace_offsets() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: this kernel has no time namespaces");
        return;
    }
    let ctx = Ctx::new("timeoff");
    let mut b = ctx.bundle();
    b.add_namespace("time")
        .linux(
            "timeOffsets",
            json!({"boottime": {"secs": 1000000, "nanosecs": 0}}),
        )
        .sh("cut -d. -f1 /proc/uptime");
    let up: u64 = ctx.run_ok(&b).trim().parse().unwrap();
    assert!(up >= 1_000_000, "uptime {up} lacks the boottime offset");
}
