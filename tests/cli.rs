//! The commands that need no container: spec, features, --version,
//! checkpoint; and --log/--log-format json on a failing create.

mod common;
use common::*;
use serde_json::Value;
use std::fs;

#[test]
fn spec_writes_runc_default_and_refuses_to_overwrite() {
    let ctx = Ctx::new("spec");
    let dir = ctx.tempdir("spec");
    let o = ctx.husk(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert_ok(&o);
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["hostname"], "runc");
    assert!(
        v["ociVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    let types: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for t in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(types.contains(&t), "{t} missing: {types:?}");
    }

    let before = fs::read(dir.join("config.json")).unwrap();
    let o = ctx.husk(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert_err(&o, "config.json");
    assert_eq!(fs::read(dir.join("config.json")).unwrap(), before);
}

#[test]
fn features_json() {
    let ctx = Ctx::new("features");
    let o = ctx.husk(&["features"]);
    assert_ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["ociVersionMin"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert!(
        v["ociVersionMax"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    let hooks: Vec<&str> = v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "{h} missing: {hooks:?}");
    }
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    for o in ["ro", "rw", "bind", "rbind", "nosuid", "rshared"] {
        assert!(opts.contains(&o), "{o} missing: {opts:?}");
    }
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    for n in [
        "pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time",
    ] {
        assert!(ns.contains(&n), "{n} missing: {ns:?}");
    }
}

#[test]
fn version() {
    let ctx = Ctx::new("version");
    let o = ctx.husk(&["--version"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.starts_with("husk"), "{out}");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn checkpoint_restore_not_supported() {
    let ctx = Ctx::new("checkpoint");
    for cmd in ["checkpoint", "restore"] {
        let o = ctx.husk(&[cmd, "someid"]);
        assert_err(&o, "not supported");
    }
}

#[test]
fn log_json_records_create_error() {
    let ctx = Ctx::new("logjson");
    let log = ctx.tempdir("log").join("husk.log");
    let b = ctx.bundle(); // no config.json: create fails
    let id = ctx.id();
    let o = ctx.husk(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path(),
        &id,
    ]);
    assert!(!o.status.success(), "{}", show(&o));
    let text = fs::read_to_string(&log).expect("log file written");
    let last = text.lines().last().expect("a log line");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(v["level"], "error", "{last}");
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("config.json")),
        "{last}"
    );
    assert!(v["time"].as_str().is_some_and(|t| !t.is_empty()), "{last}");
    assert!(ctx.root_entries().is_empty());
}

#[test]
fn list_empty_root() {
    let ctx = Ctx::new("listempty");
    let o = ctx.husk(&["list", "--format", "json"]);
    assert_ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    // runc prints `null` for no containers; an empty array is as good.
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{}",
        show(&o)
    );
}
