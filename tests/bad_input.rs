//! Bad input: one `husk: ` line naming the field, path or id, and nothing
//! left behind — no state dir, no process, no mount.

mod common;
use common::*;
use serde_json::json;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// Run `husk create` on the bundle with `id`, expect failure whose single
/// `husk: ` line contains every needle, and check nothing was left behind.
#[track_caller]
fn create_fails(ctx: &Ctx, b: &Bundle, id: &str, needles: &[&str]) {
    let mounts = host_mounts();
    let before = ctx.root_entries();
    let o = ctx.husk(&["create", "--bundle", b.path(), id]);
    for n in needles {
        assert_err(&o, n);
    }
    let err = stderr(&o);
    let husk_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("husk: ")).collect();
    let errors: Vec<&&str> = husk_lines
        .iter()
        .filter(|l| !l.starts_with("husk: warn"))
        .collect();
    assert_eq!(errors.len(), 1, "want one error line:\n{}", show(&o));
    assert_eq!(ctx.root_entries(), before, "state left in --root");
    assert!(
        wait_for(T, || procs_mentioning(b.path()).is_empty()),
        "processes left: {:?}",
        procs_mentioning(b.path())
    );
    assert_eq!(host_mounts(), mounts, "mounts left behind");
}

fn bundle_with(ctx: &Ctx, edit: impl FnOnce(&mut Bundle)) -> Bundle {
    let mut b = ctx.bundle();
    b.sh("true");
    edit(&mut b);
    b.write();
    b
}

#[test]
fn missing_config_json() {
    let ctx = Ctx::new("noconfig");
    let b = ctx.bundle();
    create_fails(&ctx, &b, &ctx.id(), &["config.json"]);
}

#[test]
fn malformed_json() {
    let ctx = Ctx::new("malformed");
    let b = bundle_with(&ctx, |_| {});
    let text = fs::read_to_string(b.config_path()).unwrap();
    fs::write(b.config_path(), &text[..text.len() / 2]).unwrap();
    create_fails(&ctx, &b, &ctx.id(), &["config.json"]);
}

#[test]
fn wrong_type_names_field() {
    let ctx = Ctx::new("wrongtype");
    let b = bundle_with(&ctx, |b| {
        b.spec["process"]["user"]["uid"] = json!("x");
    });
    create_fails(&ctx, &b, &ctx.id(), &["process.user.uid"]);
}

#[test]
fn missing_rootfs() {
    let ctx = Ctx::new("norootfs");
    let missing = ctx.tempdir("gone").join("rootfs");
    let b = bundle_with(&ctx, |b| {
        b.spec["root"]["path"] = json!(missing.to_str().unwrap());
    });
    create_fails(&ctx, &b, &ctx.id(), &[missing.to_str().unwrap()]);
}

#[test]
fn duplicate_id() {
    let ctx = Ctx::new("dupid");
    let mut a = ctx.bundle();
    let (id, pid) = ctx.start_sleeper(&mut a);
    let b = bundle_with(&ctx, |_| {});
    let mounts = host_mounts();
    let o = ctx.husk(&["create", "--bundle", b.path(), &id]);
    assert_err(&o, &id);
    assert_eq!(ctx.root_entries(), vec![id.clone()]);
    assert!(procs_mentioning(b.path()).is_empty());
    assert_eq!(host_mounts(), mounts);
    // The first container is untouched.
    assert_eq!(ctx.state(&id)["status"], "running");
    assert_eq!(ctx.pid(&id), pid);
}

#[test]
fn invalid_ids() {
    let ctx = Ctx::new("badid");
    let b = bundle_with(&ctx, |_| {});
    let long = "a".repeat(1025);
    for id in ["../x", "a/b", "/", "..", ""] {
        create_fails(&ctx, &b, id, &["id"]);
    }
    create_fails(&ctx, &b, &long, &["id"]);
    // Nothing was created next to the root dir either.
    assert!(!ctx.root.parent().unwrap().join("x").exists());
}

#[test]
fn unknown_namespace_type() {
    let ctx = Ctx::new("nstype");
    let b = bundle_with(&ctx, |b| {
        b.add_namespace("bogus");
    });
    create_fails(&ctx, &b, &ctx.id(), &["bogus"]);
}

#[test]
fn bad_namespace_path() {
    let ctx = Ctx::new("nspath");
    let b = bundle_with(&ctx, |b| {
        b.remove_namespace("network");
        b.namespaces()
            .push(json!({"type": "network", "path": "/nonexistent/ns/net"}));
    });
    create_fails(&ctx, &b, &ctx.id(), &["/nonexistent/ns/net"]);
}

#[test]
fn namespace_path_of_wrong_type() {
    let ctx = Ctx::new("nspathtype");
    let b = bundle_with(&ctx, |b| {
        b.remove_namespace("network");
        b.namespaces()
            .push(json!({"type": "network", "path": "/proc/self/ns/uts"}));
    });
    create_fails(&ctx, &b, &ctx.id(), &["/proc/self/ns/uts"]);
}

#[test]
fn relative_mount_destination() {
    let ctx = Ctx::new("relmount");
    let b = bundle_with(&ctx, |b| {
        b.mount(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
    });
    create_fails(&ctx, &b, &ctx.id(), &["relative/dir"]);
}

#[test]
fn unsupported_oci_version() {
    let ctx = Ctx::new("ociver");
    let b = bundle_with(&ctx, |b| {
        b.spec["ociVersion"] = json!("2.0.0");
    });
    create_fails(&ctx, &b, &ctx.id(), &["ociVersion", "2.0.0"]);
}

#[test]
fn prerelease_oci_version_accepted() {
    let ctx = Ctx::new("ocidev");
    let mut b = ctx.bundle();
    b.spec["ociVersion"] = json!("1.0.2-dev");
    b.sh("echo ok");
    assert_eq!(ctx.run_ok(&b), "ok\n");
}

#[test]
fn sysctl_net_without_net_namespace() {
    let ctx = Ctx::new("sysctlnons");
    let b = bundle_with(&ctx, |b| {
        b.remove_namespace("network")
            .linux("sysctl", json!({"net.ipv4.ip_forward": "1"}));
    });
    create_fails(&ctx, &b, &ctx.id(), &["net.ipv4.ip_forward"]);
}

#[test]
fn unknown_property_is_ignored() {
    let ctx = Ctx::new("unknownprop");
    let mut b = ctx.bundle();
    b.spec["someFutureThing"] = json!({"x": 1});
    b.spec["process"]["alsoNew"] = json!(true);
    b.sh("echo ran");
    assert_eq!(ctx.run_ok(&b), "ran\n");
}

#[test]
fn unknown_signal() {
    let ctx = Ctx::new("badsig");
    let mut b = ctx.bundle();
    let (id, pid) = ctx.start_sleeper(&mut b);
    let o = ctx.husk(&["kill", &id, "SIGWHAT"]);
    assert_err(&o, "unknown signal");
    assert!(stderr(&o).contains("SIGWHAT"), "{}", show(&o));
    assert!(pid_alive(pid));
}

#[test]
fn exec_into_stopped_container() {
    let ctx = Ctx::new("execstop");
    let mut b = ctx.bundle();
    b.sh("true");
    let id = ctx.create(&b);
    assert_ok(&ctx.husk(&["start", &id]));
    assert!(wait_for(T, || ctx.state(&id)["status"] == "stopped"));
    let o = ctx.husk(&["exec", &id, "echo", "hi"]);
    assert_err(&o, "stopped");
    assert!(stdout(&o).is_empty());
}

#[test]
fn commands_on_unknown_container() {
    let ctx = Ctx::new("noid");
    for cmd in ["state", "start", "kill", "delete", "ps"] {
        let o = ctx.husk(&[cmd, "does-not-exist"]);
        assert_err(&o, "does-not-exist");
    }
    assert!(ctx.root_entries().is_empty());
}

/// An argument that is not UTF-8 (a hostile id or path) is one clear line
/// naming it, and nothing is made.
#[test]
fn non_utf8_argument() {
    use std::os::unix::ffi::OsStrExt;
    let ctx = Ctx::new("nonutf8");
    let b = bundle_with(&ctx, |_| {});
    b.write();
    let id = std::ffi::OsStr::from_bytes(b"bad\xffid");
    let mut c = ctx.cmd();
    c.args(["create", "--bundle", b.path()]).arg(id);
    let o = ctx.output(&mut c);
    assert_err(&o, "argument 6 is not valid UTF-8"); // after --root DIR
    assert_eq!(stderr(&o).lines().count(), 1, "{}", show(&o));
    assert!(ctx.root_entries().is_empty(), "state left in --root");
}
