//! Hooks: every kind runs, in the right order, with the state on stdin; a
//! failing createRuntime hook fails create and leaves nothing behind.

mod common;
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// A hook that appends its name to `<dir>/log` and saves its stdin to
/// `<dir>/<name>.json`. createContainer may run before or after pivot_root
/// (the spec leaves where its path resolves open), so the script writes to
/// the host dir when it sees it, else to /tmp, where the dir is bound.
fn hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    host_sh_hook(&format!(
        "if [ -d {d} ]; then d={d}; else d=/tmp; fi; echo {name} >> $d/log; cat > $d/{name}.json"
    ))
}

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

#[test]
fn all_hooks_run_in_order_with_state() {
    let ctx = Ctx::new("hooks");
    let dir = ctx.tempdir("hooks");
    let mut b = ctx.bundle();
    b.bind(&dir, "/tmp", false).args(&["sleep", "1000"]);
    for k in KINDS {
        b.hook(k, hook(&dir, k));
    }
    let log = dir.join("log");
    let read = || fs::read_to_string(&log).unwrap_or_default();
    let id = ctx.create(&b);
    let pid = ctx.pid(&id);
    assert_eq!(read(), "prestart\ncreateRuntime\ncreateContainer\n");
    assert_ok(&ctx.husk(&["start", &id]));
    assert!(
        wait_for(T, || read().lines().count() >= 5),
        "log: {:?}",
        read()
    );
    // The order of startContainer and poststart: see
    // startcontainer_runs_before_poststart.
    let mut lines: Vec<String> = read().lines().map(str::to_string).collect();
    lines[3..].sort();
    assert_eq!(
        lines,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "startContainer"
        ]
    );
    assert_ok(&ctx.husk(&["delete", "--force", &id]));
    assert!(read().ends_with("\npoststop\n"), "{:?}", read());

    for k in KINDS {
        let text = fs::read_to_string(dir.join(format!("{k}.json"))).unwrap_or_default();
        let st: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{k}: state on stdin is not JSON ({e}): {text:?}"));
        assert_eq!(st["id"], json!(id), "{k}: {st}");
        assert_eq!(st["bundle"], json!(b.path()), "{k}: {st}");
        if k != "poststop" {
            assert_eq!(st["pid"], json!(pid), "{k}: {st}");
        }
    }
}

/// Create with one failing createRuntime hook; expect an error naming it
/// and nothing left behind.
fn create_with_failing_hook(name: &str, hook: Value) {
    let ctx = Ctx::new(name);
    let mounts = host_mounts();
    let mut b = ctx.bundle();
    b.sh("true").hook("createRuntime", hook);
    b.write();
    let id = ctx.id();
    let o = ctx.husk(&["create", "--bundle", b.path(), &id]);
    assert_err(&o, "hooks.createRuntime[0]");
    assert!(ctx.root_entries().is_empty(), "{:?}", ctx.root_entries());
    assert!(
        wait_for(T, || procs_mentioning(b.path()).is_empty()),
        "processes left: {:?}",
        procs_mentioning(b.path())
    );
    assert_eq!(host_mounts(), mounts);
}

#[test]
fn failing_create_runtime_hook_fails_create_cleanly() {
    create_with_failing_hook("hookfail", host_sh_hook("cat > /dev/null; exit 1"));
}

#[test]
fn failing_hook_that_ignores_stdin_fails_create_cleanly() {
    // `/bin/false` races husk's write of the state: when it has exited
    // first, the write hits EPIPE. Repeat to make that likely.
    for i in 0..30 {
        create_with_failing_hook(&format!("hookpipe{i}"), json!({"path": "/bin/false"}));
    }
}

#[test]
fn poststop_runs_on_delete_after_exit() {
    let ctx = Ctx::new("poststop");
    let dir = ctx.tempdir("hooks");
    let mut b = ctx.bundle();
    b.sh("true").hook("poststop", hook(&dir, "poststop"));
    let o = ctx.run(&b);
    assert_ok(&o);
    assert_eq!(
        fs::read_to_string(dir.join("log")).unwrap_or_default(),
        "poststop\n"
    );
}

#[test]
fn startcontainer_runs_before_poststart() {
    for i in 0..10 {
        let ctx = Ctx::new(&format!("hookorder{i}"));
        let dir = ctx.tempdir("hooks");
        let mut b = ctx.bundle();
        b.bind(&dir, "/tmp", false).args(&["sleep", "1000"]);
        b.hook("startContainer", hook(&dir, "startContainer"))
            .hook("poststart", hook(&dir, "poststart"));
        let id = ctx.create(&b);
        assert_ok(&ctx.husk(&["start", &id]));
        let log = dir.join("log");
        let read = || fs::read_to_string(&log).unwrap_or_default();
        assert!(wait_for(T, || read().lines().count() >= 2), "{:?}", read());
        assert_eq!(read(), "startContainer\npoststart\n", "run {i}");
    }
}
